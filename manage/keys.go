package manage

import (
	"context"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

// NewKey is a key just made, with its token: shown this once.
type NewKey struct {
	*tenants.APIKey
	Token string `json:"token"`
}

// CreateAPIKey makes an admin API key of scope (read or write).
func (s *Service) CreateAPIKey(ctx context.Context, actor, name, scope string) (*NewKey, error) {
	token, key, err := s.store.CreateAPIKey(ctx, actor, name, scope)
	if err != nil {
		return nil, fail("api key", err)
	}
	return &NewKey{APIKey: key, Token: token}, nil
}

// ListAPIKeys returns every API key, never their secrets.
func (s *Service) ListAPIKeys(ctx context.Context) ([]tenants.APIKey, error) {
	list, err := s.store.ListAPIKeys(ctx)
	return list, fail("api key", err)
}

// RevokeAPIKey revokes the key with the public key id at once.
func (s *Service) RevokeAPIKey(ctx context.Context, actor, keyID string) error {
	return fail("api key", s.store.RevokeAPIKey(ctx, actor, keyID))
}

// ListAudit returns audit entries matching f, newest first.
func (s *Service) ListAudit(ctx context.Context, f tenants.AuditFilter) ([]tenants.AuditEntry, error) {
	list, err := s.store.ListAudit(ctx, f)
	return list, fail("audit entry", err)
}
