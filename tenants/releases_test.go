package tenants

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// A release's changes name each field that differs; env values are
// masked unless their name is known to hold no secret.
func TestDiffSpecsMasksSecrets(t *testing.T) {
	t.Parallel()
	before := ReleaseSpec{TemplateSlug: "static", TemplateVersion: 1, Image: "a:1", Port: 80,
		Env: map[string]string{"API_KEY": "s3cret", "LOG_LEVEL": "info", "GONE": "x"}}
	after := before
	after.Image, after.TemplateVersion = "a:2", 2
	after.Env = map[string]string{"API_KEY": "n3w", "LOG_LEVEL": "debug", "NEW": "y"}
	got := map[string][2]string{}
	for _, c := range DiffSpecs(before, after) {
		var b, a string
		if c.Before != nil {
			b = *c.Before
		}
		if c.After != nil {
			a = *c.After
		}
		got[c.Field] = [2]string{b, a}
	}
	want := map[string][2]string{
		"template":      {"static v1", "static v2"},
		"image":         {"a:1", "a:2"},
		"env.API_KEY":   {Masked, Masked},
		"env.LOG_LEVEL": {"info", "debug"},
		"env.GONE":      {Masked, ""},
		"env.NEW":       {"", Masked},
	}
	if len(got) != len(want) {
		t.Fatalf("changes %v, want %v", got, want)
	}
	for f, w := range want {
		if got[f] != w {
			t.Errorf("%s: %q, want %q", f, got[f], w)
		}
	}
	for _, v := range got {
		if strings.Contains(v[0]+v[1], "s3cret") || strings.Contains(v[0]+v[1], "n3w") {
			t.Fatalf("a secret shows: %v", got)
		}
	}
	if !before.Equal(before) || before.Equal(after) {
		t.Fatal("Equal")
	}
	if m := MaskSpec(after); m.Env["API_KEY"] != Masked || m.Env["LOG_LEVEL"] != "debug" || after.Env["API_KEY"] != "n3w" {
		t.Fatalf("MaskSpec: %v (the original: %v)", m.Env, after.Env)
	}
}

// Releases of a site take consecutive numbers after a baseline; one is
// live at a time, the one before it superseded (or rolled back by a
// rollback), and the route runs the live one's spec.
func TestReleasesLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newTestStore(t)
	_, _, site := fixture(t, s)
	route, err := s.SiteRoute(ctx, site.ID)
	if err != nil {
		t.Fatal(err)
	}
	if route.Live != nil || route.Spec().Image != "nginx:1.27" {
		t.Fatalf("a site without releases runs its template: %+v", route.Spec())
	}
	changed := route.Derived()
	changed.Env = map[string]string{"A": "2"}
	r2, err := s.RecordRelease(ctx, "test", site.ID, NewRelease{Kind: KindChange, Spec: changed, Source: route.Source(),
		Baseline: &Release{Spec: route.Derived(), Source: route.Source()}})
	if err != nil {
		t.Fatal(err)
	}
	if r2.Number != 2 || r2.Status != ReleasePending || len(r2.Changes) != 1 || r2.Changes[0].Field != "env.A" {
		t.Fatalf("release 2: %+v", r2)
	}
	if newer, err := s.Superseded(ctx, site.ID, 1); err != nil || !newer {
		t.Fatalf("Superseded(1) = %v, %v", newer, err)
	}
	if err := s.GoLive(ctx, site.ID, 2, "c2", "served"); err != nil {
		t.Fatal(err)
	}
	if route, err = s.SiteRoute(ctx, site.ID); err != nil || route.LiveRelease != 2 || route.Spec().Env["A"] != "2" {
		t.Fatalf("route after release 2: %+v, %v", route, err)
	}
	one := 1
	r3, err := s.RecordRelease(ctx, "test", site.ID, NewRelease{Kind: KindRollback, RollbackOf: &one, Spec: route.Derived(), Source: route.Source()})
	if err != nil || r3.Number != 3 {
		t.Fatalf("release 3: %+v, %v", r3, err)
	}
	if err := s.GoLive(ctx, site.ID, 3, "c3", "served"); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishRelease(ctx, site.ID, 3, ReleaseFailed, "too late", ""); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListReleases(ctx, site.ID, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var statuses []string
	for _, r := range list {
		statuses = append(statuses, r.Status)
	}
	if got := strings.Join(statuses, " "); got != "live rolled_back superseded" {
		t.Fatalf("statuses newest first: %s", got)
	}
	if _, err := s.GetRelease(ctx, site.ID, 9); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetRelease(9): %v", err)
	}
	if page, err := s.ListReleases(ctx, site.ID, 3, 1); err != nil || len(page) != 1 || page[0].Number != 2 {
		t.Fatalf("the page before 3: %+v, %v", page, err)
	}
}
