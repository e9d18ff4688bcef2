#!/usr/bin/env bash
# gpu-check.sh: check aima's GPU inventory and memory estimator on a real
# NVIDIA host. No Docker needed.
#
#   scripts/gpu-check.sh [MODEL_DIR_OR_GGUF ...]
#
# It builds bin/aima, runs a throw-away daemon on a free loopback port (its
# own data dir; nvidia-smi from PATH, or from $NVIDIA_SMI), compares
# `aima gpu list -o json` with `nvidia-smi -L` and nvidia-smi's memory
# figures, and runs `aima model fit` on every model given. Exit status 0
# when the inventory matches.
set -euo pipefail

cd "$(dirname "$0")/.."
SMI=${NVIDIA_SMI:-nvidia-smi}
command -v "$SMI" >/dev/null || { echo "gpu-check: $SMI not found: not an NVIDIA host?" >&2; exit 2; }

echo "== building bin/aima"
CGO_ENABLED=0 go build -o bin/aima ./cmd/aima

work=$(mktemp -d)
port=$(( 20000 + RANDOM % 20000 ))
export AIMA_ADDR=127.0.0.1:$port
cat >"$work/aima.yaml" <<YAML
nvidia_smi: $(command -v "$SMI")
store: memory
YAML
bin/aima start --addr "$AIMA_ADDR" --data-dir "$work/data" --config "$work/aima.yaml" >"$work/daemon.log" 2>&1 &
daemon=$!
cleanup() { kill "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 100); do
	bin/aima health check >/dev/null 2>&1 && break
	sleep 0.1
done

echo "== aima gpu list"
bin/aima gpu list
bin/aima gpu list -o json >"$work/gpus.json"

fail=0
echo "== comparing with nvidia-smi -L"
"$SMI" -L | grep -o 'UUID: GPU-[0-9a-fA-F-]*' | sed 's/UUID: //' | sort >"$work/smi-uuids"
grep -o '"uuid": *"GPU-[^"]*"' "$work/gpus.json" | sed 's/.*"\(GPU-[^"]*\)"/\1/' | sort >"$work/aima-uuids"
if diff -u "$work/smi-uuids" "$work/aima-uuids"; then
	echo "ok: $(wc -l <"$work/aima-uuids") GPU(s), same UUIDs"
else
	echo "MISMATCH: UUIDs differ (above)"; fail=1
fi

echo "== comparing memory totals (MiB)"
"$SMI" --query-gpu=uuid,memory.total --format=csv,noheader,nounits | tr -d ' ' | sort >"$work/smi-mem"
# aima reports bytes; pair each uuid with the memory_total_bytes that follows it.
awk '
	/"uuid":/ { gsub(/[",]/, "", $2); uuid = $2 }
	/"memory_total_bytes":/ { gsub(/,/, "", $2); printf "%s,%d\n", uuid, $2 / 1048576 }
' "$work/gpus.json" | sort >"$work/aima-mem"
if diff -u "$work/smi-mem" "$work/aima-mem"; then
	echo "ok: memory totals match"
else
	echo "MISMATCH: memory totals differ (above; [N/A] totals are absent in aima)"; fail=1
fi
echo "== nvidia-smi now (free memory moves; compare by eye)"
"$SMI" --query-gpu=index,memory.used,memory.free --format=csv

for m in "$@"; do
	echo "== model fit: $m"
	id=$(bin/aima model add --path "$m" -o json | grep -o '"id": *"[^"]*"' | head -1 | sed 's/.*"\([^"]*\)"$/\1/')
	bin/aima model fit "$id" || true
	bin/aima model fit "$id" -o json | sed -n '/"estimate"/,/}/p'
done

if [ "$fail" = 0 ]; then echo "gpu-check: inventory OK"; else echo "gpu-check: inventory MISMATCH"; fi
exit "$fail"
