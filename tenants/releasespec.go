package tenants

import (
	"maps"
	"slices"
	"strconv"
	"strings"
)

// ReleaseSpec is what a release runs: everything that shapes the site's
// container but the platform's defaults (limits 0 and Egress nil take
// them when the container is made) and its customer (whose network it
// joins, whichever release runs).
type ReleaseSpec struct {
	TemplateID      string `json:"template_id"`
	TemplateSlug    string `json:"template_slug"`
	TemplateVersion int    `json:"template_version"`
	Image           string `json:"image"`
	// Built is set when Image was built from the site's own source.
	Built       bool              `json:"built,omitempty"`
	Port        int               `json:"port"`
	Env         map[string]string `json:"env"`
	DataPath    string            `json:"data_path,omitempty"`
	HealthPath  string            `json:"health_path,omitempty"`
	MemoryBytes int64             `json:"memory_bytes,omitempty"`
	NanoCPUs    int64             `json:"nano_cpus,omitempty"`
	PidsLimit   int64             `json:"pids_limit,omitempty"`
	CapAdd      []string          `json:"cap_add,omitempty"`
	User        string            `json:"user,omitempty"`
	ReadOnly    bool              `json:"read_only,omitempty"`
	Egress      *bool             `json:"egress,omitempty"`
	ShareVolume bool              `json:"share_volume,omitempty"`
}

// ReleaseSource is the site's own part of a release's spec: what a
// rollback to it restores on the site, so that the next change starts
// from there.
type ReleaseSource struct {
	TemplateID string            `json:"template_id"`
	Env        map[string]string `json:"env"`
	Image      string            `json:"image,omitempty"`
}

// FieldChange is one field a release changes. Before is absent for a
// field the release adds (an env variable), After for one it removes.
type FieldChange struct {
	Field  string  `json:"field"`
	Before *string `json:"before,omitempty"`
	After  *string `json:"after,omitempty"`
}

// Derived is the spec the site's settings make now: its template, the
// site's env over the template's, the image built from its source over
// the template's, and the template's limits, else its plan's.
func (r *Route) Derived() ReleaseSpec {
	t := &r.Template
	limits := r.Limits(Limits{}) // the platform's defaults apply when the container is made
	spec := ReleaseSpec{
		TemplateID: t.ID, TemplateSlug: t.Slug, TemplateVersion: t.Version,
		Image: t.Image, Port: t.Port, Env: r.Env(), DataPath: t.DataPath, HealthPath: t.HealthPath,
		MemoryBytes: limits.MemoryBytes, NanoCPUs: limits.NanoCPUs, PidsLimit: limits.PidsLimit,
		CapAdd: t.CapAdd, User: t.User, ReadOnly: t.ReadOnly, Egress: t.Egress, ShareVolume: t.ShareVolume,
	}
	if r.SiteImage != "" {
		spec.Image, spec.Built = r.SiteImage, true
	}
	return spec
}

// Spec is what the site runs: its live release's spec, else (a site from
// before releases) what its settings make.
func (r *Route) Spec() ReleaseSpec {
	if r.Live != nil {
		return *r.Live
	}
	return r.Derived()
}

// Source is the site's own part of Derived.
func (r *Route) Source() ReleaseSource {
	return ReleaseSource{TemplateID: r.Template.ID, Env: maps.Clone(r.SiteEnv), Image: r.SiteImage}
}

// Equal reports whether two specs make the same container.
func (s ReleaseSpec) Equal(o ReleaseSpec) bool {
	return len(DiffSpecs(s, o)) == 0
}

// safeEnv are variable names known to hold no secret, whose values a
// release's changes show; every other value is masked.
var safeEnv = map[string]bool{
	"PORT": true, "HOST": true, "TZ": true, "LANG": true, "LC_ALL": true, "DEBUG": true,
	"LOG_LEVEL": true, "LOGLEVEL": true, "NODE_ENV": true, "APP_ENV": true, "RAILS_ENV": true,
	"RACK_ENV": true, "FLASK_ENV": true, "ENVIRONMENT": true, "DATA_DIR": true, "WORKERS": true,
}

// Masked stands for an env value a release's changes do not show.
const Masked = "(hidden)"

// DiffSpecs returns the fields that differ from before to after (never
// nil), env values masked unless their name is known to hold no secret.
func DiffSpecs(before, after ReleaseSpec) []FieldChange {
	out := []FieldChange{}
	field := func(name, b, a string) {
		if b != a {
			out = append(out, FieldChange{Field: name, Before: &b, After: &a})
		}
	}
	field("template", before.TemplateSlug+" v"+strconv.Itoa(before.TemplateVersion), after.TemplateSlug+" v"+strconv.Itoa(after.TemplateVersion))
	field("image", before.Image, after.Image)
	field("port", strconv.Itoa(before.Port), strconv.Itoa(after.Port))
	for _, name := range slices.Sorted(maps.Keys(union(before.Env, after.Env))) {
		b, inBefore := before.Env[name]
		a, inAfter := after.Env[name]
		if inBefore == inAfter && b == a {
			continue
		}
		if !safeEnv[name] {
			b, a = Masked, Masked
		}
		c := FieldChange{Field: "env." + name}
		if inBefore {
			c.Before = &b
		}
		if inAfter {
			c.After = &a
		}
		out = append(out, c)
	}
	field("data_path", before.DataPath, after.DataPath)
	field("health_path", before.HealthPath, after.HealthPath)
	field("memory_bytes", strconv.FormatInt(before.MemoryBytes, 10), strconv.FormatInt(after.MemoryBytes, 10))
	field("nano_cpus", strconv.FormatInt(before.NanoCPUs, 10), strconv.FormatInt(after.NanoCPUs, 10))
	field("pids_limit", strconv.FormatInt(before.PidsLimit, 10), strconv.FormatInt(after.PidsLimit, 10))
	field("cap_add", strings.Join(before.CapAdd, ","), strings.Join(after.CapAdd, ","))
	field("user", before.User, after.User)
	field("read_only", strconv.FormatBool(before.ReadOnly), strconv.FormatBool(after.ReadOnly))
	field("egress", optionalBool(before.Egress), optionalBool(after.Egress))
	field("share_volume", strconv.FormatBool(before.ShareVolume), strconv.FormatBool(after.ShareVolume))
	return out
}

func union(a, b map[string]string) map[string]string {
	u := maps.Clone(a)
	if u == nil {
		u = map[string]string{}
	}
	maps.Copy(u, b)
	return u
}

func optionalBool(b *bool) string {
	if b == nil {
		return "default"
	}
	return strconv.FormatBool(*b)
}

// MaskSpec returns spec with every env value masked whose name is not
// known to hold no secret, for showing a release.
func MaskSpec(spec ReleaseSpec) ReleaseSpec {
	env := make(map[string]string, len(spec.Env))
	for k, v := range spec.Env {
		if !safeEnv[k] {
			v = Masked
		}
		env[k] = v
	}
	spec.Env = env
	return spec
}
