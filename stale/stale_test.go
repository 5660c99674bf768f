package stale

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func request(method, target string, header ...string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	return r
}

func TestKey(t *testing.T) {
	a := Key("shop.example.com", request(http.MethodGet, "http://Shop.Example.com:8080/a/b?x=1&y=2"))
	if a != "GET shop.example.com/a/b?x=1&y=2" {
		t.Fatalf("key %q", a)
	}
	if b := Key("shop.example.com", request(http.MethodGet, "http://shop.example.com/a/b?x=1&y=2")); b != a {
		t.Errorf("another port: key %q", b)
	}
	for _, other := range []*http.Request{
		request(http.MethodHead, "http://shop.example.com/a/b?x=1&y=2"),
		request(http.MethodGet, "http://shop.example.com/a/c?x=1&y=2"),
		request(http.MethodGet, "http://shop.example.com/a/b?x=1"),
	} {
		if Key("shop.example.com", other) == a {
			t.Errorf("%s %s has the key of another request", other.Method, other.URL)
		}
	}
	if Key("blog.example.com", request(http.MethodGet, "http://shop.example.com/a/b?x=1&y=2")) == a {
		t.Error("another host has the same key")
	}
}

func TestStorableRequest(t *testing.T) {
	for _, c := range []struct {
		r    *http.Request
		want bool
	}{
		{request(http.MethodGet, "/"), true},
		{request(http.MethodGet, "/", "Accept-Encoding", "gzip", "Cache-Control", "max-age=0"), true},
		{request(http.MethodHead, "/"), false},
		{request(http.MethodPost, "/"), false},
		{request(http.MethodGet, "/", "Authorization", "Bearer x"), false},
		{request(http.MethodGet, "/", "Cookie", "session=1"), false},
		{request(http.MethodGet, "/", "Range", "bytes=0-1"), false},
		{request(http.MethodGet, "/", "Cache-Control", "max-age=0, No-Store"), false},
	} {
		if got := StorableRequest(c.r); got != c.want {
			t.Errorf("StorableRequest(%s %v) = %v, want %v", c.r.Method, c.r.Header, got, c.want)
		}
	}
	if ServableRequest(request(http.MethodGet, "/", "Cache-Control", "no-cache")) ||
		ServableRequest(request(http.MethodGet, "/", "Pragma", "no-cache")) ||
		ServableRequest(request(http.MethodGet, "/", "Cookie", "a=b")) {
		t.Error("a forced reload or a request with cookies is servable")
	}
	if !ServableRequest(request(http.MethodGet, "/", "Cache-Control", "max-age=0")) {
		t.Error("a plain reload (max-age=0) is not servable")
	}
}

func TestStorableResponse(t *testing.T) {
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			out.Add(kv[i], kv[i+1])
		}
		return out
	}
	for _, c := range []struct {
		status int
		header http.Header
		want   bool
	}{
		{200, h(), true},
		{200, h("Cache-Control", "public, max-age=60"), true},
		{200, h("Cache-Control", "max-age=0"), true},
		{200, h("Vary", "Accept-Encoding"), true},
		{200, h("Vary", "accept-encoding, "), true},
		{301, h(), true},
		{404, h(), true},
		{410, h(), true},
		{201, h(), false},
		{206, h(), false},
		{302, h(), false},
		{500, h(), false},
		{503, h(), false},
		{200, h("Set-Cookie", "a=b"), false},
		{200, h("Cache-Control", "private"), false},
		{200, h("Cache-Control", `private="Set-Cookie"`), false},
		{200, h("Cache-Control", "public, no-store"), false},
		{200, h("Cache-Control", "NO-CACHE"), false},
		{200, h("Cache-Control", "max-age=60, must-revalidate"), false},
		{200, h("Cache-Control", "proxy-revalidate"), false},
		{200, h("Cache-Control", "s-maxage=60"), false},
		{200, h("Pragma", "no-cache"), false},
		{200, h("Pragma", "no-cache", "Cache-Control", "max-age=60"), true},
		{200, h("Vary", "Cookie"), false},
		{200, h("Vary", "Accept-Encoding, User-Agent"), false},
		{200, h("Vary", "*"), false},
		{200, h("Content-Range", "bytes 0-1/2"), false},
	} {
		if got := StorableResponse(c.status, c.header); got != c.want {
			t.Errorf("StorableResponse(%d, %v) = %v, want %v", c.status, c.header, got, c.want)
		}
	}
}

func TestAcceptable(t *testing.T) {
	gz := &Response{Header: http.Header{"Content-Encoding": {"gzip"}}}
	plain := &Response{Header: http.Header{}}
	for _, c := range []struct {
		accept string
		resp   *Response
		want   bool
	}{
		{"", plain, true},
		{"", gz, false},
		{"gzip, deflate, br", gz, true},
		{"br;q=1.0, GZIP;q=0.5", gz, true},
		{"br, gzip;q=0", gz, false},
		{"*", gz, true},
		{"br", gz, false},
	} {
		r := request(http.MethodGet, "/", "Accept-Encoding", c.accept)
		if got := Acceptable(r, c.resp); got != c.want {
			t.Errorf("Acceptable(%q, %v) = %v, want %v", c.accept, c.resp.Header, got, c.want)
		}
	}
}

func TestCleanHeaderAndAge(t *testing.T) {
	h := http.Header{"Connection": {"X-Private, close"}, "X-Private": {"1"}, "Transfer-Encoding": {"chunked"},
		"Keep-Alive": {"timeout=5"}, "Content-Type": {"text/html"}, "Age": {"30"}}
	clean := CleanHeader(h)
	if len(clean) != 2 || clean.Get("Content-Type") != "text/html" || clean.Get("Age") != "30" {
		t.Fatalf("cleaned header: %v", clean)
	}
	if h.Get("X-Private") != "1" {
		t.Fatal("CleanHeader changed its argument")
	}
	now := time.Now()
	r := &Response{Header: clean, StoredAt: now.Add(-90 * time.Second)}
	if age := r.Age(now); age != 120 {
		t.Fatalf("age %d, want 30 + 90", age)
	}
	r.Header = http.Header{}
	if age := r.Age(now.Add(-time.Hour)); age != 0 {
		t.Fatalf("age before it was stored: %d", age)
	}
}

func TestStoreBoundAndLRU(t *testing.T) {
	const bound = 10_000
	s := NewStore(bound, 1<<30)
	body := []byte(strings.Repeat("x", 1000))
	put := func(site, key string) bool {
		return s.Put(site, key, &Response{Status: 200, Header: http.Header{"Content-Type": {"text/plain"}}, Body: body})
	}
	for i := range 9 {
		if !put("a", fmt.Sprintf("GET a/%d", i)) {
			t.Fatalf("response %d not kept", i)
		}
	}
	if n, bytes := s.Stats("a"); n != 9 || bytes > bound {
		t.Fatalf("9 responses of ~1 KB: %d kept, %d bytes", n, bytes)
	}
	// Using 0 makes 1 the least recently used, evicted by the next two.
	if _, ok := s.Get("a", "GET a/0"); !ok {
		t.Fatal("response 0 missing")
	}
	put("a", "GET a/9")
	put("a", "GET a/10")
	n, bytes := s.Stats("a")
	if bytes > bound || n != 9 {
		t.Fatalf("after 11 puts: %d responses, %d bytes (bound %d)", n, bytes, bound)
	}
	if _, ok := s.Get("a", "GET a/1"); ok {
		t.Fatal("the least recently used response survived")
	}
	for _, k := range []string{"GET a/0", "GET a/10", "GET a/9", "GET a/3"} {
		if _, ok := s.Get("a", k); !ok {
			t.Fatalf("%s was evicted", k)
		}
	}
	// Each site has its own bound.
	put("b", "GET b/0")
	if n, _ := s.Stats("b"); n != 1 {
		t.Fatalf("site b: %d responses", n)
	}
	if n, _ := s.Stats("a"); n != 9 {
		t.Fatalf("site b's put evicted a's: %d left", n)
	}
	// Replacing a key counts it once.
	put("b", "GET b/0")
	if n, bytes := s.Stats("b"); n != 1 || bytes > 1100 {
		t.Fatalf("a replaced response: %d responses, %d bytes", n, bytes)
	}
	// A response larger than the bound is not kept, and drops the one it
	// replaces: that is no longer the last good answer.
	if s.Put("b", "GET b/0", &Response{Status: 200, Body: make([]byte, bound+1)}) {
		t.Fatal("a response beyond the bound was kept")
	}
	if n, bytes := s.Stats("b"); n != 0 || bytes != 0 {
		t.Fatalf("after an oversized put: %d responses, %d bytes", n, bytes)
	}
	s.Forget("a")
	if n, _ := s.Stats("a"); n != 0 {
		t.Fatal("Forget kept responses")
	}
}

// Sites put and get concurrently (run with -race): each stays within its
// bound.
func TestStoreConcurrent(t *testing.T) {
	const bound = 4096
	s := NewStore(bound, 3*bound)
	var done = make(chan struct{})
	for w := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			site := fmt.Sprintf("site-%d", w%3)
			for i := range 500 {
				key := fmt.Sprintf("GET %s/%d", site, i%20)
				s.Put(site, key, &Response{Status: 200, Header: http.Header{}, Body: make([]byte, 100+i%300)})
				if resp, ok := s.Get(site, key); ok && resp.Status != 200 {
					t.Errorf("got status %d", resp.Status)
				}
			}
		}()
	}
	for range 8 {
		<-done
	}
	for i := range 3 {
		if n, bytes := s.Stats(fmt.Sprintf("site-%d", i)); n == 0 || bytes > bound {
			t.Errorf("site-%d: %d responses, %d bytes (bound %d)", i, n, bytes, bound)
		}
	}
}

// All sites together stay within the total: the least recently used
// response goes first, whichever site's it is.
func TestStoreTotalBound(t *testing.T) {
	const total = 10_000
	s := NewStore(6000, total)
	body := make([]byte, 1000)
	put := func(site string, i int) {
		s.Put(site, fmt.Sprintf("GET %s/%d", site, i), &Response{Status: 200, Header: http.Header{}, Body: body})
	}
	for i := range 5 {
		put("a", i)
	}
	for i := range 4 {
		put("b", i)
	}
	s.Get("a", "GET a/0") // a/1 is now the least recently used
	put("c", 0)
	put("c", 1)
	if s.Total() > total {
		t.Fatalf("total %d over %d", s.Total(), total)
	}
	if _, ok := s.Get("a", "GET a/1"); ok {
		t.Fatal("the least recently used response of all survived")
	}
	for _, k := range []string{"GET a/0", "GET b/0", "GET c/1"} {
		site := strings.Fields(k)[1][:1]
		if _, ok := s.Get(site, k); !ok {
			t.Fatalf("%s was evicted", k)
		}
	}
	na, _ := s.Stats("a")
	nb, _ := s.Stats("b")
	nc, _ := s.Stats("c")
	if na+nb+nc != 9 {
		t.Fatalf("%d+%d+%d responses kept, want 9 of ~1 KB within 10 KB", na, nb, nc)
	}
	// A site evicted to nothing leaves no trace.
	s.Forget("a")
	s.Forget("b")
	if s.Total() != 2*(1000+int64(len("GET c/0"))) {
		t.Fatalf("total after forgetting a and b: %d", s.Total())
	}
	if s.Put("c", "GET c/huge", &Response{Status: 200, Body: make([]byte, total+1)}) {
		t.Fatal("a response over the total was kept")
	}
}
