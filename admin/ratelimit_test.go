package admin

import (
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/manage"
)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newClockedLimiter is a limiter of 3 failures, one back every 10s, on a
// clock the test moves.
func newClockedLimiter(maxClients int) (*authLimiter, *fakeClock) {
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	l := newAuthLimiter(3, 10*time.Second, maxClients)
	l.now = clock.now
	return l, clock
}

// A client may fail a burst of times, then waits for a token to come
// back; others are not affected; an IPv6 client is its /64.
func TestAuthLimiter(t *testing.T) {
	t.Parallel()
	l, clock := newClockedLimiter(100)
	a := clientKey("192.0.2.1:4711")
	for i := range 3 {
		if w := l.wait(a); w != 0 {
			t.Fatalf("failure %d: wait %s", i+1, w)
		}
		l.fail(a)
	}
	if w := l.wait(a); w != 10*time.Second {
		t.Fatalf("after the burst: wait %s, want 10s", w)
	}
	if w := l.wait(clientKey("192.0.2.2")); w != 0 {
		t.Fatalf("another client waits %s", w)
	}
	clock.add(4 * time.Second)
	if w := l.wait(a); w != 6*time.Second {
		t.Fatalf("4s later: wait %s, want 6s", w)
	}
	clock.add(6 * time.Second)
	if w := l.wait(a); w != 0 {
		t.Fatalf("after the refill: wait %s", w)
	}
	l.fail(a)
	if w := l.wait(a); w == 0 {
		t.Fatal("one token came back, and its failure took it")
	}

	v6 := clientKey("[2001:db8:1:2::1]:443")
	for range 3 {
		l.fail(v6)
	}
	for _, same := range []string{"2001:db8:1:2:ffff::9", "[2001:db8:1:2::7]:1"} {
		if l.wait(clientKey(same)) == 0 {
			t.Errorf("%s is not limited with its /64", same)
		}
	}
	if l.wait(clientKey("2001:db8:1:3::1")) != 0 {
		t.Error("another /64 is limited")
	}
	if got := clientKey("::ffff:192.0.2.1"); got != a {
		t.Errorf("IPv4-mapped address: %s, want %s", got, a)
	}
}

// The table of clients is bounded: refilled buckets go first, then the
// fullest, so a flood of addresses cannot grow memory nor free the
// clients that failed most.
func TestAuthLimiterBoundsClients(t *testing.T) {
	t.Parallel()
	l, clock := newClockedLimiter(3)
	worst := clientKey("192.0.2.1")
	for range 3 {
		l.fail(worst)
	}
	for i := 2; i < 200; i++ {
		l.fail(clientKey(netip.AddrFrom4([4]byte{198, 51, byte(i / 256), byte(i)}).String()))
		if n := len(l.clients); n > 3 {
			t.Fatalf("%d clients tracked, at most 3", n)
		}
	}
	if l.wait(worst) == 0 {
		t.Fatal("the client that failed most was evicted")
	}
	clock.add(time.Minute)
	l.fail(clientKey("203.0.113.1"))
	if n := len(l.clients); n != 1 {
		t.Fatalf("%d clients tracked after the others refilled, want 1", n)
	}
}

// Through the API: failures from one client (as Config.ClientIP says)
// get a burst of 401s, then 429 with Retry-After, even with a valid key;
// valid requests before that neither count nor wait; other clients are
// not affected; after Retry-After the client may try again.
func TestAuthRateLimitThroughAPI(t *testing.T) {
	t.Parallel()
	ta := newTestAPI(t, manage.Config{}, func(c *Config) {
		c.ClientIP = func(r *http.Request) string { return r.Header.Get("X-Test-Client") }
	})
	clock := &fakeClock{t: time.Now()}
	ta.api.limiter.now = clock.now
	wrong := ta.write[:len(ta.write)-2] + "xx"
	as := func(client, token string) (int, http.Header) {
		t.Helper()
		req, _ := http.NewRequest("GET", ta.url+"/api/v1/plans", nil)
		req.Header.Set("X-Test-Client", client)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header
	}
	for i := range AuthBurst - 1 {
		if status, _ := as("192.0.2.7", wrong); status != 401 {
			t.Fatalf("failure %d: %d", i+1, status)
		}
	}
	for i := range 3 * AuthBurst {
		if status, _ := as("192.0.2.7", ta.read); status != 200 {
			t.Fatalf("valid request %d below the limit: %d", i+1, status)
		}
	}
	if status, _ := as("192.0.2.7", ""); status != 401 {
		t.Fatalf("the last failure of the burst: %d", status)
	}
	for _, token := range []string{wrong, ta.write} {
		status, h := as("192.0.2.7", token)
		if status != 429 || h.Get("Retry-After") != strconv.Itoa(int(AuthRefill/time.Second)) || h.Get(RequestIDHeader) == "" {
			t.Fatalf("past the burst: %d, Retry-After %q", status, h.Get("Retry-After"))
		}
	}
	if status, _ := as("192.0.2.8", wrong); status != 401 {
		t.Fatalf("another client: %d", status)
	}
	clock.add(AuthRefill)
	if status, _ := as("192.0.2.7", ta.write); status != 200 {
		t.Fatalf("after Retry-After, a valid key: %d", status)
	}
	if status, _ := as("192.0.2.7", wrong); status != 401 {
		t.Fatalf("after Retry-After, a failure: %d", status)
	}
	if status, _ := as("192.0.2.7", wrong); status != 429 {
		t.Fatalf("the token that came back is spent: %d", status)
	}
	// Without ClientIP's answer the limit falls back to RemoteAddr.
	if status, _ := as("", wrong); status != 401 {
		t.Fatalf("from RemoteAddr: %d", status)
	}
	if got := ta.api.client(&http.Request{RemoteAddr: "192.0.2.9:1234", Header: http.Header{}}); got != clientKey("192.0.2.9") {
		t.Fatalf("client from RemoteAddr: %s", got)
	}
}
