package manage

import (
	"context"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

// Accounts: the people who sign in to the web UI. Operators run the
// platform; a customer's users (invited by an operator) see only that
// customer's sites, through a CustomerScope.

// User is a person as the UI and the CLI list them.
type User struct {
	tenants.User
	// CustomerEmail names the customer of a customer's user.
	CustomerEmail string `json:"customer_email,omitempty"`
	TOTP          bool   `json:"totp"`
	// Invited is true while the user has not set a password yet.
	Invited bool `json:"invited"`
}

// InvitationTTL is how long an invitation link works.
const InvitationTTL = 7 * 24 * time.Hour

// Invitation is a one-time link's token, shown this once.
type Invitation struct {
	User      *User     `json:"user"`
	Token     string    `json:"token"`
	Path      string    `json:"path"` // where the UI takes it: /invite/<token>
	ExpiresAt time.Time `json:"expires_at"`
}

func (s *Service) userOut(ctx context.Context, u *tenants.User) (*User, error) {
	out := &User{User: *u, TOTP: u.HasTOTP(), Invited: u.PasswordHash == ""}
	if u.CustomerID != nil {
		c, err := s.store.GetCustomer(ctx, *u.CustomerID)
		if err != nil {
			return nil, fail("customer", err)
		}
		out.CustomerEmail = c.Email
	}
	return out, nil
}

func (s *Service) user(ctx context.Context, ref string) (*tenants.User, error) {
	return find(ctx, "user", "", ref, s.store.GetUser, s.store.GetUserByEmail)
}

// CreateOperator adds an operator who signs in with email and password.
func (s *Service) CreateOperator(ctx context.Context, actor, email, name, password string) (*User, error) {
	if err := checkPassword(password); err != nil {
		return nil, err
	}
	hash, err := HashPassword(password)
	if err != nil {
		return nil, fail("user", err)
	}
	u := &tenants.User{Email: strings.TrimSpace(email), Name: name, PasswordHash: hash}
	if err := s.store.CreateUser(ctx, actor, u); err != nil {
		return nil, fail("user", err)
	}
	return s.userOut(ctx, u)
}

// InviteCustomerUser adds a user of the customer ref names (or, when the
// email has one already that has not accepted yet, renews its link) and
// returns a one-time link for setting a password.
func (s *Service) InviteCustomerUser(ctx context.Context, actor, customerRef, email, name string) (*Invitation, error) {
	c, err := s.customer(ctx, "customer_id", customerRef)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(email) == "" {
		email = c.Email
	}
	u, err := s.store.GetUserByEmail(ctx, email)
	switch {
	case err == nil && (u.CustomerID == nil || *u.CustomerID != c.ID):
		return nil, conflict("email", "a user with this email already exists")
	case err == nil && u.PasswordHash != "":
		return nil, conflict("email", "this user has signed in already; an operator can set a new password instead")
	case err != nil && !IsCode(fail("user", err), NotFound):
		return nil, fail("user", err)
	case err != nil:
		u = &tenants.User{Email: strings.TrimSpace(email), Name: name, CustomerID: &c.ID}
		if err := s.store.CreateUser(ctx, actor, u); err != nil {
			return nil, fail("user", err)
		}
	}
	expires := time.Now().Add(InvitationTTL)
	token, err := s.store.CreateInvitation(ctx, actor, u.ID, expires)
	if err != nil {
		return nil, fail("invitation", err)
	}
	out, err := s.userOut(ctx, u)
	if err != nil {
		return nil, err
	}
	return &Invitation{User: out, Token: token, Path: "/invite/" + token, ExpiresAt: expires}, nil
}

// InvitedUser returns who the invitation token is for, NotFound when the
// link is unknown, used or expired.
func (s *Service) InvitedUser(ctx context.Context, token string) (*User, error) {
	if !plausibleRef(token) {
		return nil, notFound("invitation")
	}
	u, err := s.store.InvitedUser(ctx, token)
	if err != nil {
		return nil, fail("invitation", err)
	}
	return s.userOut(ctx, u)
}

// AcceptInvitation sets the password of the invitation token's user; the
// link works once.
func (s *Service) AcceptInvitation(ctx context.Context, token, password string) (*User, error) {
	if err := checkPassword(password); err != nil {
		return nil, err
	}
	if !plausibleRef(token) {
		return nil, notFound("invitation")
	}
	hash, err := HashPassword(password)
	if err != nil {
		return nil, fail("user", err)
	}
	u, err := s.store.AcceptInvitation(ctx, token, hash)
	if err != nil {
		return nil, fail("invitation", err)
	}
	return s.userOut(ctx, u)
}

// ListUsers returns the users f selects: operators, a customer's, or all.
func (s *Service) ListUsers(ctx context.Context, f tenants.UserFilter) ([]User, error) {
	list, err := s.store.ListUsers(ctx, f)
	if err != nil {
		return nil, fail("user", err)
	}
	out := make([]User, 0, len(list))
	for i := range list {
		u, err := s.userOut(ctx, &list[i])
		if err != nil {
			return nil, err
		}
		out = append(out, *u)
	}
	return out, nil
}

// GetUser returns the user ref names (id or email).
func (s *Service) GetUser(ctx context.Context, ref string) (*User, error) {
	u, err := s.user(ctx, ref)
	if err != nil {
		return nil, err
	}
	return s.userOut(ctx, u)
}

// DeleteUser removes the user ref names, signing it out everywhere. The
// last operator who can sign in stays: without one nobody could.
func (s *Service) DeleteUser(ctx context.Context, actor, ref string) error {
	u, err := s.user(ctx, ref)
	if err != nil {
		return err
	}
	if u.Operator() && u.PasswordHash != "" {
		ops, err := s.store.ListUsers(ctx, tenants.UserFilter{Operators: true})
		if err != nil {
			return fail("user", err)
		}
		left := 0
		for _, o := range ops {
			if o.ID != u.ID && o.PasswordHash != "" {
				left++
			}
		}
		if left == 0 {
			return conflict("email", "this is the last operator; add another before removing it")
		}
	}
	return fail("user", s.store.DeleteUser(ctx, actor, u.ID))
}

// SetPassword gives the user ref names a new password and ends its
// sessions everywhere.
func (s *Service) SetPassword(ctx context.Context, actor, ref, password string) error {
	u, err := s.user(ctx, ref)
	if err != nil {
		return err
	}
	if err := checkPassword(password); err != nil {
		return err
	}
	hash, err := HashPassword(password)
	if err != nil {
		return fail("user", err)
	}
	return fail("user", s.store.SetUserPassword(ctx, actor, u.ID, hash))
}

// errBadLogin is every failed sign-in: callers cannot tell an unknown
// email from a wrong password.
var errBadLogin = &Error{Code: Denied, Message: "wrong email or password"}

// Authenticate returns the user whose email and password these are. It
// takes an argon2id verification's time whether or not the user exists.
func (s *Service) Authenticate(ctx context.Context, email, password string) (*tenants.User, error) {
	email = strings.TrimSpace(email)
	if !plausibleRef(email) || len(password) > 4*MaxPasswordLen {
		VerifyPassword(dummyHash, password)
		return nil, errBadLogin
	}
	u, err := s.store.GetUserByEmail(ctx, email)
	if err != nil {
		VerifyPassword(dummyHash, password)
		if IsCode(fail("user", err), NotFound) {
			return nil, errBadLogin
		}
		return nil, fail("user", err)
	}
	if u.PasswordHash == "" {
		VerifyPassword(dummyHash, password)
		return nil, errBadLogin
	}
	ok, err := VerifyPassword(u.PasswordHash, password)
	if err != nil || !ok {
		return nil, errBadLogin
	}
	return u, nil
}

// NewTOTP makes a TOTP secret for the user ref names to enroll: the
// secret and the otpauth:// URL an authenticator app takes. Nothing is
// stored until ConfirmTOTP gets a code made from it.
func (s *Service) NewTOTP(ctx context.Context, issuer, ref string) (secret, url string, err error) {
	u, err := s.user(ctx, ref)
	if err != nil {
		return "", "", err
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: u.Email})
	if err != nil {
		return "", "", fail("user", err)
	}
	return key.Secret(), key.URL(), nil
}

// ConfirmTOTP turns on the second factor of the user ref names, if code
// was made from secret now: so nobody is locked out by a mistyped secret.
func (s *Service) ConfirmTOTP(ctx context.Context, actor, ref, secret, code string) error {
	u, err := s.user(ctx, ref)
	if err != nil {
		return err
	}
	if !ValidTOTP(secret, code) {
		return invalid("code", "the code does not match; check the authenticator's time and try the next code")
	}
	return fail("user", s.store.SetUserTOTP(ctx, actor, u.ID, secret))
}

// DisableTOTP turns off the second factor of the user ref names.
func (s *Service) DisableTOTP(ctx context.Context, actor, ref string) error {
	u, err := s.user(ctx, ref)
	if err != nil {
		return err
	}
	return fail("user", s.store.SetUserTOTP(ctx, actor, u.ID, ""))
}

// ValidTOTP reports whether code is secret's code now (allowing one
// 30-second step of clock skew either way).
func ValidTOTP(secret, code string) bool {
	code = strings.TrimSpace(code)
	if secret == "" || len(code) != 6 {
		return false
	}
	ok, err := totp.ValidateCustom(code, secret, time.Now(), totp.ValidateOpts{
		Period: 30, Skew: 1, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
	})
	return err == nil && ok
}

// LogoutEverywhere ends every session of the user ref names on every node.
func (s *Service) LogoutEverywhere(ctx context.Context, actor, ref string) (int64, error) {
	u, err := s.user(ctx, ref)
	if err != nil {
		return 0, err
	}
	n, err := s.store.DeleteUserSessions(ctx, actor, u.ID)
	return n, fail("user", err)
}
