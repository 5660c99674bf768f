package multitenant

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/agistaffers/caddy-multitenant/alerts"
	"github.com/agistaffers/caddy-multitenant/billing"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// StripeConfig turns on billing with Stripe: customers created through
// the admin API get a Stripe customer, the API makes Checkout and billing
// portal sessions, and the admin host's POST /webhooks/stripe follows
// subscriptions (see package billing).
//
// Keep the keys out of the config with placeholders: they are expanded
// when the config loads, so the JSON config (which Caddy's admin API
// shows) holds only {env.STRIPE_SECRET_KEY}.
//
// Caddyfile (inside the tenants global option):
//
//	stripe {
//		secret_key     {env.STRIPE_SECRET_KEY}
//		webhook_secret {env.STRIPE_WEBHOOK_SECRET}
//		api_url        http://127.0.0.1:12111   # tests: stripe-mock
//		grace_period   72h
//		check_interval 1m
//		prices {
//			basic price_1Pxyz
//			pro   price_1Pabc
//		}
//	}
type StripeConfig struct {
	// SecretKey is the Stripe API secret key (sk_… or a restricted rk_…).
	// Placeholders are expanded. Required. Default: none.
	SecretKey string `json:"secret_key,omitempty"`

	// WebhookSecret is the signing secret (whsec_…) of the webhook
	// endpoint https://<admin host>/webhooks/stripe; deliveries without a
	// valid signature are refused. Placeholders are expanded. Required.
	// Default: none.
	WebhookSecret string `json:"webhook_secret,omitempty"`

	// APIURL is the base URL of Stripe's API; tests point it at
	// stripe-mock. Placeholders are expanded. Default:
	// https://api.stripe.com.
	APIURL string `json:"api_url,omitempty"`

	// GracePeriod is how long the sites of a customer whose payment failed
	// (past_due) keep serving before the customer is suspended. Default:
	// 72h.
	GracePeriod caddy.Duration `json:"grace_period,omitempty"`

	// CheckInterval is how often past_due customers are checked for the
	// end of their grace period (and running sites of suspended customers
	// stopped). Default: 1m.
	CheckInterval caddy.Duration `json:"check_interval,omitempty"`

	// Prices maps plan slugs to Stripe price ids, for checkout and for
	// recognizing a subscription's plan. A plan not listed uses its own
	// stripe_price_id. Placeholders in price ids are expanded. Default:
	// none.
	Prices map[string]string `json:"prices,omitempty"`
}

// billingConfig expands placeholders and checks the settings; every error
// names its field, prefixed "stripe ".
func (c *StripeConfig) billingConfig() (billing.Config, error) {
	repl := caddy.NewReplacer()
	var cfg billing.Config
	for _, f := range []struct {
		name    string
		in      string
		out     *string
		require bool
	}{
		{"secret_key", c.SecretKey, &cfg.SecretKey, true},
		{"webhook_secret", c.WebhookSecret, &cfg.WebhookSecret, true},
		{"api_url", c.APIURL, &cfg.APIURL, false},
	} {
		v, err := repl.ReplaceOrErr(f.in, false, true)
		if err != nil {
			return cfg, fmt.Errorf("stripe %s: %w", f.name, err)
		}
		if v == "" && f.in != "" {
			return cfg, fmt.Errorf("stripe %s: %q expands to nothing (is the environment variable set?)", f.name, f.in)
		}
		*f.out = v
	}
	cfg.GracePeriod = time.Duration(c.GracePeriod)
	cfg.CheckInterval = time.Duration(c.CheckInterval)
	if len(c.Prices) > 0 {
		cfg.Prices = make(map[string]string, len(c.Prices))
		for slug, in := range c.Prices {
			v, err := repl.ReplaceOrErr(in, false, true)
			if err != nil {
				return cfg, fmt.Errorf("stripe prices: %s: %w", slug, err)
			}
			if v == "" {
				return cfg, fmt.Errorf("stripe prices: %s: %q expands to nothing (is the environment variable set?)", slug, in)
			}
			cfg.Prices[slug] = v
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("stripe %w", err)
	}
	return cfg, nil
}

// newBilling makes the platform's billing service when Stripe is
// configured (nil otherwise). No I/O; its grace-period loop runs between
// the platform's start and Destruct.
func newBilling(a *App, p *platform) (*billing.Service, error) {
	if a.Stripe == nil {
		return nil, nil
	}
	cfg, err := a.Stripe.billingConfig()
	if err != nil {
		return nil, err
	}
	cfg.Store = p.store
	cfg.Sites = billingSites{p}
	cfg.Logger = a.logger.Named("billing")
	if al := p.alerter; al != nil {
		cfg.OnStatus = func(customerID, status string) {
			switch status {
			case tenants.CustomerPastDue:
				al.Raise(alerts.RulePaymentFailed, customerID, "a payment of customer "+customerID+" failed; its grace period runs")
			case tenants.CustomerActive:
				al.Clear(alerts.RulePaymentFailed, customerID)
			}
		}
	}
	return billing.New(cfg)
}
