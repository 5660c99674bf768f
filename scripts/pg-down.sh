#!/usr/bin/env bash
# pg-down.sh DIR: stops the cluster pg-up.sh started in DIR.
set -euo pipefail
dir=$(realpath -m "${1:?usage: pg-down.sh DIR}")
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -f "$dir/data/PG_VERSION" ] || exit 0
if [ "$(id -u)" = 0 ]; then
	runuser -u postgres -- "$bindir/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
else
	"$bindir/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
fi
