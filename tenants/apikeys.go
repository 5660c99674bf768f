package tenants

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"strings"

	"github.com/jackc/pgx/v5"
)

const apiKeyColumns = `id, key_id, secret_hash, name, scope, created_at, last_used_at, revoked_at`

// apiKeyPrefix starts every token, so leaked keys are recognizable by
// secret scanners.
const apiKeyPrefix = "mtk_"

// CreateAPIKey makes a new key and returns its token, which is shown this
// once: only a hash of its secret is stored. The token is
// "mtk_<key id>_<secret>", where the key id (public) finds the row and the
// 32-byte random secret is compared in constant time.
func (s *Store) CreateAPIKey(ctx context.Context, actor, name, scope string) (token string, key *APIKey, err error) {
	if err := validateName("name", name); err != nil {
		return "", nil, err
	}
	if scope != ScopeRead && scope != ScopeWrite {
		return "", nil, invalid("scope", "must be read or write")
	}
	var idBytes [8]byte
	var secret [32]byte
	if _, err := rand.Read(idBytes[:]); err != nil {
		return "", nil, err
	}
	if _, err := rand.Read(secret[:]); err != nil {
		return "", nil, err
	}
	keyID := hex.EncodeToString(idBytes[:])
	secretText := base64.RawURLEncoding.EncodeToString(secret[:])
	hash := sha256.Sum256([]byte(secretText))
	err = s.write(ctx, change{actor, "create", "api_key"}, func(tx pgx.Tx) (string, any, any, error) {
		key, err = collectOne[APIKey](tx.Query(ctx, `INSERT INTO api_keys (key_id, secret_hash, name, scope)
			VALUES ($1, $2, $3, $4) RETURNING `+apiKeyColumns, keyID, hash[:], name, scope))
		if err != nil {
			return "", nil, nil, err
		}
		return key.ID, nil, key, nil
	})
	if err != nil {
		return "", nil, err
	}
	return apiKeyPrefix + keyID + "_" + secretText, key, nil
}

// AuthenticateAPIKey returns the live key token belongs to. Any failure, a
// malformed token, an unknown id, a wrong secret or a revoked key, is
// ErrNotFound, so callers cannot tell them apart.
func (s *Store) AuthenticateAPIKey(ctx context.Context, token string) (*APIKey, error) {
	rest, ok := strings.CutPrefix(token, apiKeyPrefix)
	if !ok {
		return nil, ErrNotFound
	}
	keyID, secretText, ok := strings.Cut(rest, "_")
	if !ok || len(keyID) != 16 {
		return nil, ErrNotFound
	}
	key, err := collectOne[APIKey](s.pool.Query(ctx, `SELECT `+apiKeyColumns+` FROM api_keys
		WHERE key_id = $1`, keyID))
	if err != nil {
		return nil, mapError("authenticating api key", err)
	}
	hash := sha256.Sum256([]byte(secretText))
	if subtle.ConstantTimeCompare(hash[:], key.SecretHash) != 1 || key.RevokedAt != nil {
		return nil, ErrNotFound
	}
	return key, nil
}

// ListAPIKeys returns every key, revoked ones included.
func (s *Store) ListAPIKeys(ctx context.Context) ([]APIKey, error) {
	list, err := collectAll[APIKey](s.pool.Query(ctx, `SELECT `+apiKeyColumns+` FROM api_keys ORDER BY created_at, id`))
	return list, mapError("listing api keys", err)
}

// RevokeAPIKey revokes the key with the given key id (or row id) at once.
func (s *Store) RevokeAPIKey(ctx context.Context, actor, keyID string) error {
	return s.write(ctx, change{actor, "revoke", "api_key"}, func(tx pgx.Tx) (string, any, any, error) {
		before, err := collectOne[APIKey](tx.Query(ctx, `SELECT `+apiKeyColumns+` FROM api_keys
			WHERE key_id = $1 OR id::text = $1 FOR UPDATE`, keyID))
		if err != nil {
			return "", nil, nil, err
		}
		after, err := collectOne[APIKey](tx.Query(ctx, `UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
			WHERE id = $1 RETURNING `+apiKeyColumns, before.ID))
		if err != nil {
			return "", nil, nil, err
		}
		return before.ID, before, after, nil
	})
}
