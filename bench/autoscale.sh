#!/usr/bin/env bash
# bench/autoscale.sh: autoscaling a CPU-bound site (issue 14). Two sites of
# the same image, each replica limited to CPUS (0.5) CPU, so that two of them leave Caddy and wrk the rest of a 2-core machine: "one" on a template
# with max_replicas 1, "two" on one with max_replicas 2, both with
# target_concurrency TARGET (4) and the default scale windows (up 6s,
# down 60s). For each site in turn: a cold start, then wrk with CONNS (16)
# connections on GET /work?n=WORK_N (50000 SHA-256 rounds: ~10 ms of one core)
# for WARM (15s), during which "two" scales up (the time from the load's
# start to its second replica serving, read from caddy_tenants_extra_replicas
# every 100 ms, is printed), then the measured wrk run of DURATION (20s).
# Prints both runs' wrk summaries and the throughput ratio. Fails only if a
# measurement fails (or "two" did not scale up).
#
# Env: CPUS, TARGET, CONNS, WORK_N, WARM, DURATION, DATABASE_URL (default: a
# throwaway PostgreSQL).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CPUS=${CPUS:-0.5}
TARGET=${TARGET:-4}
CONNS=${CONNS:-16}
WORK_N=${WORK_N:-50000}
WARM=${WARM:-15s}
DURATION=${DURATION:-20s}

bench_init
read -r ADMIN_PORT HTTP_PORT <<<"$("$BT" freeports 2 | tr "\n" " ")"
"$BT" setup -db "$DB" -schema "$SCHEMA" -sites one,two -scaled two -max-replicas 2 \
	-target-concurrency "$TARGET" -cpus "$CPUS" >"$WORK/sites"
{
	caddy_globals "$ADMIN_PORT"
	cat <<EOC

http://:$HTTP_PORT {
	bind 127.0.0.1
	tenant_proxy
}
EOC
} >"$WORK/Caddyfile"
start_caddy "$ADMIN_PORT"
print_conditions
echo "each replica: $CPUS CPU; target_concurrency $TARGET; wrk: $CONNS connections, GET /work?n=$WORK_N"

extra_replicas() {
	curl -fsS "http://127.0.0.1:$ADMIN_PORT/metrics" | awk '$1 == "caddy_tenants_extra_replicas" { print $2 }'
}

declare -A RPS
for site in one two; do
	url="http://127.0.0.1:$HTTP_PORT/work?n=$WORK_N"
	code=$(curl -sS -o "$WORK/first-$site" -w "%{http_code}" -H "Host: $site.$BASE_DOMAIN" "$url") # the cold start
	if [ "$code" != 200 ]; then
		echo "$site: the first request answered $code: $(head -c 300 "$WORK/first-$site")" >&2
		exit 1
	fi
	before=$(extra_replicas)
	began=$(date +%s%N)
	wrk -t2 -c"$CONNS" -d"$WARM" -H "Host: $site.$BASE_DOMAIN" "$url" >"$WORK/warm-$site" &
	wrk_pid=$!
	scaled=""
	while kill -0 "$wrk_pid" 2>/dev/null; do
		if [ -z "$scaled" ] && [ "$(extra_replicas)" != "$before" ]; then
			scaled=$(( ($(date +%s%N) - began) / 1000000 ))
			echo "$site: second replica serving ${scaled} ms after the load began"
		fi
		sleep 0.1
	done
	wait "$wrk_pid"
	if [ "$site" = two ] && [ -z "$scaled" ]; then
		echo "two did not scale up within $WARM" >&2
		exit 1
	fi
	echo "--- $site: measured run ($DURATION) ---"
	wrk -t2 -c"$CONNS" -d"$DURATION" --latency -H "Host: $site.$BASE_DOMAIN" "$url" | tee "$WORK/run-$site"
	RPS[$site]=$(awk '/^Requests\/sec/ { print $2 }' "$WORK/run-$site")
	if grep -q "Non-2xx" "$WORK/run-$site"; then
		echo "$site: non-2xx answers" >&2
		exit 1
	fi
done
echo
printf 'throughput: max_replicas 1 %s req/s, max_replicas 2 %s req/s, ratio %s\n' "${RPS[one]}" "${RPS[two]}" \
	"$(awk -v a="${RPS[one]}" -v b="${RPS[two]}" 'BEGIN { printf "%.2f", b / a }')"
