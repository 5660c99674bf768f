package storage

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// UnmarshalCaddyfile sets up the storage from Caddyfile tokens; see the
// PostgresStorage godoc for the syntax.
func (p *PostgresStorage) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume the module name
	if d.NextArg() {
		p.DSN = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "dsn":
			if p.DSN != "" {
				return d.Err("dsn already specified")
			}
			if !d.NextArg() {
				return d.ArgErr()
			}
			p.DSN = d.Val()
		case "schema":
			if !d.NextArg() {
				return d.ArgErr()
			}
			p.Schema = d.Val()
		case "lock_ttl":
			if !d.NextArg() {
				return d.ArgErr()
			}
			ttl, err := caddy.ParseDuration(d.Val())
			if err != nil {
				return d.Errf("parsing lock_ttl %q: %v", d.Val(), err)
			}
			p.LockTTL = caddy.Duration(ttl)
		case "lock_poll_interval":
			if !d.NextArg() {
				return d.ArgErr()
			}
			interval, err := caddy.ParseDuration(d.Val())
			if err != nil {
				return d.Errf("parsing lock_poll_interval %q: %v", d.Val(), err)
			}
			p.LockPollInterval = caddy.Duration(interval)
		default:
			return d.Errf("unrecognized subdirective %q", d.Val())
		}
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	if p.DSN == "" {
		return d.Err("missing dsn")
	}
	return nil
}
