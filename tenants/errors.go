package tenants

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrNotFound is returned when the row asked for does not exist.
var ErrNotFound = errors.New("not found")

// ErrUnavailable is wrapped by every error that means the database could
// not be reached (refused, timed out, shutting down, connection lost), and
// returned by the resolver for a host it has not cached then; callers
// answer 503 and ask to retry.
var ErrUnavailable = errors.New("tenant database unavailable")

// ErrConflict is wrapped by every *ConflictError.
var ErrConflict = errors.New("conflict")

// ConflictError reports a write refused because of other data: a duplicate
// of a unique value, or a row still referenced by others.
type ConflictError struct {
	Field   string // the field whose value collides, when one does
	Message string
}

func (e *ConflictError) Error() string { return e.Message }

// Unwrap makes errors.Is(err, ErrConflict) hold.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// ValidationError reports a value that is not acceptable, naming its field.
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// constraintErrors turns the database's constraint names into errors that
// name the API field at fault. It is the one place where SQL errors become
// domain errors.
var constraintErrors = map[string]func() error{
	"plans_slug_key":      func() error { return &ConflictError{"slug", "a plan with this slug already exists"} },
	"customers_email_key": func() error { return &ConflictError{"email", "a customer with this email already exists"} },
	"customers_stripe_customer_id_key": func() error {
		return &ConflictError{"stripe_customer_id", "another customer has this stripe customer id"}
	},
	"templates_slug_key":              func() error { return &ConflictError{"slug", "a template with this slug already exists"} },
	"sites_subdomain_key":             func() error { return &ConflictError{"subdomain", "this subdomain is taken"} },
	"domains_hostname_key":            func() error { return &ConflictError{"hostname", "this hostname is already in use"} },
	"users_email_key":                 func() error { return &ConflictError{"email", "a user with this email already exists"} },
	"api_keys_key_id_key":             func() error { return &ConflictError{"key_id", "key id collision; try again"} },
	"billing_events_pkey":             func() error { return &ConflictError{"id", "event already applied"} },
	"customers_plan_id_fkey":          func() error { return invalid("plan_id", "no such plan") },
	"sites_customer_id_fkey":          func() error { return invalid("customer_id", "no such customer") },
	"sites_template_id_fkey":          func() error { return invalid("template_id", "no such template") },
	"domains_site_id_fkey":            func() error { return invalid("site_id", "no such site") },
	"site_runtime_site_id_fkey":       func() error { return invalid("site_id", "no such site") },
	"billing_events_customer_id_fkey": func() error { return invalid("customer_id", "no such customer") },
}

// inUse maps foreign keys violated by a DELETE to the conflict it means.
var inUse = map[string]string{
	"customers_plan_id_fkey": "the plan still has customers",
	"sites_customer_id_fkey": "the customer still has sites",
	"sites_template_id_fkey": "the template is still used by sites",
}

// mapError translates pgx errors into ErrNotFound, *ConflictError,
// *ValidationError and ErrUnavailable; anything else is returned wrapped
// with what was being done.
func mapError(doing string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	if unreachable(err) {
		return unavailable(doing, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505": // unique_violation
			if mk, ok := constraintErrors[pgErr.ConstraintName]; ok {
				return mk()
			}
			return &ConflictError{Message: "duplicate value"}
		case "23503": // foreign_key_violation
			// On DELETE the violated key is the referencing table's, and the
			// statement is about the referenced row: it is still in use.
			if msg, ok := inUse[pgErr.ConstraintName]; ok && pgErr.TableName != "" && isDelete(doing) {
				return &ConflictError{Message: msg}
			}
			if mk, ok := constraintErrors[pgErr.ConstraintName]; ok {
				return mk()
			}
			return &ConflictError{Message: "referenced row missing or still in use"}
		case "22P02": // invalid_text_representation, e.g. a malformed uuid
			return ErrNotFound
		case "23514": // check_violation
			return invalid(checkField(pgErr.ConstraintName), "value out of range")
		}
	}
	return fmt.Errorf("%s: %w", doing, err)
}

func isDelete(doing string) bool { return strings.HasPrefix(doing, "delete") }

// unavailable wraps err in ErrUnavailable when it means the database could
// not be reached, unless it is already; any other error is returned as is.
// It is for errors mapError did not see, such as a transaction's BEGIN.
func unavailable(doing string, err error) error {
	if !unreachable(err) || errors.Is(err, ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%s: %w: %w", doing, ErrUnavailable, err)
}

// unreachable reports whether err is about the connection to the
// database rather than the statement: the retry of the same statement
// later may well succeed.
func unreachable(err error) bool {
	var connErr *pgconn.ConnectError
	var netErr net.Error
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return false
	case errors.As(err, &connErr), errors.As(err, &netErr), pgconn.SafeToRetry(err),
		errors.Is(err, pgconn.ErrConnClosed), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	case errors.As(err, &pgErr):
		// Class 08 is connection exceptions; 57P01-03 the server shutting
		// down or not yet up; 53300 out of connection slots.
		return strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "57P01" || pgErr.Code == "57P02" ||
			pgErr.Code == "57P03" || pgErr.Code == "53300"
	}
	return false
}

// checkField guesses the column from PostgreSQL's default check constraint
// name, "<table>_<column>_check".
func checkField(constraint string) string {
	for _, table := range []string{"plans_", "customers_", "templates_", "sites_", "domains_", "api_keys_", "users_"} {
		if len(constraint) > len(table) && constraint[:len(table)] == table {
			c := constraint[len(table):]
			if n := len(c) - len("_check"); n > 0 && c[n:] == "_check" {
				return c[:n]
			}
			return c
		}
	}
	return constraint
}
