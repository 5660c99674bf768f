package tenants

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"
)

const domainColumns = `id, site_id, hostname, verified, verify_token, verified_at, created_at, updated_at`

func (s *Store) validateDomain(d *Domain) error {
	if err := validateID("site_id", d.SiteID); err != nil {
		return err
	}
	// NormalizeHost drops the port a Host header carries; a domain given
	// with one is a mistake to point out, not to fix silently.
	if strings.Contains(d.Hostname, ":") {
		return invalid("hostname", "must be a hostname alone, without a port")
	}
	if err := checkText("hostname", strings.TrimSuffix(d.Hostname, "."), MaxHostnameLen); err != nil {
		return err
	}
	host, err := NormalizeHost(d.Hostname)
	if err != nil {
		return err
	}
	if base := s.opts.BaseDomain; base != "" && (host == base || strings.HasSuffix(host, "."+base)) {
		return invalid("hostname", "hostnames under %s are the platform's own; use the site's subdomain", base)
	}
	if !strings.Contains(host, ".") {
		return invalid("hostname", "a custom domain needs at least two labels")
	}
	d.Hostname = host
	return nil
}

// CreateDomain adds a custom hostname to a site, unverified, and fills in
// its id, verification token and timestamps. The hostname is normalized.
func (s *Store) CreateDomain(ctx context.Context, actor string, d *Domain) error {
	if err := s.validateDomain(d); err != nil {
		return err
	}
	return s.write(ctx, change{actor, "create", "domain"}, func(tx pgx.Tx) (string, any, any, error) {
		created, err := collectOne[Domain](tx.Query(ctx, `INSERT INTO domains (site_id, hostname)
			VALUES ($1, $2) RETURNING `+domainColumns, d.SiteID, d.Hostname))
		if err != nil {
			return "", nil, nil, err
		}
		*d = *created
		return d.ID, nil, d, nil
	})
}

// GetDomain returns the domain with id.
func (s *Store) GetDomain(ctx context.Context, id string) (*Domain, error) {
	if validateID("id", id) != nil {
		return nil, ErrNotFound
	}
	d, err := collectOne[Domain](s.pool.Query(ctx, `SELECT `+domainColumns+` FROM domains WHERE id = $1`, id))
	return d, mapError("getting domain", err)
}

// GetDomainByHostname returns the domain for hostname, in any form a
// client may send it.
func (s *Store) GetDomainByHostname(ctx context.Context, hostname string) (*Domain, error) {
	host, err := NormalizeHost(hostname)
	if err != nil {
		return nil, ErrNotFound
	}
	d, err := collectOne[Domain](s.pool.Query(ctx, `SELECT `+domainColumns+` FROM domains WHERE hostname = $1`, host))
	return d, mapError("getting domain", err)
}

// ListDomains returns a page of domains, of one site when siteID is set.
func (s *Store) ListDomains(ctx context.Context, siteID string, page Page) ([]Domain, error) {
	after, err := page.after()
	if err != nil {
		return nil, err
	}
	if siteID != "" {
		if err := validateID("site_id", siteID); err != nil {
			return nil, err
		}
	}
	list, err := collectAll[Domain](s.pool.Query(ctx, `SELECT `+domainColumns+` FROM domains
		WHERE ($1::uuid IS NULL OR site_id = $1)
		AND ($2::uuid IS NULL OR (created_at, id) > (SELECT created_at, id FROM domains WHERE id = $2))
		ORDER BY created_at, id LIMIT $3`, nullIfEmpty(siteID), after, page.limit()))
	return list, mapError("listing domains", err)
}

// SetDomainVerified marks the domain with id verified (now) or not.
func (s *Store) SetDomainVerified(ctx context.Context, actor, id string, verified bool) (*Domain, error) {
	if validateID("id", id) != nil {
		return nil, ErrNotFound
	}
	var d *Domain
	err := s.write(ctx, change{actor, "verify", "domain"}, func(tx pgx.Tx) (string, any, any, error) {
		before, err := collectOne[Domain](tx.Query(ctx, `SELECT `+domainColumns+` FROM domains WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return "", nil, nil, err
		}
		d, err = collectOne[Domain](tx.Query(ctx, `UPDATE domains SET verified = $2,
			verified_at = CASE WHEN $2 THEN coalesce(verified_at, now()) END, updated_at = now()
			WHERE id = $1 RETURNING `+domainColumns, id, verified))
		if err != nil {
			return "", nil, nil, err
		}
		return id, before, d, nil
	})
	return d, err
}

// DeleteDomain removes the domain with id.
func (s *Store) DeleteDomain(ctx context.Context, actor, id string) error {
	if validateID("id", id) != nil {
		return ErrNotFound
	}
	return s.write(ctx, change{actor, "delete", "domain"}, func(tx pgx.Tx) (string, any, any, error) {
		before, err := collectOne[Domain](tx.Query(ctx, `DELETE FROM domains WHERE id = $1 RETURNING `+domainColumns, id))
		if err != nil {
			return "", nil, nil, err
		}
		return id, before, nil, nil
	})
}
