#!/usr/bin/env bash
# bench/deploy.sh: releases under load. A running site (its template lets
# a release start beside the live container) gets a deploy from source
# (the test server compiled here, FROM scratch, uploaded as a tar.gz to
# POST /api/v1/sites/{id}/deploy) while wrk loads it, then a rollback
# under the same load. Prints the time from the upload's start until the
# new version answers (and until the deploy's answer, once the old
# container is drained and removed), and for each phase wrk's requests,
# non-2xx answers and socket errors: the error rate during rollout and
# rollback.
#
# Env: DURATION (wrk seconds a phase, 20), CONNECTIONS (16), THREADS (2),
# RUNS (deploy+rollback rounds, 3), DATABASE_URL (default: a throwaway
# PostgreSQL).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${DURATION:-20}
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-2}
RUNS=${RUNS:-3}

bench_init
read -r ADMIN_PORT HTTP_PORT <<<"$("$BT" freeports 2 | tr "\n" " ")"
SITE=$("$BT" setup -db "$DB" -schema "$SCHEMA" -sites deploy -share-volume | sed -n "s/^deploy=//p")
[ -n "$SITE" ]
{
	caddy_globals "$ADMIN_PORT"
	cat <<EOF2

http://admin.$BASE_DOMAIN:$HTTP_PORT {
	bind 127.0.0.1
	tenant_admin
}

http://:$HTTP_PORT {
	bind 127.0.0.1
	tenant_proxy
}
EOF2
} >"$WORK/Caddyfile"
start_caddy "$ADMIN_PORT"
TOKEN=$("$WORK/caddy" tenants apikey create --name bench --scope write --database-url "$DB" --schema "$SCHEMA" --json |
	sed -n 's/.*"token": "\([^"]*\)".*/\1/p')
[ -n "$TOKEN" ]
"$BT" wait -caddy "127.0.0.1:$HTTP_PORT" -host "deploy.$BASE_DOMAIN"
print_conditions

# load FILE: wrk against the site for DURATION seconds, its report in FILE.
load() {
	wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -H "Host: deploy.$BASE_DOMAIN" "http://127.0.0.1:$HTTP_PORT/" >"$1" 2>&1
}

# errors FILE: "requests, non-2xx, socket errors, rate" from a wrk report.
errors() {
	local total non2xx sock
	total=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$1")
	non2xx=$(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' "$1")
	sock=$(sed -n 's/^ *Socket errors: connect \([0-9]*\), read \([0-9]*\), write \([0-9]*\), timeout \([0-9]*\).*/\1 \2 \3 \4/p' "$1" |
		awk '{print $1+$2+$3+$4}')
	non2xx=${non2xx:-0} sock=${sock:-0}
	awk -v t="$total" -v n="$non2xx" -v s="$sock" \
		'BEGIN { printf "%d requests, %d non-2xx, %d socket errors: error rate %.4f%%\n", t, n, s, t ? 100 * (n + s) / t : 0 }'
}

for run in $(seq 1 "$RUNS"); do
	log "round $run: deploy under load"
	load "$WORK/wrk-deploy" &
	wrk_pid=$!
	sleep 3
	"$BT" deploy -caddy "127.0.0.1:$HTTP_PORT" -host "deploy.$BASE_DOMAIN" -admin-host "admin.$BASE_DOMAIN" \
		-token "$TOKEN" -site "$SITE" -marker "round$run"
	wait "$wrk_pid"
	echo "rollout:  $(errors "$WORK/wrk-deploy")"

	log "round $run: rollback under load"
	load "$WORK/wrk-rollback" &
	wrk_pid=$!
	sleep 3
	began=$(date +%s.%N)
	curl -fsS -o "$WORK/rollback.json" -X POST -H "Host: admin.$BASE_DOMAIN" -H "Authorization: Bearer $TOKEN" \
		"http://127.0.0.1:$HTTP_PORT/api/v1/sites/$SITE/rollback"
	ended=$(date +%s.%N)
	grep -q '"status": "live"' "$WORK/rollback.json"
	wait "$wrk_pid"
	awk -v a="$began" -v b="$ended" 'BEGIN { printf "rollback answered (old container drained and removed): %.2fs\n", b - a }'
	echo "rollback: $(errors "$WORK/wrk-rollback")"
	echo
done
