package multitenant

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/docker/docker/client"
	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/provisioner"
)

// Values of the swarm block's endpoint_mode.
const (
	SwarmEndpointDNSRR = "dnsrr"
	SwarmEndpointVIP   = "vip"
)

// Values of the swarm block's dial.
const (
	SwarmDialTaskIP   = provisioner.DialTaskIP
	SwarmDialHostPort = provisioner.DialHostPort
)

// DefaultSwarmSubnetSize is the prefix length of each customer overlay's
// subnet taken from a swarm subnet_pool.
const DefaultSwarmSubnetSize = 24

// SwarmConfig runs the sites as Docker Swarm services instead of
// containers of one engine: Swarm places, restarts and networks the
// tasks; the platform still decides when a site runs (a service scaled
// 0→1 on its first request, back to 0 when idle) and how many copies.
// Each site is a replicated service on its customer's own attachable
// overlay, labeled as its container would be (so a restarted Caddy
// adopts the services), with the template's limits as resources. Caddy
// dials each task directly, with or without service virtual IPs: at its
// IP on an overlay, or at a port published on its node (dial host_port).
//
// Swarm has no pause: with a swarm block the warm tier is off (an unset
// pause_after means no pausing, an explicit pause_after duration or
// max_paused_memory is a config error). Of the docker block only its
// host is read, as the default of the manager's address.
//
// Caddyfile (inside the tenants global option):
//
//	swarm {
//		host              tcp://10.0.0.1:2375
//		network           caddy-tasks
//		placement         node.role==worker node.labels.tenants==true
//		endpoint_mode     dnsrr|vip
//		dial              task_ip|host_port
//		subnet_pool       10.208.0.0/14 24
//		restart_delay     100ms
//		stop_grace_period 10s
//		poll_interval     50ms
//	}
//
// placement is repeatable; `swarm` alone (no block) takes every default.
type SwarmConfig struct {
	// Host is the Docker host URL of a manager of the swarm, e.g.
	// unix:///var/run/docker.sock or tcp://10.0.0.1:2375 (the usual
	// DOCKER_TLS_VERIFY and DOCKER_CERT_PATH apply). Default: the docker
	// block's host, else $DOCKER_HOST, else the local socket: the engine
	// the platform would run containers on.
	Host string `json:"host,omitempty"`

	// Network is an attachable overlay network Caddy reaches task IPs on
	// (Caddy's node or container is on it, or its subnet is routed to
	// Caddy): every site's service joins it besides its customer's
	// overlay, and is dialed there. Empty: tasks are dialed on their
	// customer's overlay, which Caddy must then reach (route subnet_pool
	// to the swarm). Default: none.
	Network string `json:"network,omitempty"`

	// Placement are placement constraints every service gets, each
	// key==value or key!=value with a key Swarm knows (node.id,
	// node.hostname, node.role, node.platform.os, node.platform.arch,
	// node.labels.<name>, engine.labels.<name>). A site with a volume is
	// further pinned to the node it first ran on. Default: none (any
	// node).
	Placement []string `json:"placement,omitempty"`

	// EndpointMode is the services' endpoint mode: "dnsrr" (no virtual
	// IP: what works without IPVS in the nodes' kernels) or "vip". Caddy
	// dials task IPs either way. Default: dnsrr.
	EndpointMode string `json:"endpoint_mode,omitempty"`

	// Dial is how Caddy reaches a task: "task_ip", its IP on network (or
	// its customer's overlay), or "host_port", a port the engine
	// publishes for it on the node it runs on (mode=host: no routing
	// mesh), dialed at the node's address: for a Caddy outside the
	// overlays, on any machine that reaches the nodes. Default: task_ip.
	Dial string `json:"dial,omitempty"`

	// SubnetPool is the IPv4 range customer overlays take their subnets
	// from (the first free one against every network the manager has):
	// a range the platform routes to the swarm, for a Caddy that is not
	// on the overlays itself. Default: none (the swarm's own address
	// pool, docker swarm init --default-addr-pool).
	SubnetPool string `json:"subnet_pool,omitempty"`

	// SubnetSize is the prefix length of each customer overlay's subnet
	// taken from SubnetPool. Default: 24.
	SubnetSize int `json:"subnet_size,omitempty"`

	// RestartDelay is how long Swarm waits before replacing a task that
	// ended (Swarm's own default, 5s, would add to every failover).
	// Default: 100ms.
	RestartDelay caddy.Duration `json:"restart_delay,omitempty"`

	// StopGracePeriod is how long a task has between SIGTERM and SIGKILL
	// when its site is scaled down. Default: 10s.
	StopGracePeriod caddy.Duration `json:"stop_grace_period,omitempty"`

	// PollInterval is how often the runtime reads a service's tasks while
	// it scales, stops or watches it. Default: 50ms.
	PollInterval caddy.Duration `json:"poll_interval,omitempty"`
}

// expand replaces placeholders in the manager's address. The other
// defaults are the runtime's own (provisioner.NewSwarmRuntime), so that
// they are written in one place.
func (c *SwarmConfig) expand(repl *caddy.Replacer) {
	c.Host = repl.ReplaceKnown(c.Host, "")
}

// Swarm's constraint syntax (swarmkit's manager/constraint): a key of
// letters, digits, '_', '-' and '.', an operator, a value.
var (
	constraintKey   = regexp.MustCompile(`^(?i)[a-z_][a-z0-9\-_.]+$`)
	constraintValue = regexp.MustCompile(`^(?i)[a-z0-9:\-_\s.*()?+\[\]\\^$|/]+$`)
)

// validConstraint checks one placement constraint, key==value or
// key!=value, with a key Swarm matches nodes on: a misspelled key is
// accepted by Swarm and then matches no node, so no site would start.
func validConstraint(c string) error {
	op := "=="
	key, value, ok := strings.Cut(c, op)
	if !ok {
		op = "!="
		if key, value, ok = strings.Cut(c, op); !ok {
			return fmt.Errorf("swarm placement: %q is not key==value or key!=value, e.g. node.role==worker", c)
		}
	}
	key, value = strings.TrimSpace(key), strings.TrimSpace(value)
	if !constraintKey.MatchString(key) || !constraintValue.MatchString(value) || strings.ContainsAny(value, "=!") {
		return fmt.Errorf("swarm placement: %q is not key%svalue, e.g. node.role==worker", c, op)
	}
	lower := strings.ToLower(key)
	switch lower {
	case "node.id", "node.hostname", "node.platform.os", "node.platform.arch":
	case "node.role":
		if v := strings.ToLower(value); v != "manager" && v != "worker" {
			return fmt.Errorf("swarm placement: %q: node.role is manager or worker", c)
		}
	default:
		ok := false
		for _, prefix := range []string{"node.labels.", "engine.labels."} {
			if strings.HasPrefix(lower, prefix) && len(lower) > len(prefix) {
				ok = true
			}
		}
		if !ok {
			return fmt.Errorf("swarm placement: %q: unknown key %s (node.id, node.hostname, node.role, node.platform.os, node.platform.arch, node.labels.<name>, engine.labels.<name>)", c, key)
		}
	}
	return nil
}

func (c *SwarmConfig) validate() error {
	if c.Host != "" && !strings.Contains(c.Host, "://") {
		return fmt.Errorf("swarm host: %q needs a scheme, e.g. tcp://10.0.0.1:2375 or unix:///var/run/docker.sock", c.Host)
	}
	if n := c.Network; n != "" && strings.ContainsAny(n, " /\\:") {
		return fmt.Errorf("swarm network: %q is not a network name", n)
	}
	for _, p := range c.Placement {
		if err := validConstraint(p); err != nil {
			return err
		}
	}
	switch c.EndpointMode {
	case "", SwarmEndpointDNSRR, SwarmEndpointVIP:
	default:
		return fmt.Errorf("swarm endpoint_mode: %q is neither %s nor %s", c.EndpointMode, SwarmEndpointDNSRR, SwarmEndpointVIP)
	}
	switch c.Dial {
	case "", SwarmDialTaskIP, SwarmDialHostPort:
	default:
		return fmt.Errorf("swarm dial: %q is neither %s nor %s", c.Dial, SwarmDialTaskIP, SwarmDialHostPort)
	}
	for _, d := range []struct {
		name string
		v    caddy.Duration
	}{{"restart_delay", c.RestartDelay}, {"stop_grace_period", c.StopGracePeriod}, {"poll_interval", c.PollInterval}} {
		if d.v < 0 {
			return fmt.Errorf("swarm %s: must not be negative, got %s", d.name, time.Duration(d.v))
		}
	}
	_, _, err := c.subnets()
	return err
}

// subnets returns the subnet pool (invalid when unset) and size.
func (c *SwarmConfig) subnets() (netip.Prefix, int, error) {
	bits := DefaultSwarmSubnetSize
	if c.SubnetSize != 0 {
		bits = c.SubnetSize
	}
	if c.SubnetPool == "" {
		if c.SubnetSize != 0 {
			return netip.Prefix{}, bits, fmt.Errorf("swarm subnet_pool: a subnet size (/%d) without a pool", bits)
		}
		return netip.Prefix{}, bits, nil
	}
	pool, err := netip.ParsePrefix(c.SubnetPool)
	switch {
	case err != nil || !pool.Addr().Is4():
		return pool, bits, fmt.Errorf("swarm subnet_pool: %q is not an IPv4 network such as 10.208.0.0/14", c.SubnetPool)
	case pool.Masked() != pool:
		return pool, bits, fmt.Errorf("swarm subnet_pool: %s has host bits set; did you mean %s?", pool, pool.Masked())
	case bits < pool.Bits() || bits > 29:
		return pool, bits, fmt.Errorf("swarm subnet_pool: subnet size /%d must be between /%d (the pool) and /29", bits, pool.Bits())
	}
	return pool, bits, nil
}

// host is the manager's address: the block's, else the docker block's
// (dockerHost), else empty for the DOCKER_HOST environment.
func (c *SwarmConfig) host(dockerHost string) string {
	if c.Host != "" {
		return c.Host
	}
	return dockerHost
}

// client returns a client of the swarm's manager, as the provisioner
// makes one of its engine (the DOCKER_* environment, then Host, the API
// version negotiated). It does not dial; the caller owns it and closes
// it.
func (c *SwarmConfig) client(dockerHost string) (*client.Client, error) {
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if h := c.host(dockerHost); h != "" {
		opts = append(opts, client.WithHost(h))
	}
	cli, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("swarm manager client: %w", err)
	}
	return cli, nil
}

// runtimeConfig is the Swarm runtime's configuration for namespace (the
// schema, as for containers), talking to the manager through cli (see
// client). Customer overlays are not attached to Caddy here (OnNetwork
// is unset): Caddy reaches tasks on Network, or on routed subnet_pool
// subnets.
func (c *SwarmConfig) runtimeConfig(namespace string, cli *client.Client, logger *zap.Logger) (provisioner.SwarmConfig, error) {
	if err := c.validate(); err != nil {
		return provisioner.SwarmConfig{}, err
	}
	pool, bits, _ := c.subnets() // checked by validate
	cfg := provisioner.SwarmConfig{
		Client:          cli,
		Namespace:       namespace,
		Network:         c.Network,
		EndpointMode:    c.EndpointMode,
		Dial:            c.Dial,
		Constraints:     append([]string(nil), c.Placement...),
		RestartDelay:    time.Duration(c.RestartDelay),
		StopGracePeriod: time.Duration(c.StopGracePeriod),
		PollInterval:    time.Duration(c.PollInterval),
		SubnetPool:      pool,
		SubnetBits:      bits,
		Logger:          logger,
	}
	return cfg, nil
}

// validateSwarm checks the swarm block and what does not go with it: the
// warm tier's pause, which Swarm has no way to do (a service's tasks run
// or are gone).
func (a *App) validateSwarm() error {
	if err := a.Swarm.validate(); err != nil {
		return err
	}
	if a.PauseAfter != nil && *a.PauseAfter > 0 {
		return fmt.Errorf("pause_after: %s with swarm: Swarm cannot pause a service's tasks, so sites on Swarm are only stopped when idle; remove pause_after or set it off",
			time.Duration(*a.PauseAfter))
	}
	if a.MaxPausedMemory > 0 {
		return fmt.Errorf("max_paused_memory: set with swarm: Swarm cannot pause a service's tasks, so there is no paused memory to bound; remove max_paused_memory")
	}
	return nil
}

// runtime makes the block's Swarm runtime for namespace and the client it
// talks to the manager through, which the caller closes when the runtime
// is done.
func (c *SwarmConfig) runtime(namespace, dockerHost string, logger *zap.Logger) (*provisioner.SwarmRuntime, *client.Client, error) {
	cli, err := c.client(dockerHost)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := c.runtimeConfig(namespace, cli, logger)
	if err == nil {
		var rt *provisioner.SwarmRuntime
		if rt, err = provisioner.NewSwarmRuntime(cfg); err == nil {
			return rt, cli, nil
		}
	}
	cli.Close()
	return nil, nil, err
}
