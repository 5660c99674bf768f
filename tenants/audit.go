package tenants

import (
	"context"
	"slices"
	"strings"
)

// AuditEntities lists the kinds of entity the audit log records.
var AuditEntities = []string{"customer", "plan", "template", "site", "release", "domain", "api_key", "user"}

// AuditFilter narrows ListAudit; empty fields match everything.
type AuditFilter struct {
	Entity   string
	EntityID string
	BeforeID int64 // only entries older than this id, for paging backwards; 0 = newest
	Limit    int   // Default: 50; at most 500
}

// ListAudit returns audit entries matching f, newest first.
func (s *Store) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	if f.Entity != "" && !slices.Contains(AuditEntities, f.Entity) {
		return nil, invalid("entity", "must be one of %s", strings.Join(AuditEntities, ", "))
	}
	// Every entity's id is its row's uuid (a release's, its site's).
	if f.EntityID != "" {
		if err := validateID("entity_id", f.EntityID); err != nil {
			return nil, err
		}
	}
	limit := Page{Limit: f.Limit}.limit()
	list, err := collectAll[AuditEntry](s.pool.Query(ctx, `SELECT id, at, actor, action, entity, entity_id, before, after
		FROM audit_log
		WHERE ($1 = '' OR entity = $1) AND ($2 = '' OR entity_id = $2) AND ($3 = 0 OR id < $3)
		ORDER BY id DESC LIMIT $4`, f.Entity, f.EntityID, f.BeforeID, limit))
	return list, mapError("listing audit log", err)
}

// Counts is how much of each thing the store holds.
type Counts struct {
	Customers, Plans, Templates, Sites, Domains, APIKeys int64
}

// Count returns how many rows each table holds.
func (s *Store) Count(ctx context.Context) (Counts, error) {
	var c Counts
	err := s.pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM customers), (SELECT count(*) FROM plans),
		(SELECT count(*) FROM templates), (SELECT count(*) FROM sites),
		(SELECT count(*) FROM domains), (SELECT count(*) FROM api_keys WHERE revoked_at IS NULL)`).
		Scan(&c.Customers, &c.Plans, &c.Templates, &c.Sites, &c.Domains, &c.APIKeys)
	return c, mapError("counting rows", err)
}
