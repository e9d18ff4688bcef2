package gpu

import (
	"fmt"
	"strconv"
	"time"
)

// Cordon takes one GPU out of service for new leases: placement skips it
// (and says why), while what already holds it keeps running until it is
// stopped or drained. It is keyed by the device's UUID, which survives
// reboots and driver reloads; the index is kept for messages. On a cluster
// the UUID is "<node>/<index>" and a node's name cordons each of its GPUs
// (one record per GPU): aima keeps the cordon in its own records and never
// changes the Kubernetes Node.
type Cordon struct {
	UUID   string    `json:"uuid" jsonschema:"the cordoned GPU's UUID (on a cluster node/index)"`
	Index  int       `json:"index" jsonschema:"its index when it was cordoned"`
	Node   string    `json:"node,omitempty" jsonschema:"on a cluster: the node the GPU is on (absent on one host)"`
	Reason string    `json:"reason,omitempty" jsonschema:"why it was cordoned, as the operator said"`
	At     time.Time `json:"at" jsonschema:"when it was cordoned"`
}

// Text is "cordoned (reason)" for messages.
func (c Cordon) Text() string {
	if c.Reason == "" {
		return "cordoned"
	}
	return fmt.Sprintf("cordoned (%s)", c.Reason)
}

// cordonRefusal is why a cordoned device gets no new lease. It is final:
// no fresh inventory read changes it, only an uncordon.
func cordonRefusal(d Device, c Cordon) *Refusal {
	ref := strconv.Itoa(d.Index)
	if d.Node != "" {
		ref = d.UUID
	}
	return &Refusal{Cordoned: true, Message: fmt.Sprintf("%s is %s", d.Label(), c.Text()),
		Suggestion: fmt.Sprintf("uncordon it (gpu_uncordon %s) or use another GPU", ref)}
}

// nodeCordonRefusal is why a cluster node every GPU of which is cordoned
// gets no new lease (the cordon of its first GPU says why); nil when one
// of them is not, and for a resume.
func nodeCordonRefusal(node string, devs []Device, req Request) *Refusal {
	if req.Resume || len(devs) == 0 {
		return nil
	}
	first, ok := req.Cordoned[devs[0].UUID]
	if !ok {
		return nil
	}
	for _, d := range devs[1:] {
		if _, ok := req.Cordoned[d.UUID]; !ok {
			return nil
		}
	}
	return &Refusal{Cordoned: true, Message: fmt.Sprintf("every GPU of node %s is %s in aima", node, first.Text()),
		Suggestion: fmt.Sprintf("uncordon it (gpu_uncordon %s) or use another node", node)}
}
