// Package dnstest runs a tiny authoritative DNS server on loopback UDP for
// tests: it answers A, AAAA, CNAME and TXT queries from records the test
// sets, NXDOMAIN for names it has none of.
package dnstest

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// Server is a running test DNS server.
type Server struct {
	// Addr is the server's UDP address, host:port.
	Addr string

	conn  net.PacketConn
	mu    sync.Mutex
	addrs map[string][]netip.Addr
	txt   map[string][]string
	cname map[string]string
}

// Start runs a server until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("dnstest: %v", err)
	}
	s := &Server{Addr: conn.LocalAddr().String(), conn: conn,
		addrs: map[string][]netip.Addr{}, txt: map[string][]string{}, cname: map[string]string{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.serve()
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return s
}

func key(name string) string { return strings.TrimSuffix(strings.ToLower(name), ".") + "." }

// SetAddrs sets name's A and AAAA records.
func (s *Server) SetAddrs(name string, ips ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var list []netip.Addr
	for _, ip := range ips {
		list = append(list, netip.MustParseAddr(ip))
	}
	s.addrs[key(name)] = list
}

// SetTXT sets name's TXT records, one per value.
func (s *Server) SetTXT(name string, values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.txt[key(name)] = values
}

// SetCNAME makes name an alias of target.
func (s *Server) SetCNAME(name, target string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cname[key(name)] = key(target)
}

func (s *Server) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if resp, ok := s.answer(buf[:n]); ok {
			_, _ = s.conn.WriteTo(resp, from)
		}
	}
}

func (s *Server) answer(msg []byte) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	name := key(q.Name.String())

	s.mu.Lock()
	defer s.mu.Unlock()
	type rr struct {
		name string
		body dnsmessage.ResourceBody
	}
	var answers []rr
	known := false
	target := name
	if c, ok := s.cname[name]; ok {
		known = true
		answers = append(answers, rr{name, &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName(c)}})
		target = c
	}
	if addrs, ok := s.addrs[target]; ok {
		known = true
		for _, a := range addrs {
			switch {
			case q.Type == dnsmessage.TypeA && a.Is4():
				answers = append(answers, rr{target, &dnsmessage.AResource{A: a.As4()}})
			case q.Type == dnsmessage.TypeAAAA && a.Is6():
				answers = append(answers, rr{target, &dnsmessage.AAAAResource{AAAA: a.As16()}})
			}
		}
	}
	if txts, ok := s.txt[name]; ok {
		known = true
		if q.Type == dnsmessage.TypeTXT {
			for _, txt := range txts { // one record each
				answers = append(answers, rr{name, &dnsmessage.TXTResource{TXT: []string{txt}}})
			}
		}
	}

	rcode := dnsmessage.RCodeSuccess
	if !known {
		rcode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true,
		RecursionDesired: h.RecursionDesired, RecursionAvailable: true, RCode: rcode})
	b.EnableCompression()
	if b.StartQuestions() != nil || b.Question(q) != nil || b.StartAnswers() != nil {
		return nil, false
	}
	for _, a := range answers {
		hdr := dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(a.name), Class: dnsmessage.ClassINET, TTL: 5}
		var err error
		switch body := a.body.(type) {
		case *dnsmessage.AResource:
			err = b.AResource(hdr, *body)
		case *dnsmessage.AAAAResource:
			err = b.AAAAResource(hdr, *body)
		case *dnsmessage.CNAMEResource:
			err = b.CNAMEResource(hdr, *body)
		case *dnsmessage.TXTResource:
			err = b.TXTResource(hdr, *body)
		}
		if err != nil {
			return nil, false
		}
	}
	out, err := b.Finish()
	return out, err == nil
}
