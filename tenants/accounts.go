package tenants

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// User is a person who signs in to the web UI: an operator, or, with
// CustomerID set, one of a customer's people, who sees only that
// customer's sites.
type User struct {
	ID           string     `json:"id" db:"id"`
	Email        string     `json:"email" db:"email"`
	Name         string     `json:"name" db:"name"`
	PasswordHash string     `json:"-" db:"password_hash"`
	TOTPSecret   *string    `json:"-" db:"totp_secret"`
	CustomerID   *string    `json:"customer_id,omitempty" db:"customer_id"`
	CreatedAt    time.Time  `json:"created_at" db:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at" db:"updated_at"`
	LastLoginAt  *time.Time `json:"last_login_at,omitempty" db:"last_login_at"`
}

// Operator reports whether u runs the platform (not one customer's).
func (u *User) Operator() bool { return u.CustomerID == nil }

// HasTOTP reports whether u signs in with a second factor.
func (u *User) HasTOTP() bool { return u.TOTPSecret != nil && *u.TOTPSecret != "" }

// auditUser is what the audit log records of a user: never its secrets.
type auditUser struct {
	Email      string  `json:"email"`
	Name       string  `json:"name"`
	CustomerID *string `json:"customer_id,omitempty"`
	TOTP       bool    `json:"totp"`
}

func (u *User) audit() *auditUser {
	if u == nil {
		return nil
	}
	return &auditUser{Email: u.Email, Name: u.Name, CustomerID: u.CustomerID, TOTP: u.HasTOTP()}
}

const userColumns = `id, email, name, password_hash, totp_secret, customer_id, created_at, updated_at, last_login_at`

// UserFilter narrows ListUsers.
type UserFilter struct {
	// Operators lists operators only; CustomerID a customer's users only.
	Operators  bool
	CustomerID string
}

// CreateUser adds u (its PasswordHash may be empty: an invited user).
func (s *Store) CreateUser(ctx context.Context, actor string, u *User) error {
	if err := validateEmail(u.Email); err != nil {
		return err
	}
	if u.Name != "" {
		if err := checkText("name", u.Name, MaxNameLen); err != nil {
			return err
		}
	}
	if u.CustomerID != nil {
		if err := validateID("customer_id", *u.CustomerID); err != nil {
			return err
		}
	}
	return s.write(ctx, change{actor, "create", "user"}, func(tx pgx.Tx) (string, any, any, error) {
		got, err := collectOne[User](tx.Query(ctx, `INSERT INTO users (email, name, password_hash, customer_id)
			VALUES ($1, $2, $3, $4) RETURNING `+userColumns, u.Email, u.Name, u.PasswordHash, u.CustomerID))
		if err != nil {
			return "", nil, nil, err
		}
		*u = *got
		return u.ID, nil, u.audit(), nil
	})
}

// GetUser returns the user with id.
func (s *Store) GetUser(ctx context.Context, id string) (*User, error) {
	u, err := collectOne[User](s.pool.Query(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	return u, mapError("getting user", err)
}

// GetUserByEmail returns the user with email.
func (s *Store) GetUserByEmail(ctx context.Context, email string) (*User, error) {
	u, err := collectOne[User](s.pool.Query(ctx, `SELECT `+userColumns+` FROM users WHERE email = $1`, email))
	return u, mapError("getting user", err)
}

// ListUsers returns the users f selects, by email.
func (s *Store) ListUsers(ctx context.Context, f UserFilter) ([]User, error) {
	var customer *string
	if f.CustomerID != "" {
		customer = &f.CustomerID
	}
	list, err := collectAll[User](s.pool.Query(ctx, `SELECT `+userColumns+` FROM users
		WHERE (NOT $1 OR customer_id IS NULL) AND ($2::uuid IS NULL OR customer_id = $2)
		ORDER BY email`, f.Operators, customer))
	return list, mapError("listing users", err)
}

// DeleteUser removes the user with id, its sessions and invitations.
func (s *Store) DeleteUser(ctx context.Context, actor, id string) error {
	return s.write(ctx, change{actor, "delete", "user"}, func(tx pgx.Tx) (string, any, any, error) {
		u, err := collectOne[User](tx.Query(ctx, `DELETE FROM users WHERE id = $1 RETURNING `+userColumns, id))
		if err != nil {
			return "", nil, nil, err
		}
		return u.ID, u.audit(), nil, nil
	})
}

// SetUserPassword replaces the password hash of the user with id and,
// since a new password is what one sets after a leak, ends its sessions.
func (s *Store) SetUserPassword(ctx context.Context, actor, id, hash string) error {
	return s.write(ctx, change{actor, "set_password", "user"}, func(tx pgx.Tx) (string, any, any, error) {
		u, err := collectOne[User](tx.Query(ctx, `UPDATE users SET password_hash = $2, updated_at = now()
			WHERE id = $1 RETURNING `+userColumns, id, hash))
		if err != nil {
			return "", nil, nil, err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM user_sessions WHERE user_id = $1`, id); err != nil {
			return "", nil, nil, err
		}
		return u.ID, nil, u.audit(), nil
	})
}

// SetUserTOTP sets (or, with secret "", removes) the second factor of the
// user with id.
func (s *Store) SetUserTOTP(ctx context.Context, actor, id, secret string) error {
	var v *string
	if secret != "" {
		v = &secret
	}
	return s.write(ctx, change{actor, "set_totp", "user"}, func(tx pgx.Tx) (string, any, any, error) {
		u, err := collectOne[User](tx.Query(ctx, `UPDATE users SET totp_secret = $2, updated_at = now()
			WHERE id = $1 RETURNING `+userColumns, id, v))
		if err != nil {
			return "", nil, nil, err
		}
		return u.ID, nil, u.audit(), nil
	})
}

// Session is a signed-in browser.
type Session struct {
	UserID     string    `db:"user_id"`
	CSRFToken  string    `db:"csrf_token"`
	Complete   bool      `db:"complete"`
	Flash      string    `db:"flash"`
	CreatedAt  time.Time `db:"created_at"`
	LastSeenAt time.Time `db:"last_seen_at"`
	ExpiresAt  time.Time `db:"expires_at"`
	ClientIP   string    `db:"client_ip"`
	UserAgent  string    `db:"user_agent"`
}

const sessionColumns = `user_id, csrf_token, complete, flash, created_at, last_seen_at, expires_at, client_ip, user_agent`

// NewSecret returns 32 random bytes as URL-safe base64: session tokens,
// form tokens, invitation tokens.
func NewSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func secretHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// CreateSession starts a session of the user with id lasting until
// expires, complete unless a second factor is still due, and returns its
// token (the cookie's value; only its hash is stored).
func (s *Store) CreateSession(ctx context.Context, userID string, complete bool, expires time.Time, clientIP, userAgent string) (token string, sess *Session, err error) {
	if token, err = NewSecret(); err != nil {
		return "", nil, err
	}
	csrf, err := NewSecret()
	if err != nil {
		return "", nil, err
	}
	sess, err = collectOne[Session](s.pool.Query(ctx, `INSERT INTO user_sessions
		(token_hash, user_id, csrf_token, complete, expires_at, client_ip, user_agent)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING `+sessionColumns,
		secretHash(token), userID, csrf, complete, expires, truncate(clientIP, 64), truncate(userAgent, 300)))
	if err != nil {
		return "", nil, mapError("creating session", err)
	}
	if complete {
		_, err = s.pool.Exec(ctx, `UPDATE users SET last_login_at = now() WHERE id = $1`, userID)
	}
	return token, sess, mapError("creating session", err)
}

// GetSession returns the unexpired session of token and its user; an
// unknown or expired token is ErrNotFound.
func (s *Store) GetSession(ctx context.Context, token string) (*Session, *User, error) {
	var sess Session
	var u User
	err := s.pool.QueryRow(ctx, `SELECT s.user_id, s.csrf_token, s.complete, s.flash, s.created_at, s.last_seen_at,
			s.expires_at, s.client_ip, s.user_agent,
			u.id, u.email, u.name, u.password_hash, u.totp_secret, u.customer_id, u.created_at, u.updated_at, u.last_login_at
		FROM user_sessions s JOIN users u ON u.id = s.user_id
		WHERE s.token_hash = $1 AND s.expires_at > now()`, secretHash(token)).Scan(
		&sess.UserID, &sess.CSRFToken, &sess.Complete, &sess.Flash, &sess.CreatedAt, &sess.LastSeenAt, &sess.ExpiresAt, &sess.ClientIP, &sess.UserAgent,
		&u.ID, &u.Email, &u.Name, &u.PasswordHash, &u.TOTPSecret, &u.CustomerID, &u.CreatedAt, &u.UpdatedAt, &u.LastLoginAt)
	if err != nil {
		return nil, nil, mapError("getting session", err)
	}
	return &sess, &u, nil
}

// TouchSession records that token's session was used now and moves its
// expiry to expires (never past its absolute end, which the caller
// computes).
func (s *Store) TouchSession(ctx context.Context, token string, expires time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE user_sessions SET last_seen_at = now(), expires_at = $2
		WHERE token_hash = $1`, secretHash(token), expires)
	return mapError("touching session", err)
}

// SetSessionFlash leaves msg for the next page token's session sees;
// "" clears it.
func (s *Store) SetSessionFlash(ctx context.Context, token, msg string) error {
	_, err := s.pool.Exec(ctx, `UPDATE user_sessions SET flash = $2 WHERE token_hash = $1`, secretHash(token), truncate(msg, 500))
	return mapError("setting flash", err)
}

// CompleteSession marks token's session complete: its second factor was
// given.
func (s *Store) CompleteSession(ctx context.Context, token string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE user_sessions SET complete = true, last_seen_at = now()
		WHERE token_hash = $1 AND expires_at > now()`, secretHash(token))
	if err == nil && tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	if err == nil {
		_, err = s.pool.Exec(ctx, `UPDATE users SET last_login_at = now()
			WHERE id = (SELECT user_id FROM user_sessions WHERE token_hash = $1)`, secretHash(token))
	}
	return mapError("completing session", err)
}

// DeleteSession ends token's session.
func (s *Store) DeleteSession(ctx context.Context, token string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM user_sessions WHERE token_hash = $1`, secretHash(token))
	return mapError("deleting session", err)
}

// DeleteUserSessions ends every session of the user with id, on every
// node, and returns how many there were.
func (s *Store) DeleteUserSessions(ctx context.Context, actor, userID string) (int64, error) {
	var n int64
	err := s.write(ctx, change{actor, "logout_everywhere", "user"}, func(tx pgx.Tx) (string, any, any, error) {
		tag, err := tx.Exec(ctx, `DELETE FROM user_sessions WHERE user_id = $1`, userID)
		n = tag.RowsAffected()
		return userID, nil, map[string]int64{"sessions_ended": n}, err
	})
	return n, err
}

// CountUserSessions returns how many live sessions the user with id has.
func (s *Store) CountUserSessions(ctx context.Context, userID string) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM user_sessions WHERE user_id = $1 AND expires_at > now()`, userID).Scan(&n)
	return n, mapError("counting sessions", err)
}

// PruneSessions removes expired sessions and invitations.
func (s *Store) PruneSessions(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM user_sessions WHERE expires_at <= now()`)
	if err == nil {
		_, err = s.pool.Exec(ctx, `DELETE FROM invitations WHERE expires_at <= now() - interval '30 days'`)
	}
	return mapError("pruning sessions", err)
}

// CreateInvitation makes a one-time link token for the user with id,
// valid until expires, and returns the token (stored hashed).
func (s *Store) CreateInvitation(ctx context.Context, actor, userID string, expires time.Time) (string, error) {
	token, err := NewSecret()
	if err != nil {
		return "", err
	}
	err = s.write(ctx, change{actor, "invite", "user"}, func(tx pgx.Tx) (string, any, any, error) {
		_, err := tx.Exec(ctx, `INSERT INTO invitations (token_hash, user_id, created_by, expires_at)
			VALUES ($1, $2, $3, $4)`, secretHash(token), userID, actor, expires)
		return userID, nil, map[string]time.Time{"expires_at": expires}, err
	})
	return token, err
}

// InvitedUser returns the user an unused, unexpired invitation token is
// for; anything else is ErrNotFound.
func (s *Store) InvitedUser(ctx context.Context, token string) (*User, error) {
	u, err := collectOne[User](s.pool.Query(ctx, `SELECT u.id, u.email, u.name, u.password_hash, u.totp_secret, u.customer_id,
			u.created_at, u.updated_at, u.last_login_at
		FROM invitations i JOIN users u ON u.id = i.user_id
		WHERE i.token_hash = $1 AND i.accepted_at IS NULL AND i.expires_at > now()`, secretHash(token)))
	return u, mapError("getting invitation", err)
}

// AcceptInvitation sets the password hash of token's user and uses the
// invitation up, in one transaction, so a link works once.
func (s *Store) AcceptInvitation(ctx context.Context, token, hash string) (*User, error) {
	var u *User
	err := s.write(ctx, change{"invitation", "accept_invitation", "user"}, func(tx pgx.Tx) (string, any, any, error) {
		var userID string
		err := tx.QueryRow(ctx, `UPDATE invitations SET accepted_at = now()
			WHERE token_hash = $1 AND accepted_at IS NULL AND expires_at > now() RETURNING user_id`,
			secretHash(token)).Scan(&userID)
		if err != nil {
			return "", nil, nil, err
		}
		u, err = collectOne[User](tx.Query(ctx, `UPDATE users SET password_hash = $2, updated_at = now()
			WHERE id = $1 RETURNING `+userColumns, userID, hash))
		if err != nil {
			return "", nil, nil, err
		}
		return u.ID, nil, u.audit(), nil
	})
	return u, err
}

// truncate cuts s to at most n bytes, for what is recorded for people to
// read (a user agent), never for what is compared.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
