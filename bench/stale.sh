#!/usr/bin/env bash
# bench/stale.sh: serve stale while starting. One site on a serve-stale
# template whose app takes LISTEN_DELAY (2s) to listen. Each of RUNS runs
# GETs / on the running site HOT times (the hot path), kills its container
# (Caddy having seen it stop), then GETs / at once (answered from the kept
# copy while the site starts in the background) and every 100 ms until
# the site is up again. All on new connections, timed to the first byte.
# Prints p50/p99 of hot, stale-first and stale-next side by side, how long
# the start took, and the verdict against the goal (stale-first p50 within
# 5 ms of the hot path's). Fails only if a measurement fails.
#
# Env: RUNS (30), HOT (5), LISTEN_DELAY (2s), DATABASE_URL (default: a
#      throwaway PostgreSQL).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${RUNS:-30}
HOT=${HOT:-5}
LISTEN_DELAY=${LISTEN_DELAY:-2s}

bench_init
serve_one_site stale -serve-stale -listen-delay "$LISTEN_DELAY"

log "measuring $RUNS stale-while-starting cold starts ($LISTEN_DELAY boot) beside the hot path"
"$BT" stale -caddy "127.0.0.1:$HTTP_PORT" -schema "$SCHEMA" -site "$SITE" -host "stale.$BASE_DOMAIN" \
	-runs "$RUNS" -hot "$HOT"
