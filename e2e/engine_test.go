package e2e

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// engineSocket is a unix socket in front of the Docker engine the tests
// use, which a test takes down (nothing listens: the engine is gone) and
// brings up again.
type engineSocket struct {
	t             testing.TB
	path          string
	network, addr string // the engine's
	mu            sync.Mutex
	listener      net.Listener
	conns         map[net.Conn]struct{}
}

func newEngineSocket(t testing.TB) *engineSocket {
	t.Helper()
	e := &engineSocket{t: t, path: filepath.Join(t.TempDir(), "docker.sock"), network: "unix", addr: "/var/run/docker.sock",
		conns: map[net.Conn]struct{}{}}
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		scheme, addr, ok := strings.Cut(h, "://")
		if !ok || (scheme != "unix" && scheme != "tcp") {
			t.Fatalf("DOCKER_HOST %q: want unix:// or tcp://", h)
		}
		e.network, e.addr = scheme, addr
	}
	t.Cleanup(e.down)
	return e
}

// host is the socket as a Docker host.
func (e *engineSocket) host() string { return "unix://" + e.path }

func (e *engineSocket) up() {
	e.t.Helper()
	l, err := net.Listen("unix", e.path)
	if err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	e.listener = l
	e.mu.Unlock()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go e.forward(conn)
		}
	}()
}

func (e *engineSocket) forward(conn net.Conn) {
	engine, err := net.Dial(e.network, e.addr)
	if err != nil {
		conn.Close()
		return
	}
	e.mu.Lock()
	e.conns[conn], e.conns[engine] = struct{}{}, struct{}{}
	e.mu.Unlock()
	go func() { io.Copy(engine, conn); engine.Close() }()
	io.Copy(conn, engine)
	conn.Close()
}

// down closes the socket (removing it) and every connection through it.
func (e *engineSocket) down() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.listener != nil {
		e.listener.Close()
		e.listener = nil
	}
	for c := range e.conns {
		c.Close()
	}
	clear(e.conns)
}

// Caddy starts while the Docker engine does not answer: tenant hosts get
// 503 with Retry-After, and once the engine is back the container left
// running before is adopted (not duplicated) and stopped sites start.
func TestStartsWithoutDockerEngine(t *testing.T) {
	t.Parallel()
	engine := newEngineSocket(t)
	engine.up()
	p := newPlatform(t, platformOptions{Tenants: "docker {\n\t\t\thost " + engine.host() + "\n\t\t}"})
	running := p.site("kept", nil)
	p.site("later", nil)
	if st, _, _ := p.get(host("kept"), "/", nil); st != http.StatusOK {
		t.Fatalf("before: %d", st)
	}
	before := p.containers(running.ID)

	p.caddy.Stop()
	engine.down()
	p.caddy.Start()
	for _, sub := range []string{"kept", "later"} {
		st, _, h := p.get(host(sub), "/", nil)
		if st != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
			t.Fatalf("%s without the engine: %d, Retry-After %q", sub, st, h.Get("Retry-After"))
		}
	}
	engine.up()
	for _, sub := range []string{"kept", "later"} {
		eventually(t, 30*time.Second, sub+" serves once the engine is back", func() bool {
			st, body, _ := p.get(host(sub), "/", nil)
			return st == http.StatusOK && body == "hello from "+sub
		})
	}
	if after := p.containers(running.ID); len(after) != 1 || after[0].ID != before[0].ID {
		t.Fatalf("containers of the running site: %v after, %v before", after, before)
	}
}
