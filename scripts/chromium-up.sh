#!/usr/bin/env bash
# chromium-up.sh: makes sure Debian's chromium is installed, for the
# browser tests (e2e/ui_test.go drives it with chromedp). Installs it with
# apt when missing, as docker-up.sh does docker.io. Prints its path.
set -euo pipefail

for c in "${CHROMIUM:-}" /usr/bin/chromium chromium; do
	if [ -n "$c" ] && command -v "$c" >/dev/null 2>&1; then
		command -v "$c"
		exit 0
	fi
done
echo "chromium-up: installing chromium" >&2
export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends chromium >&2 && [ -x /usr/bin/chromium ]; then
	echo /usr/bin/chromium
	exit 0
fi
# Without a browser the browser tests skip; on CI they must not.
if [ "${CI:-}" = true ]; then
	echo "chromium-up: could not install chromium, and CI=true: the browser tests must run" >&2
	exit 1
fi
echo "chromium-up: could not install chromium; the browser tests will skip" >&2
