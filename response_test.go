package multitenant

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/agistaffers/caddy-multitenant/figures"
)

func TestStatusOf(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		written int
		err     error
		want    int
	}{
		{0, nil, 200},
		{204, nil, 204},
		{103, nil, 200}, // early hints, then the implicit 200
		{0, caddyhttp.Error(http.StatusBadGateway, errors.New("dial")), 502},
		{0, fmt.Errorf("wrapped: %w", caddyhttp.Error(http.StatusServiceUnavailable, nil)), 503},
		{0, context.Canceled, 499},
		{0, errors.New("something"), 500},
		{200, caddyhttp.Error(http.StatusBadGateway, errors.New("copying the body")), 200}, // the client got the 200
	} {
		rec := httptest.NewRecorder()
		sw := takeStatusWriter(rec, false)
		if c.written != 0 {
			sw.WriteHeader(c.written)
		}
		if got := sw.statusOf(c.err); got != c.want {
			t.Errorf("written %d, err %v: status %d, want %d", c.written, c.err, got, c.want)
		}
		sw.release()
	}
}

// Through the writer, Caddy's reverse proxy still reaches what it needs
// underneath: flushing and hijacking (a protocol switch), by
// http.ResponseController; the answer's time ends at the switch.
func TestStatusWriterUnwraps(t *testing.T) {
	t.Parallel()
	type result struct {
		status int
		took   time.Duration
		all    time.Duration // the exchange, the echo after the switch included
	}
	results := make(chan result, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		began := time.Now()
		sw := takeStatusWriter(w, true)
		sw.WriteHeader(http.StatusSwitchingProtocols)
		if err := http.NewResponseController(sw).Flush(); err != nil {
			t.Errorf("flush: %v", err)
		}
		conn, brw, err := http.NewResponseController(sw).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		line, _ := brw.ReadString('\n') // the connection lasts past the switch
		brw.WriteString(line)
		brw.Flush()
		results <- result{sw.statusOf(nil), sw.took(began), time.Since(began)}
	}))
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("switch: %v %v", resp, err)
	}
	fmt.Fprintf(conn, "ping\n")
	if echo, err := br.ReadString('\n'); err != nil || echo != "ping\n" {
		t.Fatalf("echo over the switched connection: %q %v", echo, err)
	}
	conn.Close()
	io.Copy(io.Discard, br)
	if r := <-results; r.status != http.StatusSwitchingProtocols || r.took <= 0 || r.took >= r.all {
		t.Fatalf("status %d, took %s of the exchange's %s", r.status, r.took, r.all)
	}
}

// What the tenant handler adds to a request for the figures: a pooled
// writer, the status, two clock reads and the site's atomics; no
// allocation.
func BenchmarkFiguresHotPath(b *testing.B) {
	r := figures.NewRecorder()
	const site = "2f1d8a5e-0c1b-4a7e-9a55-6f1f2b3c4d5e"
	r.Site(site)
	var w http.ResponseWriter = httptest.NewRecorder()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			began := time.Now()
			sw := takeStatusWriter(w, false)
			sw.status = http.StatusOK // as WriteHeader would; the recorder underneath is not safe for parallel use
			r.Site(site).Observe(sw.statusOf(nil), sw.took(began))
			sw.release()
		}
	})
}
