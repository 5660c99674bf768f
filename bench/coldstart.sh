#!/usr/bin/env bash
# bench/coldstart.sh: the cold path. First-request latency through Caddy
# to a stopped site (its container killed, Caddy having seen it stop) vs. a
# baseline measured in the same run on an equivalent container (same
# image, env, limits, security options, its own volume, a fixed published
# port): start it (Engine API call, and the `docker start` command) and
# poll GET / every millisecond until it answers. RUNS runs of each,
# interleaved; prints the medians, the difference and the verdict against
# the goal (caddy <= baseline + 50 ms). Fails only if a measurement fails.
#
# Env: RUNS (15), DATABASE_URL (default: a throwaway PostgreSQL).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${RUNS:-15}

bench_init
serve_one_site cold

log "measuring $RUNS cold starts of each kind"
"$BT" coldstart -caddy "127.0.0.1:$HTTP_PORT" -admin "127.0.0.1:$ADMIN_PORT" \
	-schema "$SCHEMA" -site "$SITE" -host "cold.$BASE_DOMAIN" -runs "$RUNS"
