package alerts

import (
	"testing"
	"time"
)

// What the platform signs, a receiver verifies; anything else it
// refuses.
func TestSignVerify(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"status":"firing"}`)
	sig := Sign("s3cret", now, body)
	if err := Verify("s3cret", sig, body, now.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatalf("a good signature: %v", err)
	}
	for _, c := range []struct {
		what, secret, header string
		body                 []byte
		at                   time.Time
	}{
		{"another secret", "other", sig, body, now},
		{"another body", "s3cret", sig, []byte(`{"status":"resolved"}`), now},
		{"too old", "s3cret", sig, body, now.Add(10 * time.Minute)},
		{"from the future", "s3cret", sig, body, now.Add(-10 * time.Minute)},
		{"malformed", "s3cret", "v1=abc", body, now},
		{"no signature", "s3cret", "", body, now},
	} {
		if err := Verify(c.secret, c.header, c.body, c.at, 5*time.Minute); err == nil {
			t.Errorf("%s: verified", c.what)
		}
	}
}
