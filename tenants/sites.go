package tenants

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

const siteColumns = `id, customer_id, subdomain, template_id, env, status, image, serve_stale, prewarm, created_at, updated_at`

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
	if site.Image != "" {
		if err := ValidateImage(site.Image); err != nil {
			return err
		}
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
		if err := checkPlanLimit(ctx, tx, site.CustomerID, ""); err != nil {
			return "", nil, nil, err
		}
		// prewarm is left to its default (on): a new site's zero value
		// cannot tell "off" from "not given".
		created, err := collectOne[Site](tx.Query(ctx, `INSERT INTO sites (customer_id, subdomain, template_id, env, status, serve_stale)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+siteColumns,
			site.CustomerID, site.Subdomain, site.TemplateID, nonNilEnv(site.Env), site.Status, site.ServeStale))
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
		if before.CustomerID != site.CustomerID {
			if err := checkPlanLimit(ctx, tx, site.CustomerID, site.ID); err != nil {
				return "", nil, nil, err
			}
		}
		after, err := collectOne[Site](tx.Query(ctx, `UPDATE sites SET customer_id = $2, subdomain = $3,
			template_id = $4, env = $5, status = $6, image = $7, serve_stale = $8, prewarm = $9, updated_at = now()
			WHERE id = $1 RETURNING `+siteColumns,
			site.ID, site.CustomerID, site.Subdomain, site.TemplateID, nonNilEnv(site.Env), site.Status, site.Image,
			site.ServeStale, site.Prewarm))
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

// checkPlanLimit refuses the customer one more site than its plan's
// max_sites (a customer without a plan has no limit). It runs in the
// transaction that adds the site, with the customer's row locked, so
// concurrent adds for one customer count each other; except is a site
// already counted (one moving to the customer).
func checkPlanLimit(ctx context.Context, tx pgx.Tx, customerID, except string) error {
	var slug *string
	var max *int
	err := tx.QueryRow(ctx, `SELECT p.slug, p.max_sites FROM customers c
		LEFT JOIN plans p ON p.id = c.plan_id WHERE c.id = $1 FOR UPDATE OF c`, customerID).Scan(&slug, &max)
	if errors.Is(err, pgx.ErrNoRows) {
		return invalid("customer_id", "no such customer")
	}
	if err != nil || max == nil {
		return err
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM sites WHERE customer_id = $1 AND id IS DISTINCT FROM $2::uuid`,
		customerID, nullIfEmpty(except)).Scan(&n); err != nil {
		return err
	}
	if n >= *max {
		return &ConflictError{Field: "customer_id", Message: fmt.Sprintf("the customer's plan %s allows %d %s and the customer has %d",
			*slug, *max, plural(*max, "site", "sites"), n)}
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// SiteListing is a site with the names an operator knows its customer and
// template by, and what was last recorded of its container.
type SiteListing struct {
	Site
	CustomerEmail string     `json:"customer_email" db:"customer_email"`
	TemplateSlug  string     `json:"template_slug" db:"template_slug"`
	RecordedState string     `json:"-" db:"recorded_state"`
	FailureReason string     `json:"-" db:"failure_reason"`
	FailedAt      *time.Time `json:"-" db:"failed_at"`
	LastActiveAt  *time.Time `json:"-" db:"last_active_at"`
	Health        string     `json:"-" db:"health"`
}

// ListSites returns a page of sites matching f, with names and recorded
// states, in one query.
func (s *Store) ListSites(ctx context.Context, f SiteFilter, page Page) ([]SiteListing, error) {
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
	list, err := collectAll[SiteListing](s.pool.Query(ctx, `SELECT s.id, s.customer_id, s.subdomain, s.template_id,
			s.env, s.status, s.image, s.serve_stale, s.prewarm, s.created_at, s.updated_at, c.email AS customer_email, t.slug AS template_slug,
			coalesce(r.state, '') AS recorded_state, coalesce(r.failure_reason, '') AS failure_reason, r.failed_at, r.last_active_at,
			coalesce(r.health, '') AS health
		FROM sites s
		JOIN customers c ON c.id = s.customer_id
		JOIN templates t ON t.id = s.template_id
		LEFT JOIN site_runtime r ON r.site_id = s.id
		WHERE ($1::uuid IS NULL OR s.customer_id = $1)
		AND ($2::uuid IS NULL OR s.template_id = $2)
		AND ($3 = '' OR s.status = $3)
		AND ($4::uuid IS NULL OR (s.created_at, s.id) > (SELECT created_at, id FROM sites WHERE id = $4))
		ORDER BY s.created_at, s.id LIMIT $5`,
		nullIfEmpty(f.CustomerID), nullIfEmpty(f.TemplateID), f.Status, after, page.limit()))
	return list, mapError("listing sites", err)
}

// nullIfEmpty passes "" as SQL NULL, for optional uuid parameters.
func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
