# aima build and test entry points. `make test` is what CI runs (via .ci/run).
GO        ?= go
BIN       ?= bin
SIM_IMAGE ?= aima-enginesim:$(or $(AIMA_IMAGE_TAG),dev)
ADDR      ?= 127.0.0.1:9090

.PHONY: setup build image enginesim kube-build run demo demo-k8s test test-short fuzz bench soak schemas docs fmt vet

# Installs (Debian docker.io) and starts the Docker engine when none answers.
setup:
	bash .ci/docker-up.sh

build:
	CGO_ENABLED=0 $(GO) build -o $(BIN)/aima ./cmd/aima

# The daemon's image: the static binary FROM scratch, non-root (the Helm
# chart, deploy/helm/aima, runs it with a read-only root filesystem).
AIMA_IMAGE ?= aima:$(or $(AIMA_IMAGE_TAG),dev)
image:
	mkdir -p $(BIN)/aima-ctx
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/aima-ctx/aima ./cmd/aima
	cp cmd/aima/Dockerfile $(BIN)/aima-ctx/Dockerfile
	docker build -q -t $(AIMA_IMAGE) $(BIN)/aima-ctx

# The engine simulator image: a static binary in a FROM scratch image, built
# from this repository only (no registry needed).
enginesim:
	mkdir -p $(BIN)/enginesim-ctx
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/enginesim-ctx/enginesim ./cmd/enginesim
	cp cmd/enginesim/Dockerfile $(BIN)/enginesim-ctx/Dockerfile
	docker build -q -t $(SIM_IMAGE) \
	  --label aima.sim.sha=$$(cat $(BIN)/enginesim-ctx/enginesim cmd/enginesim/Dockerfile | sha256sum | cut -d' ' -f1) \
	  $(BIN)/enginesim-ctx

run: build
	$(BIN)/aima start --addr $(ADDR)

# The daemon with vllm pointed at the simulator (no GPU needed).
demo: setup build enginesim
	$(BIN)/aima start --addr $(ADDR) --config examples/sim.yaml

# The daemon on a local Kubernetes cluster: the control plane of the tests
# with its real node (a kubelet, containerd, runc and a CNI bridge on this
# machine; as root, with Debian's containerd, runc and
# containernetworking-plugins), the simulator image imported into the node.
# Ctrl-C stops the daemon, then the cluster, leaving the host as it was.
# Each run starts with a fresh data dir: the cluster lives as long as the demo.
demo-k8s: setup build enginesim kube-build
	rm -rf $(BIN)/demo-k8s
	$(GO) run ./internal/testenv/kube/localkube -image $(SIM_IMAGE) -- \
	  $(BIN)/aima start --addr $(ADDR) --config examples/sim-k8s.yaml --data-dir $(BIN)/demo-k8s

# The local Kubernetes control plane the runtime/kubernetes tests start:
# etcd, kube-apiserver, kube-scheduler, kube-controller-manager and kwok,
# built from the Go module proxy once per version (minutes cold; cached
# under ~/.cache/aima-kube), the kubelet of its real node and kubectl.
kube-build:
	bash scripts/kube-build.sh >/dev/null

# Full suite: unit tests plus integration tests on the real Docker engine
# and on the local Kubernetes control plane.
# Three test binaries at a time (go test's default is one per CPU): the
# long packages (e2e, e2e/faults, cluster, the Kubernetes ones) mostly wait
# on containers, Pods and engines starting, not on the CPU.
TEST_P ?= 3
test: setup build enginesim kube-build
	$(GO) test -race -count=1 -timeout 60m -p $(TEST_P) ./...
	$(MAKE) fuzz

# Brief runs of the decoder fuzz targets (longer: make fuzz FUZZTIME=5m).
# Go's fuzzing coordinator sometimes ends a time-bounded run with a bare
# "context deadline exceeded" when the deadline falls while a worker is
# busy; each target gets one second run then. A real finding is no flake:
# it is saved under testdata/fuzz and fails the second run's baseline too.
FUZZTIME ?= 10s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRequest$$' -fuzztime $(FUZZTIME) ./jsonrpc/ || \
	  $(GO) test -run '^$$' -fuzz '^FuzzDecodeRequest$$' -fuzztime $(FUZZTIME) ./jsonrpc/
	$(GO) test -run '^$$' -fuzz '^FuzzToolArguments$$' -fuzztime $(FUZZTIME) ./mcp/ || \
	  $(GO) test -run '^$$' -fuzz '^FuzzToolArguments$$' -fuzztime $(FUZZTIME) ./mcp/

test-short:
	$(GO) test -race -count=1 -short ./...

bench: build enginesim kube-build
	$(GO) test -run '^$$' -bench . -benchtime 5x ./...

# The leader of two replicas killed mid-start and while idle, ten times
# each (CI runs them once in make test): two `aima start` processes on the
# control plane (./cluster/), then the Helm chart's two Pods on the real
# node (./deploy/). Each logs every takeover time and their median and
# worst. SOAK_REPS=N for another count.
SOAK_REPS ?= 10
soak: build enginesim kube-build
	AIMA_SOAK_REPS=$(SOAK_REPS) $(GO) test -race -count=1 -timeout 60m -v -run '^TestLeaderKilledMidStartAndWhileIdle$$' ./cluster/
	AIMA_SOAK_REPS=$(SOAK_REPS) $(GO) test -race -count=1 -timeout 90m -v -run '^TestChartReplicasLeaderPodKilled$$' ./deploy/

# The committed schemas and tool snapshots (schemas/): rewrite them after a
# change to an operation, and review the diff.
schemas:
	UPDATE_SCHEMAS=1 $(GO) test ./schemas/ -run TestSchemas -count=1

# The generated tables of docs/reference/*.md (CLI, tools, JSON-RPC, errors,
# config keys, metrics), written from the code by cmd/aima-docs.
docs:
	$(GO) run ./cmd/aima-docs

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	$(GO) vet ./...
