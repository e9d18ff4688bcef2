#!/usr/bin/env bash
# engine-check.sh: run aima's conformance checks against a real engine image
# on a GPU host: what aima promises for an engine, checked against the engine
# itself rather than the simulator.
#
#   scripts/engine-check.sh IMAGE ENGINE MODEL
#
#   IMAGE   the engine image, e.g. vllm/vllm-openai:v0.11.0, lmsysorg/sglang:v0.5.5,
#           ghcr.io/ggml-org/llama.cpp:server-cuda
#   ENGINE  vllm, sglang or llamacpp (aima's engine type)
#   MODEL   a model on this host: a Hugging Face-style directory (vllm, sglang)
#           or a .gguf file (llamacpp)
#
# Environment: START_TIMEOUT (seconds, default 1800), GPUS (the engine's gpus
# setting, default auto), ENGINE_ENV (extra KEY=VALUE pairs for the engine
# container, space-separated), NVIDIA_SMI (default nvidia-smi from PATH).
#
# It builds bin/aima, runs a throw-away daemon on a free loopback port (its own
# data dir and state), and checks, printing ok/FAIL for each:
#   1. the start reaches running through the phases, with the engine's own
#      loading milestones and its ready line seen (not only the health probe);
#   2. the logs have the engine's output;
#   3. status over HTTP equals the CLI's;
#   4. a chat through aima's /v1 answers;
#   5. service_metrics reads the engine's own series (running, waiting, KV
#      use, token counters) and /metrics/engines relabels them;
#   6. sleep and wake where the engine has a sleep mode (vllm, sglang); for
#      llamacpp, that engine_list says it stops when idle instead.
# Exit status 0 when every check passed, 1 otherwise, 2 on bad usage.
set -euo pipefail

if [ $# -ne 3 ]; then
	sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
fi
IMAGE=$1 ENGINE=$2 MODEL=$3
case "$ENGINE" in vllm | sglang | llamacpp) ;; *) echo "engine-check: ENGINE must be vllm, sglang or llamacpp" >&2; exit 2 ;; esac
[ -e "$MODEL" ] || { echo "engine-check: $MODEL does not exist" >&2; exit 2; }
MODEL=$(cd "$(dirname "$MODEL")" && pwd)/$(basename "$MODEL")
command -v jq >/dev/null || { echo "engine-check: needs jq" >&2; exit 2; }
command -v curl >/dev/null || { echo "engine-check: needs curl" >&2; exit 2; }

cd "$(dirname "$0")/.."
echo "== building bin/aima"
CGO_ENABLED=0 go build -o bin/aima ./cmd/aima

work=$(mktemp -d)
port=$(( 20000 + RANDOM % 20000 ))
export AIMA_ADDR=127.0.0.1:$port
{
	smi=$(command -v "${NVIDIA_SMI:-nvidia-smi}" || true)
	[ -n "$smi" ] && echo "nvidia_smi: $smi"
	echo "start_timeout: ${START_TIMEOUT:-1800}s"
	echo "engines:"
	echo "  $ENGINE:"
	echo "    image: $IMAGE"
	echo "    gpus: ${GPUS:-auto}"
	if [ -n "${ENGINE_ENV:-}" ]; then
		echo "    env:"
		for kv in $ENGINE_ENV; do echo "      ${kv%%=*}: \"${kv#*=}\""; done
	fi
} >"$work/aima.yaml"
bin/aima start --addr "$AIMA_ADDR" --data-dir "$work/data" --config "$work/aima.yaml" >"$work/daemon.log" 2>&1 &
daemon=$!
svc=""
cleanup() {
	[ -n "$svc" ] && bin/aima service delete "$svc" >/dev/null 2>&1 || true
	kill "$daemon" 2>/dev/null || true
	wait "$daemon" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 100); do
	bin/aima health check >/dev/null 2>&1 && break
	sleep 0.1
done

fails=0
ok() { echo "ok:   $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
check() { # check DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@" >/dev/null 2>&1; then ok "$what"; else bad "$what"; fi
}

echo "== model and service"
model_json=$(bin/aima model add --path "$MODEL" -o json)
model_id=$(jq -r .id <<<"$model_json")
model_name=$(jq -r .name <<<"$model_json")
# An idle timeout turns sleep mode on for engines that have one.
svc=$(bin/aima service create --model-id "$model_id" --engine-type "$ENGINE" --idle-timeout 24h -o json | jq -r .id)
echo "service $svc, model $model_name ($model_id), image $IMAGE"

echo "== 1. start (live phases follow)"
t0=$(date +%s.%N)
if bin/aima service start "$svc" --wait --timeout "${START_TIMEOUT:-1800}" 2> >(tee "$work/progress" >&2); then
	ok "start reached running in $(echo "$(date +%s.%N) - $t0" | bc) s"
else
	bad "start did not reach running: $(bin/aima service status "$svc" -o json | jq -r .reason)"
	echo "== last log lines"
	bin/aima service logs "$svc" --tail 40 || true
	echo "== $fails check(s) failed"
	exit 1
fi
for ph in loading health_check running; do
	check "phase $ph seen" grep -q "==> $ph" "$work/progress"
done
milestones=$(bin/aima service events "$svc" -o json | jq '[.items[] | select(.phase == "loading" and .type == "message")] | length')
if [ "${milestones:-0}" -gt 0 ]; then ok "$milestones loading milestone(s) read from the engine's log"; else bad "no loading milestone recognised in the engine's log (its log lines changed?)"; fi
check "the engine's ready line recognised (not only the health probe)" grep -q "engine reports ready" "$work/progress"

echo "== 2. logs"
lines=$(bin/aima service logs "$svc" | wc -l)
if [ "$lines" -gt 0 ]; then ok "logs: $lines lines of the engine's output"; else bad "logs are empty"; fi

echo "== 3. status over HTTP = CLI"
http_status=$(curl -fsS "http://$AIMA_ADDR/api/service/status?service_id=$svc" | jq -r .status)
cli_status=$(bin/aima service status "$svc" -o json | jq -r .status)
if [ "$http_status" = running ] && [ "$http_status" = "$cli_status" ]; then ok "status running on both"; else bad "status HTTP $http_status, CLI $cli_status"; fi

echo "== 4. chat through /v1"
chat=$(curl -sS -w '\n%{http_code}' "http://$AIMA_ADDR/v1/chat/completions" -H 'Content-Type: application/json' \
	-d "{\"model\":\"$model_name\",\"messages\":[{\"role\":\"user\",\"content\":\"Say hello.\"}],\"max_tokens\":16}")
code=$(tail -n1 <<<"$chat")
if [ "$code" = 200 ] && head -n -1 <<<"$chat" | jq -e '.choices[0].message.content | length > 0' >/dev/null; then
	ok "chat answered: $(head -n -1 <<<"$chat" | jq -c .choices[0].message.content)"
else
	bad "chat: HTTP $code $(head -n -1 <<<"$chat" | head -c 300)"
fi

echo "== 5. metrics"
figs=$(bin/aima service metrics "$svc" -o json)
if jq -e .scrape_ok <<<"$figs" >/dev/null; then ok "service_metrics read the engine's metrics"; else bad "service_metrics: $(jq -r .error <<<"$figs")"; fi
for f in requests_running requests_waiting kv_cache_usage prompt_tokens_total generation_tokens_total; do
	if jq -e "has(\"$f\")" <<<"$figs" >/dev/null; then ok "figure $f = $(jq -r ".$f" <<<"$figs")"; else bad "figure $f missing: the engine does not serve the series aima reads for it"; fi
done
curl -fsS "http://$AIMA_ADDR/metrics/engines" >"$work/engines.prom" || true
case "$ENGINE" in
vllm) series="vllm:num_requests_running vllm:num_requests_waiting vllm:kv_cache_usage_perc vllm:prompt_tokens_total vllm:generation_tokens_total" ;;
sglang) series="sglang:num_running_reqs sglang:num_queue_reqs sglang:token_usage sglang:prompt_tokens_total sglang:generation_tokens_total" ;;
llamacpp) series="llamacpp:requests_processing llamacpp:requests_deferred llamacpp:kv_cache_usage_ratio llamacpp:prompt_tokens_total llamacpp:tokens_predicted_total" ;;
esac
for s in $series; do
	check "/metrics/engines has $s relabelled for the service" grep -q "^$s{.*aima_service=\"$svc\"" "$work/engines.prom"
done

echo "== 6. sleep"
can_sleep=$(bin/aima engine list -o json | jq -r ".items[] | select(.type == \"$ENGINE\") | .can_sleep")
if [ "$can_sleep" = true ]; then
	if bin/aima service sleep "$svc" >/dev/null && [ "$(bin/aima service status "$svc" -o json | jq -r .status)" = sleeping ]; then
		ok "sleep: $(bin/aima service status "$svc" -o json | jq -r .reason)"
		t0=$(date +%s.%N)
		if bin/aima service start "$svc" --wait --timeout 600 >/dev/null 2>&1; then
			ok "wake: running again in $(echo "$(date +%s.%N) - $t0" | bc) s ($(bin/aima service status "$svc" -o json | jq -r .reason))"
		else
			bad "wake failed: $(bin/aima service status "$svc" -o json | jq -r .reason)"
		fi
	else
		bad "sleep failed: $(bin/aima service status "$svc" -o json | jq -r .reason)"
	fi
else
	ok "$ENGINE has no sleep mode (engine_list can_sleep=false): an idle release stops it, the next request starts it"
fi

bin/aima service stop "$svc" >/dev/null
echo "== $fails check(s) failed"
[ "$fails" -eq 0 ]
