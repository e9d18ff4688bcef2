package gpu

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// SelectionKind is how a service asks for GPUs.
type SelectionKind string

// The kinds of GPU request, in Docker's --gpus syntax plus auto.
const (
	SelectNone    SelectionKind = "none"    // no GPU
	SelectAll     SelectionKind = "all"     // every GPU
	SelectAuto    SelectionKind = "auto"    // as many as the tensor-parallel size (1 by default); all when there is no inventory
	SelectCount   SelectionKind = "count"   // N GPUs chosen by aima
	SelectDevices SelectionKind = "devices" // the named indexes or UUIDs
)

// Selection is a parsed GPU request.
type Selection struct {
	Kind    SelectionKind
	Count   int      // for SelectCount
	Devices []string // for SelectDevices: indexes ("0") or UUIDs ("GPU-…")
}

// MaxCount bounds a GPU count.
const MaxCount = 64

var (
	deviceIDRE = regexp.MustCompile(`^[0-9]{1,3}$|^(GPU|MIG)-[0-9a-zA-Z/-]{1,80}$`)
	countRE    = regexp.MustCompile(`^[0-9]{1,3}$`)
)

// ParseSelection parses all, none (or empty), auto, N (aima chooses N
// GPUs), device=ID[,ID…] (indexes or UUIDs), or a bare comma list of
// device IDs ("0,1"; a single bare number is a count, as in docker --gpus).
func ParseSelection(s string) (Selection, error) {
	v := strings.TrimSpace(s)
	switch v {
	case "", "none":
		return Selection{Kind: SelectNone}, nil
	case "all":
		return Selection{Kind: SelectAll}, nil
	case "auto":
		return Selection{Kind: SelectAuto}, nil
	}
	if countRE.MatchString(v) {
		n, _ := strconv.Atoi(v)
		if n > MaxCount {
			return Selection{}, fmt.Errorf("gpus %q: at most %d GPUs", s, MaxCount)
		}
		if n == 0 {
			return Selection{Kind: SelectNone}, nil
		}
		return Selection{Kind: SelectCount, Count: n}, nil
	}
	list := strings.TrimPrefix(v, "device=")
	var ids []string
	seen := map[string]bool{}
	for _, p := range strings.Split(list, ",") {
		p = strings.TrimSpace(p)
		if !deviceIDRE.MatchString(p) {
			return Selection{}, fmt.Errorf("gpus %q: want all, none, auto, a count N, or device=ID[,ID...] with indexes or GPU-... UUIDs", s)
		}
		if n, err := strconv.Atoi(p); err == nil {
			p = strconv.Itoa(n) // "00" is GPU 0
		}
		// A GPU named twice would be leased twice and counted as two by
		// the tensor-parallel check.
		key := strings.ToLower(p)
		if seen[key] {
			return Selection{}, fmt.Errorf("gpus %q: GPU %s is named twice", s, p)
		}
		seen[key] = true
		ids = append(ids, p)
	}
	if len(ids) > MaxCount {
		return Selection{}, fmt.Errorf("gpus %q: at most %d devices", s, MaxCount)
	}
	return Selection{Kind: SelectDevices, Devices: ids}, nil
}

// String is the canonical form, which ParseSelection reads back.
func (s Selection) String() string {
	switch s.Kind {
	case SelectCount:
		return strconv.Itoa(s.Count)
	case SelectDevices:
		return "device=" + strings.Join(s.Devices, ",")
	case "":
		return string(SelectNone)
	}
	return string(s.Kind)
}

// Wants reports whether the selection asks for any GPU.
func (s Selection) Wants() bool { return s.Kind != SelectNone && s.Kind != "" }
