package tenants

import (
	"strings"
	"unicode/utf8"
)

// Limits of the text fields, in characters (Unicode code points, not
// bytes), and of the other values a client sets. Every write is checked
// against them before any SQL runs, so what reaches PostgreSQL is bounded
// UTF-8 text without NUL, which its text columns refuse with an error.
const (
	MaxEmailLen       = 254  // customers' email (RFC 5321's path limit)
	MaxNameLen        = 200  // names of customers, plans, templates and API keys
	MaxDescriptionLen = 2000 // a template's description
	MaxImageLen       = 512  // a template's image reference: name, tag and digest
	MaxPathLen        = 1024 // a template's data_path and health_path
	MaxSlugLen        = 64   // slugs of plans and templates
	MaxSubdomainLen   = 63   // one DNS label
	MaxHostnameLen    = 253  // a custom domain, without a trailing dot
	MaxStripeIDLen    = 255  // Stripe customer, subscription and price ids
	MaxEnvEntries     = 128  // variables in one env map
	MaxEnvNameLen     = 256  // an env variable's name
	MaxEnvValueLen    = 8192 // an env variable's value
	MaxUserLen        = 21   // a template's user: uid:gid, ten digits each
	MaxCapabilities   = 41   // a template's cap_add: every capability there is

	// MaxPlanSites bounds a plan's max_sites, an integer column.
	MaxPlanSites = 1000000

	// MaxReplicas bounds a template's and a plan's max_replicas: more
	// copies of one small site than that is another product.
	MaxReplicas = 64
	// MaxTargetConcurrency bounds a template's target_concurrency.
	MaxTargetConcurrency = 10000
	// MaxScaleReasonLen bounds a scale event's reason.
	MaxScaleReasonLen = 500
)

// Defaults of a template's autoscaling settings (the columns' defaults):
// one replica, so no scaling, and Knative's usual concurrency target.
const (
	DefaultMaxReplicas       = 1
	DefaultTargetConcurrency = 10
)

// checkText refuses text PostgreSQL would refuse or a client should not
// store: invalid UTF-8, NUL, or more than max characters.
func checkText(field, s string, max int) error {
	switch {
	case !utf8.ValidString(s):
		return invalid(field, "is not valid UTF-8")
	case strings.IndexByte(s, 0) >= 0:
		return invalid(field, "contains a NUL character")
	case utf8.RuneCountInString(s) > max:
		return invalid(field, "longer than %d characters", max)
	}
	return nil
}
