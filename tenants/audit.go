package tenants

import (
	"context"
	"slices"
	"strings"
	"time"
)

// AuditEntities lists the kinds of entity the audit log records.
var AuditEntities = []string{"customer", "plan", "template", "site", "release", "domain", "api_key", "user"}

// AuditFilter narrows ListAudit; empty fields match everything.
type AuditFilter struct {
	Entity   string
	EntityID string
	BeforeID int64 // only entries older than this id, for paging backwards; 0 = newest
	Limit    int   // Default: 50; at most 500
	// Actor matches entries whose actor contains it (case-insensitive),
	// or, with ActorExact, whose actor is exactly it.
	Actor      string
	ActorExact bool
	// Since and Until bound the entries' time: at or after Since, before
	// Until; zero leaves that end open.
	Since, Until time.Time
}

// maxActorLen bounds an actor filter: actors are "user:" and an email,
// "stripe:" and an event id, an API key's name and the like.
const maxActorLen = 512

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
	if err := checkText("actor", f.Actor, maxActorLen); err != nil {
		return nil, err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return nil, invalid("until", "must be after since")
	}
	limit := Page{Limit: f.Limit}.limit()
	// The actor's substring is matched with strpos, not LIKE, so that % and
	// _ in it are plain characters.
	list, err := collectAll[AuditEntry](s.pool.Query(ctx, `SELECT id, at, actor, action, entity, entity_id, before, after
		FROM audit_log
		WHERE ($1 = '' OR entity = $1) AND ($2 = '' OR entity_id = $2) AND ($3 = 0 OR id < $3)
		AND ($5 = '' OR CASE WHEN $6 THEN actor = $5 ELSE strpos(lower(actor), lower($5)) > 0 END)
		AND ($7::timestamptz IS NULL OR at >= $7) AND ($8::timestamptz IS NULL OR at < $8)
		ORDER BY id DESC LIMIT $4`, f.Entity, f.EntityID, f.BeforeID, limit, f.Actor, f.ActorExact,
		nullTime(f.Since), nullTime(f.Until)))
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

// nullTime is t for a query, NULL when zero.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
