#!/usr/bin/env bash
# docker-up.sh: makes sure a Docker engine answers. On a machine without
# one, installs Debian's docker.io and starts dockerd in the background.
set -euo pipefail

if docker info >/dev/null 2>&1; then
	exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
	echo "docker-up: installing docker.io" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2 && apt-get install -y -qq docker.io >&2
fi
if ! docker info >/dev/null 2>&1; then
	echo "docker-up: starting dockerd" >&2
	log=/var/log/dockerd-caddy-multitenant.log
	setsid nohup dockerd >"$log" 2>&1 </dev/null &
	for _ in $(seq 1 120); do
		docker info >/dev/null 2>&1 && exit 0
		sleep 0.5
	done
	echo "docker-up: dockerd did not come up; its log:" >&2
	tail -n 50 "$log" >&2
	exit 1
fi
