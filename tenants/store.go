package tenants

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultSchema is the schema of the platform's tables unless configured
// otherwise; the storage module keeps certificates there too.
const DefaultSchema = "tenants"

// Store reads and writes the platform's data in one PostgreSQL schema: the
// one its pool's connections have as search_path. Every write is one
// transaction that also appends to the audit log, so no change goes
// unrecorded.
type Store struct {
	pool *pgxpool.Pool
	opts Options
}

// Options are the platform settings the store validates against.
type Options struct {
	// BaseDomain is the platform's domain: sites are <subdomain>.<BaseDomain>,
	// so custom domains may not be under it.
	BaseDomain string
	// Reserved subdomains never belong to a site.
	Reserved []string
	// AllowCapabilities are the privileged capabilities (beyond
	// UnprivilegedCapabilities) templates may add.
	AllowCapabilities []string
}

// NewStore returns a store on pool.
func NewStore(pool *pgxpool.Pool, opts Options) *Store {
	return &Store{pool: pool, opts: opts}
}

// Pool returns the pool the store uses.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Page selects a slice of a listing in a stable order (creation time, then
// id). After is the id of the last item of the previous page.
type Page struct {
	Limit int    // Default: 50; at most 500
	After string // Default: from the start
}

func (p Page) limit() int {
	switch {
	case p.Limit <= 0:
		return 50
	case p.Limit > 500:
		return 500
	}
	return p.Limit
}

// after returns the cursor as a query parameter: nil for the first page.
func (p Page) after() (any, error) {
	if p.After == "" {
		return nil, nil
	}
	if err := validateID("after", p.After); err != nil {
		return nil, err
	}
	return p.After, nil
}

// change describes one audited write.
type change struct {
	actor, action, entity string
}

// write runs fn in a transaction and records its effect in the audit log.
// fn returns the entity's id and its state before and after (nil when it
// did not exist).
func (s *Store) write(ctx context.Context, c change, fn func(tx pgx.Tx) (id string, before, after any, err error)) error {
	doing := c.action + " " + c.entity
	return unavailable(doing, pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		id, before, after, err := fn(tx)
		if err != nil {
			return mapError(doing, err)
		}
		return appendAudit(ctx, tx, c, id, before, after)
	}))
}

func appendAudit(ctx context.Context, tx pgx.Tx, c change, id string, before, after any) error {
	b, err := jsonOrNil(before)
	if err != nil {
		return err
	}
	a, err := jsonOrNil(after)
	if err != nil {
		return err
	}
	actor := c.actor
	if actor == "" {
		actor = "system"
	}
	_, err = tx.Exec(ctx, `INSERT INTO audit_log (actor, action, entity, entity_id, before, after)
		VALUES ($1, $2, $3, $4, $5, $6)`, actor, c.action, c.entity, id, b, a)
	if err != nil {
		return fmt.Errorf("writing audit log: %w", err)
	}
	return nil
}

// jsonOrNil encodes v for a jsonb column; a nil pointer becomes SQL NULL.
func jsonOrNil(v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding audit record: %w", err)
	}
	if string(b) == "null" {
		return nil, nil
	}
	return b, nil
}

// collectOne scans exactly one row into T by column name.
func collectOne[T any](rows pgx.Rows, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectExactlyOneRow(rows, pgx.RowToAddrOfStructByName[T])
}

// collectAll scans every row into T by column name.
func collectAll[T any](rows pgx.Rows, err error) ([]T, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByName[T])
}

// nonNilEnv keeps a nil map from becoming JSON null, which the env
// columns' CHECK refuses: "no variables" is {}.
func nonNilEnv(env map[string]string) map[string]string {
	if env == nil {
		return map[string]string{}
	}
	return env
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
