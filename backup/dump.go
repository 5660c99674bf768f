package backup

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// skipped are the schema's tables a backup leaves out: the record of
// migrations (the manifest has the version), what nodes and containers do
// right now, leases, the record of backups themselves, and the job
// queue's own tables (river_…), whose running jobs a restore must not
// bring back.
var skipped = []string{"schema_version", "nodes", "site_activity", "site_runtime", "certmagic_locks", "backups"}

func skip(name string) bool {
	return slices.Contains(skipped, name) || strings.HasPrefix(name, "river_")
}

// tableSQL lists the schema's tables with their columns (generated ones
// cannot be loaded, so they are not dumped).
const tableSQL = `SELECT c.relname, array_agg(a.attname::text ORDER BY a.attnum)
	FROM pg_class c
	JOIN pg_namespace n ON n.oid = c.relnamespace
	JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
	WHERE n.nspname = $1 AND c.relkind = 'r'
	GROUP BY c.relname ORDER BY c.relname`

// foreignKeySQL lists which table of the schema references which.
const foreignKeySQL = `SELECT t.relname, r.relname
	FROM pg_constraint k
	JOIN pg_class t ON t.oid = k.conrelid
	JOIN pg_class r ON r.oid = k.confrelid
	JOIN pg_namespace n ON n.oid = t.relnamespace
	WHERE k.contype = 'f' AND n.nspname = $1 AND t.oid <> r.oid`

// volumeSQL lists the sites that have a volume (their template mounts
// one), or the one asked for.
const volumeSQL = `SELECT s.id::text FROM sites s JOIN templates t ON t.id = s.template_id
	WHERE t.data_path <> '' AND ($1 = '' OR s.id::text = $1) ORDER BY s.id`

// tables returns the schema's tables to back up, each after the tables
// it references.
func tables(ctx context.Context, q pgx.Tx, schema string) ([]Table, error) {
	rows, err := q.Query(ctx, tableSQL, schema)
	if err != nil {
		return nil, fmt.Errorf("listing tables: %w", err)
	}
	var all []Table
	for rows.Next() {
		var t Table
		if err := rows.Scan(&t.Table, &t.Columns); err != nil {
			return nil, fmt.Errorf("listing tables: %w", err)
		}
		if !skip(t.Table) {
			all = append(all, t)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing tables: %w", err)
	}
	deps := map[string][]string{}
	rows, err = q.Query(ctx, foreignKeySQL, schema)
	if err != nil {
		return nil, fmt.Errorf("listing foreign keys: %w", err)
	}
	for rows.Next() {
		var from, to string
		if err := rows.Scan(&from, &to); err != nil {
			return nil, fmt.Errorf("listing foreign keys: %w", err)
		}
		deps[from] = append(deps[from], to)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing foreign keys: %w", err)
	}
	return loadOrder(all, deps), nil
}

// loadOrder sorts tables so that each comes after those it references
// (by name where that leaves a choice, so archives of one schema list
// their tables alike). A cycle would be broken arbitrarily; the schema
// has none.
func loadOrder(all []Table, deps map[string][]string) []Table {
	byName := map[string]Table{}
	for _, t := range all {
		byName[t.Table] = t
	}
	var out []Table
	done := map[string]bool{}
	var visit func(name string, path map[string]bool)
	visit = func(name string, path map[string]bool) {
		t, ok := byName[name]
		if !ok || done[name] || path[name] {
			return
		}
		path[name] = true
		refs := slices.Clone(deps[name])
		slices.Sort(refs)
		for _, r := range refs {
			visit(r, path)
		}
		done[name] = true
		out = append(out, t)
	}
	for _, t := range all {
		visit(t.Table, map[string]bool{})
	}
	return out
}

// copyOut writes table's rows to w in COPY's text format.
func copyOut(ctx context.Context, tx pgx.Tx, t Table, w io.Writer) error {
	// Table and column names come from the catalog, quoted; COPY takes no
	// parameters for them.
	_, err := tx.Conn().PgConn().CopyTo(ctx, w, "COPY "+pgx.Identifier{t.Table}.Sanitize()+" ("+columnList(t.Columns)+") TO STDOUT")
	if err != nil {
		return fmt.Errorf("copying table %s: %w", t.Table, err)
	}
	return nil
}

func columnList(cols []string) string {
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = pgx.Identifier{c}.Sanitize()
	}
	return strings.Join(quoted, ", ")
}

// sequences returns the values of the schema's sequences of backed-up
// tables. Sequences are not transactional: a value may be ahead of the
// snapshot, which only skips numbers.
func sequences(ctx context.Context, tx pgx.Tx, schema string) ([]Sequence, error) {
	rows, err := tx.Query(ctx, `SELECT sequencename::text, last_value FROM pg_sequences
		WHERE schemaname = $1 AND last_value IS NOT NULL ORDER BY sequencename`, schema)
	if err != nil {
		return nil, fmt.Errorf("reading sequences: %w", err)
	}
	seqs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Sequence, error) {
		var s Sequence
		err := r.Scan(&s.Name, &s.Value)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading sequences: %w", err)
	}
	return slices.DeleteFunc(seqs, func(s Sequence) bool { return skip(s.Name) }), nil
}
