package admin

import (
	"errors"
	"io"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/billing"
	"github.com/agistaffers/caddy-multitenant/manage"
)

// WebhookPath is where Stripe delivers webhook events. It is outside
// Prefix and needs no API key: Stripe's signature authenticates it.
const WebhookPath = "/webhooks/stripe"

// Error codes of billing.
const (
	CodeInvalidSignature = "invalid_signature"
	CodeStripe           = "stripe_error"
	CodeNotConfigured    = "billing_not_configured"
)

// Customer is a customer as the API shows it: with its plan's slug and
// billing state.
type Customer = manage.Customer

// CheckoutInput is the body of POST /customers/{id}/checkout.
type CheckoutInput = manage.CheckoutInput

// PortalInput is the (optional) body of POST /customers/{id}/portal.
type PortalInput struct {
	// ReturnURL is where the portal's "return" link leads; default: the
	// portal configuration's.
	ReturnURL string `json:"return_url,omitempty"`
}

// SessionURL is the answer of checkout and portal: where to send the
// customer.
type SessionURL struct {
	URL string `json:"url"`
}

func (a *API) checkout(w http.ResponseWriter, r *http.Request) error {
	var in CheckoutInput
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	u, err := a.svc.Checkout(r.Context(), actor(r), ref(r), in)
	return ok(w, SessionURL{URL: u}, err)
}

func (a *API) portal(w http.ResponseWriter, r *http.Request) error {
	var in PortalInput
	if r.ContentLength != 0 {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return bodyError(err)
		}
		if len(strings.TrimSpace(string(body))) > 0 {
			if err := decodeJSON(body, &in); err != nil {
				return err
			}
		}
	}
	u, err := a.svc.Portal(r.Context(), actor(r), ref(r), in.ReturnURL)
	return ok(w, SessionURL{URL: u}, err)
}

func bodyError(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return bodyTooLarge(tooLarge.Limit)
	}
	return err
}

// serveWebhook receives a Stripe event. It answers 400 to a delivery
// whose signature does not verify (nothing changes), 200 to one applied
// or already applied, 5xx when it could not be applied: Stripe retries
// those.
func (a *API) serveWebhook(w http.ResponseWriter, r *http.Request) {
	b := a.svc.Billing()
	if b == nil {
		writeError(w, r, apiErr(http.StatusNotFound, CodeNotFound, "", "no Stripe webhook here: billing is not configured"))
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeError(w, r, apiErr(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "", r.Method+" is not allowed here; allowed: POST"))
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, r, a.toAPIError(r, bodyError(err)))
		return
	}
	res, err := b.HandleWebhook(r.Context(), body, r.Header.Get("Stripe-Signature"))
	if errors.Is(err, billing.ErrSignature) {
		a.logFor(r).Warn("stripe webhook refused", zap.String("remote_addr", r.RemoteAddr), zap.Error(err))
		writeError(w, r, apiErr(http.StatusBadRequest, CodeInvalidSignature, "", "the Stripe-Signature header does not verify"))
		return
	}
	if err != nil {
		writeError(w, r, a.toAPIError(r, err))
		return
	}
	writeJSON(w, http.StatusOK, res)
}
