package storage

import (
	"context"
	_ "embed"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/internal/pglock"
)

// schemaDDL creates the tables; it is idempotent.
//
//go:embed schema.sql
var schemaDDL string

// tablesExistSQL resolves the names through search_path, as the queries do.
const tablesExistSQL = `SELECT to_regclass('certmagic_data') IS NOT NULL AND to_regclass('certmagic_locks') IS NOT NULL`

// ensureSchema creates the schema and tables on first use. A failure is not
// remembered: the next call tries again, so a database that was down at
// start-up does not leave the storage broken for good.
func (s *Storage) ensureSchema(ctx context.Context) error {
	if s.schemaReady.Load() {
		return nil
	}
	// A channel rather than a sync.Mutex so that waiting honors ctx.
	select {
	case s.schemaSem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.schemaSem }()
	if s.schemaReady.Load() {
		return nil
	}
	var created bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) (err error) {
		created, err = s.createSchema(ctx, tx)
		return err
	})
	if err != nil {
		return fmt.Errorf("creating storage tables: %w", err)
	}
	if created {
		s.logger.Info("created storage tables", zap.String("schema", s.schema))
	}
	s.schemaReady.Store(true)
	return nil
}

// createSchema creates what is missing and reports whether it had to.
func (s *Storage) createSchema(ctx context.Context, tx pgx.Tx) (bool, error) {
	// Two nodes starting together must not both run CREATE TABLE IF NOT
	// EXISTS, which is not race-free in PostgreSQL: the loser fails on a
	// unique violation in pg_type.
	if err := pglock.Xact(ctx, tx, pglock.Key(pglock.ScopeStorage, s.schema, "")); err != nil {
		return false, fmt.Errorf("taking schema lock: %w", err)
	}
	// CREATE … IF NOT EXISTS checks the CREATE privilege before it checks
	// existence, so a role that may only use tables someone else made would
	// fail on it; look first.
	var exists bool
	if err := tx.QueryRow(ctx, tablesExistSQL).Scan(&exists); err != nil {
		return false, fmt.Errorf("looking for storage tables: %w", err)
	}
	if exists {
		return false, nil
	}
	if s.schema != "" {
		// The name was checked by pgpool.ValidSchema; quoting it is belt
		// and braces. DDL takes no parameters, hence the one built string.
		if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{s.schema}.Sanitize()); err != nil {
			return false, fmt.Errorf("creating schema %s: %w", s.schema, err)
		}
	}
	// search_path names the schema, which may only now exist; PostgreSQL
	// resolves it per statement, so the tables land in it.
	if _, err := tx.Exec(ctx, schemaDDL); err != nil {
		return false, err
	}
	return true, nil
}

// CreateTables creates the storage's tables in pool's search_path (and
// schema, if missing) unless they exist: a restore loads certificates
// into them before any Caddy ran on the database.
func CreateTables(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	return New(pool, Options{Schema: schema}).ensureSchema(ctx)
}
