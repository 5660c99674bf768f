#!/usr/bin/env bash
# pg-up.sh DIR: starts (or reuses) a throwaway PostgreSQL cluster whose data
# lives in DIR, listening on 127.0.0.1 only, and prints its connection URL.
# Installs Debian's postgresql when initdb is missing. PostgreSQL refuses to
# run as root, so as root the cluster belongs to the postgres OS user.
set -euo pipefail

dir=$(realpath -m "${1:?usage: pg-up.sh DIR}")

find_bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
bindir=$(find_bindir)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
	echo "pg-up: installing postgresql" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2 && apt-get install -y -qq postgresql >&2
	bindir=$(find_bindir)
fi

run() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

mkdir -p "$dir"
if [ "$(id -u)" = 0 ]; then
	chown postgres: "$dir"
	# The postgres user must be able to reach DIR; under a root-only home
	# it cannot, so the cluster then lives in /var/tmp behind a symlink.
	if ! runuser -u postgres -- test -w "$dir"; then
		real=/var/tmp/caddy-multitenant-pg-$(echo "$dir" | sha1sum | cut -c1-12)
		mkdir -p "$real" && chown postgres: "$real" && chmod 700 "$real"
		rmdir "$dir" 2>/dev/null || true
		[ -e "$dir" ] || ln -s "$real" "$dir"
		dir=$real
	fi
fi
chmod 700 "$dir"

if [ -f "$dir/port" ] && run "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
	port=$(cat "$dir/port")
else
	if [ ! -f "$dir/data/PG_VERSION" ]; then
		run "$bindir/initdb" -D "$dir/data" --auth=trust --username=postgres --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
			{ cat "$dir/initdb.log" >&2; exit 1; }
	fi
	# A restarted cluster keeps its port where it can, so URLs handed out
	# before stay valid.
	port=${PGPORT_WANTED:-$(cat "$dir/port" 2>/dev/null || echo 25432)}
	# Another cluster may take the port between the check and the bind
	# (tests start several at once): then try the next one.
	for attempt in $(seq 1 20); do
		while port_in_use "$port"; do port=$((port + 1)); done
		echo "$port" | run tee "$dir/port" >/dev/null
		if run "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
			-o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
			start >/dev/null; then
			break
		fi
		if [ "$attempt" = 20 ] || ! grep -q "could not bind\|could not create any TCP/IP sockets" "$dir/server.log"; then
			cat "$dir/server.log" >&2
			exit 1
		fi
		port=$((port + 1))
	done
fi
echo "postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
