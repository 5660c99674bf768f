package provisioner

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/internal/testimage"
	"github.com/docker/docker/api/types/container"
	"github.com/prometheus/client_golang/prometheus"
)

func TestEnsureCreatesOneContainer(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var changes []State
	p := newProv(t, func(c *Config) {
		c.OnChange = func(rt SiteRuntime) { mu.Lock(); changes = append(changes, rt.State); mu.Unlock() }
	})
	site := randID("s")
	if _, ok := p.Upstream(site); ok {
		t.Fatal("unknown site has an upstream")
	}
	up := ensure(t, p, testSpec(site))
	if got := get(t, up, "/"); got != "hello from site-"+site {
		t.Fatalf("GET / = %q", got)
	}
	if u, ok := p.Upstream(site); !ok || u != up {
		t.Fatalf("Upstream = %q, %v; want %q", u, ok, up)
	}
	if !strings.HasPrefix(up, "127.0.0.1:") {
		t.Errorf("upstream %s not on 127.0.0.1", up)
	}
	cs := siteContainers(t, p.cfg.Namespace, site)
	if len(cs) != 1 || cs[0].State != "running" {
		t.Fatalf("containers = %+v, want one running", cs)
	}
	if cs[0].Names[0] != "/"+containerName(p.cfg.Namespace, site) {
		t.Errorf("container name %v", cs[0].Names)
	}
	rt := p.Status(site)
	if rt.State != StateRunning || rt.ContainerID != cs[0].ID || rt.Upstream != up || rt.TemplateVersion != 1 {
		t.Errorf("status = %+v", rt)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []State{StateCreated, StateStarting, StateRunning}; !equalStates(changes, want) {
		t.Errorf("OnChange states = %v, want %v", changes, want)
	}
}

func equalStates(a, b []State) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestConcurrentEnsureStartsOnce(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	p := newProv(t, func(c *Config) { c.Metrics = reg })
	site := randID("s")
	spec := testSpec(site)
	const n = 200
	ups := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			ups[i], errs[i] = p.Ensure(ctx, spec)
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if ups[i] != ups[0] {
			t.Fatalf("caller %d got %s, caller 0 got %s", i, ups[i], ups[0])
		}
	}
	if got := get(t, ups[0], "/"); got != "hello from site-"+site {
		t.Fatalf("GET / = %q", got)
	}
	if cs := siteContainers(t, p.cfg.Namespace, site); len(cs) != 1 {
		t.Fatalf("%d containers, want 1", len(cs))
	}
	if got := p.dockerStarts.Load(); got != 1 {
		t.Fatalf("%d docker starts, want 1", got)
	}
	if got := metricValue(t, p.metrics.coldStarts.WithLabelValues("started")); got != 1 {
		t.Errorf("cold starts metric = %v, want 1", got)
	}
	if got := metricValue(t, p.metrics.running); got != 1 {
		t.Errorf("running gauge = %v, want 1", got)
	}
}

func TestIdleStopKeepsVolume(t *testing.T) {
	t.Parallel()
	p := newProv(t, func(c *Config) { c.IdleTimeout = time.Second })
	site := randID("s")
	spec := testSpec(site)
	up := ensure(t, p, spec)
	id := p.Status(site).ContainerID
	if code, body := do(t, http.MethodPut, "http://"+up+"/file?name=keep", strings.NewReader("precious")); code != http.StatusCreated {
		t.Fatalf("PUT file: %d %s", code, body)
	}

	began := time.Now()
	waitFor(t, 5*time.Second, "idle stop", func() bool { _, ok := p.Upstream(site); return !ok })
	if d := time.Since(began); d < 900*time.Millisecond {
		t.Errorf("stopped after %s, before the idle timeout", d)
	}
	waitFor(t, 5*time.Second, "container stopped", func() bool { return !inspect(t, id).State.Running })
	// The reaper counts the stop once Docker's stop call returns, which
	// may be a moment after the container shows as stopped.
	waitFor(t, 5*time.Second, "one idle stop counted", func() bool { return metricValue(t, p.metrics.idleStops) == 1 })

	up = ensure(t, p, spec)
	if got := p.Status(site).ContainerID; got != id {
		t.Errorf("restart created a new container %s (was %s)", got, id)
	}
	if got := get(t, up, "/file?name=keep"); got != "precious" {
		t.Fatalf("file after restart = %q", got)
	}

	// A recreate (template upgrade) keeps the volume too.
	if err := p.StopSite(context.Background(), site); err != nil {
		t.Fatal(err)
	}
	spec.TemplateVersion = 2
	up = ensure(t, p, spec)
	if got := p.Status(site).ContainerID; got == id {
		t.Fatal("version bump did not recreate the container")
	}
	if got := get(t, up, "/file?name=keep"); got != "precious" {
		t.Fatalf("file after recreate = %q", got)
	}
}

func TestUpgradedConnectionKeepsSiteRunning(t *testing.T) {
	t.Parallel()
	p := newProv(t, func(c *Config) { c.IdleTimeout = time.Second })
	site := randID("s")
	end := p.Begin(site)
	up := ensure(t, p, testSpec(site))

	conn, err := net.Dial("tcp", up)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	endWS := p.BeginUpgraded(site)
	end() // the upgrade request itself is over; the connection stays

	echo := func(msg string) {
		t.Helper()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(conn, msg)
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(br, buf); err != nil || string(buf) != msg {
			t.Fatalf("echo %q: %q %v", msg, buf, err)
		}
	}
	echo("ping")
	time.Sleep(2500 * time.Millisecond) // well past IdleTimeout
	if _, ok := p.Upstream(site); !ok {
		t.Fatal("site stopped while an upgraded connection was open")
	}
	echo("still there")

	endWS()
	conn.Close()
	waitFor(t, 5*time.Second, "idle stop after the connection ended", func() bool { _, ok := p.Upstream(site); return !ok })
}

func TestCrashingSiteBacksOff(t *testing.T) {
	t.Parallel()
	p := newProv(t, nil)
	site := randID("s")
	spec := testSpec(site, "EXIT_AT_START", "1")

	_, err := p.Ensure(context.Background(), spec)
	var se *StartError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want *StartError", err)
	}
	if se.ExitCode != 3 || !strings.Contains(se.LogTail, "EXIT_AT_START is set") {
		t.Fatalf("StartError exit code %d, log tail %q", se.ExitCode, se.LogTail)
	}
	if rt := p.Status(site); rt.State != StateFailed || rt.Error == "" {
		t.Errorf("status = %+v", rt)
	}

	// Callers hammering the site must not become a restart loop.
	deadline := time.Now().Add(10 * time.Second)
	calls := 0
	for time.Now().Before(deadline) {
		_, err := p.Ensure(context.Background(), spec)
		if !errors.As(err, &se) || se.ExitCode != 3 {
			t.Fatalf("Ensure in backoff: %v", err)
		}
		calls++
		time.Sleep(10 * time.Millisecond)
	}
	starts := p.dockerStarts.Load()
	t.Logf("%d Ensure calls, %d container starts", calls, starts)
	if starts > 6 || starts < 2 {
		t.Fatalf("%d container starts in 10s, want 2..6", starts)
	}
	if cs := siteContainers(t, p.cfg.Namespace, site); len(cs) != 1 {
		t.Fatalf("%d containers, want 1", len(cs))
	}
}

func TestSlowStartAndCancelledCaller(t *testing.T) {
	t.Parallel()
	p := newProv(t, nil)
	site := randID("s")
	spec := testSpec(site, "LISTEN_DELAY", "3s")

	began := time.Now()
	type result struct {
		up  string
		err error
	}
	patient := make(chan result, 1)
	go func() {
		up, err := p.Ensure(context.Background(), spec)
		patient <- result{up, err}
	}()
	time.Sleep(50 * time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := p.Ensure(ctx, spec)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled caller: %v", err)
	}
	if d := time.Since(began); d > time.Second {
		t.Errorf("cancelled caller returned after %s", d)
	}

	r := <-patient
	if r.err != nil {
		t.Fatalf("patient caller: %v", r.err)
	}
	if d := time.Since(began); d < 2500*time.Millisecond {
		t.Errorf("ready after %s, before LISTEN_DELAY", d)
	}
	if got := get(t, r.up, "/"); got != "hello from site-"+site {
		t.Fatalf("GET / = %q", got)
	}
	if got := p.dockerStarts.Load(); got != 1 {
		t.Errorf("%d starts, want 1", got)
	}
}

func TestAdoptRunningContainers(t *testing.T) {
	t.Parallel()
	p1 := newProv(t, nil)
	site := randID("s")
	up := ensure(t, p1, testSpec(site))
	id := p1.Status(site).ContainerID
	p1.Stop()

	var adopted []SiteRuntime
	cfg := p1.cfg
	cfg.OnChange = func(rt SiteRuntime) { adopted = append(adopted, rt) }
	p2 := startProv(t, cfg)
	u, ok := p2.Upstream(site)
	if !ok || u != up {
		t.Fatalf("adopted upstream = %q, %v; want %q", u, ok, up)
	}
	if got := p2.Status(site); got.ContainerID != id || got.State != StateRunning {
		t.Fatalf("adopted status = %+v, want container %s running", got, id)
	}
	if len(adopted) != 1 || adopted[0].ContainerID != id {
		t.Errorf("OnChange at adoption = %+v", adopted)
	}
	if u2 := ensure(t, p2, testSpec(site)); u2 != up {
		t.Errorf("ensure after adoption = %s", u2)
	}
	if got := get(t, u, "/"); got != "hello from site-"+site {
		t.Fatalf("GET / = %q", got)
	}
	if n := p2.dockerStarts.Load(); n != 0 {
		t.Errorf("%d starts after adoption, want 0", n)
	}
	if cs := siteContainers(t, p2.cfg.Namespace, site); len(cs) != 1 {
		t.Fatalf("%d containers, want 1", len(cs))
	}

	// A stopped container is adopted too, and restarted (not duplicated).
	if err := p2.StopSite(context.Background(), site); err != nil {
		t.Fatal(err)
	}
	p3 := startProv(t, cfg)
	if _, ok := p3.Upstream(site); ok {
		t.Fatal("stopped container adopted as running")
	}
	ensure(t, p3, testSpec(site))
	if got := p3.Status(site).ContainerID; got != id {
		t.Errorf("restart after adoption used container %s, want %s", got, id)
	}
	if cs := siteContainers(t, p3.cfg.Namespace, site); len(cs) != 1 {
		t.Fatalf("%d containers, want 1", len(cs))
	}
}

func TestTemplateVersionRecreates(t *testing.T) {
	t.Parallel()
	p := newProv(t, nil)
	image2 := testimage.Build(t, "caddy-multitenant-testsite:v2")
	site := randID("s")
	spec := testSpec(site, "FLAVOR", "one")
	up := ensure(t, p, spec)
	id := p.Status(site).ContainerID
	do(t, http.MethodPut, "http://"+up+"/file?name=f", strings.NewReader("kept"))

	// The same spec again: the container is kept.
	if err := p.StopSite(context.Background(), site); err != nil {
		t.Fatal(err)
	}
	up = ensure(t, p, spec)
	if got := p.Status(site).ContainerID; got != id {
		t.Fatalf("an unchanged spec recreated the container")
	}

	// Same version, different env (a site's own override changed): the
	// container is recreated, since it would otherwise run the old env.
	if err := p.StopSite(context.Background(), site); err != nil {
		t.Fatal(err)
	}
	spec.Env["FLAVOR"] = "two"
	up = ensure(t, p, spec)
	if got := p.Status(site).ContainerID; got == id {
		t.Fatalf("a changed env kept the old container")
	}
	var recreated map[string]string
	if err := json.Unmarshal([]byte(get(t, up, "/env")), &recreated); err != nil || recreated["FLAVOR"] != "two" {
		t.Fatalf("env after recreate: %v (%v)", recreated, err)
	}
	id = p.Status(site).ContainerID
	if got := get(t, up, "/file?name=f"); got != "kept" {
		t.Fatalf("volume after env recreate: %q", got)
	}

	// A stale spec (an older version of the same template) never
	// downgrades a container made from a newer one.
	if err := p.StopSite(context.Background(), site); err != nil {
		t.Fatal(err)
	}
	stale := spec
	stale.TemplateVersion = 0
	stale.Env = map[string]string{"FLAVOR": "stale"}
	if _, err := p.Ensure(context.Background(), stale); err != nil {
		t.Fatal(err)
	}
	if got := p.Status(site).ContainerID; got != id {
		t.Fatalf("a stale spec recreated the container")
	}

	if err := p.StopSite(context.Background(), site); err != nil {
		t.Fatal(err)
	}
	spec.TemplateVersion = 2
	spec.Image = image2
	up = ensure(t, p, spec)
	rt := p.Status(site)
	if rt.ContainerID == id || rt.TemplateVersion != 2 {
		t.Fatalf("status after upgrade = %+v (old container %s)", rt, id)
	}
	c := inspect(t, rt.ContainerID)
	if c.Config.Image != image2 || c.Config.Labels[LabelTemplateVersion] != "2" {
		t.Errorf("new container image %s labels %v", c.Config.Image, c.Config.Labels)
	}
	var env map[string]string
	if err := json.Unmarshal([]byte(get(t, up, "/env")), &env); err != nil {
		t.Fatal(err)
	}
	if env["FLAVOR"] != "two" {
		t.Errorf("env after upgrade: FLAVOR=%q", env["FLAVOR"])
	}
	if got := get(t, up, "/file?name=f"); got != "kept" {
		t.Errorf("volume data after upgrade = %q", got)
	}
	if cs := siteContainers(t, p.cfg.Namespace, site); len(cs) != 1 {
		t.Fatalf("%d containers after upgrade, want 1", len(cs))
	}
}

func TestMaxRunningEvictsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	p := newProv(t, func(c *Config) { c.MaxRunning = 2 })
	a, b, c := randID("a"), randID("b"), randID("c")
	ensure(t, p, testSpec(a))
	ensure(t, p, testSpec(b))
	// b used more recently than a; the sleeps exceed the coarse clock's
	// tick (250ms without IdleTimeout).
	time.Sleep(300 * time.Millisecond)
	p.Begin(a)()
	time.Sleep(300 * time.Millisecond)
	p.Begin(b)()

	ensure(t, p, testSpec(c))
	if _, ok := p.Upstream(a); ok {
		t.Fatal("least recently used site a still running")
	}
	for _, s := range []string{b, c} {
		if _, ok := p.Upstream(s); !ok {
			t.Fatalf("site %s not running", s)
		}
	}
	if got := p.Running(); got != 2 {
		t.Fatalf("running = %d", got)
	}
	if got := metricValue(t, p.metrics.evictions); got != 1 {
		t.Errorf("evictions = %v", got)
	}

	endB, endC := p.Begin(b), p.Begin(c)
	_, err := p.Ensure(context.Background(), testSpec(a))
	if !errors.Is(err, ErrCapacity) {
		t.Fatalf("ensure with all sites busy: %v, want ErrCapacity", err)
	}
	endB()
	// Capacity errors do not back off: room appears as soon as b is idle.
	ensure(t, p, testSpec(a))
	if _, ok := p.Upstream(b); ok {
		t.Fatal("b still running after a took its slot")
	}
	if _, ok := p.Upstream(c); !ok {
		t.Fatal("busy site c was stopped")
	}
	endC()
}

func TestContainerDefaults(t *testing.T) {
	t.Parallel()
	p := newProv(t, nil)
	site := randID("s")
	spec := testSpec(site)
	spec.MemoryBytes = 64 << 20
	spec.NanoCPUs = 500_000_000
	spec.PidsLimit = 64
	spec.CapAdd = []string{"NET_BIND_SERVICE"}
	spec.HealthPath = "/health"
	up := ensure(t, p, spec)
	get(t, up, "/")

	c := inspect(t, p.Status(site).ContainerID)
	hc := c.HostConfig
	if hc.Memory != 64<<20 || hc.NanoCPUs != 500_000_000 || hc.PidsLimit == nil || *hc.PidsLimit != 64 {
		t.Errorf("limits: memory %d nanocpus %d pids %v", hc.Memory, hc.NanoCPUs, hc.PidsLimit)
	}
	if len(hc.CapDrop) != 1 || hc.CapDrop[0] != "ALL" || len(hc.CapAdd) != 1 || strings.TrimPrefix(hc.CapAdd[0], "CAP_") != "NET_BIND_SERVICE" {
		t.Errorf("caps: drop %v add %v", hc.CapDrop, hc.CapAdd)
	}
	if len(hc.SecurityOpt) != 1 || !strings.HasPrefix(hc.SecurityOpt[0], "no-new-privileges") {
		t.Errorf("security opts %v", hc.SecurityOpt)
	}
	if hc.RestartPolicy.Name != container.RestartPolicyDisabled {
		t.Errorf("restart policy %q", hc.RestartPolicy.Name)
	}
	if hc.LogConfig.Type != "json-file" || hc.LogConfig.Config["max-size"] != "10m" || hc.LogConfig.Config["max-file"] != "3" {
		t.Errorf("log config %+v", hc.LogConfig)
	}
	for port, bs := range c.NetworkSettings.Ports {
		for _, b := range bs {
			if b.HostIP != "127.0.0.1" {
				t.Errorf("port %s bound on %q", port, b.HostIP)
			}
		}
	}
	if len(c.Mounts) != 1 || c.Mounts[0].Name != volumeName(p.cfg.Namespace, site) || c.Mounts[0].Destination != "/data" {
		t.Errorf("mounts %+v", c.Mounts)
	}
	for k, v := range map[string]string{LabelNamespace: p.cfg.Namespace, LabelSite: site, LabelTemplate: "test", LabelTemplateVersion: "1", LabelPort: "8080"} {
		if c.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, c.Config.Labels[k], v)
		}
	}
}
