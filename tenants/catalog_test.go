package tenants

import (
	"context"
	"strings"
	"testing"

	"github.com/distribution/reference"
)

// Every catalog template is complete, pinned, limited and accepted by the
// store; importing twice changes nothing, and a changed entry is updated
// in place.
func TestCatalog(t *testing.T) {
	t.Parallel()
	list, err := Catalog()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) < 10 {
		t.Fatalf("%d templates in the catalog, want at least 10", len(list))
	}
	for _, tpl := range list {
		ref, err := reference.ParseNormalizedNamed(tpl.Image)
		if err != nil {
			t.Errorf("%s: image %q: %v", tpl.Slug, tpl.Image, err)
			continue
		}
		tagged, ok := ref.(reference.Tagged)
		if !ok || tagged.Tag() == "latest" || !strings.ContainsAny(tagged.Tag(), "0123456789") {
			t.Errorf("%s: image %q is not pinned to a version tag", tpl.Slug, tpl.Image)
		}
		switch {
		case tpl.Name == "" || len(tpl.Description) < 20:
			t.Errorf("%s: needs a name and a description", tpl.Slug)
		case tpl.DataPath == "":
			t.Errorf("%s: no data path: site data would not survive a recreate", tpl.Slug)
		case tpl.MemoryBytes < 32<<20 || tpl.NanoCPUs <= 0 || tpl.PidsLimit < 32:
			t.Errorf("%s: limits memory=%d cpus=%d pids=%d are missing or too small", tpl.Slug, tpl.MemoryBytes, tpl.NanoCPUs, tpl.PidsLimit)
		case tpl.HealthPath == "" && !strings.Contains(tpl.Description, "Readiness is the port"):
			t.Errorf("%s: no health path and the description does not say readiness is the port", tpl.Slug)
		}
		for _, c := range tpl.CapAdd {
			if c == "SYS_ADMIN" || c == "NET_ADMIN" || c == "SYS_PTRACE" {
				t.Errorf("%s: capability %s is too broad for a tenant", tpl.Slug, c)
			}
		}
	}

	s, _ := newTestStore(t)
	ctx := context.Background()
	res, err := s.ImportTemplates(ctx, "test", list)
	if err != nil || len(res.Created) != len(list) {
		t.Fatalf("first import: %+v %v", res, err)
	}
	for _, want := range list {
		got, err := s.GetTemplateBySlug(ctx, want.Slug)
		if err != nil || got.Image != want.Image || got.Port != want.Port || got.Version != 1 {
			t.Fatalf("stored %s: %+v %v", want.Slug, got, err)
		}
	}
	list, _ = Catalog()
	res, err = s.ImportTemplates(ctx, "test", list)
	if err != nil || len(res.Unchanged) != len(list) || len(res.Created)+len(res.Updated) != 0 {
		t.Fatalf("second import: %+v %v", res, err)
	}
	list[0].Image = "nginxinc/nginx-unprivileged:1.27.4-alpine"
	res, err = s.ImportTemplates(ctx, "test", list)
	if err != nil || len(res.Updated) != 1 || res.Updated[0] != list[0].Slug {
		t.Fatalf("import of a change: %+v %v", res, err)
	}
	got, _ := s.GetTemplateBySlug(ctx, list[0].Slug)
	if got.Version != 2 || got.Image != list[0].Image {
		t.Fatalf("updated template: %+v", got)
	}
	c, _ := s.Count(ctx)
	if c.Templates != int64(len(list)) {
		t.Fatalf("%d templates after three imports of %d", c.Templates, len(list))
	}
}

func TestParseTemplatesRejects(t *testing.T) {
	t.Parallel()
	for name, in := range map[string]string{
		"unknown member": `{"templates":[{"slug":"a","name":"A","image":"nginx:1","port":80,"colour":"red"}]}`,
		"invalid port":   `{"templates":[{"slug":"a","name":"A","image":"nginx:1","port":0}]}`,
		"duplicate slug": `{"templates":[{"slug":"a","name":"A","image":"nginx:1","port":80},{"slug":"a","name":"B","image":"nginx:1","port":80}]}`,
		"trailing data":  `{"templates":[]} x`,
	} {
		if _, err := ParseTemplates([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
