#!/usr/bin/env bash
# bench/swarm-cold.sh: a Swarm cold start through Caddy (issue 14): scale
# 0->1 to the first 200 through Caddy against the lab's own floor, in the
# same run.
#
# The floor polls the task's overlay IP with a 20ms dial timeout per
# attempt: a SYN sent before the task's address is live goes unanswered,
# and with the kernel's 1s retransmission the floor read ~1.4s (Caddy,
# whose readiness probe dials with a 500ms timeout, "beat" it by 500ms).
#
# It brings up the three-node Swarm lab (scripts/swarm-lab.sh), builds
# the custom Caddy and benchtool, creates SITES sites (default 3) of the
# bench template (with a volume), copies the image into every node (no
# registry), and runs Caddy in the root namespace with a swarm block on
# the lab's manager: services join the lab's overlay, whose task IPs the
# lab's gateway routes to this namespace, and are placed on node 2. Then
# ROUNDS rounds (default 5), each cold-starting every site once through
# Caddy (its service scaled to 0 through the API, Caddy having seen it
# stop, then one GET through Caddy) interleaved with the floor: a twin
# service of a site's own spec, and a bare service of the image on the
# overlay, each scaled 0->1 through the API and polled by task IP every
# millisecond. Prints each start and a table of min/p50/p90/p99/max.
# Fails only if a measurement fails. Needs root (the lab).
#
# Env: SITES (3), ROUNDS (5), DATABASE_URL (default: a throwaway
# PostgreSQL).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SITES=${SITES:-3}
ROUNDS=${ROUNDS:-5}

[ "$(id -u)" = 0 ] || { echo "swarm-cold: needs root (the Swarm lab's namespaces and engines)" >&2; exit 1; }

# The lab goes down before lib.sh's cleanup (Caddy first, so it does not
# see its engine vanish; its services go with the lab).
LAB="$WORK/lab"
swarm_cold_cleanup() {
	local rc=$?
	set +e
	if [ -n "$CADDY_PID" ] && kill -0 "$CADDY_PID" 2>/dev/null; then
		kill -TERM "$CADDY_PID"
		for _ in $(seq 1 100); do kill -0 "$CADDY_PID" 2>/dev/null || break; sleep 0.1; done
	fi
	[ -e "$LAB/id" ] && "$ROOT/scripts/swarm-lab.sh" down "$LAB" >&2
	(exit $rc)
	bench_cleanup
}
trap swarm_cold_cleanup EXIT

bench_init
log "bringing up the Swarm lab"
SWARM_LAB_OWNER=$$ "$ROOT/scripts/swarm-lab.sh" up "$LAB" >/dev/null
# shellcheck disable=SC1091
source "$LAB/lab.env"

NAMES=$(seq -f "cold%g" 1 "$SITES" | paste -sd,)
SITE_IDS=$("$BT" setup -db "$DB" -schema "$SCHEMA" -sites "$NAMES" | paste -sd,)
[ "$(tr ',' '\n' <<<"$SITE_IDS" | grep -c =)" = "$SITES" ]

# benchtool setup built the image on the system engine; every node needs it.
IMAGE=caddy-multitenant-benchsite:latest
log "loading $IMAGE into the lab's nodes"
docker save "$IMAGE" >"$WORK/image.tar"
for n in 1 2 3; do
	host_var=SWARM_LAB_NODE${n}_HOST
	docker -H "${!host_var}" load -q -i "$WORK/image.tar" >/dev/null
done
rm -f "$WORK/image.tar"

read -r ADMIN_PORT HTTP_PORT <<<"$("$BT" freeports 2 | tr "\n" " ")"
SWARM_BLOCK="\t\tswarm {\n\t\t\thost $SWARM_LAB_NODE1_HOST\n\t\t\tnetwork $SWARM_LAB_NETWORK\n\t\t\tplacement node.hostname==$SWARM_LAB_NODE2_HOSTNAME\n\t\t\tendpoint_mode dnsrr\n\t\t\tstop_grace_period 1s\n\t\t}"
caddy_globals "$ADMIN_PORT" | sed "s|^\t\tidle_timeout 1h$|\t\tidle_timeout 1h\n$SWARM_BLOCK|" >"$WORK/Caddyfile"
grep -q "placement node.hostname==$SWARM_LAB_NODE2_HOSTNAME" "$WORK/Caddyfile"
cat >>"$WORK/Caddyfile" <<EOC

http://:$HTTP_PORT {
	bind 127.0.0.1
	tenant_proxy
}
EOC
start_caddy "$ADMIN_PORT"
print_conditions
echo "swarm lab $SWARM_LAB_ID: manager $SWARM_LAB_MANAGER, overlay $SWARM_LAB_NETWORK ($SWARM_LAB_SUBNET), sites on $SWARM_LAB_NODE2_HOSTNAME;" \
	"lab engines Docker $(docker -H "$SWARM_LAB_NODE1_HOST" version -f '{{.Server.Version}}' 2>/dev/null)"

log "measuring $ROUNDS rounds of $SITES cold starts through Caddy, each with two floor starts"
"$BT" swarmcold -caddy "127.0.0.1:$HTTP_PORT" -admin "127.0.0.1:$ADMIN_PORT" -schema "$SCHEMA" \
	-sites "$SITE_IDS" -manager "$SWARM_LAB_NODE1_HOST" -network "$SWARM_LAB_NETWORK" -rounds "$ROUNDS"
