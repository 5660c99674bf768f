package pgtest

import (
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
)

// Cutter forwards TCP to the test database until it is cut (connections
// closed, new ones refused) or stalled (accepted, never answered): real
// network failures between a client and PostgreSQL, without stopping the
// server other tests share.
type Cutter struct {
	target      string
	listener    net.Listener
	mu          sync.Mutex
	down, stuck bool
	conns       map[net.Conn]struct{}
}

// NewCutter starts a cutter in front of the test database; it is closed
// when the test ends.
func NewCutter(t testing.TB) *Cutter {
	t.Helper()
	u, err := url.Parse(URL(t))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &Cutter{target: u.Host, listener: l, conns: map[net.Conn]struct{}{}}
	t.Cleanup(func() { l.Close(); c.Cut() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go c.serve(conn)
		}
	}()
	return c
}

// URL returns the test database's URL inside schema, through the cutter.
func (c *Cutter) URL(t testing.TB, schema string) string {
	t.Helper()
	u, err := url.Parse(SchemaURL(t, schema))
	if err != nil {
		t.Fatal(err)
	}
	u.Host = c.listener.Addr().String()
	return u.String()
}

func (c *Cutter) serve(conn net.Conn) {
	c.mu.Lock()
	if c.down {
		c.mu.Unlock()
		conn.Close()
		return
	}
	c.conns[conn] = struct{}{}
	stuck := c.stuck
	c.mu.Unlock()
	if stuck {
		return // held open, silent, until cut
	}
	up, err := net.Dial("tcp", c.target)
	if err != nil {
		conn.Close()
		return
	}
	c.mu.Lock()
	c.conns[up] = struct{}{}
	c.mu.Unlock()
	go func() { io.Copy(up, conn); up.Close() }()
	io.Copy(conn, up)
	conn.Close()
}

// Cut closes every connection and refuses new ones.
func (c *Cutter) Cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down = true
	for conn := range c.conns {
		conn.Close()
	}
	clear(c.conns)
}

// Stall closes every connection and accepts new ones without answering.
func (c *Cutter) Stall() {
	c.Cut()
	c.mu.Lock()
	c.down, c.stuck = false, true
	c.mu.Unlock()
}

// Restore lets connections through again.
func (c *Cutter) Restore() {
	c.mu.Lock()
	c.down, c.stuck = false, false
	c.mu.Unlock()
}
