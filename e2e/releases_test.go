package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"

	"github.com/agistaffers/caddy-multitenant/internal/testimage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// releasePlatform is a platform with the admin API, a write API key and
// a template whose sites may share their volume, so that their releases
// start beside the live container.
type releasePlatform struct {
	*adminPlatform
	shared *tenants.Template
}

func newReleasePlatform(t *testing.T, moreTenants string) *releasePlatform {
	t.Helper()
	ctx := context.Background()
	tp := newPlatform(t, platformOptions{Tenants: moreTenants,
		Sites: fmt.Sprintf("http://%s:{HTTP_PORT} {\n\ttenant_admin\n}", adminHost)})
	p := &releasePlatform{adminPlatform: &adminPlatform{testPlatform: tp, pool: tp.store.Pool()}}
	var err error
	if p.token, _, err = p.store.CreateAPIKey(ctx, "e2e", "operator", tenants.ScopeWrite); err != nil {
		t.Fatal(err)
	}
	shared := *p.template
	shared.ID, shared.Slug, shared.Name, shared.ShareVolume = "", "shared", "Shared volume", true
	if err := p.store.CreateTemplate(ctx, "e2e", &shared); err != nil {
		t.Fatal(err)
	}
	p.shared = &shared
	return p
}

// runningSite creates a site at sub on the shared template and starts
// it with a first request.
func (p *releasePlatform) runningSite(sub string) *tenants.Site {
	p.t.Helper()
	s := &tenants.Site{CustomerID: p.customer.ID, TemplateID: p.shared.ID, Subdomain: sub, Env: map[string]string{"SITE_NAME": sub}}
	if err := p.store.CreateSite(context.Background(), "e2e", s); err != nil {
		p.t.Fatal(err)
	}
	eventually(p.t, 30*time.Second, "site "+sub+" serves", func() bool {
		st, body, _, err := p.tryGet(host(sub), "/", nil)
		return err == nil && st == http.StatusOK && body == "hello from "+sub
	})
	return s
}

// release is a release as the API answers it.
type release struct {
	Number      int                   `json:"number"`
	Kind        string                `json:"kind"`
	Status      string                `json:"status"`
	RollbackOf  *int                  `json:"rollback_of"`
	Outcome     string                `json:"outcome"`
	Log         string                `json:"log"`
	ContainerID string                `json:"container_id"`
	Changes     []tenants.FieldChange `json:"changes"`
	Spec        struct {
		Image string            `json:"image"`
		Env   map[string]string `json:"env"`
	} `json:"spec"`
}

// setEnv replaces the site's env through the API and returns the
// release the change made, as it ended.
func (p *releasePlatform) setEnv(siteID string, env map[string]string) release {
	p.t.Helper()
	var out struct {
		Release *release `json:"release"`
	}
	p.mustAPI("PATCH", "/api/v1/sites/"+siteID, map[string]any{"env": env}, 200, &out)
	if out.Release == nil {
		p.t.Fatalf("PATCH env %v made no release", env)
	}
	return *out.Release
}

func (p *releasePlatform) releases(siteID string) []release {
	p.t.Helper()
	var list struct {
		Items []release `json:"items"`
	}
	p.mustAPI("GET", "/api/v1/sites/"+siteID+"/releases", nil, 200, &list)
	return list.Items
}

// onlyContainer is the site's one container; the test fails when it has
// none or several.
func (p *releasePlatform) onlyContainer(siteID string) string {
	p.t.Helper()
	c := p.containers(siteID)
	if len(c) != 1 {
		p.t.Fatalf("site has %d containers, want 1: %+v", len(c), c)
	}
	return c[0].ID
}

// steadyResult is what a steady load saw.
type steadyResult struct {
	ok, failed int64
	failures   []string
	// runs are each worker's answers in order, repeats folded: a clean
	// switch from a to b reads [a b].
	runs [][]string
}

// steadyLoad is a load generator at a steady rate (see steady).
type steadyLoad struct {
	mu   sync.Mutex
	res  steadyResult
	seen map[string]bool // failures
	stop func() steadyResult
}

// answering reports whether every worker's last answer was body.
func (l *steadyLoad) answering(body string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.res.runs {
		if len(r) == 0 || r[len(r)-1] != body {
			return false
		}
	}
	return true
}

// steady sends GET / to host from workers goroutines, each one request
// every interval (a steady rate, not a flood), until stop is called.
// Anything but a 200 is a failure.
func (p *testPlatform) steady(host string, workers int, interval time.Duration) *steadyLoad {
	done := make(chan struct{})
	var wg sync.WaitGroup
	l := &steadyLoad{res: steadyResult{runs: make([][]string, workers)}, seen: map[string]bool{}}
	mu, res, seen := &l.mu, &l.res, l.seen
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(interval)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
				}
				st, body, _, err := p.tryGet(host, "/", nil)
				mu.Lock()
				if err != nil || st != http.StatusOK {
					res.failed++
					if f := fmt.Sprint(st, " ", err); !seen[f] {
						seen[f] = true
						res.failures = append(res.failures, f)
					}
				} else {
					res.ok++
					if r := res.runs[w]; len(r) == 0 || r[len(r)-1] != body {
						res.runs[w] = append(r, body)
					}
				}
				mu.Unlock()
			}
		}()
	}
	l.stop = func() steadyResult {
		close(done)
		wg.Wait()
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.res
	}
	return l
}

// A running site under steady load is redeployed with a changed env, then
// rolled back: not one request fails, and every client sees the answer
// switch from the old to the new version once, and back once.
func TestRolloutAndRollbackUnderLoad(t *testing.T) {
	t.Parallel()
	p := newReleasePlatform(t, "")
	s := p.runningSite("roll")
	oldBody, newBody := "hello from roll", "hello from roll-v2"

	load := p.steady(host("roll"), 4, 10*time.Millisecond)
	eventually(t, 30*time.Second, "every client has the old version", func() bool { return load.answering(oldBody) })
	r := p.setEnv(s.ID, map[string]string{"SITE_NAME": "roll-v2"})
	if r.Status != tenants.ReleaseLive || r.Kind != tenants.KindChange || !contains(r.Outcome, "beside the live container") {
		t.Fatalf("release of the change: %+v", r)
	}
	if len(r.Changes) != 1 || r.Changes[0].Field != "env.SITE_NAME" || *r.Changes[0].Before != tenants.Masked || *r.Changes[0].After != tenants.Masked {
		t.Fatalf("changes of the release, secrets masked: %+v", r.Changes)
	}
	if st, body, _ := p.get(host("roll"), "/", nil); st != http.StatusOK || body != newBody {
		t.Fatalf("after the rollout: %d %q", st, body)
	}
	eventually(t, 30*time.Second, "every client has the new version", func() bool { return load.answering(newBody) })
	var back release
	p.mustAPI("POST", "/api/v1/sites/"+s.ID+"/rollback", nil, 200, &back)
	if back.Status != tenants.ReleaseLive || back.Kind != tenants.KindRollback || back.RollbackOf == nil || *back.RollbackOf != 1 {
		t.Fatalf("rollback release: %+v", back)
	}
	eventually(t, 30*time.Second, "every client has the old version again", func() bool { return load.answering(oldBody) })
	res := load.stop()

	if res.failed != 0 {
		t.Fatalf("%d ok, %d failed during rollout and rollback: %v", res.ok, res.failed, res.failures)
	}
	for w, runs := range res.runs {
		if want := []string{oldBody, newBody, oldBody}; strings.Join(runs, "|") != strings.Join(want, "|") {
			t.Errorf("client %d saw %q, want %q", w, runs, want)
		}
	}
	p.onlyContainer(s.ID)
	statuses := map[int]string{}
	for _, r := range p.releases(s.ID) {
		statuses[r.Number] = r.Status
	}
	want := map[int]string{1: tenants.ReleaseSuperseded, 2: tenants.ReleaseRolledBack, 3: tenants.ReleaseLive}
	if fmt.Sprint(statuses) != fmt.Sprint(want) {
		t.Fatalf("release statuses %v, want %v", statuses, want)
	}
	var site struct {
		Env map[string]string `json:"env"`
	}
	p.mustAPI("GET", "/api/v1/sites/"+s.ID, nil, 200, &site)
	if site.Env["SITE_NAME"] != "roll" {
		t.Fatalf("the rollback did not restore the site's env: %v", site.Env)
	}
}

// A release whose container never becomes ready (it exits before it
// listens): the old container serves throughout, the release is failed
// with the container's last lines, and no container is left behind.
func TestReleaseNeverReady(t *testing.T) {
	t.Parallel()
	p := newReleasePlatform(t, "")
	s := p.runningSite("stuck")
	before := p.onlyContainer(s.ID)

	load := p.steady(host("stuck"), 2, 10*time.Millisecond)
	eventually(t, 30*time.Second, "every client is answered", func() bool { return load.answering("hello from stuck") })
	r := p.setEnv(s.ID, map[string]string{"SITE_NAME": "stuck", "EXIT_AT_START": "1s"})
	res := load.stop()

	if r.Status != tenants.ReleaseFailed || !contains(r.Outcome, "did not become ready") || !contains(r.Log, "EXIT_AT_START is set") {
		t.Fatalf("release: %+v", r)
	}
	if res.failed != 0 || res.ok == 0 {
		t.Fatalf("%d ok, %d failed while the release failed: %v", res.ok, res.failed, res.failures)
	}
	for w, runs := range res.runs {
		if len(runs) != 1 || runs[0] != "hello from stuck" {
			t.Errorf("client %d saw %q", w, runs)
		}
	}
	if after := p.onlyContainer(s.ID); after != before {
		t.Fatalf("container %s replaced by %s", before, after)
	}
	var shown release
	p.mustAPI("GET", fmt.Sprintf("/api/v1/sites/%s/releases/%d", s.ID, r.Number), nil, 200, &shown)
	if shown.Status != tenants.ReleaseFailed || !contains(shown.Log, "EXIT_AT_START is set") {
		t.Fatalf("release shown: %+v", shown)
	}
	// The site runs the release that was live, also from a new start.
	if err := p.docker.ContainerRestart(context.Background(), before, container.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the site serves its live release after a restart", func() bool {
		st, body, _, err := p.tryGet(host("stuck"), "/", nil)
		return err == nil && st == http.StatusOK && body == "hello from stuck"
	})
}

// A WebSocket open on the old container survives the switch: it echoes
// after new requests reach the new container, and the old container is
// removed once it closes. One that stays open is cut when the drain
// timeout passes.
func TestWebSocketSurvivesRollout(t *testing.T) {
	t.Parallel()
	p := newReleasePlatform(t, "drain_timeout 5s")
	s := p.runningSite("ws")
	old := p.onlyContainer(s.ID)

	conn := p.openUpgraded(host("ws"))
	patched := make(chan release, 1)
	go func() { patched <- p.setEnv(s.ID, map[string]string{"SITE_NAME": "ws-v2"}) }()
	eventually(t, 30*time.Second, "new requests reach the new container", func() bool {
		st, body, _, err := p.tryGet(host("ws"), "/", nil)
		return err == nil && st == http.StatusOK && body == "hello from ws-v2"
	})
	echoes(t, conn, "WebSocket on the old container after the switch")
	conn.Close()
	r := <-patched
	if r.Status != tenants.ReleaseLive || !contains(r.Outcome, "drained in") {
		t.Fatalf("release after the WebSocket closed: %+v", r)
	}
	if now := p.onlyContainer(s.ID); now == old {
		t.Fatal("the old container is still the site's")
	}

	conn = p.openUpgraded(host("ws"))
	r = p.setEnv(s.ID, map[string]string{"SITE_NAME": "ws-v3"})
	if r.Status != tenants.ReleaseLive || !contains(r.Outcome, "still had requests or connections open") {
		t.Fatalf("release with a WebSocket left open: %+v", r)
	}
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatalf("the WebSocket left open past the drain timeout: %v", err)
	}
	p.onlyContainer(s.ID)
}

// A build context (the test server, compiled here, FROM scratch) goes from
// tarball to serving through the API's deploy, its build log streamed;
// the CLI deploys a directory, leaving out what .dockerignore says; a
// broken Dockerfile is a failed release with the build's error.
func TestDeployFromSource(t *testing.T) {
	t.Parallel()
	p := newReleasePlatform(t, "")
	s := p.runningSite("src")
	t.Cleanup(func() { p.removeImages(s.ID) })
	dir := t.TempDir()
	if _, err := testimage.CompileServer(context.Background(), dir); err != nil {
		t.Fatal(err)
	}

	events := p.deploy(s.ID, buildContext(t, dir, testimage.Dockerfile+"ENV BUILT_FROM=source\n"))
	last := events[len(events)-1]
	if last.name != "release" || !contains(strings.Join(eventData(events, "log"), "\n"), "Step 1/") {
		t.Fatalf("deploy events: %+v", events)
	}
	var r release
	if err := json.Unmarshal([]byte(last.data), &r); err != nil {
		t.Fatal(err)
	}
	if r.Status != tenants.ReleaseLive || r.Kind != tenants.KindDeploy || !contains(r.Spec.Image, ":r") {
		t.Fatalf("deployed release: %+v", r)
	}
	var env map[string]string
	if st, body, _ := p.get(host("src"), "/env", nil); st != http.StatusOK || json.Unmarshal([]byte(body), &env) != nil || env["BUILT_FROM"] != "source" {
		t.Fatalf("after the deploy: %d %q", st, body)
	}
	if c := p.containers(s.ID); len(c) != 1 || c[0].Image != r.Spec.Image {
		t.Fatalf("containers after the deploy: %+v, want one of %s", c, r.Spec.Image)
	}

	broken := p.deploy(s.ID, buildContext(t, dir, "FROM scratch\nCOPY missing-file /missing-file\n"))
	if err := json.Unmarshal([]byte(broken[len(broken)-1].data), &r); err != nil {
		t.Fatal(err)
	}
	if r.Status != tenants.ReleaseFailed || !contains(r.Log, "missing-file") {
		t.Fatalf("release of a broken Dockerfile: %+v", r)
	}
	if st, body, _ := p.get(host("src"), "/env", nil); st != http.StatusOK || !contains(body, "BUILT_FROM") {
		t.Fatalf("after the failed build: %d %q", st, body)
	}

	// The CLI: COPY . takes the whole directory but what is ignored.
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY . /app/\nEXPOSE 8080\nENTRYPOINT [\"/app/server\"]\n"), 0o644)
	os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte("secret.txt\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("left out"), 0o644)
	os.WriteFile(filepath.Join(dir, "kept.txt"), []byte("taken"), 0o644)
	c := &cli{t: t, schema: p.schema, dsn: p.opts.DatabaseURL}
	out := c.ok("sites", "deploy", "src", dir)
	if !contains(out, "Step 1/") || !contains(out, "status:") || !contains(out, "live") {
		t.Fatalf("caddy tenants sites deploy:\n%s", out)
	}
	for path, want := range map[string]bool{"/app/kept.txt": true, "/app/secret.txt": false} {
		eventually(t, 30*time.Second, "the CLI's release serves", func() bool {
			st, body, _, err := p.tryGet(host("src"), "/probe/stat?path="+path, nil)
			var res testimage.ProbeResult
			return err == nil && st == http.StatusOK && json.Unmarshal([]byte(body), &res) == nil && res.OK == want
		})
	}
	if list := c.ok("sites", "releases", "src"); !contains(list, "deploy") || !contains(list, "failed") {
		t.Fatalf("caddy tenants sites releases:\n%s", list)
	}
}

type sseEvent struct{ name, data string }

// deploy uploads a build context and reads the event stream to its end.
func (p *releasePlatform) deploy(siteID string, body []byte) []sseEvent {
	p.t.Helper()
	req, err := http.NewRequest("POST", "http://"+p.caddy.HTTP+"/api/v1/sites/"+siteID+"/deploy", bytes.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	req.Host = adminHost
	req.Header.Set("Authorization", "Bearer "+p.token)
	req.Header.Set("Content-Type", "application/gzip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		p.t.Fatalf("deploy: %s %q", resp.Status, b)
	}
	var events []sseEvent
	var ev sseEvent
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			ev.data = strings.TrimPrefix(line, "data: ")
		case line == "":
			events = append(events, ev)
			ev = sseEvent{}
		}
	}
	if len(events) == 0 {
		p.t.Fatal("deploy: no events")
	}
	return events
}

func eventData(events []sseEvent, name string) []string {
	var out []string
	for _, e := range events {
		if e.name == name {
			out = append(out, e.data)
		}
	}
	return out
}

// buildContext is a tar.gz of dir's server with dockerfile.
func buildContext(t *testing.T, dir, dockerfile string) []byte {
	t.Helper()
	server, err := os.ReadFile(filepath.Join(dir, "server"))
	if err != nil {
		t.Fatal(err)
	}
	archive, err := testimage.Context(dockerfile, server, true)
	if err != nil {
		t.Fatal(err)
	}
	return archive
}

// removeImages removes the images built for the site.
func (p *releasePlatform) removeImages(siteID string) {
	ctx := context.Background()
	list, _ := p.docker.ImageList(ctx, image.ListOptions{})
	for _, img := range list {
		for _, tag := range img.RepoTags {
			if strings.Contains(tag, siteID) {
				p.docker.ImageRemove(ctx, img.ID, image.RemoveOptions{Force: true, PruneChildren: true})
				break
			}
		}
	}
}

// Caddy killed (SIGKILL) while a rollout waits for the new container, then
// started again: the half-done rollout is settled, and the site has
// exactly one container, serving.
func TestKillMidRollout(t *testing.T) {
	t.Parallel()
	p := newReleasePlatform(t, "")
	s := p.runningSite("killed")
	next := "tenant-" + p.schema + "-" + s.ID + "-next"

	patch, err := http.NewRequest("PATCH", "http://"+p.caddy.HTTP+"/api/v1/sites/"+s.ID,
		strings.NewReader(`{"env": {"SITE_NAME": "killed-v2", "LISTEN_DELAY": "5s"}}`))
	if err != nil {
		t.Fatal(err)
	}
	patch.Host = adminHost
	patch.Header.Set("Authorization", "Bearer "+p.token)
	patched := make(chan struct{})
	go func() {
		defer close(patched)
		// Caddy dies under this request; its answer does not matter.
		if resp, err := httpClient.Do(patch); err == nil {
			resp.Body.Close()
		}
	}()
	eventually(t, 30*time.Second, "the rollout's new container exists", func() bool {
		_, err := p.docker.ContainerInspect(context.Background(), next)
		return err == nil
	})
	p.caddy.Kill()
	<-patched
	p.caddy.Start()

	eventually(t, 60*time.Second, "one container left, serving", func() bool {
		st, body, _, err := p.tryGet(host("killed"), "/", nil)
		c := p.containers(s.ID)
		return err == nil && st == http.StatusOK && body == "hello from killed" && len(c) == 1 && c[0].State == "running"
	})
	var r release
	p.mustAPI("GET", "/api/v1/sites/"+s.ID+"/releases/2", nil, 200, &r)
	if r.Status != tenants.ReleaseFailed || !contains(r.Outcome, "interrupted") {
		t.Fatalf("the interrupted release: %+v", r)
	}
	// And the change goes out once asked again.
	if r := p.setEnv(s.ID, map[string]string{"SITE_NAME": "killed-v3"}); r.Status != tenants.ReleaseLive {
		t.Fatalf("the next release: %+v", r)
	}
	if st, body, _ := p.get(host("killed"), "/", nil); st != http.StatusOK || body != "hello from killed-v3" {
		t.Fatalf("after the next release: %d %q", st, body)
	}
	p.onlyContainer(s.ID)
}

// Node A rolls a site out while node B serves it under steady load: B
// follows to the new container when the release goes live (the change
// notification), A's drain waits for B's requests on the old one, and not
// one of B's requests fails.
func TestRolloutFollowedByOtherNode(t *testing.T) {
	t.Parallel()
	p := newReleasePlatform(t, "")
	b := p.node()
	s := p.runningSite("both")
	eventually(t, 30*time.Second, "B serves the site", func() bool {
		st, body, _, err := tryGetAt(b, host("both"), "/", nil)
		return err == nil && st == http.StatusOK && body == "hello from both"
	})
	bp := *p.testPlatform
	bp.caddy = b
	load := bp.steady(host("both"), 4, 10*time.Millisecond)
	eventually(t, 30*time.Second, "every client of B is answered", func() bool { return load.answering("hello from both") })
	eventually(t, 30*time.Second, "both nodes report the container they send the site's requests to", func() bool {
		var n int
		err := p.pool.QueryRow(context.Background(), `SELECT count(*) FROM site_activity WHERE site_id = $1 AND container_id <> ''`, s.ID).Scan(&n)
		return err == nil && n == 2
	})
	r := p.setEnv(s.ID, map[string]string{"SITE_NAME": "both-v2"})
	eventually(t, 30*time.Second, "every client of B has the new version", func() bool { return load.answering("hello from both-v2") })
	res := load.stop()
	if r.Status != tenants.ReleaseLive {
		t.Fatalf("release: %+v", r)
	}
	if res.failed != 0 {
		t.Fatalf("through B: %d ok, %d failed across A's rollout: %v", res.ok, res.failed, res.failures)
	}
	for w, runs := range res.runs {
		if want := []string{"hello from both", "hello from both-v2"}; strings.Join(runs, "|") != strings.Join(want, "|") {
			t.Errorf("client %d of B saw %q, want %q", w, runs, want)
		}
	}
	if !contains(b.Logs(), "following the site's rollout") {
		t.Error("B did not follow the rollout when it went live")
	}
	p.onlyContainer(s.ID)
}
