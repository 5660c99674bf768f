# bench/lib.sh: shared by the bench drivers (source it; do not run it).
#
# bench_init builds the custom Caddy and benchtool into a temporary work
# directory, makes sure Docker answers and wrk is installed, and picks the
# database: $DATABASE_URL if set, else a throwaway PostgreSQL started with
# scripts/pg-up.sh inside the work directory. Everything a driver starts
# (the Caddy process, the site and baseline containers and volumes of its
# schema/namespace, the schema itself, the PostgreSQL it started, the work
# directory) is removed by the EXIT trap, also on failure or Ctrl-C.

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/caddy-mt-bench.XXXXXX")
chmod 711 "$WORK" # the postgres OS user must reach $WORK/pg when run as root
SCHEMA=bench_$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
BASE_DOMAIN=example.com
CADDY_PID=""
PG_DIR=""
DB=""
BT="$WORK/benchtool"

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

bench_cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	if [ -n "$CADDY_PID" ] && kill -0 "$CADDY_PID" 2>/dev/null; then
		kill -TERM "$CADDY_PID"
		for _ in $(seq 1 100); do kill -0 "$CADDY_PID" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$CADDY_PID" 2>/dev/null && kill -KILL "$CADDY_PID"
		wait "$CADDY_PID" 2>/dev/null
	fi
	if [ $rc -ne 0 ] && [ -s "$WORK/caddy.log" ]; then
		echo "--- last lines of the caddy log ---" >&2
		tail -n 30 "$WORK/caddy.log" >&2
	fi
	if [ -x "$BT" ]; then
		if [ -n "$DB" ] && [ -z "$PG_DIR" ]; then
			"$BT" cleanup -schema "$SCHEMA" -db "$DB" >&2 # a shared server: drop our schema
		else
			"$BT" cleanup -schema "$SCHEMA" >&2 # our own server goes away entirely
		fi
	fi
	if [ -n "$PG_DIR" ]; then
		local real
		real=$(realpath -m "$PG_DIR")
		"$ROOT/scripts/pg-down.sh" "$PG_DIR"
		[ "$real" != "$(realpath -m "$WORK")/pg" ] && rm -rf "$real"
	fi
	rm -rf "$WORK"
	exit $rc
}
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bench_init() {
	"$ROOT/scripts/docker-up.sh"
	if ! command -v wrk >/dev/null 2>&1; then
		log "installing wrk (Debian package)"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1 ||
			{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	fi
	log "building caddy and benchtool"
	(cd "$ROOT" && go build -o "$WORK/caddy" ./cmd/caddy && go build -o "$BT" ./bench/cmd/benchtool)
	if [ -n "${DATABASE_URL:-}" ]; then
		DB=$DATABASE_URL
	else
		PG_DIR="$WORK/pg"
		log "starting a throwaway PostgreSQL"
		DB=$("$ROOT/scripts/pg-up.sh" "$PG_DIR")
	fi
	log "schema/namespace $SCHEMA"
}

# print_conditions: what else the machine was doing, for reading the numbers.
print_conditions() {
	echo "conditions: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)," \
		"$(docker ps -q | wc -l) running containers on the engine" \
		"(Docker $(docker version -f '{{.Server.Version}}' 2>/dev/null), $(docker info -f '{{.Driver}}' 2>/dev/null))," \
		"git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)"
}

# caddy_globals ADMIN_PORT: the global options block every driver uses.
# Logging is at ERROR and there are no access logs, so the proxy path is
# what gets measured.
caddy_globals() {
	cat <<EOF
{
	admin 127.0.0.1:$1
	auto_https off
	log {
		level ERROR
	}
	tenants {
		database_url "$DB"
		schema $SCHEMA
		base_domain $BASE_DOMAIN
		idle_timeout 1h
		start_timeout 60s
	}
}
EOF
}

# start_caddy ADMIN_PORT: runs "$WORK/Caddyfile" and waits until the
# admin API answers.
start_caddy() {
	local admin=127.0.0.1:$1
	HOME=$WORK XDG_DATA_HOME=$WORK/data XDG_CONFIG_HOME=$WORK/config \
		"$WORK/caddy" run --config "$WORK/Caddyfile" --adapter caddyfile >"$WORK/caddy.log" 2>&1 &
	CADDY_PID=$!
	for _ in $(seq 1 600); do
		if ! kill -0 "$CADDY_PID" 2>/dev/null; then
			echo "caddy exited during start-up" >&2
			return 1
		fi
		curl -fsS -o /dev/null "http://$admin/config/" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "caddy did not come up within 60s" >&2
	return 1
}

# serve_one_site NAME [SETUP FLAGS...]: creates the site NAME (SITE: its
# id; the flags go to benchtool setup) and starts a Caddy (ADMIN_PORT,
# HTTP_PORT) serving it with tenant_proxy on loopback.
serve_one_site() {
	read -r ADMIN_PORT HTTP_PORT <<<"$("$BT" freeports 2 | tr "\n" " ")"
	SITE=$("$BT" setup -db "$DB" -schema "$SCHEMA" -sites "$1" "${@:2}" | sed -n "s/^$1=//p")
	[ -n "$SITE" ]
	{
		caddy_globals "$ADMIN_PORT"
		cat <<EOF

http://:$HTTP_PORT {
	bind 127.0.0.1
	tenant_proxy
}
EOF
	} >"$WORK/Caddyfile"
	start_caddy "$ADMIN_PORT"
	print_conditions
}

# load_caddyfile ADMIN_PORT: replaces the running config with "$WORK/Caddyfile".
load_caddyfile() {
	curl -fsS -X POST -H 'Content-Type: text/caddyfile' --data-binary "@$WORK/Caddyfile" "http://127.0.0.1:$1/load"
}
