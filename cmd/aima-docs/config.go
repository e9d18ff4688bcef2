package main

import (
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"aima/config"
	"aima/metrics"
	"aima/services"
)

// renderConfig is every key of the config file: its YAML key, type,
// default (config.Default) and meaning (the field's doc comment), nested
// sections as dotted keys.
func renderConfig(root string) (string, error) {
	docs := map[string]map[string]string{}
	for _, dir := range []string{"config", "settings"} {
		d, err := structFieldDocs(filepath.Join(root, dir))
		if err != nil {
			return "", err
		}
		for typ, fields := range d {
			docs[typ] = fields
		}
	}
	var b strings.Builder
	b.WriteString("| key | type | default | meaning |\n|---|---|---|---|\n")
	if err := configRows(&b, "", reflect.ValueOf(config.Default()), docs); err != nil {
		return "", err
	}
	return b.String(), nil
}

func configRows(b *strings.Builder, prefix string, v reflect.Value, docs map[string]map[string]string) error {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if key == "" || key == "-" {
			continue
		}
		key = prefix + key
		doc := docs[t.Name()][f.Name]
		if doc == "" {
			return fmt.Errorf("%s.%s (%s) has no doc comment: say what it means", t.Name(), f.Name, key)
		}
		fv := v.Field(i)
		switch {
		case f.Type.Kind() == reflect.Struct && !scalar(f.Type):
			fmt.Fprintf(b, "| `%s` | section | | %s |\n", key, cell(doc))
			if err := configRows(b, key+".", fv, docs); err != nil {
				return err
			}
		case f.Type.Kind() == reflect.Map && f.Type.Elem().Kind() == reflect.Struct:
			fmt.Fprintf(b, "| `%s` | map of sections by %s | `%s` | %s |\n", key, "name", defaultText(fv), cell(doc))
			if err := configRows(b, key+".NAME.", reflect.New(f.Type.Elem()).Elem(), docs); err != nil {
				return err
			}
		default:
			fmt.Fprintf(b, "| `%s` | %s | %s | %s |\n", key, typeText(f.Type), code(defaultText(fv)), cell(doc))
		}
	}
	return nil
}

// scalar tells the types the file writes as one value from sections.
func scalar(t reflect.Type) bool {
	return t == reflect.TypeFor[config.Duration]() || t == reflect.TypeFor[config.PortRange]()
}

func typeText(t reflect.Type) string {
	switch {
	case t == reflect.TypeFor[config.Duration]():
		return "duration (`90s`, `10m`)"
	case t == reflect.TypeFor[config.PortRange]():
		return "string"
	case t.Kind() == reflect.Slice:
		return "list of " + typeText(t.Elem())
	case t.Kind() == reflect.Map:
		return "map of " + typeText(t.Key()) + " to " + typeText(t.Elem())
	case t.Kind() == reflect.Bool:
		return "boolean"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		return "integer"
	}
	return t.Kind().String()
}

func defaultText(v reflect.Value) string {
	switch {
	case v.Type() == reflect.TypeFor[config.Duration]():
		return shortDuration(time.Duration(v.Int()))
	case v.Kind() == reflect.Slice:
		if v.Len() == 0 {
			return "[]"
		}
	case v.Kind() == reflect.Map:
		if v.Len() == 0 {
			return "{}"
		}
	case v.Kind() == reflect.String && v.String() == "":
		return ""
	}
	return fmt.Sprint(v.Interface())
}

// shortDuration writes 20m0s as 20m and 1h0m0s as 1h.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// renderFailures is the failure kinds a failed record carries, with the
// meaning of each (its doc comment in services).
func renderFailures(root string) (string, error) {
	docs, err := constDocs(filepath.Join(root, "services"), "FailureKind")
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("| `failure` | meaning |\n|---|---|\n")
	for _, k := range services.AllFailureKinds {
		if docs[string(k)] == "" {
			return "", fmt.Errorf("failure kind %s has no doc comment", k)
		}
		fmt.Fprintf(&b, "| `%s` | %s |\n", k, cell(docs[string(k)]))
	}
	return b.String(), nil
}

// renderMetrics is every series aima serves itself, from the collectors'
// descriptors (metrics.Reference).
func renderMetrics(string) (string, error) {
	ref, err := metrics.Reference()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	path := ""
	for _, s := range ref {
		if s.Path != path {
			if path != "" {
				b.WriteString("\n")
			}
			path = s.Path
			fmt.Fprintf(&b, "Served at `%s`:\n\n| series | type | labels | meaning |\n|---|---|---|---|\n", path)
		}
		labels := make([]string, len(s.Labels))
		for i, l := range s.Labels {
			labels[i] = "`" + l + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", s.Name, s.Type, strings.Join(labels, ", "), cell(s.Help))
	}
	return b.String(), nil
}
