package gpu

import (
	"fmt"
	"time"
)

// Cordon takes one GPU out of service for new leases: placement skips it
// (and says why), while what already holds it keeps running until it is
// stopped or drained. It is keyed by the device's UUID, which survives
// reboots and driver reloads; the index is kept for messages.
type Cordon struct {
	UUID   string    `json:"uuid" jsonschema:"the cordoned GPU's UUID"`
	Index  int       `json:"index" jsonschema:"its index when it was cordoned"`
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
	return &Refusal{Cordoned: true, Message: fmt.Sprintf("%s is %s", d.Label(), c.Text()),
		Suggestion: fmt.Sprintf("uncordon it (gpu_uncordon %d) or use another GPU", d.Index)}
}
