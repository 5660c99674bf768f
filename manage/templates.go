package manage

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"

	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

// TemplateInput is what a new template is made of.
type TemplateInput struct {
	Slug        string            `json:"slug"`
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	Image       string            `json:"image"`
	Port        int               `json:"port"`
	Env         map[string]string `json:"env,omitempty"`
	DataPath    string            `json:"data_path,omitempty"`
	HealthPath  string            `json:"health_path,omitempty"`
	MemoryBytes int64             `json:"memory_bytes,omitempty"`
	NanoCPUs    int64             `json:"nano_cpus,omitempty"`
	PidsLimit   int64             `json:"pids_limit,omitempty"`
	CapAdd      []string          `json:"cap_add,omitempty"`
	User        string            `json:"user,omitempty"`
	ReadOnly    bool              `json:"read_only,omitempty"`
	Egress      *bool             `json:"egress,omitempty"`
	// ShareVolume says two containers of a site may use its volume at
	// once: a release then starts beside the live container instead of
	// after it stopped.
	ShareVolume bool `json:"share_volume,omitempty"`
	// HealthIntervalMs, UnhealthyAfter and RestartAfter shape the checks
	// of running sites' health path (see tenants.Template); 0 takes the
	// defaults: every 30s, unhealthy after 3 failures in a row, restarted
	// after 5.
	HealthIntervalMs int `json:"health_interval_ms,omitempty"`
	UnhealthyAfter   int `json:"unhealthy_after,omitempty"`
	RestartAfter     int `json:"restart_after,omitempty"`
	// ServeStale makes the template's sites answer cacheable GETs with
	// their last good responses while they start (a site may override
	// it).
	ServeStale bool `json:"serve_stale,omitempty"`
	// MaxReplicas is the most replicas of a site on the template, 1 to
	// 64 (a plan may cap it lower); absent: 1, no scaling.
	MaxReplicas int `json:"max_replicas,omitempty"`
	// TargetConcurrency is the in-flight requests per replica the
	// autoscaler aims for, 1 to 10000; absent: 10.
	TargetConcurrency int `json:"target_concurrency,omitempty"`
}

func (in *TemplateInput) template() *tenants.Template {
	return &tenants.Template{Slug: in.Slug, Name: in.Name, Description: in.Description, Image: in.Image,
		Port: in.Port, Env: in.Env, DataPath: in.DataPath, HealthPath: in.HealthPath,
		MemoryBytes: in.MemoryBytes, NanoCPUs: in.NanoCPUs, PidsLimit: in.PidsLimit, CapAdd: in.CapAdd,
		User: in.User, ReadOnly: in.ReadOnly, Egress: in.Egress, ShareVolume: in.ShareVolume,
		HealthIntervalMs: in.HealthIntervalMs, UnhealthyAfter: in.UnhealthyAfter, RestartAfter: in.RestartAfter,
		ServeStale: in.ServeStale, MaxReplicas: in.MaxReplicas, TargetConcurrency: in.TargetConcurrency}
}

// TemplatePatch changes the given fields of a template. Env and cap_add
// replace the whole map or list. Every update bumps the template's
// version, and is a release of every site on it whose container it
// changes, rolled out at once.
type TemplatePatch struct {
	Slug        *string            `json:"slug,omitempty"`
	Name        *string            `json:"name,omitempty"`
	Description *string            `json:"description,omitempty"`
	Image       *string            `json:"image,omitempty"`
	Port        *int               `json:"port,omitempty"`
	Env         *map[string]string `json:"env,omitempty"`
	DataPath    *string            `json:"data_path,omitempty"`
	HealthPath  *string            `json:"health_path,omitempty"`
	MemoryBytes *int64             `json:"memory_bytes,omitempty"`
	NanoCPUs    *int64             `json:"nano_cpus,omitempty"`
	PidsLimit   *int64             `json:"pids_limit,omitempty"`
	CapAdd      *[]string          `json:"cap_add,omitempty"`
	User        *string            `json:"user,omitempty"`
	ReadOnly    *bool              `json:"read_only,omitempty"`
	// Egress is true, false, or null for the platform's default.
	Egress      Nullable[bool] `json:"egress,omitzero"`
	ShareVolume *bool          `json:"share_volume,omitempty"`
	// Health monitoring applies at each site's next start.
	HealthIntervalMs *int `json:"health_interval_ms,omitempty"`
	UnhealthyAfter   *int `json:"unhealthy_after,omitempty"`
	RestartAfter     *int `json:"restart_after,omitempty"`
	// ServeStale applies at once; it does not change the container.
	ServeStale *bool `json:"serve_stale,omitempty"`
	// MaxReplicas (1 to 64) and TargetConcurrency (1 to 10000) are read
	// at the autoscaler's next decision; nothing of the container
	// depends on them (though, as every update, they bump the version).
	MaxReplicas       *int `json:"max_replicas,omitempty"`
	TargetConcurrency *int `json:"target_concurrency,omitempty"`
}

// check refuses what apply cannot tell from a field left out: a
// template's scaling settings of 0 (the store takes 0 for the default).
func (p *TemplatePatch) check() error {
	if p.MaxReplicas != nil && *p.MaxReplicas < 1 {
		return invalid("max_replicas", "must be from 1 to %d", tenants.MaxReplicas)
	}
	if p.TargetConcurrency != nil && *p.TargetConcurrency < 1 {
		return invalid("target_concurrency", "must be from 1 to %d", tenants.MaxTargetConcurrency)
	}
	return nil
}

func (p *TemplatePatch) apply(t *tenants.Template) {
	set(&t.Slug, p.Slug)
	set(&t.Name, p.Name)
	set(&t.Description, p.Description)
	set(&t.Image, p.Image)
	set(&t.Port, p.Port)
	set(&t.Env, p.Env)
	set(&t.DataPath, p.DataPath)
	set(&t.HealthPath, p.HealthPath)
	set(&t.MemoryBytes, p.MemoryBytes)
	set(&t.NanoCPUs, p.NanoCPUs)
	set(&t.PidsLimit, p.PidsLimit)
	set(&t.CapAdd, p.CapAdd)
	set(&t.User, p.User)
	set(&t.ReadOnly, p.ReadOnly)
	set(&t.ShareVolume, p.ShareVolume)
	set(&t.HealthIntervalMs, p.HealthIntervalMs)
	set(&t.UnhealthyAfter, p.UnhealthyAfter)
	set(&t.RestartAfter, p.RestartAfter)
	set(&t.ServeStale, p.ServeStale)
	set(&t.MaxReplicas, p.MaxReplicas)
	set(&t.TargetConcurrency, p.TargetConcurrency)
	if p.Egress.Set {
		t.Egress = p.Egress.Value
	}
}

// Nullable is a patch member that may be set to null: Set tells a member
// given (Value nil for null) from one left out.
type Nullable[T any] struct {
	Set   bool
	Value *T
}

// UnmarshalJSON records that the member was given.
func (n *Nullable[T]) UnmarshalJSON(b []byte) error {
	n.Set = true
	if string(b) == "null" {
		n.Value = nil
		return nil
	}
	n.Value = new(T)
	return json.Unmarshal(b, n.Value)
}

// MarshalJSON writes the value, null when unset.
func (n Nullable[T]) MarshalJSON() ([]byte, error) { return json.Marshal(n.Value) }

// IsZero makes a member left out disappear under omitzero.
func (n Nullable[T]) IsZero() bool { return !n.Set }

// NullableOf is the type of Value's element, for schema generators.
func (Nullable[T]) NullableOf() reflect.Type { return reflect.TypeFor[T]() }

// TemplateResult is a template as written, with what is worth knowing
// about it: an image the Docker host neither has nor can pull (sites on it
// would fail at their first visitor).
type TemplateResult struct {
	*tenants.Template
	// Releases are those the change made of the sites on the template.
	Releases []Release `json:"releases,omitempty"`
	Warnings []string  `json:"warnings,omitempty"`
}

// ListTemplates returns a page of templates.
func (s *Service) ListTemplates(ctx context.Context, page Page) ([]tenants.Template, error) {
	list, err := s.store.ListTemplates(ctx, page)
	return list, fail("template", err)
}

// AllTemplates returns every template.
func (s *Service) AllTemplates(ctx context.Context) ([]tenants.Template, error) {
	return all(func(p Page) ([]tenants.Template, error) { return s.ListTemplates(ctx, p) }, func(t *tenants.Template) string { return t.ID })
}

// GetTemplate returns the template ref names (id or slug).
func (s *Service) GetTemplate(ctx context.Context, ref string) (*tenants.Template, error) {
	return s.template(ctx, "", ref)
}

// CreateTemplate adds a template; its limits must fit the Docker host.
func (s *Service) CreateTemplate(ctx context.Context, actor string, in TemplateInput) (*TemplateResult, error) {
	t := in.template()
	if err := s.checkHostLimits(ctx, t.Limits()); err != nil {
		return nil, err
	}
	if err := s.store.CreateTemplate(ctx, actor, t); err != nil {
		return nil, fail("template", err)
	}
	return &TemplateResult{Template: t, Warnings: s.imageWarnings(ctx, t.Image)}, nil
}

// UpdateTemplate changes the template ref names.
func (s *Service) UpdateTemplate(ctx context.Context, actor, ref string, p TemplatePatch) (*TemplateResult, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	t, err := s.template(ctx, "", ref)
	if err != nil {
		return nil, err
	}
	p.apply(t)
	if err := s.checkHostLimits(ctx, t.Limits()); err != nil {
		return nil, err
	}
	befores, err := s.sitesOn(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	if err := s.store.UpdateTemplate(ctx, actor, t); err != nil {
		return nil, fail("template", err)
	}
	res := &TemplateResult{Template: t, Warnings: s.imageWarnings(ctx, t.Image)}
	var warnings []string
	res.Releases, warnings = s.changedAll(ctx, actor, befores)
	res.Warnings = append(res.Warnings, warnings...)
	return res, nil
}

// sitesOn reads what the sites on the templates run now, before a change
// of them.
func (s *Service) sitesOn(ctx context.Context, templateIDs ...string) ([]*tenants.Route, error) {
	var out []*tenants.Route
	for _, id := range templateIDs {
		sites, err := s.AllSites(ctx, SiteFilter{Template: id})
		if err != nil {
			return nil, err
		}
		routes, err := s.routes(ctx, sites)
		if err != nil {
			return nil, err
		}
		out = append(out, routes...)
	}
	return out, nil
}

// DeleteTemplate removes the template ref names; a Conflict while sites
// use it.
func (s *Service) DeleteTemplate(ctx context.Context, actor, ref string) error {
	t, err := s.template(ctx, "", ref)
	if err != nil {
		return err
	}
	return fail("template", s.store.DeleteTemplate(ctx, actor, t.ID))
}

// ImportResult lists what an import created, updated or left alone, with
// warnings about the templates' images.
type ImportResult struct {
	tenants.ImportResult
	// Releases are those the import made of the sites on the templates
	// it updated.
	Releases []Release `json:"releases,omitempty"`
	Warnings []string  `json:"warnings,omitempty"`
}

// ImportTemplates creates the templates whose slug is new and updates the
// others when anything differs; every template is checked before anything
// is written. A nil list imports the built-in catalog.
func (s *Service) ImportTemplates(ctx context.Context, actor string, list []tenants.Template) (*ImportResult, error) {
	if list == nil {
		var err error
		if list, err = tenants.Catalog(); err != nil {
			return nil, fail("template", err)
		}
	}
	for i := range list {
		if err := s.checkHostLimits(ctx, list[i].Limits()); err != nil {
			e := err.(*Error)
			e.Message = fmt.Sprintf("template %q: %s", list[i].Slug, e.Message)
			return nil, e
		}
	}
	var existing []string
	for _, t := range list {
		if old, err := s.store.GetTemplateBySlug(ctx, t.Slug); err == nil {
			existing = append(existing, old.ID)
		}
	}
	befores, err := s.sitesOn(ctx, existing...)
	if err != nil {
		return nil, err
	}
	res, err := s.store.ImportTemplates(ctx, actor, list)
	if err != nil {
		return nil, fail("template", err)
	}
	out := &ImportResult{ImportResult: res}
	out.Releases, out.Warnings = s.changedAll(ctx, actor, befores)
	seen := map[string]bool{}
	for _, t := range list {
		if !seen[t.Image] {
			seen[t.Image] = true
			out.Warnings = append(out.Warnings, s.imageWarnings(ctx, t.Image)...)
		}
	}
	return out, nil
}

// ParseTemplates decodes and checks a template file (the export format).
func ParseTemplates(data []byte) ([]tenants.Template, error) {
	list, err := tenants.ParseTemplates(data)
	if err != nil {
		return nil, &Error{Code: Invalid, Field: "templates", Message: err.Error()}
	}
	return list, nil
}

// ExportTemplates returns every template in the import format.
func (s *Service) ExportTemplates(ctx context.Context) (*tenants.TemplateFile, error) {
	list, err := s.AllTemplates(ctx)
	if err != nil {
		return nil, err
	}
	if list == nil {
		list = []tenants.Template{}
	}
	return &tenants.TemplateFile{Templates: list}, nil
}

// imageWarnings says when image is neither on the Docker host nor
// pullable; the engine's reason goes to the log only.
func (s *Service) imageWarnings(ctx context.Context, image string) []string {
	if s.runtime == nil {
		return nil
	}
	if err := s.runtime.CheckImage(ctx, image); err != nil {
		s.log.Info("image neither present nor pullable", zap.String("image", image), zap.Error(err))
		return []string{fmt.Sprintf("image %s is not on the Docker host and could not be pulled: its sites will fail to start until it can be", image)}
	}
	return nil
}
