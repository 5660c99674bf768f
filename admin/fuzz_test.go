package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

// requestTypes are the bodies the API decodes, by fuzz selector.
var requestTypes = []func() any{
	func() any { return new(CustomerInput) },
	func() any { return new(CustomerPatch) },
	func() any { return new(PlanInput) },
	func() any { return new(PlanPatch) },
	func() any { return new(TemplateInput) },
	func() any { return new(TemplatePatch) },
	func() any { return new(SiteInput) },
	func() any { return new(SitePatch) },
	func() any { return new(DomainInput) },
	func() any { return new(DomainPatch) },
}

// FuzzDecodeRequest feeds arbitrary bodies to the strict decoder of every
// request type, then the accepted ones to the patches and validation the
// handlers run: nothing panics, every refusal is a 400 (or, for text that
// is not text, a 422) with the API's error shape, an accepted body is
// valid UTF-8 without NUL in its values, and it re-encodes to one that
// decodes to the same value.
func FuzzDecodeRequest(f *testing.F) {
	f.Add(uint8(6), []byte(`{"customer_id":"6f1c1d5e-0000-4000-8000-000000000000","subdomain":"shop","template_id":"6f1c1d5e-0000-4000-8000-000000000001","env":{"A":"1"}}`))
	f.Add(uint8(7), []byte(`{"env":{"X":"';DROP TABLE sites;--"},"status":"suspended"}`))
	f.Add(uint8(0), []byte(`{"email":"a@example.org","name":"A"} x`))
	f.Add(uint8(4), []byte(`{"slug":"s","name":"S","image":"nginx:1.27","port":"80"}`))
	f.Add(uint8(0), []byte(`{"email":"a@example.org","name":"A\u0000","NAME":"\ud800"}`))
	f.Add(uint8(5), []byte(`{"env":{"A":"\ud83d\ude00","A":"x"},"cap_add":["\udc00"]}`))
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		v := requestTypes[int(kind)%len(requestTypes)]()
		err := decodeJSON(body, v)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || (e.Status != http.StatusBadRequest && e.Status != http.StatusUnprocessableEntity) ||
				e.Code == "" || e.Message == "" {
				t.Fatalf("refusal is not a 400 or 422 API error: %#v", err)
			}
			if _, err := json.Marshal(struct {
				Error *Error `json:"error"`
			}{e}); err != nil {
				t.Fatalf("error does not encode: %v", err)
			}
			return
		}
		again, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("accepted value does not encode: %v", err)
		}
		if notText(body, again) {
			t.Fatalf("accepted %q, which is not text: decoded to %s", body, again)
		}
		w := reflect.New(reflect.TypeOf(v).Elem()).Interface()
		if err := decodeJSON(again, w); err != nil {
			t.Fatalf("re-encoded %s refused: %v", again, err)
		}
		if !reflect.DeepEqual(normalize(v), normalize(w)) {
			t.Fatalf("round trip changed the value: %#v -> %#v", v, w)
		}
		exercise(v)
	})
}

// notText reports whether an accepted body held what is not text: bytes
// that are not UTF-8, or, in what it decoded to, a NUL or a U+FFFD (what
// encoding/json puts for a lone surrogate) the body did not spell out.
func notText(body, decoded []byte) bool {
	spelled := bytes.ContainsRune(body, utf8.RuneError) || bytes.Contains(bytes.ToLower(body), []byte(`\ufffd`))
	return !utf8.Valid(body) || bytes.Contains(decoded, []byte(`\u0000`)) ||
		(bytes.ContainsRune(decoded, utf8.RuneError) && !spelled)
}

// normalize makes empty maps and slices equal to missing ones (omitempty
// drops them on re-encoding).
func normalize(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// exercise runs the store's exported validation on a decoded body, short
// of the database (the admin service applies patches and validates the
// rest, tested with it).
func exercise(v any) {
	switch in := v.(type) {
	case *SiteInput:
		_ = tenants.ValidateSubdomain(in.Subdomain, []string{"admin", "www"})
		_ = tenants.ValidateEnv("env", in.Env)
	case *SitePatch:
		if in.Subdomain != nil {
			_ = tenants.ValidateSubdomain(*in.Subdomain, nil)
		}
		if in.Env != nil {
			_ = tenants.ValidateEnv("env", *in.Env)
		}
	case *TemplateInput:
		_ = tenants.ValidateImage(in.Image)
		_ = tenants.ValidateEnv("env", in.Env)
	case *TemplatePatch:
		if in.Image != nil {
			_ = tenants.ValidateImage(*in.Image)
		}
	case *DomainInput:
		_, _ = tenants.NormalizeHost(in.Hostname)
	}
}
