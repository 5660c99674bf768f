// Package outside gives tests a host outside this machine: a network
// namespace behind a veth pair, reached from containers only through the
// host's forwarding (as the internet would be), with a TCP listener in it.
// A test of egress dials it; a container on an internal network must not
// get there, one with egress must.
//
// It needs root and iproute2's ip (both there wherever the Docker tests
// run); it fails the test, never skips it, when either is missing.
package outside

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Listen makes an outside host and returns the address of a TCP listener
// on it that accepts and closes every connection. Everything is removed
// when the test ends.
func Listen(t testing.TB) string {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	id := hex.EncodeToString(b[:3])
	ns, hostIf, nsIf := "tnout-"+id, "tno"+id, "tni"+id
	// A random /30 of 198.18.0.0/15 (set aside for such tests), so that
	// parallel tests do not collide.
	n := binary.BigEndian.Uint32([]byte{198, 18, 0, 0}) + (binary.BigEndian.Uint32(b[:])%(1<<15))*4
	addr := func(i uint32) string {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], n+i)
		return net.IP(a[:]).String()
	}
	hostIP, nsIP := addr(1), addr(2)

	ip(t, "netns", "add", ns)
	t.Cleanup(func() { ipQuiet("netns", "del", ns) })
	ip(t, "link", "add", hostIf, "type", "veth", "peer", "name", nsIf)
	t.Cleanup(func() { ipQuiet("link", "del", hostIf) })
	ip(t, "link", "set", nsIf, "netns", ns)
	ip(t, "addr", "add", hostIP+"/30", "dev", hostIf)
	ip(t, "link", "set", hostIf, "up")
	ip(t, "-n", ns, "addr", "add", nsIP+"/30", "dev", nsIf)
	ip(t, "-n", ns, "link", "set", nsIf, "up")
	ip(t, "-n", ns, "link", "set", "lo", "up")
	ip(t, "-n", ns, "route", "add", "default", "via", hostIP)

	ln, err := listenIn(ns, net.JoinHostPort(nsIP, "0"))
	if err != nil {
		t.Fatalf("listening in network namespace %s: %v", ns, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed at cleanup
			}
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// listenIn opens a listener inside the named network namespace: the
// socket stays in the namespace it was made in, whichever thread accepts.
func listenIn(ns, addr string) (net.Listener, error) {
	type result struct {
		ln  net.Listener
		err error
	}
	done := make(chan result, 1)
	go func() {
		// The thread entering the namespace is never unlocked, so it ends
		// with this goroutine instead of serving others in the wrong
		// namespace.
		runtime.LockOSThread()
		f, err := os.Open("/run/netns/" + ns)
		if err != nil {
			done <- result{nil, err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- result{nil, fmt.Errorf("entering network namespace: %w", err)}
			return
		}
		ln, err := net.Listen("tcp", addr)
		done <- result{ln, err}
	}()
	r := <-done
	return r.ln, r.err
}

func ip(t testing.TB, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v: %s (these tests need root and iproute2)", strings.Join(args, " "), err, out)
	}
}

func ipQuiet(args ...string) { _ = exec.Command("ip", args...).Run() }
