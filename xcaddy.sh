#!/usr/bin/env bash
# xcaddy.sh: builds the release binary with xcaddy, exactly as an operator
# would: Caddy v2.11.9 with this module (from this checkout) built in.
set -euo pipefail
cd "$(dirname "$0")"
go run github.com/caddyserver/xcaddy/cmd/xcaddy@v0.4.5 build v2.11.9 \
	--with github.com/agistaffers/caddy-multitenant=. \
	--output "${1:-bin/caddy-release}"
