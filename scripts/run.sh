#!/usr/bin/env bash
# run.sh: what `make run` runs. Serves dev/Caddyfile (the development twin
# of Caddyfile.example) with the freshly built bin/caddy; when DATABASE_URL
# is unset, a throwaway PostgreSQL under .data/ holds the data. A demo site
# (image built locally) is registered, so http://demo.localhost:8080/ works,
# the built-in template catalog is imported, and an operator of the web UI
# at http://admin.localhost:8080/ is made on the first run (admin@localhost;
# its password, random, is printed and kept in .data/dev-admin-password).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${DATABASE_URL:-}" ]; then
	DATABASE_URL=$(scripts/pg-up.sh .data/pg)
	export DATABASE_URL
	echo "run: using local PostgreSQL $DATABASE_URL (data in .data/pg; stop it with scripts/pg-down.sh .data/pg)"
fi
mkdir -p .data
printf 'export DATABASE_URL=%q\n' "$DATABASE_URL" >.data/dev.env
scripts/docker-up.sh
go run ./internal/cmd/devsetup
cat <<MSG
run: the CLI finds the dev database through DATABASE_URL; in another shell:
       export DATABASE_URL='$DATABASE_URL'      (or: . .data/dev.env)
       bin/caddy tenants sites ls
       bin/caddy tenants templates ls
       bin/caddy tenants sites status demo
       bin/caddy tenants sites logs demo
run: the web UI: http://admin.localhost:8080/  (admin@localhost, password: $(cat .data/dev-admin-password 2>/dev/null || echo 'see above'))
run: serving dev/Caddyfile on :8080 (Ctrl-C stops it)
MSG
exec bin/caddy run --config dev/Caddyfile
