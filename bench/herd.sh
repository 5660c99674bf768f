#!/usr/bin/env bash
# bench/herd.sh: the thundering herd. N (1,000) concurrent requests, each
# on its own connection, released together at a site that is not running:
# first a fresh site (no container yet: create + start), then the same site
# again after its container was killed (start only). Each time asserts
# exactly one container start (Docker's start events for the site's label,
# the containers carrying the label, and caddy_tenants_cold_starts_total)
# and all N answered 200 with the site's content, and prints the latency
# distribution. Exits non-zero if an assertion fails.
#
# Env: N (1000), DATABASE_URL (default: a throwaway PostgreSQL).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=${N:-1000}

bench_init
serve_one_site herd

# The process sending the herd holds N connections at once.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

args=(-caddy "127.0.0.1:$HTTP_PORT" -admin "127.0.0.1:$ADMIN_PORT" -schema "$SCHEMA" -site "$SITE" -host "herd.$BASE_DOMAIN" -n "$N")
"$BT" herd "${args[@]}"
echo
"$BT" herd "${args[@]}"
