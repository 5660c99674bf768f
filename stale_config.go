package multitenant

import (
	"fmt"

	"github.com/dustin/go-humanize"
)

// Defaults of the serve_stale option.
const (
	DefaultStaleMaxSiteBytes     = 8 << 20
	DefaultStaleMaxResponseBytes = 1 << 20
	DefaultStaleMaxMemoryBytes   = 256 << 20
)

// ServeStaleConfig bounds what the platform keeps of the sites that serve
// stale while starting (a template's or a site's serve_stale setting):
// the last good response to each cacheable GET, answered at once while
// the site's container starts. It is kept in memory and, with Persist, in
// PostgreSQL too (written behind in batches), for other nodes and after a
// restart.
//
// Caddyfile (inside the tenants global option):
//
//	serve_stale {
//		max_site_bytes     8MiB
//		max_response_bytes 1MiB
//		max_memory_bytes   256MiB
//		persist            on|off
//	}
type ServeStaleConfig struct {
	// MaxSiteBytes bounds what one site keeps (bodies, headers and keys),
	// in memory on each node and in the database; the least recently
	// used responses go first. Default: 8388608 (8 MiB).
	MaxSiteBytes int64 `json:"max_site_bytes,omitempty"`

	// MaxResponseBytes is the largest body kept; larger responses are
	// passed on and not kept. At most MaxSiteBytes. Default: 1048576
	// (1 MiB).
	MaxResponseBytes int64 `json:"max_response_bytes,omitempty"`

	// MaxMemoryBytes bounds what one node keeps in memory of every site
	// together; past it the least recently used responses, whichever
	// site's, go first (with Persist, PostgreSQL still has them). At
	// least MaxSiteBytes. Default: 268435456 (256 MiB).
	MaxMemoryBytes int64 `json:"max_memory_bytes,omitempty"`

	// Persist keeps a copy in PostgreSQL (table stale_responses), read
	// by a node that has none in memory. Default: true.
	Persist *bool `json:"persist,omitempty"`
}

// expand fills in defaults.
func (c *ServeStaleConfig) expand() {
	if c.MaxSiteBytes == 0 {
		c.MaxSiteBytes = DefaultStaleMaxSiteBytes
	}
	if c.MaxResponseBytes == 0 {
		c.MaxResponseBytes = min(DefaultStaleMaxResponseBytes, c.MaxSiteBytes)
	}
	if c.MaxMemoryBytes == 0 {
		c.MaxMemoryBytes = max(DefaultStaleMaxMemoryBytes, c.MaxSiteBytes)
	}
	if c.Persist == nil {
		persist := true
		c.Persist = &persist
	}
}

func (c *ServeStaleConfig) validate() error {
	switch {
	case c.MaxSiteBytes < 0:
		return fmt.Errorf("serve_stale max_site_bytes: must not be negative, got %d", c.MaxSiteBytes)
	case c.MaxResponseBytes < 0:
		return fmt.Errorf("serve_stale max_response_bytes: must not be negative, got %d", c.MaxResponseBytes)
	case c.MaxMemoryBytes < 0:
		return fmt.Errorf("serve_stale max_memory_bytes: must not be negative, got %d", c.MaxMemoryBytes)
	case c.MaxMemoryBytes < c.MaxSiteBytes:
		return fmt.Errorf("serve_stale max_memory_bytes: %s is less than max_site_bytes (%s)",
			humanize.IBytes(uint64(c.MaxMemoryBytes)), humanize.IBytes(uint64(c.MaxSiteBytes)))
	case c.MaxResponseBytes > c.MaxSiteBytes:
		return fmt.Errorf("serve_stale max_response_bytes: %s is more than max_site_bytes (%s)",
			humanize.IBytes(uint64(c.MaxResponseBytes)), humanize.IBytes(uint64(c.MaxSiteBytes)))
	}
	return nil
}
