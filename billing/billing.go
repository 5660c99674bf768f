// Package billing connects the platform to Stripe: it creates Stripe
// customers, Checkout and billing portal sessions, and turns Stripe's
// webhook events into customer status changes:
//
//	active ──payment failed──▶ past_due ──grace period over──▶ suspended
//	   ▲                                                          │
//	   └────────── invoice paid / subscription active ◀───────────┘
//
// and a subscription that is canceled, unpaid or paused suspends the
// customer at once. Sites of a suspended customer show the "suspended"
// page and their containers are stopped; on payment they serve again,
// their containers starting lazily as usual.
//
// It knows nothing of Caddy or HTTP routing: the admin package serves the
// webhook and the API routes, the root package runs the grace-period loop
// and gives it a SiteStopper backed by the provisioner.
package billing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

// Defaults of Config.
const (
	DefaultGracePeriod   = 72 * time.Hour
	DefaultCheckInterval = time.Minute
	DefaultAPIURL        = "https://api.stripe.com"
)

// SiteStopper stops site containers. The root package implements it with
// the provisioner.
type SiteStopper interface {
	// StopSite stops the site's container, keeping it and its volume; a
	// site without a container is already stopped.
	StopSite(ctx context.Context, siteID string) error
	// Running reports whether this node knows the site's container to be
	// running.
	Running(siteID string) bool
}

// Config sets up a Service.
type Config struct {
	// SecretKey is the Stripe API key (sk_… or a restricted rk_…). Required.
	SecretKey string
	// WebhookSecret is the signing secret of the webhook endpoint
	// (whsec_…). Required.
	WebhookSecret string
	// APIURL is Stripe's API base URL. Default: https://api.stripe.com.
	APIURL string
	// GracePeriod is how long a past_due customer's sites keep serving.
	// Default: 72h.
	GracePeriod time.Duration
	// CheckInterval is how often the grace period is checked. Default: 1m.
	CheckInterval time.Duration
	// Prices maps plan slugs to Stripe price ids; it takes precedence over
	// the plans' own stripe_price_id. Default: none.
	Prices map[string]string
	// Store is the platform's data. Required.
	Store *tenants.Store
	// Sites stops containers of suspended customers; nil stops nothing.
	Sites SiteStopper
	// HTTPClient talks to Stripe. Default: a client with a 30s timeout.
	HTTPClient *http.Client
	// Logger defaults to a no-op logger.
	Logger *zap.Logger
	// OnStatus, if set, hears the status an applied event left a customer
	// in (past_due after a failed payment, active once paid).
	OnStatus func(customerID, status string)
}

// Validate checks cfg's settings; every error names its field.
func (cfg *Config) Validate() error {
	switch {
	case cfg.SecretKey == "":
		return errors.New("secret_key: required")
	case !strings.HasPrefix(cfg.SecretKey, "sk_") && !strings.HasPrefix(cfg.SecretKey, "rk_"):
		return errors.New("secret_key: not a Stripe secret key (sk_… or rk_…)")
	case cfg.WebhookSecret == "":
		return errors.New("webhook_secret: required (the signing secret of the webhook endpoint, whsec_…)")
	case !strings.HasPrefix(cfg.WebhookSecret, "whsec_"):
		return errors.New("webhook_secret: not a webhook signing secret (whsec_…)")
	case cfg.GracePeriod < 0:
		return fmt.Errorf("grace_period: must not be negative, got %s", cfg.GracePeriod)
	case cfg.CheckInterval < 0:
		return fmt.Errorf("check_interval: must not be negative, got %s", cfg.CheckInterval)
	}
	if cfg.APIURL != "" {
		u, err := url.Parse(cfg.APIURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return fmt.Errorf("api_url: %q is not a base URL such as https://api.stripe.com", cfg.APIURL)
		}
	}
	for slug, price := range cfg.Prices {
		if !tenants.IsLabel(slug) {
			return fmt.Errorf("prices: %q is not a plan slug", slug)
		}
		if price == "" || strings.ContainsAny(price, " \t\r\n/") {
			return fmt.Errorf("prices: %q of plan %s is not a Stripe price id", price, slug)
		}
	}
	return nil
}

// Service is the platform's billing: Stripe API calls and webhook events.
// It is safe for concurrent use.
type Service struct {
	cfg    Config
	store  *tenants.Store
	api    *client.API
	log    *zap.Logger
	planOf map[string]string // price id → plan slug, the inverse of cfg.Prices
}

// New returns the service for cfg, after validating it. It does no I/O.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Store == nil {
		return nil, errors.New("billing: no store")
	}
	if cfg.APIURL == "" {
		cfg.APIURL = DefaultAPIURL
	}
	cfg.APIURL = strings.TrimSuffix(cfg.APIURL, "/")
	if cfg.GracePeriod == 0 {
		cfg.GracePeriod = DefaultGracePeriod
	}
	if cfg.CheckInterval == 0 {
		cfg.CheckInterval = DefaultCheckInterval
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	s := &Service{cfg: cfg, store: cfg.Store, log: cfg.Logger, planOf: make(map[string]string, len(cfg.Prices))}
	for slug, price := range cfg.Prices {
		s.planOf[price] = slug
	}
	backend := &stripe.BackendConfig{
		HTTPClient:        cfg.HTTPClient,
		URL:               stripe.String(cfg.APIURL),
		MaxNetworkRetries: stripe.Int64(2),
		// stripe-go logs to stderr by default; errors reach our log
		// through the returned values instead.
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull},
	}
	s.api = client.New(cfg.SecretKey, &stripe.Backends{
		API:     stripe.GetBackendWithConfig(stripe.APIBackend, backend),
		Connect: stripe.GetBackendWithConfig(stripe.ConnectBackend, backend),
		Uploads: stripe.GetBackendWithConfig(stripe.UploadsBackend, backend),
	})
	return s, nil
}

// GracePeriod returns how long past_due customers keep serving.
func (s *Service) GracePeriod() time.Duration { return s.cfg.GracePeriod }

// ErrStripe is wrapped by every error of a Stripe API call, so callers can
// answer 502 rather than 500.
var ErrStripe = errors.New("stripe request failed")

// stripeErr wraps err from a Stripe call with what was being done.
func stripeErr(doing string, err error) error {
	var se *stripe.Error
	if errors.As(err, &se) {
		msg := se.Msg
		if msg == "" {
			msg = string(se.Code)
		}
		return fmt.Errorf("%w: %s: %s (%d)", ErrStripe, doing, msg, se.HTTPStatusCode)
	}
	return fmt.Errorf("%w: %s: %v", ErrStripe, doing, err)
}

// CreateCustomer creates c's Stripe customer and returns its id. The
// platform's customer id is the idempotency key, so a retry after a lost
// answer does not make a second Stripe customer.
func (s *Service) CreateCustomer(ctx context.Context, c *tenants.Customer) (string, error) {
	params := &stripe.CustomerParams{Email: stripe.String(c.Email), Name: stripe.String(c.Name)}
	params.Context = ctx
	params.AddMetadata("customer_id", c.ID)
	params.SetIdempotencyKey("tenants-customer-" + c.ID)
	sc, err := s.api.Customers.New(params)
	if err != nil {
		return "", stripeErr("creating customer", err)
	}
	return sc.ID, nil
}

// EnsureCustomer gives c a Stripe customer if it has none (one created
// before billing was configured), storing its id as actor.
func (s *Service) EnsureCustomer(ctx context.Context, actor string, c *tenants.Customer) error {
	if c.StripeCustomerID != "" {
		return nil
	}
	id, err := s.CreateCustomer(ctx, c)
	if err != nil {
		return err
	}
	c.StripeCustomerID = id
	return s.store.UpdateCustomer(ctx, actor, c)
}

// PriceOf returns the Stripe price of plan: the configured one for its
// slug, else its own stripe_price_id; "" when it has none.
func (s *Service) PriceOf(p *tenants.Plan) string {
	if price, ok := s.cfg.Prices[p.Slug]; ok {
		return price
	}
	return p.StripePriceID
}

// planForPrice returns the id of the plan billed by priceID; "" when no
// plan is.
func (s *Service) planForPrice(ctx context.Context, priceID string) (string, error) {
	if priceID == "" {
		return "", nil
	}
	var p *tenants.Plan
	var err error
	if slug, ok := s.planOf[priceID]; ok {
		p, err = s.store.FindPlan(ctx, slug)
	} else {
		p, err = s.store.PlanByPriceID(ctx, priceID)
	}
	if errors.Is(err, tenants.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return p.ID, nil
}

// ErrNoPrice means a plan has no Stripe price to check out.
var ErrNoPrice = errors.New("the plan has no Stripe price: set its stripe_price_id or the stripe prices option")

// CheckoutURL creates a Checkout Session in subscription mode for c (who
// must have a Stripe customer) on plan p and returns its URL. The session
// carries the platform's customer and plan ids, so its completion links
// the subscription to them.
func (s *Service) CheckoutURL(ctx context.Context, c *tenants.Customer, p *tenants.Plan, successURL, cancelURL string) (string, error) {
	price := s.PriceOf(p)
	if price == "" {
		return "", ErrNoPrice
	}
	params := &stripe.CheckoutSessionParams{
		Mode:              stripe.String(string(stripe.CheckoutSessionModeSubscription)),
		Customer:          stripe.String(c.StripeCustomerID),
		ClientReferenceID: stripe.String(c.ID),
		SuccessURL:        stripe.String(successURL),
		CancelURL:         stripe.String(cancelURL),
		LineItems:         []*stripe.CheckoutSessionLineItemParams{{Price: stripe.String(price), Quantity: stripe.Int64(1)}},
		SubscriptionData: &stripe.CheckoutSessionSubscriptionDataParams{
			Metadata: map[string]string{"customer_id": c.ID, "plan_id": p.ID},
		},
	}
	params.Context = ctx
	params.AddMetadata("customer_id", c.ID)
	params.AddMetadata("plan_id", p.ID)
	sess, err := s.api.CheckoutSessions.New(params)
	if err != nil {
		return "", stripeErr("creating checkout session", err)
	}
	if sess.URL == "" {
		return "", fmt.Errorf("%w: creating checkout session: the answer has no url", ErrStripe)
	}
	return sess.URL, nil
}

// PortalURL creates a billing portal session for c (who must have a
// Stripe customer) and returns its URL; returnURL may be empty when the
// portal's configuration has a default.
func (s *Service) PortalURL(ctx context.Context, c *tenants.Customer, returnURL string) (string, error) {
	params := &stripe.BillingPortalSessionParams{Customer: stripe.String(c.StripeCustomerID)}
	if returnURL != "" {
		params.ReturnURL = stripe.String(returnURL)
	}
	params.Context = ctx
	sess, err := s.api.BillingPortalSessions.New(params)
	if err != nil {
		return "", stripeErr("creating billing portal session", err)
	}
	if sess.URL == "" {
		return "", fmt.Errorf("%w: creating billing portal session: the answer has no url", ErrStripe)
	}
	return sess.URL, nil
}
