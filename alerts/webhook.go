package alerts

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader carries a webhook body's signature:
// t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>.
// Receivers recompute it and compare in constant time, and refuse a t far
// from now (a replay).
const SignatureHeader = "X-Tenants-Signature"

// DeliveryHeader carries the delivery's id: the same across retries, so a
// receiver can drop a repeat.
const DeliveryHeader = "X-Tenants-Delivery"

// Webhook is a channel that POSTs each notification as JSON, signed.
type Webhook struct {
	URL    string
	Secret string
	// Client defaults to one with a timeout.
	Client *http.Client
}

func (w *Webhook) validate() error {
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", w.URL)
	}
	if w.Secret == "" {
		return errors.New("a secret is required: receivers verify the signature with it")
	}
	return nil
}

// Sign returns the signature header's value of body at t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a signature header's value for body, dated within
// tolerance of now: what a receiver does.
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return errors.New("malformed signature")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return errors.New("signature too old or in the future")
	}
	want := Sign(secret, time.Unix(sec, 0), body)
	if !hmac.Equal([]byte(want), []byte("t="+ts+",v1="+sig)) {
		return errors.New("signature mismatch")
	}
	return nil
}

func (w *Webhook) send(ctx context.Context, delivery int64, n *Notification) error {
	body, err := json.Marshal(n)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "caddy-multitenant-alerts")
	req.Header.Set(SignatureHeader, Sign(w.Secret, time.Now(), body))
	req.Header.Set(DeliveryHeader, strconv.FormatInt(delivery, 10))
	c := w.Client
	if c == nil {
		c = &http.Client{Timeout: deliveryTimeout}
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("posting alert to %s: %w", w.URL, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("posting alert to %s: %s", w.URL, resp.Status)
	}
	return nil
}
