package gpu

import (
	"fmt"
	"slices"
	"strings"
)

// StateText describes the GPUs with the given UUIDs (all when none are
// given): free memory and the processes on each.
func StateText(snap Snapshot, uuids []string) string {
	var parts []string
	for _, d := range snap.Devices {
		if len(uuids) > 0 && !slices.Contains(uuids, d.UUID) {
			continue
		}
		s := fmt.Sprintf("%s: %s", d.Label(), d.MemoryText())
		if len(d.Processes) > 0 {
			s += ", processes: " + processesText(d.Processes)
		} else {
			s += ", no processes"
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "no GPU reported"
	}
	return strings.Join(parts, "; ")
}
