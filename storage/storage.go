package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
)

// Defaults for Options.
const (
	// DefaultLockTTL bounds how long a crashed holder blocks everyone else.
	// Locks guard ACME orders, which are rare and slow, so a 30 s stall
	// after a crash costs little, while a short TTL would risk a lease
	// expiring under a live holder during a database hiccup.
	DefaultLockTTL = 30 * time.Second

	// DefaultLockPollInterval is how often a waiter retries a taken lock
	// (jittered). It is the whole hand-off latency: ~20 ms is well under
	// what an ACME round trip takes, and one tiny indexed statement per
	// waiter per interval is cheap.
	DefaultLockPollInterval = 20 * time.Millisecond
)

// Options tunes a Storage. The zero value is usable.
type Options struct {
	// Schema is the schema the pool's search_path selects. When set, it is
	// created on first use if it is missing; when empty, the tables are
	// created wherever search_path puts them.
	Schema string

	// LockTTL is how long a lease lasts without renewal. Held locks are
	// renewed every LockTTL/3. Default: DefaultLockTTL.
	LockTTL time.Duration

	// LockPollInterval is how often Lock retries a taken lock, jittered by
	// ±50 %. Default: DefaultLockPollInterval.
	LockPollInterval time.Duration

	// Logger receives lease renewal problems. Default: no logging.
	Logger *zap.Logger
}

// Storage is a certmagic.Storage in PostgreSQL. Every Storage is its own
// lock owner: two Storage values are two nodes, even in one process.
type Storage struct {
	pool         *pgxpool.Pool
	schema       string
	lockTTL      time.Duration
	pollInterval time.Duration
	logger       *zap.Logger

	// owner identifies this Storage's leases in certmagic_locks.
	owner string

	schemaReady atomic.Bool
	schemaSem   chan struct{} // held while creating the schema

	heartbeats atomic.Int32 // running heartbeat goroutines; tests watch it

	mu     sync.Mutex
	leases map[string]*lease // locks this Storage holds, by name
	closed bool
}

// New returns a Storage keeping its data in pool. It does not touch the
// database: the tables are created on first use. The caller keeps
// ownership of pool and must call Close before closing it.
func New(pool *pgxpool.Pool, opts Options) *Storage {
	if opts.LockTTL <= 0 {
		opts.LockTTL = DefaultLockTTL
	}
	if opts.LockPollInterval <= 0 {
		opts.LockPollInterval = DefaultLockPollInterval
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	return &Storage{
		pool:         pool,
		schema:       opts.Schema,
		lockTTL:      opts.LockTTL,
		pollInterval: opts.LockPollInterval,
		logger:       opts.Logger,
		owner:        newOwnerToken(),
		schemaSem:    make(chan struct{}, 1),
		leases:       make(map[string]*lease),
	}
}

// newOwnerToken makes a token unique to one Storage; host and pid in front
// tell an operator looking at certmagic_locks who holds what.
func newOwnerToken() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("reading random bytes: %v", err)) // crypto/rand does not fail on supported platforms
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// String names the storage in certmagic's logs.
func (s *Storage) String() string {
	return "PostgresStorage:" + s.schema
}

const (
	storeSQL = `INSERT INTO certmagic_data (key, value, modified) VALUES ($1, $2, now())
ON CONFLICT (key) DO UPDATE SET value = excluded.value, modified = excluded.modified`

	loadSQL = `SELECT value FROM certmagic_data WHERE key = $1`

	deleteSQL    = `DELETE FROM certmagic_data WHERE key = $1 OR (key >= $2 COLLATE "C" AND key < $3 COLLATE "C")`
	deleteAllSQL = `DELETE FROM certmagic_data`

	existsSQL = `SELECT EXISTS (SELECT 1 FROM certmagic_data WHERE key = $1)
	OR EXISTS (SELECT 1 FROM certmagic_data WHERE key >= $2 COLLATE "C" AND key < $3 COLLATE "C")`
	existsAnySQL = `SELECT EXISTS (SELECT 1 FROM certmagic_data)`

	listSQL    = `SELECT key FROM certmagic_data WHERE key >= $1 COLLATE "C" AND key < $2 COLLATE "C"`
	listAllSQL = `SELECT key FROM certmagic_data`

	// statSQL finds the file, else the directory (newest entry's time).
	// octet_length reads a TOASTed value's size without fetching it.
	statSQL = `SELECT true, octet_length(value), modified FROM certmagic_data WHERE key = $1
UNION ALL
SELECT false, 0, max(modified) FROM certmagic_data WHERE key >= $2 COLLATE "C" AND key < $3 COLLATE "C" HAVING count(*) > 0
ORDER BY 1 DESC LIMIT 1`
	statRootSQL = `SELECT false, 0, max(modified) FROM certmagic_data HAVING count(*) > 0`
)

// Store puts value at key, replacing any previous value. A single upsert
// is atomic: concurrent Loads see the old or the new value, never a mix.
func (s *Storage) Store(ctx context.Context, key string, value []byte) error {
	key = cleanKey(key)
	if key == "" {
		return errors.New("storing: empty key")
	}
	if value == nil {
		value = []byte{} // the column is NOT NULL; nil would encode as NULL
	}
	if err := s.ensureSchema(ctx); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, storeSQL, key, value); err != nil {
		return fmt.Errorf("storing %s: %w", key, err)
	}
	return nil
}

// Load returns the value at key, or an error wrapping fs.ErrNotExist.
func (s *Storage) Load(ctx context.Context, key string) ([]byte, error) {
	key = cleanKey(key)
	if err := s.ensureSchema(ctx); err != nil {
		return nil, err
	}
	var value []byte
	err := s.pool.QueryRow(ctx, loadSQL, key).Scan(&value)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("loading %s: %w", key, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", key, err)
	}
	return value, nil
}

// Delete removes key and, if it is a directory, everything under it, in one
// statement. A missing key is not an error. The empty key is the root, as
// it is for FileStorage: deleting it empties the storage.
func (s *Storage) Delete(ctx context.Context, key string) error {
	key = cleanKey(key)
	if err := s.ensureSchema(ctx); err != nil {
		return err
	}
	var err error
	if key == "" {
		_, err = s.pool.Exec(ctx, deleteAllSQL)
	} else {
		lo, hi := childRange(key)
		_, err = s.pool.Exec(ctx, deleteSQL, key, lo, hi)
	}
	if err != nil {
		return fmt.Errorf("deleting %s: %w", key, err)
	}
	return nil
}

// Exists reports whether key is a file or a directory. Errors read as
// false, as the interface asks.
func (s *Storage) Exists(ctx context.Context, key string) bool {
	key = cleanKey(key)
	if err := s.ensureSchema(ctx); err != nil {
		return false
	}
	var exists bool
	var err error
	if key == "" {
		err = s.pool.QueryRow(ctx, existsAnySQL).Scan(&exists)
	} else {
		lo, hi := childRange(key)
		err = s.pool.QueryRow(ctx, existsSQL, key, lo, hi).Scan(&exists)
	}
	return err == nil && exists
}

// List returns the keys under dir as FileStorage does: recursive lists
// files and directories at every depth, each directory before its
// contents; otherwise only dir's direct children. Listing a file gives
// nothing; listing what does not exist gives an error wrapping
// fs.ErrNotExist.
func (s *Storage) List(ctx context.Context, dir string, recursive bool) ([]string, error) {
	dir = cleanKey(dir)
	if err := s.ensureSchema(ctx); err != nil {
		return nil, err
	}
	var rows pgx.Rows
	var err error
	if dir == "" {
		rows, err = s.pool.Query(ctx, listAllSQL)
	} else {
		lo, hi := childRange(dir)
		rows, err = s.pool.Query(ctx, listSQL, lo, hi)
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", dir, err)
	}
	files, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", dir, err)
	}
	if len(files) == 0 {
		// Nothing under dir: a file lists as empty, anything else is missing.
		if _, err := s.Stat(ctx, dir); err != nil {
			return nil, fmt.Errorf("listing %s: %w", dir, err)
		}
		return []string{}, nil
	}
	treeOrder(files)
	return listing(dir, files, recursive), nil
}

// Stat describes key: a file with its size and modification time, or a
// directory (IsTerminal false) with the time of its newest file.
func (s *Storage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	key = cleanKey(key)
	if err := s.ensureSchema(ctx); err != nil {
		return certmagic.KeyInfo{}, err
	}
	var row pgx.Row
	if key == "" {
		row = s.pool.QueryRow(ctx, statRootSQL)
	} else {
		lo, hi := childRange(key)
		row = s.pool.QueryRow(ctx, statSQL, key, lo, hi)
	}
	info := certmagic.KeyInfo{Key: key}
	var size int32
	err := row.Scan(&info.IsTerminal, &size, &info.Modified)
	if errors.Is(err, pgx.ErrNoRows) {
		return certmagic.KeyInfo{}, fmt.Errorf("stat %s: %w", key, fs.ErrNotExist)
	}
	if err != nil {
		return certmagic.KeyInfo{}, fmt.Errorf("stat %s: %w", key, err)
	}
	info.Size = int64(size)
	return info, nil
}
