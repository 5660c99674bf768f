package tenants

import (
	"context"

	"github.com/jackc/pgx/v5"
)

const templateColumns = `id, slug, name, description, image, port, env, data_path, health_path,
	memory_bytes, nano_cpus, pids_limit, cap_add, run_as, read_only, egress, share_volume, version, created_at, updated_at,
	health_interval_ms, unhealthy_after, restart_after, serve_stale, max_replicas, target_concurrency`

// CreateTemplate inserts t at version 1 and fills in its id and timestamps.
func (s *Store) CreateTemplate(ctx context.Context, actor string, t *Template) error {
	if err := s.validateTemplate(t); err != nil {
		return err
	}
	return s.write(ctx, change{actor, "create", "template"}, func(tx pgx.Tx) (string, any, any, error) {
		created, err := collectOne[Template](tx.Query(ctx, `INSERT INTO templates
			(slug, name, description, image, port, env, data_path, health_path,
			 memory_bytes, nano_cpus, pids_limit, cap_add, run_as, read_only, egress, share_volume,
			 health_interval_ms, unhealthy_after, restart_after, serve_stale, max_replicas, target_concurrency)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22) RETURNING `+templateColumns,
			t.Slug, t.Name, t.Description, t.Image, t.Port, nonNilEnv(t.Env), t.DataPath, t.HealthPath,
			t.MemoryBytes, t.NanoCPUs, t.PidsLimit, nonNilStrings(t.CapAdd), t.User, t.ReadOnly, t.Egress, t.ShareVolume,
			t.HealthIntervalMs, t.UnhealthyAfter, t.RestartAfter, t.ServeStale, t.MaxReplicas, t.TargetConcurrency))
		if err != nil {
			return "", nil, nil, err
		}
		*t = *created
		return t.ID, nil, t, nil
	})
}

// GetTemplate returns the template with id.
func (s *Store) GetTemplate(ctx context.Context, id string) (*Template, error) {
	if validateID("id", id) != nil {
		return nil, ErrNotFound
	}
	t, err := collectOne[Template](s.pool.Query(ctx, `SELECT `+templateColumns+` FROM templates WHERE id = $1`, id))
	return t, mapError("getting template", err)
}

// GetTemplateBySlug returns the template named slug.
func (s *Store) GetTemplateBySlug(ctx context.Context, slug string) (*Template, error) {
	t, err := collectOne[Template](s.pool.Query(ctx, `SELECT `+templateColumns+` FROM templates WHERE slug = $1`, slug))
	return t, mapError("getting template", err)
}

// ListTemplates returns a page of templates.
func (s *Store) ListTemplates(ctx context.Context, page Page) ([]Template, error) {
	after, err := page.after()
	if err != nil {
		return nil, err
	}
	list, err := collectAll[Template](s.pool.Query(ctx, `SELECT `+templateColumns+` FROM templates
		WHERE $1::uuid IS NULL OR (created_at, id) > (SELECT created_at, id FROM templates WHERE id = $1)
		ORDER BY created_at, id LIMIT $2`, after, page.limit()))
	return list, mapError("listing templates", err)
}

// UpdateTemplate stores every mutable field of t and bumps its version, so
// sites using it get a container built from the new definition at their
// next start.
func (s *Store) UpdateTemplate(ctx context.Context, actor string, t *Template) error {
	if err := s.validateTemplate(t); err != nil {
		return err
	}
	if validateID("id", t.ID) != nil {
		return ErrNotFound
	}
	return s.write(ctx, change{actor, "update", "template"}, func(tx pgx.Tx) (string, any, any, error) {
		before, err := collectOne[Template](tx.Query(ctx, `SELECT `+templateColumns+` FROM templates WHERE id = $1 FOR UPDATE`, t.ID))
		if err != nil {
			return "", nil, nil, err
		}
		after, err := collectOne[Template](tx.Query(ctx, `UPDATE templates SET slug = $2, name = $3,
			description = $4, image = $5, port = $6, env = $7, data_path = $8, health_path = $9,
			memory_bytes = $10, nano_cpus = $11, pids_limit = $12, cap_add = $13,
			run_as = $14, read_only = $15, egress = $16, share_volume = $17,
			health_interval_ms = $18, unhealthy_after = $19, restart_after = $20, serve_stale = $21,
			max_replicas = $22, target_concurrency = $23,
			version = version + 1, updated_at = now()
			WHERE id = $1 RETURNING `+templateColumns,
			t.ID, t.Slug, t.Name, t.Description, t.Image, t.Port, nonNilEnv(t.Env), t.DataPath, t.HealthPath,
			t.MemoryBytes, t.NanoCPUs, t.PidsLimit, nonNilStrings(t.CapAdd), t.User, t.ReadOnly, t.Egress, t.ShareVolume,
			t.HealthIntervalMs, t.UnhealthyAfter, t.RestartAfter, t.ServeStale, t.MaxReplicas, t.TargetConcurrency))
		if err != nil {
			return "", nil, nil, err
		}
		*t = *after
		return t.ID, before, after, nil
	})
}

// DeleteTemplate removes the template with id; it is a conflict while
// sites use it.
func (s *Store) DeleteTemplate(ctx context.Context, actor, id string) error {
	if validateID("id", id) != nil {
		return ErrNotFound
	}
	return s.write(ctx, change{actor, "delete", "template"}, func(tx pgx.Tx) (string, any, any, error) {
		before, err := collectOne[Template](tx.Query(ctx, `DELETE FROM templates WHERE id = $1 RETURNING `+templateColumns, id))
		if err != nil {
			return "", nil, nil, err
		}
		return id, before, nil, nil
	})
}

// defaultScaling gives a template that leaves its autoscaling settings
// out (0: an older API client, a catalog or an export from before them,
// a form's empty field) the columns' defaults. A patch that sets 0 is
// refused before it gets here (manage), not taken for the default.
func (t *Template) defaultScaling() {
	if t.MaxReplicas == 0 {
		t.MaxReplicas = DefaultMaxReplicas
	}
	if t.TargetConcurrency == 0 {
		t.TargetConcurrency = DefaultTargetConcurrency
	}
}
