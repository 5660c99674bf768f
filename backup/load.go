package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

// restoreAll restores the whole platform onto an empty one: the schema
// is migrated to the archive's version (where it is behind), every
// archived table replaces its table's rows in one transaction, the rest
// of the migrations follow, then every volume.
func (s *Service) restoreAll(ctx context.Context, m *Manifest, ar *archiveReader) (*Result, error) {
	pool, schema := s.cfg.Pool, s.cfg.Schema
	v, err := tenants.SchemaVersion(ctx, pool)
	if err != nil {
		return nil, err
	}
	if v < m.SchemaVersion {
		if _, err := tenants.MigrateTo(ctx, pool, schema, m.SchemaVersion); err != nil {
			return nil, err
		}
	}
	if s.cfg.Prepare != nil {
		if err := s.cfg.Prepare(ctx); err != nil {
			return nil, err
		}
	}
	tx, end, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	var customers, sites int
	if err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM sites)`).Scan(&customers, &sites); err != nil {
		return nil, fmt.Errorf("looking at the platform: %w", err)
	}
	if customers+sites > 0 {
		return nil, fmt.Errorf("%w: it has %d customers and %d sites; restore onto an empty schema, or restore single sites (--site)", ErrNotEmpty, customers, sites)
	}
	present, err := tables(ctx, tx, schema)
	if err != nil {
		return nil, err
	}
	byStream := map[string]Table{}
	names := make([]string, 0, len(m.Tables))
	for _, t := range m.Tables {
		if err := fits(t, present); err != nil {
			return nil, err
		}
		byStream[t.Name] = t
		names = append(names, pgx.Identifier{t.Table}.Sanitize())
	}
	// What Caddy put there on a fresh start (the template catalog, its
	// certificates) gives way to the archive's. CASCADE reaches only
	// tables about sites and customers, which are empty.
	if len(names) > 0 {
		if _, err := tx.Exec(ctx, "TRUNCATE "+strings.Join(names, ", ")+" CASCADE"); err != nil {
			return nil, fmt.Errorf("emptying tables: %w", err)
		}
	}
	res := &Result{Manifest: m}
	committed := false
	commit := func() error {
		if committed {
			return nil
		}
		for _, seq := range m.Sequences {
			if _, err := tx.Exec(ctx, `SELECT setval(format('%I', $1::text)::regclass, $2)`, seq.Name, seq.Value); err != nil {
				return fmt.Errorf("restoring sequence %s: %w", seq.Name, err)
			}
		}
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("committing restore: %w", err)
		}
		committed = true
		if v := tenants.LatestVersion(); m.SchemaVersion < v {
			if _, err := tenants.Migrate(ctx, pool, schema); err != nil {
				return err
			}
		}
		return nil
	}
	err = ar.each(func(name string, r io.Reader) error {
		if t, ok := byStream[name]; ok {
			return copyIn(ctx, tx, t.Table, t, r)
		}
		// Volumes come after the tables: their sites' rows are needed to
		// make their containers.
		if err := commit(); err != nil {
			return err
		}
		id, ok := strings.CutPrefix(name, "volumes/")
		if !ok {
			return fmt.Errorf("%w: unexpected stream %s", ErrCorrupt, name)
		}
		if err := s.cfg.Volumes.ImportVolume(ctx, id, r); err != nil {
			return fmt.Errorf("restoring the volume of site %s: %w", id, err)
		}
		res.Sites = append(res.Sites, id)
		s.log.Info("restored site volume", zap.String("site_id", id))
		return nil
	})
	if err != nil {
		return res, err
	}
	return res, commit()
}

// fits refuses an archived table the schema cannot take: one it lacks,
// or with a column it lacks (migrations only add, so neither happens to
// an archive of an older or equal schema version).
func fits(t Table, present []Table) error {
	i := slices.IndexFunc(present, func(p Table) bool { return p.Table == t.Table })
	if i < 0 {
		return fmt.Errorf("table %s of the archive is not in the schema", t.Table)
	}
	for _, c := range t.Columns {
		if !slices.Contains(present[i].Columns, c) {
			return fmt.Errorf("column %s.%s of the archive is not in the schema", t.Table, c)
		}
	}
	return nil
}

// copyIn loads an archived table's rows into table (which has its
// columns, and may have more: they take their defaults).
func copyIn(ctx context.Context, tx pgx.Tx, table string, t Table, r io.Reader) error {
	_, err := tx.Conn().PgConn().CopyFrom(ctx, r, "COPY "+pgx.Identifier{table}.Sanitize()+" ("+columnList(t.Columns)+") FROM STDIN")
	if err != nil {
		return fmt.Errorf("restoring table %s: %w", t.Table, err)
	}
	return nil
}

// siteTables are the tables a single site's rows are restored from, each
// after those it references.
var siteTables = []string{"plans", "customers", "templates", "sites", "domains"}

// siteRestoreSQL makes a missing site again from the archive's rows
// (loaded into restore_<table>), with its customer, plan and template
// where they are missing too; $1 is the site's id. Another row in the way
// (the subdomain taken meanwhile) fails the restore whole.
var siteRestoreSQL = []string{
	`INSERT INTO plans SELECT * FROM restore_plans WHERE id = (SELECT plan_id FROM restore_customers
		WHERE id = (SELECT customer_id FROM restore_sites WHERE id = $1)) ON CONFLICT (id) DO NOTHING`,
	`INSERT INTO customers SELECT * FROM restore_customers
		WHERE id = (SELECT customer_id FROM restore_sites WHERE id = $1) ON CONFLICT (id) DO NOTHING`,
	`INSERT INTO templates SELECT * FROM restore_templates
		WHERE id = (SELECT template_id FROM restore_sites WHERE id = $1) ON CONFLICT (id) DO NOTHING`,
	`INSERT INTO sites SELECT * FROM restore_sites WHERE id = $1`,
	`INSERT INTO domains SELECT * FROM restore_domains WHERE site_id = $1 ON CONFLICT (id) DO NOTHING`,
}

// ErrNoSuchSite means the archive does not hold the site asked for.
var ErrNoSuchSite = errors.New("the archive has no such site")

// restoreSite restores one site into a running platform: its volume and,
// if the site is gone, its rows; no other site, customer or template
// changes.
func (s *Service) restoreSite(ctx context.Context, m *Manifest, ar *archiveReader, ref string) (*Result, error) {
	tx, end, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	byStream := map[string]Table{}
	for _, name := range siteTables {
		// Names from the fixed list above; DDL takes no parameters.
		if _, err := tx.Exec(ctx, "CREATE TEMP TABLE "+pgx.Identifier{"restore_" + name}.Sanitize()+
			" (LIKE "+pgx.Identifier{name}.Sanitize()+" INCLUDING DEFAULTS) ON COMMIT DROP"); err != nil {
			return nil, fmt.Errorf("preparing restore: %w", err)
		}
	}
	present, err := tables(ctx, tx, s.cfg.Schema)
	if err != nil {
		return nil, err
	}
	for _, t := range m.Tables {
		if slices.Contains(siteTables, t.Table) {
			if err := fits(t, present); err != nil {
				return nil, err
			}
			byStream[t.Name] = t
		}
	}
	res := &Result{Manifest: m}
	var siteID string
	err = ar.each(func(name string, r io.Reader) (err error) {
		if t, ok := byStream[name]; ok {
			return copyIn(ctx, tx, "restore_"+t.Table, t, r)
		}
		if !strings.HasPrefix(name, "volumes/") {
			return nil // another table: not this site's
		}
		if siteID == "" {
			if siteID, res.Recreated, err = s.siteRows(ctx, tx, ref); err != nil {
				return err
			}
		}
		if name != "volumes/"+siteID {
			return nil
		}
		if err := s.cfg.Volumes.ImportVolume(ctx, siteID, r); err != nil {
			return fmt.Errorf("restoring the volume of site %s: %w", siteID, err)
		}
		res.Sites = append(res.Sites, siteID)
		return nil
	})
	if err != nil {
		return res, err
	}
	if siteID == "" { // an archive without volumes
		if _, res.Recreated, err = s.siteRows(ctx, tx, ref); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// siteRows finds the site ref (id or subdomain) among the archive's rows
// and, when the platform no longer has it, makes its rows again; then it
// commits tx, so that the site's container can be made.
func (s *Service) siteRows(ctx context.Context, tx pgx.Tx, ref string) (id string, recreated bool, err error) {
	err = tx.QueryRow(ctx, `SELECT id::text FROM restore_sites WHERE id::text = $1 OR subdomain = $1`, ref).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, fmt.Errorf("%w: %s", ErrNoSuchSite, ref)
	}
	if err != nil {
		return "", false, fmt.Errorf("finding site %s in the archive: %w", ref, err)
	}
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM sites WHERE id = $1)`, id).Scan(&exists); err != nil {
		return "", false, fmt.Errorf("looking for site %s: %w", id, err)
	}
	if !exists {
		for _, q := range siteRestoreSQL {
			if _, err := tx.Exec(ctx, q, id); err != nil {
				return "", false, fmt.Errorf("restoring the rows of site %s: %w", id, err)
			}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return "", false, fmt.Errorf("committing restore: %w", err)
	}
	return id, !exists, nil
}

// begin starts a restore's transaction on a connection of its own (COPY
// goes through the connection), and returns its end: a rollback unless
// it was committed, and the connection's release.
func (s *Service) begin(ctx context.Context) (pgx.Tx, func(), error) {
	conn, err := s.cfg.Pool.Acquire(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to database: %w", err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		conn.Release()
		return nil, nil, fmt.Errorf("starting restore: %w", err)
	}
	return tx, func() {
		_ = tx.Rollback(context.Background())
		conn.Release()
	}, nil
}
