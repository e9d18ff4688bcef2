package kube

import (
	"bytes"
	"context"
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
type hostState struct {
	sysctls    map[string]string // /proc/sys path -> value before
	firewall   bool              // the kubelet's KUBE-FIREWALL chain existed before
	madeBridge bool
	madeDirs   []string // host directories the kubelet or CNI create that did not exist
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
	h := hostState{sysctls: map[string]string{}}
	for _, s := range nodeSysctls {
		b, err := os.ReadFile("/proc/sys/" + s)
		if err != nil {
			return h, err
		}
		h.sysctls[s] = strings.TrimSpace(string(b))
	}
	h.firewall = exec.Command("iptables", "-S", "KUBE-FIREWALL").Run() == nil
	for _, d := range nodeHostDirs {
		if _, err := os.Stat(d); os.IsNotExist(err) {
			h.madeDirs = append(h.madeDirs, d)
		}
	}
	for _, d := range kubepodsCgroups() {
		return h, fmt.Errorf("cgroup %s exists: another kubelet runs on this host", d)
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

// addBridge creates the Pods' bridge with the node's address.
func (h *hostState) addBridge() error {
	if err := exec.Command("ip", "link", "show", realBridge).Run(); err == nil {
		return fmt.Errorf("bridge %s exists: a real node's leftovers or another one's (delete it with `ip link del %s`)", realBridge, realBridge)
	}
	if out, err := exec.Command("ip", "link", "add", realBridge, "type", "bridge").CombinedOutput(); err != nil {
		return fmt.Errorf("ip link add %s: %v: %s", realBridge, err, out)
	}
	h.madeBridge = true
	for _, args := range [][]string{
		{"addr", "add", RealNodeIP + "/16", "dev", realBridge},
		{"link", "set", realBridge, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// Stop stops the kubelet, removes every Pod container and sandbox (their
// processes, shims and network namespaces), stops containerd, and undoes
// what the node changed on the host: mounts under its directories, the
// kubelet's cgroups and iptables chains, the bridge, the CNI result cache,
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
	n.unmountAll()
	for _, cg := range kubepodsCgroups() {
		rmdirTree(cg)
	}
	n.host.restore()
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
		// containerd's CNI DEL never runs: drop the results it cached.
		m, _ := filepath.Glob("/var/lib/cni/results/aima-real-" + c + "-*")
		for _, f := range m {
			_ = os.Remove(f)
		}
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
	if !h.firewall {
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
	if h.madeBridge {
		_ = exec.Command("ip", "link", "del", realBridge).Run()
	}
	links, _ := filepath.Glob("/var/log/containers/*.log")
	for _, l := range links {
		if dst, err := os.Readlink(l); err == nil && strings.Contains(dst, "/aima-kube-") {
			_ = os.Remove(l)
		}
	}
	for _, d := range h.madeDirs {
		_ = os.RemoveAll(d)
	}
	for s, v := range h.sysctls {
		_ = os.WriteFile("/proc/sys/"+s, []byte(v), 0o644)
	}
}
