package gpu

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"aima/errs"
	"aima/internal/units"
	"aima/settings"
)

// Request is what a service asks of placement.
type Request struct {
	ServiceID string
	Run       int // the start (service run) asking, 0 when not a start
	Selection Selection
	// Estimate gives the per-GPU need, the engine's memory share (Util)
	// and the declared sharing fraction; TP is the tensor-parallel size.
	Estimate Estimate
	// Force skips the memory fit check and the sharing rule (the GPUs are
	// still leased, so others see them taken).
	Force bool
	// Resume is a service whose engine already runs on the named devices
	// (waking from sleep): only the sharing rule is checked, since its own
	// engine still holds some of the memory.
	Resume bool
	// Cordoned are the GPUs that take no new lease, by UUID. A resume
	// keeps its devices: cordoning leaves what already holds a GPU alone.
	Cordoned map[string]Cordon
	Now      time.Time
}

// Decision is a placement: the lease to record and the line to show.
type Decision struct {
	Lease   Lease
	Message string // "GPU 1 (GPU-…, 79.2 GiB free) for ~18.4 GiB"
	// Nodes is how the request fits each node of a cluster, when placed
	// across nodes (nil on one host).
	Nodes []NodeFit
}

// usage is what other services hold on one GPU.
type usage struct {
	fraction float64
	holders  []Held
}

// fit is one device judged against a request.
type fit struct {
	dev   Device
	avail int64 // memory the service could get, -1 when unknown
	bad   *Refusal
	// same marks a refusal that repeats the verdict of a GPU judged
	// before it in the same call (its message names that GPU).
	same bool
}

// Place picks GPUs for req on the inventory snap, given the leases other
// services hold. A placement that cannot be made is a Conflict error
// wrapping a *Refusal.
func Place(snap Snapshot, held []Held, req Request, policy settings.GPUPolicy) (Decision, error) {
	// On a cluster a node's GPU goes whole to one Pod (the device plugin
	// does not share it), asleep or not: any lease takes it.
	cluster := snap.Cluster()
	use := map[string]*usage{}
	for _, h := range held {
		if h.ServiceID == req.ServiceID || (h.Dormant && !cluster) {
			continue
		}
		for _, d := range h.Lease.Devices {
			u := use[d.UUID]
			if u == nil {
				u = &usage{}
				use[d.UUID] = u
			}
			u.fraction += h.Lease.Fraction
			if cluster {
				u.fraction = 1
			}
			u.holders = append(u.holders, h)
		}
	}
	judge := func(d Device, gpus int) fit { return judgeDevice(d, use[d.UUID], req, gpus) }
	var class func(Device) int
	if cluster {
		occ := Occupancy(snap, held)
		skipped := map[string]string{}
		for _, n := range snap.Nodes {
			if n.Skipped != "" {
				skipped[n.Name] = n.Skipped
			}
		}
		judge = func(d Device, gpus int) fit {
			if _, c := req.Cordoned[d.UUID]; !c || req.Resume { // a cordon comes first
				if r := nodeRefusal(d, skipped, occ, req); r != nil {
					return fit{dev: d, avail: deref(d.MemoryFreeBytes), bad: r}
				}
			}
			return judgeDevice(d, use[d.UUID], req, gpus)
		}
		// A GPU no lease holds and no cordon names is judged by its
		// memory figures and whether other Pods take it: one verdict
		// serves its node's others alike.
		class = func(d Device) int {
			if _, c := req.Cordoned[d.UUID]; c || use[d.UUID] != nil || len(d.Processes) > 0 {
				return 0
			}
			if occ[d.UUID] != "" {
				return 2
			}
			return 1
		}
	}
	e := req.Estimate
	tp := max(1, e.TP)
	var named []Device
	count := 0
	switch req.Selection.Kind {
	case SelectDevices:
		var err error
		if named, err = ResolveDevices(snap, req.Selection); err != nil {
			return Decision{}, err
		}
		count = len(named)
	case SelectAll:
		if cluster {
			return placeAcross(snap, req, policy, 0, judge, class)
		}
		named = snap.Devices
		count = len(named)
	case SelectCount:
		count = req.Selection.Count
	default: // auto
		count = tp
	}
	if tp > count {
		return Decision{}, refuse(&Refusal{Message: fmt.Sprintf("tensor parallel size %d needs %d GPUs; the service asks for %d", tp, tp, count),
			Suggestion: fmt.Sprintf("create the service with --gpus %d, or lower --tensor-parallel-size", tp)})
	}
	if cluster && named == nil {
		return placeAcross(snap, req, policy, count, judge, class)
	}
	if count > len(snap.Devices) {
		return Decision{}, refuse(&Refusal{Message: fmt.Sprintf("the service needs %d GPUs; this host has %d", count, len(snap.Devices)),
			Suggestion: fmt.Sprintf("use at most %d GPUs (--gpus, --tensor-parallel-size)", len(snap.Devices))})
	}
	var chosen []fit
	if named != nil {
		for _, d := range named {
			f := judge(d, len(snap.Devices))
			if f.bad != nil && (!req.Force || !f.bad.forceable()) { // force never overrides a cordon
				return Decision{}, refuse(f.bad)
			}
			chosen = append(chosen, f)
		}
	} else {
		var ok, bad []fit
		for _, d := range snap.Devices {
			f := judge(d, len(snap.Devices))
			switch {
			case d.MIG():
				bad = append(bad, fit{dev: d, avail: f.avail, bad: &Refusal{Message: d.Label() + " has MIG enabled (aima does not choose MIG GPUs; name it with device=)"}})
			case f.bad == nil || (req.Force && f.bad.forceable()):
				ok = append(ok, f)
			default:
				bad = append(bad, f)
			}
		}
		if len(ok) < count {
			return Decision{}, refuse(notEnough(count, ok, bad, req))
		}
		sortFits(ok, policy, req.Force, use)
		chosen = ok[:count]
		sort.SliceStable(chosen, func(i, j int) bool { return chosen[i].dev.Index < chosen[j].dev.Index })
	}
	node := ""
	if cluster && len(chosen) > 0 {
		node = chosen[0].dev.Node
	}
	return decide(chosen, req, node, "", true), nil
}

// decide is the lease and the line of a placement on the chosen GPUs:
// head, then each GPU with its UUID (withUUID) and free memory, the need,
// the engine's share and whether force skipped the check.
func decide(chosen []fit, req Request, node, head string, withUUID bool) Decision {
	e := req.Estimate
	lease := Lease{Node: node, Fraction: e.Fraction, PerGPUBytes: e.PerGPUBytes, Forced: req.Force, At: req.Now.UTC()}
	var parts []string
	for _, f := range chosen {
		lease.Devices = append(lease.Devices, LeasedDevice{Index: f.dev.Index, UUID: f.dev.UUID, Name: f.dev.Name})
		free := "memory not reported"
		if f.avail >= 0 {
			free = units.GiB(f.avail) + " free"
		}
		if withUUID {
			free = f.dev.UUID + ", " + free
		}
		parts = append(parts, fmt.Sprintf("GPU %d (%s)", f.dev.Index, free))
	}
	msg := head + strings.Join(parts, ", ") + " for ~" + units.GiB(e.PerGPUBytes)
	if e.Util > 0 {
		msg += fmt.Sprintf(" (memory utilization %.2f)", e.Util)
	}
	if req.Force {
		msg += "; forced: fit check skipped"
	}
	return Decision{Lease: lease, Message: msg}
}

// ResolveDevices finds the GPUs a device selection names. A name the
// inventory lacks is a refusal (Conflict); two names of one physical GPU
// (its index and its UUID) are an InvalidArgument error on gpus, as a
// lease must hold each GPU once.
func ResolveDevices(snap Snapshot, sel Selection) ([]Device, error) {
	var named []Device
	by := map[string]string{} // UUID -> the name that chose it
	for _, id := range sel.Devices {
		d, ok := snap.Find(id)
		if !ok && snap.Cluster() {
			return nil, refuse(&Refusal{Message: fmt.Sprintf("GPU %s: on a cluster aima places a count of GPUs on a node it picks (the node's device plugin picks the devices)", id),
				Suggestion: "ask for a count of GPUs (gpus N) instead of naming devices"})
		}
		if !ok {
			return nil, refuse(&Refusal{Message: fmt.Sprintf("GPU %s does not exist on this host (%s)", id, inventoryText(snap)),
				Suggestion: "name an index or UUID from gpu_list"})
		}
		if first, dup := by[d.UUID]; dup {
			return nil, errs.Invalid("gpus", "gpus %s: %s and %s are the same GPU (%s): name each GPU once", sel, first, id, d.Label())
		}
		by[d.UUID] = id
		if len(named) > 0 && d.Node != named[0].Node {
			return nil, refuse(&Refusal{Message: fmt.Sprintf("%s and %s are on different nodes: one service's GPUs are on one node", named[0].Label(), d.Label())})
		}
		named = append(named, d)
	}
	return named, nil
}

// judgeDevice checks one GPU for the request: the sharing rule (declared
// fractions of all holders fit in 1), then the engine's memory rule.
func judgeDevice(d Device, u *usage, req Request, gpus int) fit {
	e := req.Estimate
	f := fit{dev: d, avail: -1}
	if c, ok := req.Cordoned[d.UUID]; ok && !req.Resume {
		f.bad = cordonRefusal(d, c)
		return f
	}
	reserved := 0.0
	if u != nil {
		reserved = u.fraction
	}
	if d.MemoryKnown() {
		total, free := *d.MemoryTotalBytes, *d.MemoryFreeBytes
		f.avail = min(free, total-int64(math.Round(reserved*float64(total))))
		f.avail = max(f.avail, 0)
	}
	if u != nil && reserved+e.Fraction > 1+1e-9 {
		f.bad = &Refusal{Held: true, NeedBytes: need(d, e), HaveBytes: max(f.avail, 0),
			Message:    fmt.Sprintf("%s is held by %s", d.Label(), holdersText(u.holders)),
			Suggestion: shareSuggestion(reserved, e)}
		return f
	}
	if !d.MemoryKnown() || req.Resume {
		return f // nothing more to check: no memory figures, or its engine already runs there
	}
	total := *d.MemoryTotalBytes
	if e.Util > 0 {
		budget := int64(e.Util * float64(total))
		if e.PerGPUBytes > budget {
			f.bad = &Refusal{NeedBytes: e.PerGPUBytes, HaveBytes: budget,
				Message: fmt.Sprintf("the model needs ~%s per GPU but memory utilization %.2f of %s (%s) allows %s",
					units.GiB(e.PerGPUBytes), e.Util, d.Label(), units.GiB(total), units.GiB(budget))}
			suggestTooBig(f.bad, e, total, gpus)
			return f
		}
		if f.avail < budget {
			f.bad = &Refusal{NeedBytes: budget, HaveBytes: f.avail, Live: true,
				Message: fmt.Sprintf("the engine needs %s free on %s (%.2f × %s) and %s is free", units.GiB(budget), d.Label(), e.Util, units.GiB(total), units.GiB(f.avail))}
			suggestLessShare(f.bad, e, total, f.avail, u, d)
			return f
		}
		return f
	}
	if e.PerGPUBytes > f.avail {
		f.bad = &Refusal{NeedBytes: e.PerGPUBytes, HaveBytes: f.avail, Live: true,
			Message: fmt.Sprintf("the model needs ~%s on %s and %s is free", units.GiB(e.PerGPUBytes), d.Label(), units.GiB(f.avail))}
		suggestTooBig(f.bad, e, f.avail, gpus)
	}
	return f
}

// need is what the request needs on d: the engine's share of it, or the
// estimate for engines without a share.
func need(d Device, e Estimate) int64 {
	if e.Util > 0 && d.MemoryTotalBytes != nil {
		return int64(e.Util * float64(*d.MemoryTotalBytes))
	}
	return e.PerGPUBytes
}

// notEnough explains why fewer than count GPUs fit.
func notEnough(count int, ok, bad []fit, req Request) *Refusal {
	r, detail := fitDetail(ok, bad, req)
	r.Message = fmt.Sprintf("needs %d GPU(s) with %s each; %s", count, units.GiB(r.NeedBytes), detail)
	return r
}

// fitDetail is the refusal's figures, suggestion and what it says after
// the need: how many GPUs fit and why the others do not (GPUs refused
// for the same reason named once, with a count).
func fitDetail(ok, bad []fit, req Request) (*Refusal, string) {
	r := &Refusal{NeedBytes: req.Estimate.PerGPUBytes}
	var why []string
	alike := map[string]bool{} // messages that differ only in the GPU named
	same := 0
	for _, f := range bad {
		if f.same {
			same++
		} else if key := strings.Replace(f.bad.Message, f.dev.Label(), "", 1); alike[key] {
			same++
		} else {
			alike[key] = true
			why = append(why, f.bad.Message)
		}
		r.Held = r.Held || f.bad.Held
		r.Live = r.Live || f.bad.Live
		if f.bad.NeedBytes > r.NeedBytes {
			r.NeedBytes = f.bad.NeedBytes
		}
		if f.bad.HaveBytes > r.HaveBytes {
			r.HaveBytes = f.bad.HaveBytes
		}
	}
	detail := fmt.Sprintf("%d of %d fit", len(ok), len(ok)+len(bad))
	if len(ok) == 0 {
		detail = fmt.Sprintf("the most any GPU offers is %s", units.GiB(r.HaveBytes))
	}
	if len(why) > 0 {
		detail += ": " + strings.Join(why, "; ")
	}
	if same > 0 {
		detail += fmt.Sprintf(" (and the same on %d more GPU(s))", same)
	}
	// The suggestion of the GPU closest to fitting.
	best := -1
	for i, f := range bad {
		if f.bad.Suggestion != "" && (best < 0 || f.avail > bad[best].avail) {
			best = i
		}
	}
	if best >= 0 {
		r.Suggestion, r.SuggestedArgs = bad[best].bad.Suggestion, bad[best].bad.SuggestedArgs
	}
	return r, detail
}

func sortFits(fs []fit, policy settings.GPUPolicy, force bool, use map[string]*usage) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if force { // least held first
			ua, ub := frac(use[a.dev.UUID]), frac(use[b.dev.UUID])
			if ua != ub {
				return ua < ub
			}
		}
		if a.avail != b.avail {
			if policy == settings.GPUPolicySpread {
				return a.avail > b.avail
			}
			return a.avail < b.avail
		}
		return a.dev.Index < b.dev.Index
	})
}

func frac(u *usage) float64 {
	if u == nil {
		return 0
	}
	return u.fraction
}

func holdersText(hs []Held) string {
	var parts []string
	for _, h := range hs {
		name := h.ServiceID
		if h.Name != "" && h.Name != h.ServiceID {
			name += " (" + h.Name + ")"
		}
		parts = append(parts, fmt.Sprintf("service %s with %.2f of its memory", name, h.Lease.Fraction))
	}
	return strings.Join(parts, " and ")
}

func inventoryText(s Snapshot) string {
	if len(s.Devices) == 0 {
		return "no GPUs"
	}
	var ids []string
	for _, d := range s.Devices {
		ids = append(ids, fmt.Sprint(d.Index))
	}
	return "GPUs " + strings.Join(ids, ", ")
}
