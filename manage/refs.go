package manage

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

// References: wherever an action takes an id it takes the natural key as
// well, the one people know a thing by: a customer by email, a plan or
// template by slug, a site by subdomain, a domain by hostname.

// IsID reports whether ref looks like a uuid (an id, not a natural key).
func IsID(ref string) bool {
	if len(ref) != 36 {
		return false
	}
	for i := 0; i < len(ref); i++ {
		c := ref[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// find looks ref up by id or by natural key. A missing one is NotFound
// (ref came from a path or an argument) or, with field, Invalid naming
// the field (ref came in a body or a flag).
func find[T any](ctx context.Context, kind, field, ref string, byID, byKey func(context.Context, string) (*T, error)) (*T, error) {
	missing := func() error {
		if field != "" {
			return invalid(field, "%s", noSuch(kind, ref))
		}
		return &Error{Code: NotFound, Message: noSuch(kind, ref)}
	}
	switch {
	case strings.TrimSpace(ref) == "" && field != "":
		return nil, invalid(field, "required: the %s's id or %s", kind, naturalKey[kind])
	case !plausibleRef(ref):
		return nil, missing()
	}
	lookup := byKey
	if IsID(ref) {
		lookup = byID
	}
	v, err := lookup(ctx, ref)
	if err != nil {
		if IsCode(fail(kind, err), NotFound) {
			return nil, missing()
		}
		return nil, fail(kind, err)
	}
	return v, nil
}

// MaxRefLen is the longest reference taken, in characters: the longest
// natural key (an email).
const MaxRefLen = 320

// plausibleRef reports whether ref may name anything at all: what cannot
// (empty, too long, NUL, not UTF-8) never reaches the database.
func plausibleRef(ref string) bool {
	return ref != "" && utf8.RuneCountInString(ref) <= MaxRefLen && utf8.ValidString(ref) && !strings.ContainsRune(ref, 0)
}

// noSuch says that what ref names does not exist, quoting ref when it is
// short enough to be worth it.
func noSuch(kind, ref string) string {
	if ref == "" || len(ref) > 100 || !utf8.ValidString(ref) {
		return "no such " + kind
	}
	return fmt.Sprintf("no %s %q", kind, ref)
}

var naturalKey = map[string]string{
	"customer": "email",
	"plan":     "slug",
	"template": "slug",
	"site":     "subdomain",
	"domain":   "hostname",
	"user":     "email",
}

func (s *Service) customer(ctx context.Context, field, ref string) (*tenants.Customer, error) {
	return find(ctx, "customer", field, ref, s.store.GetCustomer, s.store.GetCustomerByEmail)
}

func (s *Service) plan(ctx context.Context, field, ref string) (*tenants.Plan, error) {
	return find(ctx, "plan", field, ref, s.store.GetPlan, s.store.FindPlan)
}

func (s *Service) template(ctx context.Context, field, ref string) (*tenants.Template, error) {
	return find(ctx, "template", field, ref, s.store.GetTemplate, s.store.GetTemplateBySlug)
}

func (s *Service) site(ctx context.Context, field, ref string) (*tenants.Site, error) {
	return find(ctx, "site", field, ref, s.store.GetSite, s.store.GetSiteBySubdomain)
}

func (s *Service) domain(ctx context.Context, field, ref string) (*tenants.Domain, error) {
	return find(ctx, "domain", field, ref, s.store.GetDomain, s.store.GetDomainByHostname)
}

// refID returns the id of what ref names, "" for an empty ref.
func refID[T any](ctx context.Context, ref string, lookup func(context.Context, string, string) (*T, error), field string, id func(*T) string) (string, error) {
	if ref == "" {
		return "", nil
	}
	v, err := lookup(ctx, field, ref)
	if err != nil {
		return "", err
	}
	return id(v), nil
}
