#!/usr/bin/env bash
# swarm-lab.sh: a real three-node Docker Swarm on this one machine, for the
# tests and benchmarks of the Swarm runtime (issue 14; the measured facts
# behind every choice here are in ../shared/SWARM-LAB.md).
#
#   scripts/swarm-lab.sh up DIR          bring the lab up (idempotent), print DIR/lab.env
#   scripts/swarm-lab.sh down DIR        remove everything up made; DIR too
#   scripts/swarm-lab.sh status DIR      exit 0 when all three engines answer and are Ready
#   scripts/swarm-lab.sh stop-node DIR N kill node N's engine and its containers (a node lost)
#   scripts/swarm-lab.sh start-node DIR N start node N's engine again (it rejoins)
#   scripts/swarm-lab.sh prepare DIR     install what the lab needs (DIR unused)
#   scripts/swarm-lab.sh gc DIR          remove labs whose owner process is gone (DIR unused)
#
# What up builds (ID is a small number picked so that labs side by side
# never share names or addresses; SWARM_LAB_ID forces one):
#
# - a network namespace slIDb holding only a bridge: the lab's L2 segment,
#   198.18.ID.0/24 (RFC 2544's benchmarking range, routed nowhere on this
#   machine). In a namespace of its own, the root namespace's iptables and
#   FORWARD policy never see lab traffic;
# - three namespaces slIDn1..3, each with eth0 = 198.18.ID.N on that bridge,
#   no default route, and its own dockerd (and the containerd it manages):
#   own UTS hostname slID-node{N}, data-root, exec-root (a private tmpfs on
#   /run/docker), socket DIR/nN/docker.sock, pidfile, cgroup parent
#   /slID-nN, an empty --config-file (the system's daemon.json would
#   conflict), --dns 198.18.ID.53 (nothing answers there, so names the swarm
#   does not know never leave the lab) and DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1
#   (there is no registry; create services with --no-resolve-image);
# - a swarm: node 1 the manager (dispatcher heartbeat 1 s, so a lost node is
#   noticed within seconds), nodes 2 and 3 workers;
# - an attachable overlay network slID, subnet 198.19.ID.0/24;
# - the root namespace's way in: a veth slIDr (198.18.ID.254) on the lab
#   bridge, so the nodes' addresses and their mode=host published ports are
#   reachable from here; and, for task IPs on the overlay (which live in
#   the overlay's own namespaces on each node, not on any node's eth0), a
#   gateway container slID-gw on node 1, attached to the overlay at
#   198.19.ID.250, with a veth slIDg from the root namespace into it
#   (198.18.(100+ID).1 <-> .2), forwarding on and a MASQUERADE onto the
#   overlay; the root namespace routes 198.19.ID.0/24 through it. Tasks on
#   every node then answer the root namespace as if the gateway had asked.
#
# Service VIPs and the routing mesh need IPVS, which this kernel lacks:
# reach tasks by task IP (or tasks.<service> with dnsrr) or mode=host ports.
#
# Needs root, iproute2, util-linux, iptables and docker.io's dockerd;
# missing Debian packages are installed with apt-get. Every wait is bounded;
# a failing up removes what it made. The system engine
# (/var/run/docker.sock) is never touched.
set -euo pipefail

WAIT=${SWARM_LAB_WAIT:-30} # seconds any one wait may take
# The process the lab belongs to (internal/swarmlab passes the test
# binary's pid): a lab whose owner is gone is removed by the next up.
OWNER=${SWARM_LAB_OWNER:-$PPID}
REGISTRY=/run/swarm-lab # one file per lab: its DIR and OWNER

die() { echo "swarm-lab: $*" >&2; exit 1; }
log() { echo "swarm-lab: $*" >&2; }

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

[ $# -ge 2 ] || usage
CMD=$1
DIR=$(realpath -m "$2")
[ "$DIR" != / ] || die "refusing DIR=/"

need_tools() {
	[ "$(id -u)" = 0 ] || die "needs root (network namespaces, mounts, dockerd)"
	local pkgs=()
	command -v ip >/dev/null || pkgs+=(iproute2)
	command -v nsenter >/dev/null && command -v unshare >/dev/null || pkgs+=(util-linux)
	command -v iptables >/dev/null || pkgs+=(iptables)
	command -v dockerd >/dev/null && command -v docker >/dev/null || pkgs+=(docker.io)
	command -v tar >/dev/null || pkgs+=(tar)
	command -v hostname >/dev/null || pkgs+=(hostname)
	command -v timeout >/dev/null || pkgs+=(coreutils)
	if [ ${#pkgs[@]} -gt 0 ]; then
		log "installing ${pkgs[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >&2
	fi
}

# names ID: the names and addresses of lab ID.
names() {
	ID=$1
	P=sl$ID
	BR_NS=${P}b
	NET=198.18.$ID
	GW_NET=198.18.$((100 + ID))
	SUBNET=198.19.$ID.0/24
	GW_IP=198.19.$ID.250
	OVERLAY=$P
	GW_NAME=$P-gw
}
node_ns() { echo "${P}n$1"; }
node_sock() { echo "$DIR/n$1/docker.sock"; }
node_host() { echo "$P-node$1"; }
d() { # d N ARGS...: the docker CLI against node N, bounded.
	local n=$1
	shift
	timeout "$WAIT" docker -H "unix://$(node_sock "$n")" "$@"
}

# wait_for SECONDS WHAT COMMAND...: runs COMMAND until it succeeds.
wait_for() {
	local secs=$1 what=$2
	shift 2
	local end=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $end ] || { log "timed out after ${secs}s waiting for $what"; return 1; }
		sleep 0.1
	done
}

load_id() {
	[ -f "$DIR/id" ] || return 1
	names "$(cat "$DIR/id")"
}

# pick_id: the lowest lab ID whose namespaces do not exist, claimed by
# creating its bridge namespace under a lock.
pick_id() {
	exec 9>/run/swarm-lab.lock
	flock -w "$WAIT" 9 || die "could not lock /run/swarm-lab.lock"
	gc
	local id=${SWARM_LAB_ID:-}
	if [ -z "$id" ]; then
		for id in $(seq 1 60); do
			[ -e "/run/netns/sl${id}b" ] || break
		done
	fi
	names "$id"
	[ ! -e "/run/netns/$BR_NS" ] || die "lab $ID is in use (namespace $BR_NS exists)"
	# Unroutable, or only through a gateway: not a network of this machine.
	local route
	if route=$(ip route get "$NET.1" 2>/dev/null) && ! grep -q ' via ' <<<"$route"; then
		die "$NET.0/24 is a network of this machine ($route); set SWARM_LAB_ID to another lab"
	fi
	mkdir -p "$DIR"
	touch "$DIR/.swarm-lab"
	echo "$ID" >"$DIR/id"
	ip netns add "$BR_NS"
	mkdir -p "$REGISTRY"
	printf '%s\n%s\n' "$DIR" "$OWNER" >"$REGISTRY/$ID"
	exec 9>&-
}

# gc: removes every lab whose owner process is gone (a test binary killed
# by its timeout runs no cleanup), so such labs never pile up. Called
# under the lock by up.
gc() {
	local f id dir owner
	for f in "$REGISTRY"/*; do
		[ -f "$f" ] || continue
		id=${f##*/}
		{ read -r dir; read -r owner; } <"$f" || true
		if [ -n "$owner" ] && kill -0 "$owner" 2>/dev/null; then
			continue
		fi
		log "removing lab $id ($dir): its owner $owner is gone"
		(
			DIR=$dir
			names "$id"
			down_lab || true
			if [ -e "$DIR/.swarm-lab" ]; then rm -rf "$DIR"; fi
		) || true
		rm -f "$f"
	done
}

start_engine() { # start_engine N
	local n=$1 nd=$DIR/n$1
	mkdir -p "$nd/data" "$nd/cg" "$nd/etc"
	[ -f "$DIR/empty.json" ] || echo '{}' >"$DIR/empty.json"
	rm -f "$nd/docker.sock" "$nd/dockerd.pid"
	# nsenter and unshare exec (no fork), as do env and bash: $! is dockerd.
	# ip netns exec would remount /sys and lose the cgroup mounts, so the
	# mount namespace is made here: cgroups bound aside, a sysfs of this
	# network namespace mounted, cgroups moved back; private tmpfs on
	# /run/docker and /run/containerd (dockerd would use a system
	# containerd found there) and an empty /etc/docker (its key.json).
	setsid nsenter --net="/run/netns/$(node_ns "$n")" -- \
		unshare --mount --uts --propagation slave -- \
		env -i PATH="$PATH" DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 \
		bash -c '
			set -e
			hostname "$1"
			mount --rbind /sys/fs/cgroup "$2/cg"
			mount -t sysfs sysfs /sys
			mount --move "$2/cg" /sys/fs/cgroup
			mkdir -p /run/docker /run/containerd /etc/docker
			mount -t tmpfs -o mode=0711 tmpfs /run/docker
			mount -t tmpfs -o mode=0711 tmpfs /run/containerd
			mount --bind "$2/etc" /etc/docker
			exec dockerd --config-file "$3" --data-root "$2/data" --exec-root /run/docker \
				--host "unix://$2/docker.sock" --pidfile "$2/dockerd.pid" \
				--cgroup-parent "$4" --dns "$5" --storage-driver overlay2 --log-level warn
		' _ "$(node_host "$n")" "$nd" "$DIR/empty.json" "/$P-n$n" "$NET.53" \
		>"$nd/dockerd.log" 2>&1 </dev/null &
	echo $! >"$nd/pid"
	if ! wait_for "$WAIT" "node $n's engine" d "$n" version; then
		tail -n 20 "$nd/dockerd.log" >&2
		return 1
	fi
}

# procs_of N: every process of node N: in its network namespace (dockerd,
# containerd, shims, docker-proxy) or in its containers' cgroups.
procs_of() {
	local n=$1 ino p
	ino=$(stat -L -c %i "/run/netns/$(node_ns "$n")" 2>/dev/null) || ino=none
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/ns/net" 2>/dev/null)" = "net:[$ino]" ] && echo "${p#/proc/}"
	done
	cat /sys/fs/cgroup/*/"$P-n$n"/*/cgroup.procs /sys/fs/cgroup/*/"$P-n$n"/cgroup.procs 2>/dev/null || true
}

stop_engine() { # stop_engine N: as if the machine were lost, then clean.
	local n=$1 end
	# SIGKILL for all: a graceful dockerd would stop each container (whose
	# pid 1 may ignore SIGTERM) and could leave the swarm's view tidier
	# than a lost machine does. The lab's data is thrown away anyway.
	end=$((SECONDS + WAIT))
	while :; do
		local left
		left=$(procs_of "$n" | sort -u)
		[ -n "$left" ] || break
		[ $SECONDS -lt $end ] || { log "node $n: processes left after ${WAIT}s: $left"; return 1; }
		echo "$left" | xargs -r kill -KILL 2>/dev/null || true
		sleep 0.1
	done
	rm -f "$DIR/n$n/pid" "$DIR/n$n/docker.sock" "$DIR/n$n/dockerd.pid"
	# Empty cgroups of the containers, deepest first.
	find /sys/fs/cgroup/*/"$P-n$n" -depth -type d -exec rmdir {} + 2>/dev/null || true
}

node_ready() { # node_ready N: node N's engine answers, swarm active.
	[ "$(d "$1" info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null)" = active ]
}
all_ready() {
	local ready
	ready=$(d 1 node ls --format '{{.Status}} {{.Availability}}' 2>/dev/null | grep -c '^Ready Active$' || true)
	[ "$ready" = 3 ]
}

write_env() {
	local f=$DIR/lab.env n
	{
		echo "# written by scripts/swarm-lab.sh up; source it or read KEY=VALUE lines"
		echo "SWARM_LAB_ID=$ID"
		echo "SWARM_LAB_DIR=$DIR"
		echo "SWARM_LAB_MANAGER=$NET.1:2377"
		echo "SWARM_LAB_NETWORK=$OVERLAY"
		echo "SWARM_LAB_SUBNET=$SUBNET"
		echo "SWARM_LAB_GATEWAY=$GW_IP"
		echo "SWARM_LAB_ROOT_ADDR=$NET.254"
		for n in 1 2 3; do
			echo "SWARM_LAB_NODE${n}_HOST=unix://$(node_sock "$n")"
			echo "SWARM_LAB_NODE${n}_ADDR=$NET.$n"
			echo "SWARM_LAB_NODE${n}_HOSTNAME=$(node_host "$n")"
			echo "SWARM_LAB_NODE${n}_NETNS=$(node_ns "$n")"
		done
	} >"$f.tmp"
	mv "$f.tmp" "$f"
}

# gateway: the root namespace's route to task IPs (see the top).
gateway() {
	if ! d 1 image inspect "$GW_NAME:lab" >/dev/null 2>&1; then
		local img
		img=$(mktemp -d)
		ln -s usr/bin "$img/bin"
		ln -s usr/lib "$img/lib"
		ln -s usr/lib64 "$img/lib64"
		ln -s usr/sbin "$img/sbin"
		mkdir -p "$img/usr" "$img/etc"
		tar -C "$img" -c . | d 1 import - "$GW_NAME:lab" >/dev/null
		rm -rf "$img"
	fi
	d 1 rm -f "$GW_NAME" >/dev/null 2>&1 || true
	d 1 run -d --name "$GW_NAME" --network "$OVERLAY" --ip "$GW_IP" \
		-v /usr:/usr:ro "$GW_NAME:lab" /usr/bin/sleep infinity >/dev/null
	local pid
	pid=$(d 1 inspect -f '{{.State.Pid}}' "$GW_NAME")
	[ "$pid" -gt 0 ] || die "gateway container has no pid"
	ip link del "${P}g" 2>/dev/null || true
	ip link add "${P}g" type veth peer name slgw netns "$pid"
	nsenter --net="/proc/$pid/ns/net" sh -ec "
		ip addr add $GW_NET.2/30 dev slgw
		ip link set slgw up
		echo 1 >/proc/sys/net/ipv4/ip_forward
		# A task just started is not resolvable by ARP for a moment (the
		# overlay learns of it by gossip); probing every 100 ms, not every
		# second, took the first answer here from ~2.4 s to ~1.4 s.
		for f in /proc/sys/net/ipv4/neigh/*/retrans_time_ms; do echo 100 >\"\$f\"; done
		iptables -t nat -A POSTROUTING -s $GW_NET.0/30 -d $SUBNET -j MASQUERADE
	"
	ip addr add "$GW_NET.1/30" dev "${P}g"
	ip link set "${P}g" up
	ip route replace "$SUBNET" via "$GW_NET.2" dev "${P}g"
}

up() {
	need_tools
	if load_id 2>/dev/null; then
		if status >/dev/null 2>&1; then
			cat "$DIR/lab.env"
			return 0
		fi
		log "lab in $DIR is incomplete; removing it first"
		down
	fi
	trap 'rc=$?; if [ $rc -ne 0 ]; then log "up failed; cleaning up"; down || true; fi' EXIT
	pick_id
	local t0=$SECONDS n
	ip -n "$BR_NS" link set lo up
	ip -n "$BR_NS" link add br0 type bridge
	ip -n "$BR_NS" link set br0 up
	ip link add "${P}r" type veth peer name root netns "$BR_NS"
	ip -n "$BR_NS" link set root master br0 up
	ip addr add "$NET.254/24" dev "${P}r"
	ip link set "${P}r" up
	for n in 1 2 3; do
		local ns
		ns=$(node_ns "$n")
		ip netns add "$ns"
		ip -n "$BR_NS" link add "n$n" type veth peer name eth0 netns "$ns"
		ip -n "$BR_NS" link set "n$n" master br0 up
		ip -n "$ns" link set lo up
		ip -n "$ns" addr add "$NET.$n/24" dev eth0
		ip -n "$ns" link set eth0 up
	done
	for n in 1 2 3; do start_engine "$n"; done
	log "engines up after $((SECONDS - t0))s"
	d 1 swarm init --advertise-addr "$NET.1" --listen-addr "$NET.1:2377" \
		--dispatcher-heartbeat 1s --task-history-limit 2 >/dev/null
	local token
	token=$(d 1 swarm join-token -q worker)
	for n in 2 3; do
		d "$n" swarm join --token "$token" --advertise-addr "$NET.$n" \
			--listen-addr "$NET.$n:2377" "$NET.1:2377" >/dev/null
	done
	wait_for "$WAIT" "three Ready nodes" all_ready
	d 1 network create --driver overlay --attachable --subnet "$SUBNET" "$OVERLAY" >/dev/null
	gateway
	write_env
	log "swarm of 3 with overlay $OVERLAY ready after $((SECONDS - t0))s"
	trap - EXIT
	cat "$DIR/lab.env"
}

down() {
	if ! load_id 2>/dev/null; then
		[ ! -e "$DIR" ] || [ -e "$DIR/.swarm-lab" ] || die "$DIR is not a lab directory"
		rm -rf "$DIR"
		return 0
	fi
	down_lab || return 1
	rm -f "$REGISTRY/$ID"
	rm -rf "$DIR"
}

# down_lab: removes lab ID's processes, links, routes and namespaces
# (DIR may be gone already).
down_lab() {
	local n rc=0
	for n in 1 2 3; do stop_engine "$n" || rc=1; done
	ip link del "${P}g" 2>/dev/null || true
	ip link del "${P}r" 2>/dev/null || true
	for n in 1 2 3; do ip netns del "$(node_ns "$n")" 2>/dev/null || true; done
	ip netns del "$BR_NS" 2>/dev/null || true
	ip route del "$SUBNET" 2>/dev/null || true
	return $rc
}

status() {
	load_id || { echo "no lab in $DIR"; return 1; }
	[ -f "$DIR/lab.env" ] || { echo "lab $ID in $DIR: not fully up"; return 1; }
	local n bad=0
	for n in 1 2 3; do
		if node_ready "$n"; then
			echo "node $n $(node_host "$n") $NET.$n: active"
		else
			echo "node $n $(node_host "$n") $NET.$n: DOWN"
			bad=1
		fi
	done
	[ $bad -eq 0 ] && all_ready || return 1
	ip route get "$GW_IP" | grep -q "dev ${P}g" || { echo "no route to $SUBNET"; return 1; }
	echo "env: $DIR/lab.env"
}

case $CMD in
prepare) need_tools ;;
gc)
	exec 9>/run/swarm-lab.lock
	flock -w "$WAIT" 9 || die "could not lock /run/swarm-lab.lock"
	gc
	;;
up) up ;;
down) down ;;
status) status ;;
stop-node)
	load_id || die "no lab in $DIR"
	stop_engine "${3:?node number}"
	;;
start-node)
	load_id || die "no lab in $DIR"
	start_engine "${3:?node number}"
	;;
*) usage ;;
esac
