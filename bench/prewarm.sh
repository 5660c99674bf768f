#!/usr/bin/env bash
# bench/prewarm.sh: the pre-warm replay (issue 15). Synthetic traffic with a
# weekly pattern (office sites on weekday mornings and afternoons, early
# sites at 07:00, irregular sites at any hour) over 8 simulated weeks on a
# fake clock, through the real model and scheduler of package prewarm and
# the provisioner's idle and capacity rules, run without and with
# pre-warm on the same traffic. Prints, for the last 4 weeks, the warm-hit
# rate of visits' first requests and the container-hours, per kind of site.
# No Docker, no database: a few seconds.
#
# Env: none. The test behind it asserts that pre-warm improves the
# warm-hit rate and never runs more than max_running sites at once.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
go test -count=1 -run 'TestReplay' -v ./prewarm/ | sed -n 's/^        //p'
go test -count=1 -run "^$" -bench Replay ./prewarm/ | grep "^Benchmark"
