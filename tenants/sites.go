package tenants

import (
	"context"
	"slices"

	"github.com/jackc/pgx/v5"
)

const siteColumns = `id, customer_id, subdomain, template_id, env, status, created_at, updated_at`

// SiteFilter narrows ListSites; empty fields match everything.
type SiteFilter struct {
	CustomerID string
	TemplateID string
	Status     string
}

func (s *Store) validateSite(site *Site) error {
	if err := ValidateSubdomain(site.Subdomain, s.opts.Reserved); err != nil {
		return err
	}
	if err := validateID("customer_id", site.CustomerID); err != nil {
		return err
	}
	if err := validateID("template_id", site.TemplateID); err != nil {
		return err
	}
	if err := validateSiteStatus(site.Status); err != nil {
		return err
	}
	return ValidateEnv("env", site.Env)
}

func validateSiteStatus(status string) error {
	if !slices.Contains(SiteStatuses, status) {
		return invalid("status", "must be active or suspended")
	}
	return nil
}

// CreateSite inserts site (status defaults to active) and fills in its id
// and timestamps.
func (s *Store) CreateSite(ctx context.Context, actor string, site *Site) error {
	if site.Status == "" {
		site.Status = SiteActive
	}
	if err := s.validateSite(site); err != nil {
		return err
	}
	return s.write(ctx, change{actor, "create", "site"}, func(tx pgx.Tx) (string, any, any, error) {
		created, err := collectOne[Site](tx.Query(ctx, `INSERT INTO sites (customer_id, subdomain, template_id, env, status)
			VALUES ($1, $2, $3, $4, $5) RETURNING `+siteColumns,
			site.CustomerID, site.Subdomain, site.TemplateID, nonNilEnv(site.Env), site.Status))
		if err != nil {
			return "", nil, nil, err
		}
		*site = *created
		return site.ID, nil, site, nil
	})
}

// GetSite returns the site with id.
func (s *Store) GetSite(ctx context.Context, id string) (*Site, error) {
	if validateID("id", id) != nil {
		return nil, ErrNotFound
	}
	site, err := collectOne[Site](s.pool.Query(ctx, `SELECT `+siteColumns+` FROM sites WHERE id = $1`, id))
	return site, mapError("getting site", err)
}

// GetSiteBySubdomain returns the site at subdomain.
func (s *Store) GetSiteBySubdomain(ctx context.Context, subdomain string) (*Site, error) {
	site, err := collectOne[Site](s.pool.Query(ctx, `SELECT `+siteColumns+` FROM sites WHERE subdomain = $1`, subdomain))
	return site, mapError("getting site", err)
}

// ListSites returns a page of sites matching f.
func (s *Store) ListSites(ctx context.Context, f SiteFilter, page Page) ([]Site, error) {
	after, err := page.after()
	if err != nil {
		return nil, err
	}
	for field, id := range map[string]string{"customer_id": f.CustomerID, "template_id": f.TemplateID} {
		if id != "" {
			if err := validateID(field, id); err != nil {
				return nil, err
			}
		}
	}
	if f.Status != "" {
		if err := validateSiteStatus(f.Status); err != nil {
			return nil, err
		}
	}
	list, err := collectAll[Site](s.pool.Query(ctx, `SELECT `+siteColumns+` FROM sites
		WHERE ($1::uuid IS NULL OR customer_id = $1)
		AND ($2::uuid IS NULL OR template_id = $2)
		AND ($3 = '' OR status = $3)
		AND ($4::uuid IS NULL OR (created_at, id) > (SELECT created_at, id FROM sites WHERE id = $4))
		ORDER BY created_at, id LIMIT $5`,
		nullIfEmpty(f.CustomerID), nullIfEmpty(f.TemplateID), f.Status, after, page.limit()))
	return list, mapError("listing sites", err)
}

// UpdateSite stores every mutable field of site.
func (s *Store) UpdateSite(ctx context.Context, actor string, site *Site) error {
	if err := s.validateSite(site); err != nil {
		return err
	}
	if validateID("id", site.ID) != nil {
		return ErrNotFound
	}
	return s.write(ctx, change{actor, "update", "site"}, func(tx pgx.Tx) (string, any, any, error) {
		before, err := collectOne[Site](tx.Query(ctx, `SELECT `+siteColumns+` FROM sites WHERE id = $1 FOR UPDATE`, site.ID))
		if err != nil {
			return "", nil, nil, err
		}
		after, err := collectOne[Site](tx.Query(ctx, `UPDATE sites SET customer_id = $2, subdomain = $3,
			template_id = $4, env = $5, status = $6, updated_at = now()
			WHERE id = $1 RETURNING `+siteColumns,
			site.ID, site.CustomerID, site.Subdomain, site.TemplateID, nonNilEnv(site.Env), site.Status))
		if err != nil {
			return "", nil, nil, err
		}
		*site = *after
		return site.ID, before, after, nil
	})
}

// DeleteSite removes the site with id, its domains and runtime record.
func (s *Store) DeleteSite(ctx context.Context, actor, id string) error {
	if validateID("id", id) != nil {
		return ErrNotFound
	}
	return s.write(ctx, change{actor, "delete", "site"}, func(tx pgx.Tx) (string, any, any, error) {
		before, err := collectOne[Site](tx.Query(ctx, `DELETE FROM sites WHERE id = $1 RETURNING `+siteColumns, id))
		if err != nil {
			return "", nil, nil, err
		}
		return id, before, nil, nil
	})
}

// nullIfEmpty passes "" as SQL NULL, for optional uuid parameters.
func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
