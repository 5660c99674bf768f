#!/usr/bin/env bash
# test.sh: what `make test` runs. Brings up what the tests need (PostgreSQL,
# a Docker engine, the Swarm lab's tools, chromium), then vets, runs every
# test with the race detector, fuzzes briefly, and checks that the shipped
# configs adapt and validate.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s)
step() { printf '\n== %s (%ds)\n' "$*" $(($(date +%s) - started)); }

# pg_listening DIR: whether the cluster of DIR is up already (then it is
# someone else's to stop).
pg_listening() {
	local port
	port=$(cat "$1/port" 2>/dev/null) || return 1
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

step "postgresql"
if [ -z "${TENANTS_TEST_DATABASE_URL:-}" ]; then
	if ! pg_listening .data/test-pg; then
		# Started here, so stopped here, however the tests end.
		trap 'scripts/pg-down.sh .data/test-pg' EXIT
	fi
	TENANTS_TEST_DATABASE_URL=$(scripts/pg-up.sh .data/test-pg)
	export TENANTS_TEST_DATABASE_URL
fi
echo "using $TENANTS_TEST_DATABASE_URL"

step "docker"
scripts/docker-up.sh
docker version --format 'engine {{.Server.Version}}, api {{.Server.APIVersion}}'

step "swarm lab"
# internal/swarmlab's tests (and the Swarm e2e tests) each bring up a real
# three-node Swarm with scripts/swarm-lab.sh; install what it needs once
# here, not from tests running in parallel. Without root they skip (and
# fail when CI=true).
if [ "$(id -u)" = 0 ]; then
	scripts/swarm-lab.sh prepare .data/swarm-lab
	# Labs of test binaries killed at their timeout in an earlier run.
	scripts/swarm-lab.sh gc .data/swarm-lab
else
	echo "not root: the Swarm lab tests will skip (and fail if CI=true)"
fi

step "chromium"
# The browser tests (e2e/ui_test.go) drive Debian's chromium; they find it
# through CHROMIUM (empty: not installed, and they skip unless CI=true).
CHROMIUM=$(scripts/chromium-up.sh)
export CHROMIUM
[ -n "$CHROMIUM" ] && "$CHROMIUM" --version 2>/dev/null || true

step "gofmt and go vet"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "gofmt would change these files:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...

step "test peers"
# Pebble, the real ACME server of the on-demand TLS tests, at a pinned
# version; e2e/tls_test.go finds it in bin/ (or PATH, or GOPATH/bin).
GOBIN="$PWD/bin" go install github.com/letsencrypt/pebble/v2/cmd/pebble@v2.10.3
# stripe-mock, Stripe's API mock, for the billing tests (billing/ and
# e2e/billing_test.go start their own; billing/billingtest finds it in bin/).
GOBIN="$PWD/bin" go install github.com/stripe/stripe-mock@v0.203.0

step "go test -race"
go test -race -count=1 -timeout 25m ./...

step "fuzz (brief)"
# Budgets are execution counts, not durations: Go 1.26's fuzz coordinator
# can fail a duration-bounded run with "context deadline exceeded" at the
# deadline on a loaded machine (golang/go#75804, fixed in Go 1.27).
go test -run '^$' -fuzz '^FuzzNormalizeHost$' -fuzztime 40000x ./tenants
go test -run '^$' -fuzz '^FuzzDecodeRequest$' -fuzztime 40000x ./admin

step "build, adapt and validate Caddyfile.example"
go build -o bin/caddy ./cmd/caddy
DATABASE_URL="$TENANTS_TEST_DATABASE_URL" bin/caddy adapt --config Caddyfile.example --validate >/dev/null
DATABASE_URL="$TENANTS_TEST_DATABASE_URL" bin/caddy validate --config Caddyfile.example 2>/dev/null

step "all tests passed"
