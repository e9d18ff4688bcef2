package gpu

import (
	"fmt"
	"sort"
	"strings"

	"aima/internal/units"
	"aima/settings"
)

// Placement across a cluster's nodes: the GPUs of one request are on one
// node (an engine's tensor parallelism does not span nodes here); each
// node's GPUs are judged with the same rules as one host's (cordons,
// leases, the engine's memory rule), and the node is chosen by the policy:
// pack takes the node with the fewest GPUs that fit (then the least room
// on them), so whole nodes and large GPUs stay free for large models;
// spread the one with the most. When no node fits, the refusal gives each
// node's figures.

// NodeFit is how a request fits one node of a cluster.
type NodeFit struct {
	Node string `json:"node"`
	Fits bool   `json:"fits" jsonschema:"the request fits on this node now"`
	// GPUs is the node's GPU count, Need how many of them the request
	// needs, Fit how many of them it fits on now.
	GPUs          int      `json:"gpus"`
	Need          int      `json:"need"`
	Fit           int      `json:"fit" jsonschema:"GPUs of the node the request fits on now"`
	Reason        string   `json:"reason,omitempty" jsonschema:"why it does not fit there, with both figures in GiB"`
	Suggestion    string   `json:"suggestion,omitempty"`
	SuggestedArgs []string `json:"suggested_args,omitempty"`
}

// nodeCand is a node on which the request fits.
type nodeCand struct {
	name string
	ok   []fit
	need int
}

// placeAcross places a count, all or auto request on one node of a
// cluster; need is the count (0 with all: every GPU of the node). judge
// judges one GPU; class sorts GPUs whose verdict is that of any other GPU
// of their node in the same class with the same memory figures (0: a
// class of its own).
func placeAcross(snap Snapshot, req Request, policy settings.GPUPolicy, need int, judge func(Device, int) fit, class func(Device) int) (Decision, error) {
	tp := max(1, req.Estimate.TP)
	groups := byNode(snap)
	largest := 0
	for _, g := range groups {
		largest = max(largest, len(g))
	}
	if need > largest {
		return Decision{}, refuse(&Refusal{Message: fmt.Sprintf("the service needs %d GPUs on one node; the largest node has %d", need, largest),
			Suggestion: fmt.Sprintf("use at most %d GPUs (--gpus, --tensor-parallel-size)", largest)})
	}
	var cands []nodeCand
	fits := make([]NodeFit, 0, len(snap.Nodes))
	refusals := make([]*Refusal, 0, len(snap.Nodes))
	for _, n := range snap.Nodes {
		devs := groups[n.Name]
		want := need
		if want == 0 {
			want = len(devs)
		}
		nf := NodeFit{Node: n.Name, GPUs: len(devs), Need: want}
		if want == 0 || tp > want {
			r := &Refusal{Message: fmt.Sprintf("tensor parallel size %d needs %d GPUs; node %s has %d", tp, tp, n.Name, len(devs))}
			nf.Reason = r.Message
			fits, refusals = append(fits, nf), append(refusals, r)
			continue
		}
		if n.Skipped != "" { // force does not override it either
			r := &Refusal{NodeSkipped: true, Live: true, Message: "skipped: " + n.Skipped, Suggestion: "use another node, or make this one schedulable"}
			nf.Reason = r.Message
			fits, refusals = append(fits, nf), append(refusals, r)
			continue
		}
		if r := nodeCordonRefusal(n.Name, devs, req); r != nil { // force does not override it either
			nf.Reason = r.Message
			fits, refusals = append(fits, nf), append(refusals, r)
			continue
		}
		ok, bad := make([]fit, 0, len(devs)), make([]fit, 0, len(devs))
		var seen [3]int // per class, 1 + the index in devs of its first verdict
		var first [3]fit
		for i, d := range devs {
			var f fit
			c := class(d)
			if c > 0 && seen[c] > 0 && sameMemory(d, devs[seen[c]-1]) {
				s := &first[c]
				f = fit{dev: d, avail: s.avail, bad: s.bad, same: s.bad != nil}
			} else {
				f = judge(d, len(devs))
				if c > 0 && seen[c] == 0 {
					seen[c], first[c] = i+1, f
				}
			}
			if f.bad == nil || (req.Force && f.bad.forceable()) {
				ok = append(ok, f)
			} else {
				bad = append(bad, f)
			}
		}
		nf.Fit = len(ok)
		if len(ok) >= want {
			nf.Fits = true
			cands = append(cands, nodeCand{name: n.Name, ok: ok, need: want})
			fits = append(fits, nf)
			continue
		}
		r, detail := fitDetail(ok, bad, req)
		nf.Reason, nf.Suggestion, nf.SuggestedArgs = detail, r.Suggestion, r.SuggestedArgs
		fits, refusals = append(fits, nf), append(refusals, r)
	}
	if len(cands) == 0 {
		return Decision{}, refuse(noNode(need, fits, refusals, req))
	}
	sortNodes(cands, policy)
	c := cands[0]
	sortFits(c.ok, policy, req.Force, nil)
	chosen := c.ok[:c.need]
	sort.SliceStable(chosen, func(i, j int) bool { return chosen[i].dev.Index < chosen[j].dev.Index })
	d := decide(chosen, req, c.name, fmt.Sprintf("node %s (%s): ", c.name, policyText(policy, len(cands))), false)
	d.Nodes = fits
	return d, nil
}

// sameMemory reports two GPUs with the same memory figures.
func sameMemory(a, b Device) bool {
	eq := func(x, y *int64) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return eq(a.MemoryTotalBytes, b.MemoryTotalBytes) && eq(a.MemoryFreeBytes, b.MemoryFreeBytes)
}

// policyText says how the node was chosen: "pack, 1 of 3 nodes that fit".
func policyText(p settings.GPUPolicy, n int) string {
	if n == 1 {
		return "the one node that fits"
	}
	return fmt.Sprintf("%s, among %d nodes that fit", p, n)
}

// sortNodes orders candidate nodes by policy: pack puts the node with the
// fewest GPUs that fit first (then the least room on them), spread the
// most; the name breaks ties.
func sortNodes(cs []nodeCand, policy settings.GPUPolicy) {
	room := func(c nodeCand) int64 {
		r := int64(-1)
		for _, f := range c.ok {
			r = max(r, f.avail)
		}
		return r
	}
	sort.SliceStable(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if len(a.ok) != len(b.ok) {
			if policy == settings.GPUPolicySpread {
				return len(a.ok) > len(b.ok)
			}
			return len(a.ok) < len(b.ok)
		}
		if ra, rb := room(a), room(b); ra != rb {
			if policy == settings.GPUPolicySpread {
				return ra > rb
			}
			return ra < rb
		}
		return a.name < b.name
	})
}

// noNode explains why the request fits no node: the figures of each node
// (nodes refused for the same reason are named once, with a count), and
// the suggestion of the node closest to fitting.
func noNode(need int, fits []NodeFit, refusals []*Refusal, req Request) *Refusal {
	r := &Refusal{NeedBytes: req.Estimate.PerGPUBytes, Nodes: fits}
	var lines []string
	alike := map[string]int{} // reason with the node's name left out -> index in lines
	more := map[int]int{}
	for i, f := range fits {
		x := refusals[i]
		r.Held, r.Live = r.Held || x.Held, r.Live || x.Live
		r.NeedBytes, r.HaveBytes = max(r.NeedBytes, x.NeedBytes), max(r.HaveBytes, x.HaveBytes)
		key := strings.ReplaceAll(f.Reason, f.Node, "")
		if at, ok := alike[key]; ok {
			more[at]++
			continue
		}
		alike[key] = len(lines)
		lines = append(lines, fmt.Sprintf("node %s: %s", f.Node, f.Reason))
	}
	for at, n := range more {
		lines[at] += fmt.Sprintf(" (and the same on %d more node(s))", n)
	}
	what := fmt.Sprintf("%d GPU(s)", need)
	if need == 0 {
		what = "every GPU of a node"
	}
	r.Message = fmt.Sprintf("needs %s with %s each on one node; no node of %d fits: %s", what, units.GiB(r.NeedBytes), len(fits), strings.Join(lines, "; "))
	best := -1
	for i, f := range fits {
		if f.Suggestion != "" && (best < 0 || f.Fit > fits[best].Fit || (f.Fit == fits[best].Fit && refusals[i].HaveBytes > refusals[best].HaveBytes)) {
			best = i
		}
	}
	if best >= 0 {
		r.Suggestion, r.SuggestedArgs = fits[best].Suggestion, fits[best].SuggestedArgs
	}
	if r.Suggestion == "" {
		most := 0
		for _, f := range fits {
			most = max(most, f.Fit)
		}
		if most > 0 && need > most {
			r.Suggestion = fmt.Sprintf("ask for at most %d GPUs (the most any node offers now), or free GPUs on a node", most)
		} else {
			r.Suggestion = "free GPUs on a node, or add a node with enough GPU memory"
		}
	}
	return r
}

// nodeRefusal is why a GPU of a node placement skips, or whose slot
// another Pod takes, gets no new lease; nil when neither. A resume keeps
// its GPUs on a skipped node: skipping a node, like cordoning a GPU,
// leaves what already holds it alone.
func nodeRefusal(d Device, skipped map[string]string, occ map[string]string, req Request) *Refusal {
	if why := skipped[d.Node]; why != "" && !req.Resume {
		return &Refusal{NodeSkipped: true, Live: true, Message: fmt.Sprintf("node %s is skipped: %s", d.Node, why),
			Suggestion: "use another node, or make this one schedulable"}
	}
	if by := occ[d.UUID]; by != "" {
		return &Refusal{Held: true, Live: true, Message: fmt.Sprintf("%s is requested by %s", d.Label(), by),
			Suggestion: "stop those Pods, or use another node"}
	}
	return nil
}
