package multitenant

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"github.com/dustin/go-humanize"

	"github.com/agistaffers/caddy-multitenant/prewarm"
)

// All of the root's Caddyfile: the tenants global option, the tenant,
// tenant_proxy and tenant_admin directives, the tenant upstream source
// and TLS permission, and their helpers.

func init() {
	httpcaddyfile.RegisterGlobalOption("tenants", parseGlobalOption)
	httpcaddyfile.RegisterHandlerDirective("tenant", parseTenant)
	httpcaddyfile.RegisterDirective("tenant_proxy", parseTenantProxy)
	httpcaddyfile.RegisterHandlerDirective("tenant_admin", parseTenantAdmin)
	httpcaddyfile.RegisterDirectiveOrder("tenant", httpcaddyfile.Before, "reverse_proxy")
	httpcaddyfile.RegisterDirectiveOrder("tenant_proxy", httpcaddyfile.Before, "reverse_proxy")
	httpcaddyfile.RegisterDirectiveOrder("tenant_admin", httpcaddyfile.Before, "reverse_proxy")
}

// parseGlobalOption sets up the tenants app from the `tenants` global
// option; its syntax is documented on App.
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	if existing != nil {
		return nil, d.Err("the tenants global option may appear only once")
	}
	app := new(App)
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{
		Name:  "tenants",
		Value: caddyconfig.JSON(app, nil),
	}, nil
}

// UnmarshalCaddyfile sets up the app from Caddyfile tokens. Syntax:
//
//	tenants {
//		database_url  <url>
//		schema        <name>
//		base_domain   <domain>
//		reserved      <label...>
//		docker {
//			host        <address>
//			publish_ip  <ip>
//			network     <name>
//			subnet_pool <cidr> [<prefix length>]
//		}
//		swarm {
//			host              <address>
//			network           <attachable overlay>
//			placement         <constraint...>
//			endpoint_mode     dnsrr|vip
//			dial              task_ip|host_port
//			subnet_pool       <cidr> [<prefix length>]
//			restart_delay     <duration>
//			stop_grace_period <duration>
//			poll_interval     <duration>
//		}
//		limits {
//			memory <size>
//			cpus   <number>
//			pids   <n>
//		}
//		egress             on|off
//		allow_capabilities <capability...>
//		idle_timeout  <duration>
//		pause_after   <duration>|off
//		max_paused_memory <size>
//		start_timeout <duration>
//		drain_timeout <duration>
//		scale_up_window   <duration>
//		scale_down_window <duration>
//		max_running   <n>
//		skip_migrations
//		metrics       platform|per_site
//		stripe {
//			secret_key     <key>
//			webhook_secret <secret>
//			api_url        <url>
//			grace_period   <duration>
//			check_interval <duration>
//			prices {
//				<plan-slug> <price-id>
//			}
//		}
//		backup {
//			every <duration>
//			keep  <n>
//			dir   <directory>
//		}
//		serve_stale {
//			max_site_bytes     <size>
//			max_response_bytes <size>
//			max_memory_bytes   <size>
//			persist            on|off
//		}
//		prewarm [off] {
//			lead      <duration>
//			weeks     <n>
//			threshold <fraction>
//		}
//		alerts {
//			webhook <url> {
//				secret <secret>
//			}
//			email {
//				smtp     <host:port>
//				username <user>
//				password <password>
//				from     <address>
//				to       <address...>
//				tls      starttls|tls|off
//			}
//			resolve_after <duration>
//			crash_loop    <exits> <window>
//			disable       <rule...>
//		}
//	}
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume option name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "database_url":
			if err := oneArg(d, &a.DatabaseURL); err != nil {
				return err
			}
		case "schema":
			if err := oneArg(d, &a.Schema); err != nil {
				return err
			}
		case "base_domain":
			if err := oneArg(d, &a.BaseDomain); err != nil {
				return err
			}
		case "reserved":
			names := d.RemainingArgs()
			if len(names) == 0 {
				return d.Err("reserved: expected at least one subdomain")
			}
			a.Reserved = append(a.Reserved, names...)
		case "docker":
			if d.NextArg() {
				return d.ArgErr()
			}
			if a.Docker == nil {
				a.Docker = new(DockerConfig)
			}
			if err := a.Docker.unmarshalCaddyfile(d); err != nil {
				return err
			}
		case "swarm":
			if d.NextArg() {
				return d.ArgErr()
			}
			if a.Swarm == nil {
				a.Swarm = new(SwarmConfig)
			}
			if err := a.Swarm.unmarshalCaddyfile(d); err != nil {
				return err
			}
		case "idle_timeout":
			if err := durationArg(d, &a.IdleTimeout); err != nil {
				return err
			}
		case "pause_after":
			var s string
			if err := oneArg(d, &s); err != nil {
				return err
			}
			var dur caddy.Duration // off: an explicit 0, which disables pausing
			if s != "off" {
				v, err := caddy.ParseDuration(s)
				if err != nil {
					return d.Errf("pause_after: %v (or off)", err)
				}
				if v < 0 {
					return d.Errf("pause_after: must not be negative, got %s (0 or off disables pausing)", s)
				}
				dur = caddy.Duration(v)
			}
			a.PauseAfter = &dur
		case "max_paused_memory":
			var s string
			if err := oneArg(d, &s); err != nil {
				return err
			}
			n, err := parseSize(s)
			if err != nil {
				return d.Errf("max_paused_memory: %v", err)
			}
			a.MaxPausedMemory = n
		case "start_timeout":
			if err := durationArg(d, &a.StartTimeout); err != nil {
				return err
			}
		case "drain_timeout":
			if err := durationArg(d, &a.DrainTimeout); err != nil {
				return err
			}
		case "scale_up_window":
			if err := durationArg(d, &a.ScaleUpWindow); err != nil {
				return err
			}
		case "scale_down_window":
			if err := durationArg(d, &a.ScaleDownWindow); err != nil {
				return err
			}
		case "max_running":
			var s string
			if err := oneArg(d, &s); err != nil {
				return err
			}
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				return d.Errf("max_running: %q is not a non-negative integer", s)
			}
			a.MaxRunning = n
		case "limits":
			if d.NextArg() {
				return d.ArgErr()
			}
			if a.Limits == nil {
				a.Limits = new(LimitsConfig)
			}
			if err := a.Limits.unmarshalCaddyfile(d); err != nil {
				return err
			}
		case "egress":
			var s string
			if err := oneArg(d, &s); err != nil {
				return err
			}
			on, err := onOff(s)
			if err != nil {
				return d.Errf("egress: %v", err)
			}
			a.Egress = &on
		case "allow_capabilities":
			caps := d.RemainingArgs()
			if len(caps) == 0 {
				return d.Err("allow_capabilities: expected at least one capability")
			}
			a.AllowCapabilities = append(a.AllowCapabilities, caps...)
		case "stripe":
			if d.NextArg() {
				return d.ArgErr()
			}
			if a.Stripe == nil {
				a.Stripe = new(StripeConfig)
			}
			if err := a.Stripe.unmarshalCaddyfile(d); err != nil {
				return err
			}
		case "backup":
			if d.NextArg() {
				return d.ArgErr()
			}
			if a.Backup == nil {
				a.Backup = new(BackupConfig)
			}
			if err := a.Backup.unmarshalCaddyfile(d); err != nil {
				return err
			}
		case "serve_stale":
			if d.NextArg() {
				return d.ArgErr()
			}
			if a.ServeStale == nil {
				a.ServeStale = new(ServeStaleConfig)
			}
			if err := a.ServeStale.unmarshalCaddyfile(d); err != nil {
				return err
			}
		case "prewarm":
			if a.Prewarm == nil {
				a.Prewarm = new(PrewarmConfig)
			}
			if err := a.Prewarm.unmarshalCaddyfile(d); err != nil {
				return err
			}
		case "alerts":
			if d.NextArg() {
				return d.ArgErr()
			}
			if a.Alerts == nil {
				a.Alerts = new(AlertsConfig)
			}
			if err := a.Alerts.unmarshalCaddyfile(d); err != nil {
				return err
			}
		case "metrics":
			if err := oneArg(d, &a.Metrics); err != nil {
				return err
			}
			if a.Metrics != MetricsPlatform && a.Metrics != MetricsPerSite {
				return d.Errf("metrics: %q is neither %s nor %s", a.Metrics, MetricsPlatform, MetricsPerSite)
			}
		case "skip_migrations":
			if d.NextArg() {
				return d.ArgErr()
			}
			a.SkipMigrations = true
		default:
			return d.Errf("unrecognized tenants option %q", d.Val())
		}
	}
	return nil
}

func (c *DockerConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "host":
			if err := oneArg(d, &c.Host); err != nil {
				return err
			}
		case "publish_ip":
			if err := oneArg(d, &c.PublishIP); err != nil {
				return err
			}
		case "network":
			if err := oneArg(d, &c.Network); err != nil {
				return err
			}
		case "subnet_pool":
			args := d.RemainingArgs()
			if len(args) < 1 || len(args) > 2 {
				return d.Err("subnet_pool: expected a network and optionally a prefix length, e.g. 172.16.0.0/16 26")
			}
			c.SubnetPool = args[0]
			if len(args) == 2 {
				n, err := strconv.Atoi(strings.TrimPrefix(args[1], "/"))
				if err != nil {
					return d.Errf("subnet_pool: %q is not a prefix length such as 26", args[1])
				}
				c.SubnetSize = n
			}
		default:
			return d.Errf("unrecognized docker option %q", d.Val())
		}
	}
	return nil
}

func (c *SwarmConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "host":
			if err := oneArg(d, &c.Host); err != nil {
				return err
			}
		case "network":
			if err := oneArg(d, &c.Network); err != nil {
				return err
			}
		case "placement":
			constraints := d.RemainingArgs()
			if len(constraints) == 0 {
				return d.Err("swarm placement: expected at least one constraint, e.g. node.role==worker")
			}
			for _, p := range constraints {
				if err := validConstraint(p); err != nil {
					return d.Err(err.Error())
				}
			}
			c.Placement = append(c.Placement, constraints...)
		case "dial":
			if err := oneArg(d, &c.Dial); err != nil {
				return err
			}
			if c.Dial != SwarmDialTaskIP && c.Dial != SwarmDialHostPort {
				return d.Errf("swarm dial: %q is neither %s nor %s", c.Dial, SwarmDialTaskIP, SwarmDialHostPort)
			}
		case "endpoint_mode":
			if err := oneArg(d, &c.EndpointMode); err != nil {
				return err
			}
			if c.EndpointMode != SwarmEndpointDNSRR && c.EndpointMode != SwarmEndpointVIP {
				return d.Errf("swarm endpoint_mode: %q is neither %s nor %s", c.EndpointMode, SwarmEndpointDNSRR, SwarmEndpointVIP)
			}
		case "subnet_pool":
			args := d.RemainingArgs()
			if len(args) < 1 || len(args) > 2 {
				return d.Err("swarm subnet_pool: expected a network and optionally a prefix length, e.g. 10.208.0.0/14 24")
			}
			c.SubnetPool = args[0]
			if len(args) == 2 {
				n, err := strconv.Atoi(strings.TrimPrefix(args[1], "/"))
				if err != nil {
					return d.Errf("swarm subnet_pool: %q is not a prefix length such as 24", args[1])
				}
				c.SubnetSize = n
			}
			if _, _, err := c.subnets(); err != nil {
				return d.Err(err.Error())
			}
		case "restart_delay":
			if err := durationArg(d, &c.RestartDelay); err != nil {
				return err
			}
		case "stop_grace_period":
			if err := durationArg(d, &c.StopGracePeriod); err != nil {
				return err
			}
		case "poll_interval":
			if err := durationArg(d, &c.PollInterval); err != nil {
				return err
			}
		default:
			return d.Errf("unrecognized swarm option %q", d.Val())
		}
	}
	return nil
}

func (l *LimitsConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		var s string
		if err := oneArg(d, &s); err != nil {
			return err
		}
		switch name {
		case "memory":
			n, err := parseSize(s)
			if err != nil {
				return d.Errf("limits memory: %v", err)
			}
			l.MemoryBytes = n
		case "cpus":
			f, err := strconv.ParseFloat(s, 64)
			if err != nil || f <= 0 || f > 1e6 {
				return d.Errf("limits cpus: %q is not a positive number of CPUs such as 1.5", s)
			}
			l.NanoCPUs = int64(math.Round(f * 1e9))
		case "pids":
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 1 {
				return d.Errf("limits pids: %q is not a positive integer", s)
			}
			l.PidsLimit = n
		default:
			return d.Errf("unrecognized limits option %q", name)
		}
	}
	return nil
}

// onOff reads a switch written on or off (or true or false).
func onOff(s string) (bool, error) {
	switch s {
	case "on", "true":
		return true, nil
	case "off", "false":
		return false, nil
	}
	return false, fmt.Errorf("%q: expected on or off", s)
}

func parseTenantAdmin(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	handler := new(AdminHandler)
	err := handler.UnmarshalCaddyfile(h.Dispenser)
	return handler, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens; see
// AdminHandler for the syntax.
func (h *AdminHandler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "max_body":
			if err := sizeArg(d, &h.MaxBody); err != nil {
				return err
			}
		case "max_upload":
			if err := sizeArg(d, &h.MaxUpload); err != nil {
				return err
			}
		case "public_ips":
			ips := d.RemainingArgs()
			if len(ips) == 0 {
				return d.Err("public_ips: expected at least one address")
			}
			h.PublicIPs = append(h.PublicIPs, ips...)
		case "cname_target":
			if err := oneArg(d, &h.CNAMETarget); err != nil {
				return err
			}
		case "dns_resolver":
			if err := oneArg(d, &h.DNSResolver); err != nil {
				return err
			}
		case "session_idle":
			if err := durationArg(d, &h.SessionIdle); err != nil {
				return err
			}
		case "session_lifetime":
			if err := durationArg(d, &h.SessionLifetime); err != nil {
				return err
			}
		case "no_ui":
			if d.NextArg() {
				return d.ArgErr()
			}
			h.NoUI = true
		default:
			return d.Errf("unrecognized tenant_admin option %q", d.Val())
		}
	}
	return nil
}

// parseSize reads a byte size: a number with an optional unit such as
// KB, KiB, MB, MiB, GB or GiB (go-humanize's).
func parseSize(s string) (int64, error) {
	n, err := humanize.ParseBytes(s)
	if err != nil || n < 1 || n > math.MaxInt64 {
		return 0, fmt.Errorf("%q is not a size such as 1048576, 512KiB or 1MiB", s)
	}
	return int64(n), nil
}

func (c *StripeConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "secret_key":
			if err := oneArg(d, &c.SecretKey); err != nil {
				return err
			}
		case "webhook_secret":
			if err := oneArg(d, &c.WebhookSecret); err != nil {
				return err
			}
		case "api_url":
			if err := oneArg(d, &c.APIURL); err != nil {
				return err
			}
		case "grace_period":
			if err := durationArg(d, &c.GracePeriod); err != nil {
				return err
			}
		case "check_interval":
			if err := durationArg(d, &c.CheckInterval); err != nil {
				return err
			}
		case "prices":
			if d.NextArg() {
				return d.ArgErr()
			}
			if c.Prices == nil {
				c.Prices = make(map[string]string)
			}
			for inner := d.Nesting(); d.NextBlock(inner); {
				slug := d.Val()
				var price string
				if err := oneArg(d, &price); err != nil {
					return d.Errf("prices: %s: expected one price id", slug)
				}
				if _, dup := c.Prices[slug]; dup {
					return d.Errf("prices: plan %s listed twice", slug)
				}
				c.Prices[slug] = price
			}
		default:
			return d.Errf("unrecognized stripe option %q", d.Val())
		}
	}
	return nil
}

func (c *ServeStaleConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "max_site_bytes":
			if err := sizeArg(d, &c.MaxSiteBytes); err != nil {
				return err
			}
		case "max_response_bytes":
			if err := sizeArg(d, &c.MaxResponseBytes); err != nil {
				return err
			}
		case "max_memory_bytes":
			if err := sizeArg(d, &c.MaxMemoryBytes); err != nil {
				return err
			}
		case "persist":
			var s string
			if err := oneArg(d, &s); err != nil {
				return err
			}
			on, err := onOff(s)
			if err != nil {
				return d.Errf("serve_stale persist: %v", err)
			}
			c.Persist = &on
		default:
			return d.Errf("unrecognized serve_stale option %q", d.Val())
		}
	}
	return nil
}

// unmarshalCaddyfile reads `prewarm off`, `prewarm on` or a prewarm
// block (which turns it on).
func (c *PrewarmConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		on, err := onOff(d.Val())
		if err != nil {
			return d.Errf("prewarm: %v", err)
		}
		c.Off = !on
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if c.Off {
			return d.Err("prewarm: a block of settings does not go with off")
		}
		name := d.Val()
		var s string
		if err := oneArg(d, &s); err != nil {
			return err
		}
		switch name {
		case "lead":
			v, err := caddy.ParseDuration(s)
			if err != nil || v <= 0 || v > maxPrewarmLead {
				return d.Errf("prewarm lead: %q is not a duration above 0s and at most %s", s, maxPrewarmLead)
			}
			c.Lead = caddy.Duration(v)
		case "weeks":
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > prewarm.MaxWeeks {
				return d.Errf("prewarm weeks: %q is not a number of weeks from 1 to %d", s, prewarm.MaxWeeks)
			}
			c.Weeks = n
		case "threshold":
			f, err := strconv.ParseFloat(s, 64)
			if err != nil || !(f > 0 && f <= 1) {
				return d.Errf("prewarm threshold: %q is not a fraction above 0 and at most 1, such as 0.5", s)
			}
			c.Threshold = f
		default:
			return d.Errf("unrecognized prewarm option %q", name)
		}
	}
	return nil
}

func (c *BackupConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "every":
			if err := durationArg(d, &c.Every); err != nil {
				return err
			}
		case "keep":
			var s string
			if err := oneArg(d, &s); err != nil {
				return err
			}
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				return d.Errf("keep: %q is not a positive integer", s)
			}
			c.Keep = n
		case "dir":
			if err := oneArg(d, &c.Dir); err != nil {
				return err
			}
		default:
			return d.Errf("unrecognized backup option %q", d.Val())
		}
	}
	return nil
}

func (c *AlertsConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "webhook":
			w := new(AlertWebhook)
			if err := oneArg(d, &w.URL); err != nil {
				return err
			}
			for inner := d.Nesting(); d.NextBlock(inner); {
				if d.Val() != "secret" {
					return d.Errf("unrecognized webhook option %q", d.Val())
				}
				if err := oneArg(d, &w.Secret); err != nil {
					return err
				}
			}
			c.Webhooks = append(c.Webhooks, w)
		case "email":
			if d.NextArg() {
				return d.ArgErr()
			}
			if c.Email == nil {
				c.Email = new(AlertEmail)
			}
			if err := c.Email.unmarshalCaddyfile(d); err != nil {
				return err
			}
		case "resolve_after":
			if err := durationArg(d, &c.ResolveAfter); err != nil {
				return err
			}
		case "crash_loop":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.Err("crash_loop: expected a number of exits and a window, e.g. 3 10m")
			}
			n, err := strconv.Atoi(args[0])
			if err != nil || n < 1 {
				return d.Errf("crash_loop: %q is not a positive integer", args[0])
			}
			w, err := caddy.ParseDuration(args[1])
			if err != nil || w <= 0 {
				return d.Errf("crash_loop: %q is not a positive duration", args[1])
			}
			c.CrashLoopExits, c.CrashLoopWindow = n, caddy.Duration(w)
		case "disable":
			rules := d.RemainingArgs()
			if len(rules) == 0 {
				return d.Err("disable: expected at least one rule")
			}
			c.Disable = append(c.Disable, rules...)
		default:
			return d.Errf("unrecognized alerts option %q", d.Val())
		}
	}
	return nil
}

func (e *AlertEmail) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var dst *string
		switch d.Val() {
		case "smtp":
			dst = &e.SMTP
		case "username":
			dst = &e.Username
		case "password":
			dst = &e.Password
		case "from":
			dst = &e.From
		case "tls":
			dst = &e.TLS
		case "to":
			to := d.RemainingArgs()
			if len(to) == 0 {
				return d.Err("to: expected at least one address")
			}
			e.To = append(e.To, to...)
			continue
		default:
			return d.Errf("unrecognized email option %q", d.Val())
		}
		if err := oneArg(d, dst); err != nil {
			return err
		}
	}
	return nil
}

// UnmarshalCaddyfile sets up the module from Caddyfile tokens: the module
// name and nothing else.
func (p *Permission) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module name
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(0) {
		return d.Errf("permission tenant takes no options, got %q", d.Val())
	}
	return nil
}

// UnmarshalCaddyfile sets up the source from Caddyfile tokens; it takes no
// arguments.
func (u *Upstreams) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume source name
	if d.NextArg() || d.NextBlock(0) {
		return d.Err("tenant upstreams take no arguments")
	}
	return nil
}

// parseTenant sets up the tenant handler alone; see Handler for syntax.
func parseTenant(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	handler := new(Handler)
	err := handler.UnmarshalCaddyfile(h.Dispenser)
	return handler, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		if err := h.unmarshalOption(d); err != nil {
			return err
		}
	}
	return nil
}

// unmarshalOption reads one of the handler's own subdirectives and refuses
// any other.
func (h *Handler) unmarshalOption(d *caddyfile.Dispenser) error {
	switch d.Val() {
	case "page_after":
		return durationArg(d, &h.PageAfter)
	case "pages_dir":
		return oneArg(d, &h.PagesDir)
	case "stay_asleep":
		h.StayAsleep = new(StayAsleep)
		return h.StayAsleep.unmarshalCaddyfile(d)
	}
	return d.Errf("unrecognized tenant option %q", d.Val())
}

// DefaultStreamCloseDelay is how long tenant_proxy keeps upgraded
// connections (WebSockets) of an unloaded config open after a reload,
// unless stream_close_delay says otherwise.
const DefaultStreamCloseDelay = 10 * time.Minute

// DefaultRetries is how often tenant_proxy retries a failed attempt,
// unless lb_retries or lb_try_duration says otherwise.
const DefaultRetries = 2

// parseTenantProxy sets up the tenant handler followed by a reverse_proxy
// whose upstreams are the tenant's container, the way php_fastcgi wraps
// reverse_proxy. It takes the tenant handler's subdirectives and every
// reverse_proxy subdirective:
//
// Unlike plain reverse_proxy, stream_close_delay defaults to 10m, so a
// config reload does not cut every tenant's WebSockets at once, and a
// failed attempt is retried (lb_retries defaults to 2 when neither it nor
// lb_try_duration is set): before a retry the site is ensured again, so a
// container that another node recreates is waited for instead of failing
// the request. A site the autoscaler runs several replicas of is balanced
// over them by lb_policy, least_conn unless set.
//
//	tenant_proxy [<matcher>] {
//		page_after <duration>
//		pages_dir  <directory>
//		stay_asleep { … }      # see StayAsleep
//		# any reverse_proxy subdirective, e.g.
//		header_up X-Tenant {tenant.site_id}
//		transport http {
//			dial_timeout 2s
//		}
//	}
func parseTenantProxy(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	if !h.Next() {
		return nil, h.ArgErr()
	}
	userMatcherSet, err := h.ExtractMatcherSet()
	if err != nil {
		return nil, err
	}
	// The remaining tokens are read twice: first for our own options,
	// which are deleted, then by reverse_proxy's own unmarshaler.
	dispenser := h.NewFromNextSegment()
	tenantHandler := new(Handler)
	for dispenser.Next() {
		for dispenser.NextBlock(0) {
			if dispenser.Nesting() != 1 {
				continue
			}
			switch dispenser.Val() {
			case "page_after", "pages_dir":
				if err := tenantHandler.unmarshalOption(dispenser); err != nil {
					return nil, err
				}
				dispenser.DeleteN(2)
			case "stay_asleep":
				// A block: read from a copy of its tokens, then take them
				// out for reverse_proxy.
				seg := dispenser.NextSegment()
				sub := caddyfile.NewDispenser(seg)
				sub.Next()
				tenantHandler.StayAsleep = new(StayAsleep)
				if err := tenantHandler.StayAsleep.unmarshalCaddyfile(sub); err != nil {
					return nil, err
				}
				dispenser.DeleteN(len(seg))
			case "to", "dynamic":
				return nil, dispenser.Errf("tenant_proxy chooses its upstream itself; %s is not allowed", dispenser.Val())
			}
		}
	}
	dispenser.Reset()

	rpHandler := &reverseproxy.Handler{
		DynamicUpstreamsRaw: caddyconfig.JSONModuleObject(Upstreams{}, "source", "tenant", nil),
	}
	dispenser.Next() // directive name
	if err := rpHandler.UnmarshalCaddyfile(dispenser); err != nil {
		return nil, err
	}
	if err := rpHandler.FinalizeUnmarshalCaddyfile(h); err != nil {
		return nil, err
	}
	// A config reload would otherwise cut every tenant's WebSockets at
	// once; tenants come and go without reloads, so reloads are operator
	// changes that open connections should outlive where they can.
	if rpHandler.StreamCloseDelay == 0 {
		rpHandler.StreamCloseDelay = caddy.Duration(DefaultStreamCloseDelay)
	}
	if rpHandler.LoadBalancing == nil {
		rpHandler.LoadBalancing = new(reverseproxy.LoadBalancing)
	}
	if lb := rpHandler.LoadBalancing; lb.Retries == 0 && lb.TryDuration == 0 {
		lb.Retries = DefaultRetries
	}
	// A site the autoscaler runs several replicas of is balanced by the
	// requests in flight on each, what it scales by, unless lb_policy
	// says otherwise.
	if lb := rpHandler.LoadBalancing; lb.SelectionPolicyRaw == nil {
		lb.SelectionPolicyRaw = caddyconfig.JSONModuleObject(reverseproxy.LeastConnSelection{}, "policy", "least_conn", nil)
	}

	route := caddyhttp.Route{
		HandlersRaw: []json.RawMessage{
			caddyconfig.JSONModuleObject(tenantHandler, "handler", "tenant", nil),
			caddyconfig.JSONModuleObject(rpHandler, "handler", "reverse_proxy", nil),
		},
	}
	if userMatcherSet != nil {
		route.MatcherSetsRaw = []caddy.ModuleMap{userMatcherSet}
	}
	return []httpcaddyfile.ConfigValue{{Class: "route", Value: route}}, nil
}

// oneArg reads exactly one argument of the current option into dst.
func oneArg(d *caddyfile.Dispenser, dst *string) error {
	name := d.Val()
	if !d.NextArg() {
		return d.Errf("%s: expected one argument", name)
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.Errf("%s: expected one argument, got more", name)
	}
	return nil
}

// durationArg reads one duration argument, refusing negative ones.
func durationArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	name := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil {
		return d.Errf("%s: %v", name, err)
	}
	if dur < 0 {
		return d.Errf("%s: must not be negative, got %s", name, s)
	}
	*dst = caddy.Duration(dur)
	return nil
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*App)(nil)
	_ caddyfile.Unmarshaler = (*Handler)(nil)
)

// sizeArg reads the directive's one argument, a size (1MiB), into dst.
func sizeArg(d *caddyfile.Dispenser, dst *int64) error {
	name := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	n, err := parseSize(s)
	if err != nil {
		return d.Errf("%s: %v", name, err)
	}
	*dst = n
	return nil
}
