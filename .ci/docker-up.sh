#!/usr/bin/env bash
# Installs (Debian's docker.io) and starts a Docker engine when none answers.
set -euo pipefail
if ! command -v dockerd >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq docker.io >/dev/null
fi
if docker info >/dev/null 2>&1; then exit 0; fi
if ! pgrep -x dockerd >/dev/null 2>&1; then
  nohup dockerd >/var/log/aima-dockerd.log 2>&1 &
fi
for i in $(seq 1 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 1
done
echo "docker engine did not come up; last log lines:" >&2
tail -n 30 /var/log/aima-dockerd.log >&2 || true
exit 1
