#!/usr/bin/env bash
# swarm-floor.sh: the Swarm lab's own floor of a cold start (issue 14):
# scale 0->1 through the engine API to the first 200, ROUNDS times (default
# 10), by task IP over the overlay and by mode=host published port, side by
# side; p50/p99 of each, the time until the task's IP is in the API, and
# the (untimed) scale-down. The lab (scripts/swarm-lab.sh) is made and
# removed by the benchmark itself (internal/swarmlab). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-10}

[ "$(id -u)" = 0 ] || { echo "swarm-floor: needs root (the Swarm lab's namespaces and engines)" >&2; exit 1; }
scripts/docker-up.sh
# CI=true: a lab that cannot run fails the benchmark instead of skipping it.
CI=true go test -run '^$' -bench '^BenchmarkSwarmScaleUpFloor$' -benchtime "${ROUNDS}x" \
	-timeout 15m -v ./internal/swarmlab
