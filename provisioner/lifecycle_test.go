package provisioner

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/volume"
)

func TestCrashWhileRunningIsNoticed(t *testing.T) {
	t.Parallel()
	p := newProv(t, nil)
	site := randID("s")
	up := ensure(t, p, testSpec(site))
	// The process exits mid-request; the reply may or may not make it.
	req, _ := http.NewRequest(http.MethodPost, "http://"+up+"/exit?code=7", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	waitFor(t, 5*time.Second, "the die event to hide the upstream", func() bool { _, ok := p.Upstream(site); return !ok })
	if rt := p.Status(site); rt.State != StateStopped {
		t.Errorf("state after crash = %s", rt.State)
	}
	up = ensure(t, p, testSpec(site))
	if got := get(t, up, "/"); got != "hello from site-"+site {
		t.Fatalf("GET / after restart = %q", got)
	}
	if n := p.dockerStarts.Load(); n != 2 {
		t.Errorf("%d starts, want 2", n)
	}
}

func TestLogs(t *testing.T) {
	t.Parallel()
	p := newProv(t, nil)
	site := randID("s")
	up := ensure(t, p, testSpec(site))
	get(t, up, "/env?marker=logtest")
	var out string
	waitFor(t, 5*time.Second, "the request in the logs", func() bool {
		rc, err := p.Logs(context.Background(), site, 10, false)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, _ := io.ReadAll(rc)
		out = string(b)
		return strings.Contains(out, "GET /env?marker=logtest")
	})
	if !strings.Contains(out, "listening on :8080") {
		t.Errorf("logs = %q", out)
	}

	// Following ends when the reader is closed.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := p.Logs(ctx, site, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := rc.Read(buf); err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestRemoveSitePurgesVolume(t *testing.T) {
	t.Parallel()
	p := newProv(t, nil)
	site, other := randID("s"), randID("o")
	ensure(t, p, testSpec(site))
	ensure(t, p, testSpec(other))
	if err := p.RemoveSite(context.Background(), site, false); err != nil {
		t.Fatal(err)
	}
	if cs := siteContainers(t, p.cfg.Namespace, site); len(cs) != 0 {
		t.Fatalf("%d containers after remove", len(cs))
	}
	vols := func() int {
		vs, err := docker(t).VolumeList(context.Background(), volume.ListOptions{
			Filters: filters.NewArgs(filters.Arg("name", volumeName(p.cfg.Namespace, site)))})
		if err != nil {
			t.Fatal(err)
		}
		return len(vs.Volumes)
	}
	if vols() != 1 {
		t.Fatal("volume removed without purge")
	}
	if err := p.RemoveSite(context.Background(), site, true); err != nil {
		t.Fatal(err)
	}
	if vols() != 0 {
		t.Fatal("volume kept after purge")
	}
	if _, ok := p.Upstream(other); !ok {
		t.Fatal("removing one site stopped another")
	}
}

func TestMissingImageIsAClearError(t *testing.T) {
	t.Parallel()
	p := newProv(t, nil)
	spec := testSpec(randID("s"))
	spec.Image = "caddy-multitenant-missing.invalid/nope:1"
	_, err := p.Ensure(context.Background(), spec)
	var se *StartError
	if !errors.As(err, &se) || se.Reason != "pulling image" || !strings.Contains(se.Error(), spec.Image) {
		t.Fatalf("err = %v, want a pull StartError", err)
	}
	if n := p.dockerStarts.Load(); n != 0 {
		t.Errorf("%d starts", n)
	}
}
