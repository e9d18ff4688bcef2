package kube

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// hostState is what the real node changes on the host outside its own
// directories, recorded before it starts so Stop leaves the host as found.
// It is also kept in realNodeState while the node runs, so a node whose
// process died is undone by the next one (cleanLeftovers).
type hostState struct {
	Sysctls    map[string]string // /proc/sys path -> value before
	Firewall   bool              // the kubelet's KUBE-FIREWALL chain existed before
	MadeBridge bool
	MadeDirs   []string // host directories the kubelet or CNI create that did not exist
}

// realNodeState holds the running node's hostState (JSON).
const realNodeState = "/run/aima-real-node.json"

func (h *hostState) save() error {
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	return os.WriteFile(realNodeState, b, 0o600)
}

// The sysctls the kubelet (vm.*, kernel.*) and the bridge plugin
// (ip_forward) rewrite.
var nodeSysctls = []string{
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes", "net/ipv4/ip_forward",
}

// Directories the kubelet and CNI create outside the node's own
// (the device plugins' socket dir, the CNI result cache, log links).
var nodeHostDirs = []string{"/var/lib/kubelet", "/var/lib/cni", "/var/log/containers", "/usr/libexec/kubernetes"}

func saveHostState() (hostState, error) {
	h := hostState{Sysctls: map[string]string{}}
	for _, s := range nodeSysctls {
		b, err := os.ReadFile("/proc/sys/" + s)
		if err != nil {
			return h, err
		}
		h.Sysctls[s] = strings.TrimSpace(string(b))
	}
	h.Firewall = exec.Command("iptables", "-S", "KUBE-FIREWALL").Run() == nil
	for _, d := range nodeHostDirs {
		if _, err := os.Stat(d); os.IsNotExist(err) {
			h.MadeDirs = append(h.MadeDirs, d)
		}
	}
	for _, d := range kubepodsCgroups() {
		return h, fmt.Errorf("cgroup %s exists: a kubelet this harness did not start runs on this host", d)
	}
	return h, nil
}

func kubepodsCgroups() []string {
	out, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods")
	if _, err := os.Stat("/sys/fs/cgroup/kubepods"); err == nil {
		out = append(out, "/sys/fs/cgroup/kubepods")
	}
	return out
}

// addBridge creates the Pods' bridge with the node's address, and lets
// its Pods reach each other.
func (h *hostState) addBridge() error {
	if err := exec.Command("ip", "link", "show", realBridge).Run(); err == nil {
		return fmt.Errorf("bridge %s exists and is not a real node's leftover (delete it with `ip link del %s`)", realBridge, realBridge)
	}
	if out, err := exec.Command("ip", "link", "add", realBridge, "type", "bridge").CombinedOutput(); err != nil {
		return fmt.Errorf("ip link add %s: %v: %s", realBridge, err, out)
	}
	h.MadeBridge = true
	if err := h.save(); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"addr", "add", RealNodeIP + "/16", "dev", realBridge},
		{"link", "set", realBridge, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	// Pod to Pod on the bridge: with br_netfilter loaded, bridged frames
	// go through iptables' FORWARD chain, whose policy Docker sets to DROP.
	if out, err := exec.Command("iptables", append([]string{"-I", "FORWARD", "1"}, bridgeForward...)...).CombinedOutput(); err != nil {
		return fmt.Errorf("iptables -I FORWARD: %v: %s", err, out)
	}
	return nil
}

// bridgeForward is the FORWARD rule that lets the bridge's Pods reach each
// other (removed with the bridge).
var bridgeForward = []string{"-i", realBridge, "-o", realBridge, "-j", "ACCEPT", "-m", "comment", "--comment", "aima real node: Pod to Pod"}

// Stop stops the kubelet, removes every Pod container and sandbox (their
// processes, shims and network namespaces), stops containerd, and undoes
// what the node changed on the host: mounts under its directories, the
// kubelet's cgroups and iptables chains, the forward to the API server,
// the bridge and its FORWARD rule, the CNI result cache,
// log links, the directories it created, the sysctls. Then it releases
// RealNodeLock. It is safe to call twice.
func (n *RealNode) Stop() {
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return
	}
	n.stopped = true
	procs := n.procs
	n.procs = nil
	n.mu.Unlock()
	var containerd *proc
	for i := len(procs) - 1; i >= 0; i-- {
		if procs[i].name == "containerd" {
			containerd = procs[i]
			continue
		}
		procs[i].stop() // the kubelet first: it would restart what is removed
	}
	if containerd != nil {
		n.removeContainers()
		containerd.stop()
	}
	n.killShims()
	if n.apiProxy != nil {
		n.apiProxy.Close()
	}
	n.unmountAll()
	for _, cg := range kubepodsCgroups() {
		rmdirTree(cg)
	}
	n.host.restore()
	_ = os.Remove(realNodeState)
	if n.state != "" {
		_ = os.RemoveAll(n.state)
	}
	_ = os.RemoveAll(n.dir)
	if n.unlock != nil {
		n.unlock()
	}
}

// removeContainers kills and deletes every container of the node's
// containerd; the sandboxes' network namespaces go with their mounts.
func (n *RealNode) removeContainers() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ids := func(what string) []string {
		out, _ := n.ctrOut(ctx, nil, what, "ls", "-q")
		return strings.Fields(out)
	}
	containers := ids("containers")
	for _, c := range containers {
		removeCNIResults(c)
	}
	for _, task := range ids("tasks") {
		_ = n.ctr(ctx, "tasks", "kill", "-s", "SIGKILL", task)
	}
	for _, task := range ids("tasks") {
		deadline := time.Now().Add(5 * time.Second)
		for n.ctr(ctx, "tasks", "delete", "-f", task) != nil && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
	}
	for _, c := range containers {
		_ = n.ctr(ctx, "containers", "delete", c)
	}
}

// removeCNIResults drops the results libcni cached for a sandbox (of the
// node's network and of the loopback one): containerd's CNI DEL never runs
// for containers removed behind the kubelet's back.
func removeCNIResults(id string) {
	for _, net := range []string{"aima-real", "cni-loopback"} {
		m, _ := filepath.Glob("/var/lib/cni/results/" + net + "-" + id + "-*")
		for _, f := range m {
			_ = os.Remove(f)
		}
	}
}

// killShims kills containerd-shim processes of this node's containerd
// left running (a shim outlives its containerd by design).
func (n *RealNode) killShims() {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte("containerd-shim")) || !bytes.Contains(b, []byte(n.sock)) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// unmountAll detaches every mount under the node's directories, deepest
// first (volumes, sandbox /dev/shm, network namespaces, overlay roots).
func (n *RealNode) unmountAll() {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var mounts []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		if m := f[4]; strings.HasPrefix(m, n.dir+"/") || (n.state != "" && strings.HasPrefix(m, n.state+"/")) {
			mounts = append(mounts, m)
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(mounts)))
	for _, m := range mounts {
		_ = syscall.Unmount(m, syscall.MNT_DETACH)
	}
}

// rmdirTree removes a cgroup directory tree, deepest first (cgroup
// directories go with rmdir, not with their files).
func rmdirTree(dir string) {
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = syscall.Rmdir(dirs[i])
	}
}

// restore undoes the node's host changes recorded in h.
func (h *hostState) restore() {
	if !h.Firewall {
		// The kubelet installs KUBE-FIREWALL (jumped to from INPUT and
		// OUTPUT) and canary chains whatever its config.
		ipt := func(bin string, args ...string) { _ = exec.Command(bin, args...).Run() }
		ipt("iptables", "-D", "INPUT", "-j", "KUBE-FIREWALL")
		ipt("iptables", "-D", "OUTPUT", "-j", "KUBE-FIREWALL")
		ipt("iptables", "-F", "KUBE-FIREWALL")
		ipt("iptables", "-X", "KUBE-FIREWALL")
		for _, bin := range []string{"iptables", "ip6tables"} {
			for _, table := range []string{"mangle", "nat", "filter"} {
				ipt(bin, "-t", table, "-F", "KUBE-KUBELET-CANARY")
				ipt(bin, "-t", table, "-X", "KUBE-KUBELET-CANARY")
			}
			ipt(bin, "-t", "mangle", "-X", "KUBE-IPTABLES-HINT")
		}
	}
	if h.MadeBridge {
		for range 10 { // each run deletes one copy of the rule
			if exec.Command("iptables", append([]string{"-D", "FORWARD"}, bridgeForward...)...).Run() != nil {
				break
			}
		}
		_ = exec.Command("ip", "link", "del", realBridge).Run()
	}
	links, _ := filepath.Glob("/var/log/containers/*.log")
	for _, l := range links {
		if dst, err := os.Readlink(l); err == nil && strings.Contains(dst, "/aima-kube-") {
			_ = os.Remove(l)
		}
	}
	for _, d := range h.MadeDirs {
		_ = os.RemoveAll(d)
	}
	for s, v := range h.Sysctls {
		_ = os.WriteFile("/proc/sys/"+s, []byte(v), 0o644)
	}
}

// cleanLeftovers undoes what a real node whose process died (SIGKILL: its
// kubelet and containerd die with it, by Pdeathsig, but not their shims nor
// the Pods' processes) left on the host: its shims, the Pods' processes,
// mounts, state directories, CNI results and cgroups, and, from the
// hostState it kept in realNodeState, the bridge, iptables chains, host
// directories and sysctls. It runs under RealNodeLock, so nothing of a live
// node matches.
func cleanLeftovers() {
	leftover := func(path string) bool {
		return strings.HasPrefix(path, "/run/aima-rn-") ||
			(strings.HasPrefix(path, filepath.Join(os.TempDir(), "aima-kube-")) && strings.Contains(path, "/realnode/"))
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte("containerd-shim")) || !bytes.Contains(b, []byte("/run/aima-rn-")) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		var mounts []string
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 5 && leftover(f[4]) {
				mounts = append(mounts, f[4])
			}
		}
		sort.Sort(sort.Reverse(sort.StringSlice(mounts)))
		for _, m := range mounts {
			_ = syscall.Unmount(m, syscall.MNT_DETACH)
		}
	}
	dirs, _ := filepath.Glob("/run/aima-rn-*")
	for _, d := range dirs {
		_ = os.RemoveAll(d)
	}
	// What the dead node recorded before it changed the host, if it got
	// that far; else the kubelet's chains go unless a kubelet still runs.
	var h *hostState
	if b, err := os.ReadFile(realNodeState); err == nil {
		h = &hostState{}
		if json.Unmarshal(b, h) != nil {
			h = nil
		}
	}
	// The rest only when a node of ours left something: on a host where
	// another kubelet runs, AddRealNode refuses to start anyway.
	if h != nil || len(dirs) > 0 || exec.Command("ip", "link", "show", realBridge).Run() == nil {
		results, _ := filepath.Glob("/var/lib/cni/results/aima-real-*")
		for _, r := range results {
			id := strings.TrimPrefix(filepath.Base(r), "aima-real-")
			if i := strings.LastIndex(id, "-"); i > 0 {
				removeCNIResults(id[:i])
			}
		}
		// The Pods' processes outlive their shims: kill them by cgroup.
		for _, cg := range kubepodsCgroups() {
			killCgroupTree(cg)
		}
		for range 50 {
			for _, cg := range kubepodsCgroups() {
				rmdirTree(cg)
			}
			if len(kubepodsCgroups()) == 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if h == nil {
			h = &hostState{MadeBridge: true, Firewall: len(kubepodsCgroups()) > 0}
		}
		h.restore()
		_ = os.Remove(realNodeState)
	}
}

// killCgroupTree SIGKILLs every process in a cgroup directory tree.
func killCgroupTree(dir string) {
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
			return nil
		}
		b, _ := os.ReadFile(p)
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		return nil
	})
}
