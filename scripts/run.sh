#!/usr/bin/env bash
# run.sh: what `make run` runs. Serves dev/Caddyfile (the development twin
# of Caddyfile.example) with the freshly built bin/caddy; when DATABASE_URL
# is unset, a throwaway PostgreSQL under .data/ holds the data. A demo site
# (image built locally) is registered, so http://demo.localhost:8080/ works.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${DATABASE_URL:-}" ]; then
	DATABASE_URL=$(scripts/pg-up.sh .data/pg)
	export DATABASE_URL
	echo "run: using local PostgreSQL $DATABASE_URL (data in .data/pg; stop it with scripts/pg-down.sh .data/pg)"
fi
scripts/docker-up.sh
go run ./internal/cmd/devsetup
exec bin/caddy run --config dev/Caddyfile
