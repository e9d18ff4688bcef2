package gpu

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"aima/errs"
)

// Environment variables that pick GPUs inside a container.
const (
	EnvNvidiaVisible = "NVIDIA_VISIBLE_DEVICES"
	EnvCUDAVisible   = "CUDA_VISIBLE_DEVICES"
)

// CheckVisibleEnv refuses user environment that contradicts a service's
// GPU selection: aima sets NVIDIA_VISIBLE_DEVICES to exactly the assigned
// GPUs, so a user value must name exactly the selected devices; a
// CUDA_VISIBLE_DEVICES entry must be one of the container's own GPUs.
func CheckVisibleEnv(sel Selection, env []string) error {
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		list := splitList(v)
		switch k {
		case EnvNvidiaVisible:
			ok := false
			switch sel.Kind {
			case SelectDevices:
				ok = slices.Equal(sorted(list), sorted(sel.Devices))
			case SelectNone, "":
				ok = v == "" || v == "none" || v == "void"
			case SelectAll:
				ok = v == "all"
			}
			if !ok {
				return errs.Invalid("env", "env %s=%s contradicts gpus %s: aima sets %s to exactly the GPUs it assigns; leave it out, or name the devices with gpus device=ID[,ID...]", k, v, sel, k)
			}
		case EnvCUDAVisible:
			if err := checkCUDAVisible(sel, list, v); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkCUDAVisible(sel Selection, list []string, v string) error {
	bad := func(why string) error {
		return errs.Invalid("env", "env %s=%s contradicts gpus %s: %s", EnvCUDAVisible, v, sel, why)
	}
	if !sel.Wants() {
		if v == "" || v == "-1" {
			return nil
		}
		return bad("the service has no GPU")
	}
	n := 0
	switch sel.Kind {
	case SelectDevices:
		n = len(sel.Devices)
	case SelectCount:
		n = sel.Count
	}
	for _, e := range list {
		if i, err := strconv.Atoi(e); err == nil {
			if i < 0 || (n > 0 && i >= n) {
				return bad(fmt.Sprintf("inside the container the GPUs are numbered 0 to %d", max(n-1, 0)))
			}
			continue
		}
		if sel.Kind != SelectDevices || !slices.Contains(sel.Devices, e) {
			return bad(fmt.Sprintf("%s is not one of the service's GPUs", e))
		}
	}
	return nil
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func sorted(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}
