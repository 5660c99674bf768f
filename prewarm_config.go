package multitenant

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/agistaffers/caddy-multitenant/prewarm"
)

// PrewarmConfig starts sites shortly before their usual first request
// (see package prewarm): a site is started Lead before an hour slot when
// at least Threshold of the last Weeks weeks had a first request that
// found it asleep in the same hour of the week, if it is asleep and there
// is free room under max_running (a pre-warm never stops a site). One
// node does it for all (a durable job per slot). A site opts out with
// its own prewarm setting.
//
// Caddyfile (inside the tenants global option):
//
//	prewarm {
//		lead      2m
//		weeks     4
//		threshold 0.5
//	}
//
// or `prewarm off`.
type PrewarmConfig struct {
	// Off turns pre-warming off for the whole platform. Default: false
	// (pre-warm on).
	Off bool `json:"off,omitempty"`

	// Lead is how long before an hour slot its sites are started, above
	// 0 and at most 30m. Default: 2m.
	Lead caddy.Duration `json:"lead,omitempty"`

	// Weeks is how many past weeks the model looks at, 1 to 4 (the
	// figures it reads are kept 30 days). Default: 4.
	Weeks int `json:"weeks,omitempty"`

	// Threshold is the fraction of those weeks, above 0 and at most 1,
	// that must have had a first request in the slot. Default: 0.5.
	Threshold float64 `json:"threshold,omitempty"`
}

// maxPrewarmLead keeps a pre-warm close to its slot: earlier, the idle
// timeout stops the site before its visitor comes.
const maxPrewarmLead = 30 * time.Minute

// expand fills in defaults.
func (c *PrewarmConfig) expand() {
	if c.Lead == 0 {
		c.Lead = caddy.Duration(prewarm.DefaultLead)
	}
	if c.Weeks == 0 {
		c.Weeks = prewarm.DefaultWeeks
	}
	if c.Threshold == 0 {
		c.Threshold = prewarm.DefaultThreshold
	}
}

func (c *PrewarmConfig) validate() error {
	switch {
	case c.Lead < 0 || time.Duration(c.Lead) > maxPrewarmLead:
		return fmt.Errorf("prewarm lead: %s, want above 0s and at most %s", time.Duration(c.Lead), maxPrewarmLead)
	case c.Weeks < 0 || c.Weeks > prewarm.MaxWeeks:
		return fmt.Errorf("prewarm weeks: %d, want 1 to %d (the figures are kept 30 days)", c.Weeks, prewarm.MaxWeeks)
	case c.Threshold < 0 || c.Threshold > 1:
		return fmt.Errorf("prewarm threshold: %g, want above 0 and at most 1", c.Threshold)
	}
	return nil
}

// model is the model the settings describe.
func (c *PrewarmConfig) model() prewarm.Model {
	return prewarm.Model{Weeks: c.Weeks, Threshold: c.Threshold}
}
