package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/agistaffers/caddy-multitenant/internal/caddytest"
	"github.com/agistaffers/caddy-multitenant/internal/pgtest"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// pebbleInstall is how scripts/test.sh installs the ACME server these
// tests need.
const pebbleInstall = "go install github.com/letsencrypt/pebble/v2/cmd/pebble@v2.10.3"

// A handshake for an active tenant host gets a certificate from the ACME
// CA, the certificate lands in PostgreSQL, and the site answers over HTTPS.
func TestTLSOnDemandCertificateForTenant(t *testing.T) {
	t.Parallel()
	acme := startPebble(t)
	p := newTLSPlatform(t, acme)
	p.site("alpha")
	node := p.startCaddy()

	leaf := node.handshake(host("alpha"))
	acme.checkIssued(leaf, host("alpha"))

	stored := p.storedCert(host("alpha"))
	if stored == nil || stored.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Fatalf("certificate in PostgreSQL: %v, want serial %x", stored, leaf.SerialNumber)
	}
	if n := acme.orders(host("alpha")); n != 1 {
		t.Fatalf("%d orders for %s, want 1", n, host("alpha"))
	}

	status, body := node.get(acme, host("alpha"), "/")
	if status != http.StatusOK || body != "hello from alpha" {
		t.Fatalf("GET https://%s/: %d %q", host("alpha"), status, body)
	}
}

// Unknown hosts get no certificate and cause no order at the CA; an
// unverified custom domain neither, until it is verified.
func TestTLSOnDemandDeniesUnknownAndUnverified(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	acme := startPebble(t)
	p := newTLSPlatform(t, acme)
	s := p.site("shop")
	custom := &tenants.Domain{SiteID: s.ID, Hostname: "www.shop.test"}
	if err := p.store.CreateDomain(ctx, "e2e", custom); err != nil {
		t.Fatal(err)
	}
	node := p.startCaddy("debug")

	denied := map[string]string{ // host: reason logged
		host("nobody"):  "host belongs to no site",
		"random.test":   "host belongs to no site",
		"www.shop.test": "custom domain not verified",
	}
	for name, reason := range denied {
		if err := node.tryHandshake(name); err == nil {
			t.Fatalf("handshake for %s succeeded", name)
		}
		if n := acme.orders(name); n != 0 {
			t.Fatalf("%d orders for %s at the CA, want none", n, name)
		}
		if line := logLine(node.caddy.Logs(), `"obtaining new certificate"`, `"server_name":"`+name+`"`); line != "" {
			t.Fatalf("caddy tried to obtain a certificate for %s: %s", name, line)
		}
		// The log reaches us through a pipe, maybe after the handshake
		// failed.
		eventually(t, 5*time.Second, "debug log of the denial for "+name, func() bool {
			return logLine(node.caddy.Logs(), `"logger":"tls.permission.tenant"`, `"msg":"denied on-demand certificate"`,
				`"host":"`+name+`"`, `"reason":"`+reason+`"`) != ""
		})
	}
	if n := acme.totalOrders(); n != 0 {
		t.Fatalf("%d orders at the CA after denied handshakes, want 0", n)
	}

	if _, err := p.store.SetDomainVerified(ctx, "e2e", custom.ID, true); err != nil {
		t.Fatal(err)
	}
	// The change reaches Caddy's resolver through a notification: retry
	// until it has.
	var leaf *x509.Certificate
	eventually(t, 30*time.Second, "handshake for the verified domain", func() bool {
		var err error
		leaf, err = node.tryHandshakeLeaf("www.shop.test")
		return err == nil
	})
	acme.checkIssued(leaf, "www.shop.test")
	if n := acme.orders("www.shop.test"); n != 1 {
		t.Fatalf("%d orders for the verified domain, want 1", n)
	}
	// The log pattern the denials were checked against does match, and
	// now that the log is well past the denials, they still show no
	// attempt.
	if logLine(node.caddy.Logs(), `"obtaining new certificate"`, `"server_name":"www.shop.test"`) == "" {
		t.Fatal("no log of obtaining the verified domain's certificate")
	}
	for _, name := range []string{host("nobody"), "random.test"} {
		if line := logLine(node.caddy.Logs(), `"obtaining new certificate"`, `"server_name":"`+name+`"`); line != "" || acme.orders(name) != 0 {
			t.Fatalf("certificate attempt for the denied %s: %s (%d orders)", name, line, acme.orders(name))
		}
	}
}

// Two Caddy nodes on one database, asked for the same new host at the same
// moment, share one certificate: one order, one issuance.
func TestTLSTwoNodesOneIssuance(t *testing.T) {
	t.Parallel()
	acme := startPebble(t)
	p := newTLSPlatform(t, acme)
	p.site("twin")
	a, b := p.startCaddy(), p.startCaddy()

	leaves := make([]*x509.Certificate, 2)
	errs := make([]error, 2)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, node := range []*tlsNode{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			leaves[i], errs[i] = node.tryHandshakeLeaf(host("twin"))
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
	if leaves[0].SerialNumber.Cmp(leaves[1].SerialNumber) != 0 {
		t.Fatalf("nodes serve different certificates: %x and %x", leaves[0].SerialNumber, leaves[1].SerialNumber)
	}
	acme.checkIssued(leaves[0], host("twin"))
	if n := acme.orders(host("twin")); n != 1 {
		t.Fatalf("%d orders for %s, want exactly 1", n, host("twin"))
	}
	if n := acme.issued(host("twin")); n != 1 {
		t.Fatalf("%d certificates issued for %s, want exactly 1", n, host("twin"))
	}
	// Both nodes really raced: each went for the certificate, one got it
	// from the CA and the other, after waiting for the storage lock, found
	// it in PostgreSQL.
	obtained, found := 0, 0
	for _, node := range []*tlsNode{a, b} {
		logs := node.caddy.Logs()
		if !strings.Contains(logs, `"obtaining new certificate"`) {
			t.Fatalf("a node did not try to obtain the certificate; the test did not race")
		}
		if strings.Contains(logs, `"certificate obtained successfully","identifier":"`+host("twin")+`"`) {
			obtained++
		}
		if strings.Contains(logs, `"certificate already exists in storage","identifier":"`+host("twin")+`"`) {
			found++
		}
	}
	if obtained != 1 || found != 1 {
		t.Fatalf("%d nodes obtained and %d found the certificate in storage, want 1 and 1", obtained, found)
	}
	if n := p.storedCerts(host("twin")); n != 1 {
		t.Fatalf("%d certificates stored for %s, want 1", n, host("twin"))
	}
}

// A restarted node serves the certificate it stored in PostgreSQL: same
// serial, no new order.
func TestTLSCertificateSurvivesRestart(t *testing.T) {
	t.Parallel()
	acme := startPebble(t)
	p := newTLSPlatform(t, acme)
	p.site("durable")
	node := p.startCaddy()
	before := node.handshake(host("durable"))

	node.caddy.Restart()
	after := node.handshake(host("durable"))
	if after.SerialNumber.Cmp(before.SerialNumber) != 0 {
		t.Fatalf("after restart serial %x, want %x (the stored certificate)", after.SerialNumber, before.SerialNumber)
	}
	if n := acme.totalOrders(); n != 1 {
		t.Fatalf("%d orders at the CA, want 1 (none after the restart)", n)
	}
}

// tlsPlatform is the e2e fixture with HTTPS: tenants and certificates in
// one schema of the test database, any number of Caddy nodes on it, all
// using one ACME CA.
type tlsPlatform struct {
	t        *testing.T
	schema   string
	dsn      string
	pool     *pgxpool.Pool
	store    *tenants.Store
	acme     *acmeCA
	customer *tenants.Customer
	template *tenants.Template
}

// newTLSPlatform makes the schema, customer and template; nodes are
// started with startCaddy.
func newTLSPlatform(t *testing.T, acme *acmeCA) *tlsPlatform {
	t.Helper()
	schema := pgtest.Schema(t)
	pool := pgtest.Pool(t, schema)
	f := newFixtures(t, schema, pool, true)
	return &tlsPlatform{
		t:        t,
		schema:   schema,
		dsn:      pgtest.URL(t),
		pool:     pool,
		store:    f.store,
		acme:     acme,
		customer: f.customer,
		template: f.template,
	}
}

// site creates a site at subdomain whose container greets with its name.
func (p *tlsPlatform) site(subdomain string) *tenants.Site {
	p.t.Helper()
	s := &tenants.Site{CustomerID: p.customer.ID, TemplateID: p.template.ID, Subdomain: subdomain,
		Env: map[string]string{"SITE_NAME": subdomain}}
	if err := p.store.CreateSite(context.Background(), "e2e", s); err != nil {
		p.t.Fatal(err)
	}
	return s
}

// tlsNode is one Caddy process of a tlsPlatform.
type tlsNode struct {
	t     *testing.T
	caddy *caddytest.Process
	https string // host:port of its HTTPS listener
}

// startCaddy starts a node: on-demand TLS for every host, allowed by
// tls.permission.tenant, certificates from the test CA stored in the
// platform's schema. The site address is the catch-all alone: Caddy's
// Caddyfile adapter gives `*.example.com, https:// { tls { on_demand } }`
// an on-demand policy for *.example.com only, and the catch-all (custom
// domains) a policy without on_demand, so those would never get one. No
// site address names a host, so nothing is obtained at start (the tests
// count the CA's orders).
func (p *tlsPlatform) startCaddy(globalOptions ...string) *tlsNode {
	p.t.Helper()
	httpsAddr := caddytest.FreeAddr(p.t)
	_, httpsPort, _ := net.SplitHostPort(httpsAddr)
	caddyfile := fmt.Sprintf(`{
	admin {ADMIN_ADDR}
	http_port {HTTP_PORT}
	https_port %s
	%s
	acme_ca %s
	acme_ca_root %s
	storage postgres {
		dsn %q
		schema %s
	}
	on_demand_tls {
		permission tenant
	}
	tenants {
		database_url %q
		schema %s
		base_domain %s
		reserved admin www
		idle_timeout 10m
		start_timeout 30s
	}
}

https:// {
	tls {
		on_demand
	}
	tenant_proxy
}
`, httpsPort, strings.Join(globalOptions, "\n\t"), p.acme.directory, p.acme.rootFile, p.dsn, p.schema, p.dsn, p.schema, baseDomain)
	node := &tlsNode{t: p.t, https: httpsAddr}
	node.caddy = caddytest.Start(p.t, caddyfile, caddytest.Options{})
	return node
}

// storedCert returns the certificate stored for name, or nil.
func (p *tlsPlatform) storedCert(name string) *x509.Certificate {
	p.t.Helper()
	var value []byte
	err := p.pool.QueryRow(context.Background(),
		`SELECT value FROM certmagic_data WHERE key LIKE 'certificates/%/' || $1 || '/' || $1 || '.crt'`, name).Scan(&value)
	if err != nil {
		p.t.Logf("loading stored certificate for %s: %v", name, err)
		return nil
	}
	block, _ := pem.Decode(value)
	if block == nil {
		p.t.Fatalf("stored certificate for %s is not PEM", name)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		p.t.Fatal(err)
	}
	return cert
}

// storedCerts counts the certificates stored for name (under any issuer).
func (p *tlsPlatform) storedCerts(name string) int {
	p.t.Helper()
	var n int
	err := p.pool.QueryRow(context.Background(),
		`SELECT count(*) FROM certmagic_data WHERE key LIKE 'certificates/%/' || $1 || '/' || $1 || '.crt'`, name).Scan(&n)
	if err != nil {
		p.t.Fatal(err)
	}
	return n
}

// logLine returns the first line of logs containing every one of parts.
func logLine(logs string, parts ...string) string {
	for _, line := range strings.Split(logs, "\n") {
		found := true
		for _, part := range parts {
			found = found && strings.Contains(line, part)
		}
		if found {
			return line
		}
	}
	return ""
}

// tryHandshakeLeaf dials the node's HTTPS port with name as SNI and
// returns the leaf certificate it presents, unverified (the test checks
// the chain against the CA itself).
func (n *tlsNode) tryHandshakeLeaf(name string) (*x509.Certificate, error) {
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	conn, err := tls.DialWithDialer(dialer, "tcp", n.https, &tls.Config{ServerName: name, InsecureSkipVerify: true})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	certs := conn.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, fmt.Errorf("no certificate presented for %s", name)
	}
	return certs[0], nil
}

func (n *tlsNode) tryHandshake(name string) error {
	_, err := n.tryHandshakeLeaf(name)
	return err
}

func (n *tlsNode) handshake(name string) *x509.Certificate {
	n.t.Helper()
	leaf, err := n.tryHandshakeLeaf(name)
	if err != nil {
		n.t.Fatalf("TLS handshake for %s: %v", name, err)
	}
	return leaf
}

// get requests https://host/path from the node, verifying its certificate
// against the CA's root.
func (n *tlsNode) get(acme *acmeCA, host, path string) (int, string) {
	n.t.Helper()
	client := &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: acme.issuerRoots()},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, n.https)
			},
		},
	}
	resp, err := client.Get("https://" + host + path)
	if err != nil {
		n.t.Fatalf("GET https://%s%s: %v", host, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		n.t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// pebble is a running Pebble behind a recording proxy: Caddy talks to the
// proxy, which notes every new order and finalization with the names in
// it (Pebble's own log does not name them).
type acmeCA struct {
	t          *testing.T
	directory  string // ACME directory URL, through the proxy
	management string // Pebble's management API, https://host:port
	rootFile   string // PEM of the CA that signed the ACME server's TLS certificate
	client     *http.Client
	logs       *acmeLogBuffer

	mu        sync.Mutex
	newOrders []string // one entry per name per order created
	finalized []string // one entry per name per certificate issued
}

// startPebble runs Pebble (which must be installed; see pebbleInstall)
// with validation always succeeding, on free ports, and the recording
// proxy in front of it. Both stop when the test ends.
func startPebble(t *testing.T) *acmeCA {
	t.Helper()
	bin := findPebble(t)
	dir := t.TempDir()
	tlsCert, caPEM := acmeServerCert(t)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	rootFile := filepath.Join(dir, "ca.pem")
	keyDER, err := x509.MarshalECPrivateKey(tlsCert.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsCert.Certificate[0]}))
	writeTestFile(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	writeTestFile(t, rootFile, caPEM)

	listen, mgmt := caddytest.FreeAddr(t), caddytest.FreeAddr(t)
	_, httpPort, _ := net.SplitHostPort(caddytest.FreeAddr(t))
	_, tlsPort, _ := net.SplitHostPort(caddytest.FreeAddr(t))
	config := fmt.Sprintf(`{"pebble": {
		"listenAddress": %q, "managementListenAddress": %q,
		"certificate": %q, "privateKey": %q,
		"httpPort": %s, "tlsPort": %s, "ocspResponderURL": "",
		"externalAccountBindingRequired": false,
		"retryAfter": {"authz": 1, "order": 1},
		"keyAlgorithm": "ecdsa"
	}}`, listen, mgmt, certFile, keyFile, httpPort, tlsPort)
	configFile := filepath.Join(dir, "pebble.json")
	writeTestFile(t, configFile, []byte(config))

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	pb := &acmeCA{
		t:          t,
		management: "https://" + mgmt,
		rootFile:   rootFile,
		client:     &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}},
		logs:       new(acmeLogBuffer),
	}

	cmd := exec.Command(bin, "-config", configFile)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"PEBBLE_VA_ALWAYS_VALID=1", // tenant hosts are not really ours to validate
		"PEBBLE_VA_NOSLEEP=1",
		"PEBBLE_WFE_NONCEREJECT=0", // no random badNonce retries: order counts stay exact
	)
	cmd.Stdout, cmd.Stderr = pb.logs, pb.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting pebble: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("pebble log:\n%s", pb.logs.String())
		}
	})
	eventually(t, 30*time.Second, "pebble answers", func() bool {
		select {
		case <-exited:
			t.Fatalf("pebble exited:\n%s", pb.logs.String())
		default:
		}
		resp, err := pb.client.Get("https://" + listen + "/dir")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	upstream, _ := url.Parse("https://" + listen)
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(upstream)
			// Pebble builds its URLs from Host, and checks the JWS "url"
			// against them: they must stay the proxy's.
			r.Out.Host = r.In.Host
		},
		Transport: pb.client.Transport,
	}
	front := httptest.NewUnstartedServer(pb.record(proxy))
	front.TLS = &tls.Config{Certificates: []tls.Certificate{tlsCert}}
	front.StartTLS()
	t.Cleanup(front.Close)
	pb.directory = front.URL + "/dir"
	return pb
}

// findPebble looks in PATH, then where `go install` puts binaries, then
// in the module's bin/ (scripts/test.sh installs it there). A missing
// Pebble fails the test: these tests exist to talk to a real ACME server.
func findPebble(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("pebble"); err == nil {
		return p
	}
	var candidates []string
	if gobin, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		lines := strings.Split(strings.TrimRight(string(gobin), "\n"), "\n") // GOBIN may be an empty first line
		if len(lines) == 2 {
			if lines[0] != "" {
				candidates = append(candidates, filepath.Join(lines[0], "pebble"))
			}
			for _, gp := range filepath.SplitList(lines[1]) {
				candidates = append(candidates, filepath.Join(gp, "bin", "pebble"))
			}
		}
	}
	candidates = append(candidates, filepath.Join(caddytest.ModuleRoot(), "bin", "pebble"))
	for _, c := range candidates {
		if fi, err := os.Stat(c); err == nil && !fi.IsDir() {
			return c
		}
	}
	t.Fatalf("pebble (the ACME test server) is not installed; looked in PATH and %v. Install it with `%s` (scripts/test.sh does)", candidates, pebbleInstall)
	return ""
}

// record notes, for each successful new-order and finalize request, the
// names it concerns. ACME requests are JWS in flattened JSON: the payload
// is only base64url-encoded, so the proxy can read it.
func (pb *acmeCA) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		isOrder := r.Method == http.MethodPost && r.URL.Path == "/order-plz"
		isFinalize := r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/finalize-order/")
		if !isOrder && !isFinalize {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := &acmeStatus{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		names, err := jwsNames(body, isFinalize)
		if err != nil {
			pb.t.Errorf("reading ACME request %s: %v", r.URL.Path, err)
			return
		}
		pb.mu.Lock()
		defer pb.mu.Unlock()
		switch {
		case isOrder && rec.status == http.StatusCreated:
			pb.newOrders = append(pb.newOrders, names...)
		case isFinalize && rec.status == http.StatusOK:
			pb.finalized = append(pb.finalized, names...)
		}
	})
}

// jwsNames returns the DNS names of a new-order payload's identifiers, or
// of a finalize payload's CSR.
func jwsNames(body []byte, finalize bool) ([]string, error) {
	var jws struct {
		Payload string `json:"payload"`
	}
	if err := json.Unmarshal(body, &jws); err != nil {
		return nil, err
	}
	payload, err := base64.RawURLEncoding.DecodeString(jws.Payload)
	if err != nil {
		return nil, err
	}
	if !finalize {
		var order struct {
			Identifiers []struct{ Type, Value string } `json:"identifiers"`
		}
		if err := json.Unmarshal(payload, &order); err != nil {
			return nil, err
		}
		var names []string
		for _, id := range order.Identifiers {
			names = append(names, id.Value)
		}
		return names, nil
	}
	var fin struct {
		CSR string `json:"csr"`
	}
	if err := json.Unmarshal(payload, &fin); err != nil {
		return nil, err
	}
	der, err := base64.RawURLEncoding.DecodeString(fin.CSR)
	if err != nil {
		return nil, err
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, err
	}
	return csr.DNSNames, nil
}

func countOf(list []string, name string) int {
	n := 0
	for _, v := range list {
		if v == name {
			n++
		}
	}
	return n
}

// orders is how many orders the CA created for name.
func (pb *acmeCA) orders(name string) int {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	return countOf(pb.newOrders, name)
}

// totalOrders is how many names were ordered in all.
func (pb *acmeCA) totalOrders() int {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	return len(pb.newOrders)
}

// issued is how many certificates the CA issued for name.
func (pb *acmeCA) issued(name string) int {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	return countOf(pb.finalized, name)
}

// fetchCert returns the certificate at a management API path.
func (pb *acmeCA) fetchCert(path string) *x509.Certificate {
	pb.t.Helper()
	resp, err := pb.client.Get(pb.management + path)
	if err != nil {
		pb.t.Fatalf("GET pebble %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	block, _ := pem.Decode(body)
	if resp.StatusCode != http.StatusOK || block == nil {
		pb.t.Fatalf("GET pebble %s: %s %q", path, resp.Status, body)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		pb.t.Fatal(err)
	}
	return cert
}

// issuerRoots is a pool holding the CA's root, which issued certificates
// chain to.
func (pb *acmeCA) issuerRoots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(pb.fetchCert("/roots/0"))
	return pool
}

// checkIssued verifies that leaf was signed by the CA's intermediate, for
// name.
func (pb *acmeCA) checkIssued(leaf *x509.Certificate, name string) {
	pb.t.Helper()
	intermediate := pb.fetchCert("/intermediates/0")
	if err := leaf.CheckSignatureFrom(intermediate); err != nil {
		pb.t.Fatalf("certificate for %s (issuer %q) not signed by pebble's intermediate %q: %v",
			name, leaf.Issuer, intermediate.Subject, err)
	}
	if err := leaf.VerifyHostname(name); err != nil {
		pb.t.Fatal(err)
	}
}

// acmeServerCert makes a throwaway CA and a certificate for 127.0.0.1 and
// localhost signed by it, for the ACME server's own HTTPS.
func acmeServerCert(t *testing.T) (tls.Certificate, []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "caddy-multitenant e2e ACME server CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ = x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{leafDER, caDER}, PrivateKey: key},
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
}

func writeTestFile(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

type acmeStatus struct {
	http.ResponseWriter
	status int
}

func (r *acmeStatus) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *acmeStatus) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

type acmeLogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *acmeLogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *acmeLogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
