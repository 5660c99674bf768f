package provisioner

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/internal/testimage"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"
)

var (
	dockerOnce sync.Once
	dockerCli  *client.Client
	dockerErr  error
)

// docker returns a shared client for the real engine, failing (never
// skipping) the test if the engine is unreachable.
func docker(t testing.TB) *client.Client {
	t.Helper()
	dockerOnce.Do(func() {
		dockerCli, dockerErr = client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
		if dockerErr == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, dockerErr = dockerCli.Ping(ctx)
			// Negotiate before the client is shared by parallel tests.
			dockerCli.NegotiateAPIVersion(ctx)
		}
	})
	if dockerErr != nil {
		t.Fatalf("docker engine unavailable (these tests need one): %v", dockerErr)
	}
	return dockerCli
}

func randID(prefix string) string {
	var b [6]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// newProv returns a started provisioner on a fresh namespace whose
// containers and volumes are removed when the test ends.
func newProv(t *testing.T, mod func(*Config)) *Provisioner {
	t.Helper()
	cli := docker(t)
	testimage.Build(t, testimage.DefaultTag)
	cfg := Config{
		Client:       cli,
		Namespace:    randID("t"),
		StartTimeout: 30 * time.Second,
		StopTimeout:  2 * time.Second,
		Logger:       zaptest.NewLogger(t),
	}
	if mod != nil {
		mod(&cfg)
	}
	cleanupNamespace(t, cfg.Namespace)
	return startProv(t, cfg)
}

func startProv(t *testing.T, cfg Config) *Provisioner {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop() })
	return p
}

// cleanupNamespace removes every container, volume and network labeled
// with ns at the end of the test.
func cleanupNamespace(t *testing.T, ns string) {
	cli := docker(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		f := filters.NewArgs(filters.Arg("label", LabelNamespace+"="+ns))
		cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
		if err != nil {
			t.Errorf("cleanup: listing containers: %v", err)
		}
		for _, c := range cs {
			if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
				t.Errorf("cleanup: removing container: %v", err)
			}
		}
		vs, err := cli.VolumeList(ctx, volume.ListOptions{Filters: f})
		if err != nil {
			t.Errorf("cleanup: listing volumes: %v", err)
		}
		for _, v := range vs.Volumes {
			if err := cli.VolumeRemove(ctx, v.Name, true); err != nil {
				t.Errorf("cleanup: removing volume: %v", err)
			}
		}
		ns, err := cli.NetworkList(ctx, network.ListOptions{Filters: f})
		if err != nil {
			t.Errorf("cleanup: listing networks: %v", err)
		}
		for _, n := range ns {
			if err := cli.NetworkRemove(ctx, n.ID); err != nil {
				t.Errorf("cleanup: removing network %s: %v", n.Name, err)
			}
		}
	})
}

func testSpec(siteID string, env ...string) Spec {
	s := Spec{
		SiteID:          siteID,
		Image:           testimage.DefaultTag,
		Port:            8080,
		Env:             map[string]string{"SITE_NAME": "site-" + siteID, "DATA_DIR": "/data"},
		DataPath:        "/data",
		TemplateSlug:    "test",
		TemplateVersion: 1,
	}
	for i := 0; i+1 < len(env); i += 2 {
		s.Env[env[i]] = env[i+1]
	}
	return s
}

func ensure(t *testing.T, p *Provisioner, spec Spec) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, err := p.Ensure(ctx, spec)
	if err != nil {
		t.Fatalf("ensure %s: %v", spec.SiteID, err)
	}
	return u
}

func do(t *testing.T, method, url string, body io.Reader) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func get(t *testing.T, upstream, path string) string {
	t.Helper()
	code, body := do(t, http.MethodGet, "http://"+upstream+path, nil)
	if code != http.StatusOK {
		t.Fatalf("GET %s%s: status %d: %s", upstream, path, code, body)
	}
	return body
}

func siteContainers(t *testing.T, ns, siteID string) []container.Summary {
	t.Helper()
	f := filters.NewArgs(filters.Arg("label", LabelNamespace+"="+ns), filters.Arg("label", LabelSite+"="+siteID))
	cs, err := docker(t).ContainerList(context.Background(), container.ListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func inspect(t *testing.T, id string) container.InspectResponse {
	t.Helper()
	c, err := docker(t).ContainerInspect(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metricValue sums the values of a counter or gauge collector (without
// prometheus/testutil, whose dependencies are not in go.mod).
func metricValue(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}
