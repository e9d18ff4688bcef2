package cli

import (
	"aima/internal/units"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/jedib0t/go-pretty/v6/table"
	"go.yaml.in/yaml/v3"

	"aima/engines"
	"aima/events"
	"aima/gpu"
	"aima/models"
	"aima/services"
	"aima/state"
	"aima/tools"
)

type eventT = events.Event

func derefAny(v any) any {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		return rv.Elem().Interface()
	}
	return v
}

// printDoc prints one JSON or YAML document.
func printDoc(w io.Writer, format string, v any) error {
	var raw []byte
	switch x := v.(type) {
	case json.RawMessage:
		raw = x
	default:
		var err error
		if raw, err = json.Marshal(v); err != nil {
			return err
		}
	}
	if format == "yaml" {
		var generic any
		if err := json.Unmarshal(raw, &generic); err != nil {
			return err
		}
		out, err := yaml.Marshal(generic)
		if err != nil {
			return err
		}
		_, err = w.Write(out)
		return err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(raw), "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// render prints an operation's output in the chosen format.
func render(std IO, format string, op tools.Op, raw json.RawMessage) error {
	if format == "json" || format == "yaml" {
		return printDoc(std.Stdout, format, raw)
	}
	out, err := decodeOutput(op, raw)
	if err != nil {
		return printDoc(std.Stdout, "json", raw)
	}
	switch v := out.(type) {
	case tools.ServiceList:
		warnDamaged(std, v.Damaged)
		return serviceTable(std.Stdout, v.Items)
	case tools.RecordList[models.Model]:
		warnDamaged(std, v.Damaged)
		return modelTable(std.Stdout, v.Items)
	case tools.ModelScanOutput:
		for _, sk := range v.Skipped {
			fmt.Fprintf(std.Stderr, "skipped %s: %s\n", sk.Path, sk.Reason)
		}
		return modelTable(std.Stdout, v.Items)
	case tools.List[engines.Engine]:
		return engineTable(std.Stdout, v.Items)
	case tools.GPUListOutput:
		return gpuTable(std.Stdout, std.Stderr, v)
	case tools.StartOutput:
		for _, w := range v.Service.Warnings {
			fmt.Fprintln(std.Stderr, "warning: "+w)
		}
	case services.Service:
		for _, w := range v.Warnings {
			fmt.Fprintln(std.Stderr, "warning: "+w)
		}
	}
	text := op.Text(out)
	if text != "" {
		fmt.Fprintln(std.Stdout, text)
	}
	return nil
}

// warnDamaged tells, on stderr, about records the store cannot read.
func warnDamaged(std IO, ds []state.Damaged) {
	for _, d := range ds {
		fmt.Fprintf(std.Stderr, "warning: %s record %s is damaged in the state store (%s); delete it with `%s`\n", d.Kind, d.ID, d.Error, services.DeleteCommand(d))
	}
}

func newTable(w io.Writer) table.Writer {
	t := table.NewWriter()
	t.SetOutputMirror(w)
	t.SetStyle(table.StyleLight)
	t.Style().Options.DrawBorder = false
	t.Style().Options.SeparateColumns = false
	t.Style().Options.SeparateHeader = true
	return t
}

func serviceTable(w io.Writer, items []services.Service) error {
	t := newTable(w)
	t.AppendHeader(table.Row{"ID", "NAME", "STATUS", "PHASE", "ENGINE", "MODEL", "PORT", "GPUS", "REASON"})
	for _, s := range items {
		phase := ""
		if s.Status == services.StatusCreating || s.Status == services.StatusFailed {
			phase = string(s.Phase)
		}
		reason := ""
		if s.Status != services.StatusRunning {
			reason = truncate(s.Reason, 70)
		}
		t.AppendRow(table.Row{s.ID, s.Name, s.Status, phase, s.EngineType, truncate(s.ModelID, 30), s.Port, serviceGPUs(s), reason})
	}
	t.Render()
	return nil
}

// serviceGPUs is the GPUS column: the leased GPU indexes while the
// service holds GPUs, else its request in parentheses.
func serviceGPUs(s services.Service) string {
	if s.GPULease != nil {
		return s.GPULease.Indexes()
	}
	return "(" + s.GPUs + ")"
}

func gpuTable(w, errw io.Writer, l tools.GPUListOutput) error {
	if l.Total == 0 {
		fmt.Fprintln(errw, "no GPUs: "+l.Note)
		return nil
	}
	t := newTable(w)
	t.AppendHeader(table.Row{"GPU", "UUID", "NAME", "MEMORY USED", "FREE", "TOTAL", "UTIL", "TEMP", "MIG", "HELD BY", "CORDON"})
	for _, d := range l.Items {
		used, free, total := gpu.BytesText(d.MemoryUsedBytes), gpu.BytesText(d.MemoryFreeBytes), gpu.BytesText(d.MemoryTotalBytes)
		util, temp := "n/a", "n/a"
		if d.UtilizationPct != nil {
			util = fmt.Sprintf("%d%%", *d.UtilizationPct)
		}
		if d.TemperatureC != nil {
			temp = fmt.Sprintf("%d°C", *d.TemperatureC)
		}
		var held []string
		for _, h := range d.HeldBy {
			held = append(held, fmt.Sprintf("%s (%.2f)", h.ServiceID, h.Fraction))
		}
		cordon := ""
		if d.Cordon != nil {
			cordon = d.Cordon.Text()
		}
		t.AppendRow(table.Row{d.Index, d.UUID, d.Name, used, free, total, util, temp, d.MIGMode, strings.Join(held, ", "), cordon})
	}
	t.Render()
	return nil
}

func modelTable(w io.Writer, items []models.Model) error {
	t := newTable(w)
	t.AppendHeader(table.Row{"ID", "NAME", "FORMAT", "ARCHITECTURE", "SIZE", "PATH"})
	for _, m := range items {
		t.AppendRow(table.Row{m.ID, m.Name, m.Format, m.Architecture, units.Bytes(m.SizeBytes), m.Path})
	}
	t.Render()
	return nil
}

func engineTable(w io.Writer, items []engines.Engine) error {
	t := newTable(w)
	t.AppendHeader(table.Row{"TYPE", "IMAGE", "PORT", "HEALTH", "GPUS", "IDLE", "DESCRIPTION"})
	for _, e := range items {
		idle := "stop" // no sleep mode: an idle release stops it, the next request starts it
		if e.CanSleep {
			idle = "sleep"
		}
		t.AppendRow(table.Row{e.Type, e.Image, e.Port, e.HealthPath, e.GPUs, idle, e.Description})
	}
	t.Render()
	return nil
}

func truncate(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// eventLine renders one event for `events --follow`.
func eventLine(ev events.Event) string {
	s := fmt.Sprintf("%s  %-8s", ev.Time.Local().Format("15:04:05.000"), ev.Type)
	if ev.Phase != "" {
		s += " " + ev.Phase
	}
	if ev.Status != "" && ev.Type == events.TypeStatus {
		s += " [" + ev.Status + "]"
	}
	return s + "  " + ev.Message
}
