#!/usr/bin/env bash
# bench/wake.sh: the warm tier. In one run, for the test image and for the
# same image booting in 2 s (LISTEN_DELAY=2s): (a) wake from pause to the
# first 200 through Caddy, WAKES times (Caddy pauses the idle site after
# pause_after 1s; the engine must see an unpause and no start), p50 and
# p99 against the goal (p50 < 50 ms, p99 < 100 ms); (b) cold start through
# Caddy (container killed, Caddy having seen it stop); (c) the engine's
# own floor: an equivalent container's `docker start` (Engine API) + the
# first 200, polled every millisecond. RUNS of (b) and (c) each per image,
# interleaved. Fails only if a measurement fails.
#
# Env: WAKES (50), SLOW_WAKES (20), RUNS (10), DATABASE_URL (default: a
# throwaway PostgreSQL).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WAKES=${WAKES:-50}
SLOW_WAKES=${SLOW_WAKES:-20}
RUNS=${RUNS:-10}

bench_init
read -r ADMIN_PORT HTTP_PORT <<<"$("$BT" freeports 2 | tr "\n" " ")"
SITES=$("$BT" setup -db "$DB" -schema "$SCHEMA" -sites warm,slow -env slow:LISTEN_DELAY=2s)
WARM=$(sed -n "s/^warm=//p" <<<"$SITES")
SLOW=$(sed -n "s/^slow=//p" <<<"$SITES")
[ -n "$WARM" ] && [ -n "$SLOW" ]
# pause_after 1s: a wake every ~1.3 s; idle_timeout stays far away.
caddy_globals "$ADMIN_PORT" | sed "s/^\t\tidle_timeout 1h$/\t\tidle_timeout 1h\n\t\tpause_after 1s/" >"$WORK/Caddyfile"
grep -q "pause_after 1s" "$WORK/Caddyfile"
cat >>"$WORK/Caddyfile" <<EOC

http://:$HTTP_PORT {
	bind 127.0.0.1
	tenant_proxy
}
EOC
start_caddy "$ADMIN_PORT"
print_conditions

log "measuring $WAKES + $SLOW_WAKES wakes, then $RUNS cold and floor starts of each image"
"$BT" wake -caddy "127.0.0.1:$HTTP_PORT" -admin "127.0.0.1:$ADMIN_PORT" -schema "$SCHEMA" \
	-site "$WARM" -host "warm.$BASE_DOMAIN" -slow-site "$SLOW" -slow-host "slow.$BASE_DOMAIN" \
	-wakes "$WAKES" -slow-wakes "$SLOW_WAKES" -runs "$RUNS"
