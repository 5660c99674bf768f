package tenants

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"
)

// catalogJSON is the built-in template catalog: ready templates for the
// kinds of sites small customers need, each one container with a volume.
//
//go:embed catalog.json
var catalogJSON []byte

// TemplateFile is the format of a template catalog, and of `caddy tenants
// templates export`: {"templates": [...]}. On import, ids, versions and
// timestamps in it are ignored; templates are matched by slug.
type TemplateFile struct {
	Templates []Template `json:"templates"`
}

// Catalog returns the built-in templates.
func Catalog() ([]Template, error) {
	list, err := ParseTemplates(catalogJSON)
	if err != nil {
		return nil, fmt.Errorf("built-in catalog: %w", err)
	}
	return list, nil
}

// ParseTemplates decodes a TemplateFile strictly (unknown members are
// errors) and validates every template in it; slugs must be unique.
func ParseTemplates(data []byte) ([]Template, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f TemplateFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("decoding templates: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("decoding templates: unexpected data after the JSON object")
	}
	seen := map[string]bool{}
	for i := range f.Templates {
		t := &f.Templates[i]
		t.ID, t.Version = "", 0
		t.CreatedAt, t.UpdatedAt = time.Time{}, time.Time{}
		if err := validateTemplate(t); err != nil {
			return nil, fmt.Errorf("template %d (%q): %w", i+1, t.Slug, err)
		}
		if seen[t.Slug] {
			return nil, fmt.Errorf("template %d: slug %q appears twice", i+1, t.Slug)
		}
		seen[t.Slug] = true
	}
	return f.Templates, nil
}

// ImportResult lists the slugs an import created, updated or left alone.
type ImportResult struct {
	Created, Updated, Unchanged []string
}

// ImportTemplates creates the templates whose slug is new and updates the
// others (bumping their version) when anything differs. Every template is
// validated before anything is written; each write is its own audited
// transaction.
func (s *Store) ImportTemplates(ctx context.Context, actor string, list []Template) (ImportResult, error) {
	var res ImportResult
	for i := range list {
		if err := s.validateTemplate(&list[i]); err != nil {
			return res, fmt.Errorf("template %q: %w", list[i].Slug, err)
		}
	}
	for _, t := range list {
		t := t
		cur, err := s.GetTemplateBySlug(ctx, t.Slug)
		switch {
		case errors.Is(err, ErrNotFound):
			if err := s.CreateTemplate(ctx, actor, &t); err != nil {
				return res, fmt.Errorf("creating template %q: %w", t.Slug, err)
			}
			res.Created = append(res.Created, t.Slug)
			continue
		case err != nil:
			return res, err
		}
		if sameTemplate(cur, &t) {
			res.Unchanged = append(res.Unchanged, t.Slug)
			continue
		}
		t.ID = cur.ID
		if err := s.UpdateTemplate(ctx, actor, &t); err != nil {
			return res, fmt.Errorf("updating template %q: %w", t.Slug, err)
		}
		res.Updated = append(res.Updated, t.Slug)
	}
	return res, nil
}

// sameTemplate compares the fields an import sets.
func sameTemplate(a, b *Template) bool {
	return a.Slug == b.Slug && a.Name == b.Name && a.Description == b.Description && a.Image == b.Image &&
		a.Port == b.Port && maps.Equal(nonNilEnv(a.Env), nonNilEnv(b.Env)) && a.DataPath == b.DataPath &&
		a.HealthPath == b.HealthPath && a.MemoryBytes == b.MemoryBytes && a.NanoCPUs == b.NanoCPUs &&
		a.PidsLimit == b.PidsLimit && slices.Equal(nonNilStrings(a.CapAdd), nonNilStrings(b.CapAdd)) &&
		a.User == b.User && a.ReadOnly == b.ReadOnly && equalOptionalBool(a.Egress, b.Egress) && a.ShareVolume == b.ShareVolume &&
		a.HealthIntervalMs == b.HealthIntervalMs && a.UnhealthyAfter == b.UnhealthyAfter && a.RestartAfter == b.RestartAfter &&
		a.ServeStale == b.ServeStale && a.MaxReplicas == b.MaxReplicas && a.TargetConcurrency == b.TargetConcurrency
}

func equalOptionalBool(a, b *bool) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// SeedCatalog imports the built-in catalog into a store that has no
// templates yet, and reports how many it created; a store with templates
// is left alone.
func (s *Store) SeedCatalog(ctx context.Context, actor string) (int, error) {
	c, err := s.Count(ctx)
	if err != nil || c.Templates > 0 {
		return 0, err
	}
	list, err := Catalog()
	if err != nil {
		return 0, err
	}
	res, err := s.ImportTemplates(ctx, actor, list)
	return len(res.Created), err
}
