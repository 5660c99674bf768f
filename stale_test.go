package multitenant

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

// What passes through a serve-stale site is kept when it may be, as the
// client got it, and served back with the marks of a stale copy.
func TestStaleRecordAndServe(t *testing.T) {
	persist := false
	s := newStaleResponses(&ServeStaleConfig{MaxSiteBytes: 1 << 20, MaxResponseBytes: 1000, MaxMemoryBytes: 1 << 20, Persist: &persist}, nil, zap.NewNop())
	route := &tenants.Route{SiteID: "site", Host: "shop.example.com"}
	pass := func(path string, next caddyhttp.HandlerFunc) (*httptest.ResponseRecorder, error) {
		w := httptest.NewRecorder()
		err := s.record(w, httptest.NewRequest(http.MethodGet, "http://Shop.Example.com:8443"+path, nil), route, next)
		return w, err
	}
	kept := func(path string) (string, http.Header, bool) {
		r := httptest.NewRequest(http.MethodGet, "http://shop.example.com"+path, nil)
		resp, ok := s.lookup(r, route)
		if !ok {
			return "", nil, false
		}
		w := httptest.NewRecorder()
		if err := serveStale(w, resp); err != nil {
			t.Fatal(err)
		}
		return w.Body.String(), w.Header(), true
	}

	w, err := pass("/a?x=1", func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Connection", "close")
		w.Header().Set("Age", "7")
		io.WriteString(w, "<p>a</p>")
		return nil
	})
	if err != nil || w.Body.String() != "<p>a</p>" {
		t.Fatalf("passed on: %q %v", w.Body.String(), err)
	}
	body, h, ok := kept("/a?x=1")
	if !ok || body != "<p>a</p>" || h.Get("Content-Type") != "text/html" || h.Get("Connection") != "" ||
		h.Get("Age") != "7" || h.Get("Cache-Status") != staleCacheStatus || h.Get("Warning") != staleWarning {
		t.Fatalf("served stale: %q %v %v", body, h, ok)
	}
	if _, _, ok := kept("/a"); ok {
		t.Fatal("another query has the copy")
	}

	// io.Copy onto the writer (ReadFrom) is kept too.
	if _, err := pass("/copied", func(w http.ResponseWriter, r *http.Request) error {
		_, err := io.Copy(w, strings.NewReader("copied body"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if body, _, ok := kept("/copied"); !ok || body != "copied body" {
		t.Fatalf("a body written by ReadFrom: %q %v", body, ok)
	}

	never := map[string]caddyhttp.HandlerFunc{
		"/big": func(w http.ResponseWriter, r *http.Request) error {
			io.WriteString(w, strings.Repeat("x", 600))
			io.WriteString(w, strings.Repeat("y", 600))
			return nil
		},
		"/big-declared": func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("Content-Length", "1001")
			io.WriteString(w, strings.Repeat("x", 1001))
			return nil
		},
		"/short": func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("Content-Length", "100")
			io.WriteString(w, "cut")
			return nil
		},
		"/cookie": func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("Set-Cookie", "a=1")
			io.WriteString(w, "mine")
			return nil
		},
		"/private": func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("Cache-Control", "private, max-age=60")
			io.WriteString(w, "mine")
			return nil
		},
		"/error": func(w http.ResponseWriter, r *http.Request) error {
			return errors.New("upstream went away")
		},
		"/503": func(w http.ResponseWriter, r *http.Request) error {
			w.WriteHeader(http.StatusServiceUnavailable)
			return nil
		},
	}
	for path, next := range never {
		w, _ := pass(path, next)
		if path == "/big" && w.Body.Len() != 1200 {
			t.Fatalf("%s: the client got %d bytes, want all 1200", path, w.Body.Len())
		}
		if _, _, ok := kept(path); ok {
			t.Errorf("%s was kept", path)
		}
	}
	if n, _ := s.kept.Stats("site"); n != 2 {
		t.Fatalf("%d responses kept, want 2", n)
	}
}

// With persist, an answer goes to the write-behind queue when it is new
// or changed, not again while it stays the same.
func TestStaleWriteBehindSkipsUnchanged(t *testing.T) {
	persist := true
	s := newStaleResponses(&ServeStaleConfig{MaxSiteBytes: 1 << 20, MaxResponseBytes: 1000, MaxMemoryBytes: 1 << 20, Persist: &persist}, nil, zap.NewNop())
	route := &tenants.Route{SiteID: "site", Host: "shop.example.com"}
	body := "v1"
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Date", time.Now().Format(http.TimeFormat))
		io.WriteString(w, body)
		return nil
	})
	pass := func(path string) {
		if err := s.record(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "http://shop.example.com"+path, nil), route, next); err != nil {
			t.Fatal(err)
		}
	}
	pass("/")
	pass("/")
	pass("/")
	if n := len(s.writes); n != 1 {
		t.Fatalf("three equal answers queued %d writes, want 1", n)
	}
	pass("/other")
	body = "v2"
	pass("/")
	if n := len(s.writes); n != 3 {
		t.Fatalf("a new key and a changed answer: %d writes queued, want 3", n)
	}
	for range 3 {
		w := <-s.writes
		if w.SiteID != "site" || !strings.HasPrefix(w.Key, "GET shop.example.com/") {
			t.Fatalf("queued %+v", w)
		}
	}
}
