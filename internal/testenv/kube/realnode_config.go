package kube

import (
	"fmt"
	"os"
	"path/filepath"
)

// writeContainerdConfig writes the private containerd's config and the CNI
// network it gives Pods:
//   - its own root, state, socket and runc root, so Docker's containerd
//     (same binary, same host) is untouched;
//   - the sandbox image is the locally built pause image (no registry);
//   - restrict_oom_score_adj: a root without CAP_SYS_RESOURCE cannot lower
//     a process's oom_score_adj, and every sandbox fails without it
//     ("failed to update /proc/self/oom_score_adj: Permission denied");
//   - a bridge network with host-local addresses on RealPodCIDR, gateway
//     RealNodeIP, no masquerade (no iptables rule is added for it).
func (n *RealNode) writeContainerdConfig() error {
	cni := filepath.Join(n.dir, "cni")
	if err := os.MkdirAll(filepath.Join(cni, "net.d"), 0o755); err != nil {
		return err
	}
	conf := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
[grpc]
  address = %[3]q
[ttrpc]
  address = "%[3]s.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[4]q
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "%[2]s/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[5]q
    conf_dir = "%[6]s/net.d"
    max_conf_num = 1
[plugins."io.containerd.internal.v1.opt"]
  path = "%[7]s/opt"
`, filepath.Join(n.dir, "containerd"), n.state, n.sock, pauseRef, cniBin, cni, n.dir)
	if err := os.WriteFile(filepath.Join(n.dir, "containerd.toml"), []byte(conf), 0o644); err != nil {
		return err
	}
	net := fmt.Sprintf(`{"cniVersion": "0.4.0", "name": "aima-real", "plugins": [
  {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": %q, "gateway": %q}]],
            "routes": [{"dst": "0.0.0.0/0"}], "dataDir": %q}}]}
`, realBridge, RealPodCIDR, RealNodeIP, filepath.Join(cni, "ipam"))
	return os.WriteFile(filepath.Join(cni, "net.d", "10-aima-real.conflist"), []byte(net), 0o644)
}

// writeKubeletConfig writes the kubelet's configuration: cgroupfs (the
// host may have cgroup v1, which needs failCgroupV1: false), the private
// containerd, logs and volume plugins under the node's directory, no
// read-only port, anonymous access for the API server's pods/log,
// pods/proxy and exec (it has no client certificate here), node status
// every 2 s so the tests see changes soon, and container logs rotated at
// 200 MiB rather than 10 (a log benchmark reads 20 MB of one container).
func (n *RealNode) writeKubeletConfig() error {
	conf := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %s
port: 10250
readOnlyPort: 0
healthzPort: 0
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://%s
podLogsDir: %s
volumePluginDir: %s
evictionHard: {memory.available: 50Mi, nodefs.available: 1%%, imagefs.available: 1%%, nodefs.inodesFree: 1%%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
nodeStatusUpdateFrequency: 2s
syncFrequency: 5s
fileCheckFrequency: 5s
maxPods: 50
serializeImagePulls: false
containerLogMaxSize: 200Mi
`, RealNodeIP, n.sock, filepath.Join(n.dir, "pod-logs"), filepath.Join(n.dir, "kubelet", "volume-plugins"))
	return os.WriteFile(filepath.Join(n.dir, "kubelet.yaml"), []byte(conf), 0o644)
}
