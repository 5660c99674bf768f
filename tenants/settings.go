package tenants

import (
	"context"
	"slices"
	"time"
)

// Settings are the server's settings that the CLI and other nodes need
// to agree with: which subdomains are the platform's and which never
// belong to a site.
type Settings struct {
	BaseDomain string    `json:"base_domain" db:"base_domain"`
	Reserved   []string  `json:"reserved" db:"reserved"`
	UpdatedAt  time.Time `json:"updated_at" db:"updated_at"`
}

// RecordSettings stores the server's settings, and reports whether they
// differ from those recorded before (a change is worth a log line: two
// nodes with different settings take turns).
func (s *Store) RecordSettings(ctx context.Context, st Settings) (changed bool, err error) {
	reserved := slices.Clone(nonNilStrings(st.Reserved))
	slices.Sort(reserved)
	tag, err := s.pool.Exec(ctx, `INSERT INTO platform_settings (base_domain, reserved) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET base_domain = excluded.base_domain, reserved = excluded.reserved,
			updated_at = now()
		WHERE (platform_settings.base_domain, platform_settings.reserved) IS DISTINCT FROM (excluded.base_domain, excluded.reserved)`,
		st.BaseDomain, reserved)
	if err != nil {
		return false, mapError("recording settings", err)
	}
	return tag.RowsAffected() > 0, nil
}

// RecordedSettings returns the settings the server recorded; ErrNotFound
// before a server has started on the schema.
func (s *Store) RecordedSettings(ctx context.Context) (*Settings, error) {
	st, err := collectOne[Settings](s.pool.Query(ctx, `SELECT base_domain, reserved, updated_at FROM platform_settings`))
	return st, mapError("reading recorded settings", err)
}

// Options returns the store's settings.
func (s *Store) Options() Options { return s.opts }
