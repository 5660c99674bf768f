package tenants

import (
	"context"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

const customerColumns = `id, email, name, status, coalesce(plan_id::text, '') AS plan_id,
	coalesce(stripe_customer_id, '') AS stripe_customer_id,
	coalesce(stripe_subscription_id, '') AS stripe_subscription_id, created_at, updated_at`

// CustomerFilter narrows ListCustomers; empty fields match everything.
type CustomerFilter struct {
	Status string
}

func validateCustomer(c *Customer) error {
	if err := validateEmail(c.Email); err != nil {
		return err
	}
	if err := validateName("name", c.Name); err != nil {
		return err
	}
	if err := validateCustomerStatus(c.Status); err != nil {
		return err
	}
	if c.PlanID != "" {
		if err := validateID("plan_id", c.PlanID); err != nil {
			return err
		}
	}
	if err := validateStripeID("stripe_customer_id", "cus_", c.StripeCustomerID); err != nil {
		return err
	}
	return validateStripeID("stripe_subscription_id", "sub_", c.StripeSubscriptionID)
}

func validateCustomerStatus(status string) error {
	if !slices.Contains(CustomerStatuses, status) {
		return invalid("status", "must be one of %s", strings.Join(CustomerStatuses, ", "))
	}
	return nil
}

// CreateCustomer inserts c (status defaults to active) and fills in its id
// and timestamps.
func (s *Store) CreateCustomer(ctx context.Context, actor string, c *Customer) error {
	if c.Status == "" {
		c.Status = CustomerActive
	}
	if err := validateCustomer(c); err != nil {
		return err
	}
	return s.write(ctx, change{actor, "create", "customer"}, func(tx pgx.Tx) (string, any, any, error) {
		created, err := collectOne[Customer](tx.Query(ctx, `INSERT INTO customers
			(email, name, status, plan_id, stripe_customer_id, stripe_subscription_id)
			VALUES ($1, $2, $3, nullif($4, '')::uuid, nullif($5, ''), nullif($6, ''))
			RETURNING `+customerColumns,
			c.Email, c.Name, c.Status, c.PlanID, c.StripeCustomerID, c.StripeSubscriptionID))
		if err != nil {
			return "", nil, nil, err
		}
		*c = *created
		return c.ID, nil, c, nil
	})
}

// GetCustomer returns the customer with id.
func (s *Store) GetCustomer(ctx context.Context, id string) (*Customer, error) {
	if validateID("id", id) != nil {
		return nil, ErrNotFound
	}
	c, err := collectOne[Customer](s.pool.Query(ctx, `SELECT `+customerColumns+` FROM customers WHERE id = $1`, id))
	return c, mapError("getting customer", err)
}

// GetCustomerByEmail returns the customer with email, compared without
// regard to case unless two customers' emails differ only in case: then
// it must match exactly.
func (s *Store) GetCustomerByEmail(ctx context.Context, email string) (*Customer, error) {
	list, err := collectAll[Customer](s.pool.Query(ctx, `SELECT `+customerColumns+` FROM customers
		WHERE lower(email) = lower($1)`, email))
	if err != nil {
		return nil, mapError("getting customer", err)
	}
	if len(list) == 1 {
		return &list[0], nil
	}
	for i := range list {
		if list[i].Email == email {
			return &list[i], nil
		}
	}
	return nil, ErrNotFound
}

// GetCustomerByStripeID returns the customer Stripe knows as stripeID.
func (s *Store) GetCustomerByStripeID(ctx context.Context, stripeID string) (*Customer, error) {
	c, err := collectOne[Customer](s.pool.Query(ctx, `SELECT `+customerColumns+` FROM customers
		WHERE stripe_customer_id = $1`, stripeID))
	return c, mapError("getting customer", err)
}

// ListCustomers returns a page of customers matching f.
func (s *Store) ListCustomers(ctx context.Context, f CustomerFilter, page Page) ([]Customer, error) {
	after, err := page.after()
	if err != nil {
		return nil, err
	}
	if f.Status != "" {
		if err := validateCustomerStatus(f.Status); err != nil {
			return nil, err
		}
	}
	list, err := collectAll[Customer](s.pool.Query(ctx, `SELECT `+customerColumns+` FROM customers
		WHERE ($1 = '' OR status = $1)
		AND ($2::uuid IS NULL OR (created_at, id) > (SELECT created_at, id FROM customers WHERE id = $2))
		ORDER BY created_at, id LIMIT $3`, f.Status, after, page.limit()))
	return list, mapError("listing customers", err)
}

// UpdateCustomer stores every mutable field of c.
func (s *Store) UpdateCustomer(ctx context.Context, actor string, c *Customer) error {
	if err := validateCustomer(c); err != nil {
		return err
	}
	if validateID("id", c.ID) != nil {
		return ErrNotFound
	}
	return s.write(ctx, change{actor, "update", "customer"}, func(tx pgx.Tx) (string, any, any, error) {
		before, err := collectOne[Customer](tx.Query(ctx, `SELECT `+customerColumns+` FROM customers WHERE id = $1 FOR UPDATE`, c.ID))
		if err != nil {
			return "", nil, nil, err
		}
		after, err := collectOne[Customer](tx.Query(ctx, `UPDATE customers SET email = $2, name = $3,
			status = $4, plan_id = nullif($5, '')::uuid, stripe_customer_id = nullif($6, ''),
			stripe_subscription_id = nullif($7, ''), updated_at = now()
			WHERE id = $1 RETURNING `+customerColumns,
			c.ID, c.Email, c.Name, c.Status, c.PlanID, c.StripeCustomerID, c.StripeSubscriptionID))
		if err != nil {
			return "", nil, nil, err
		}
		*c = *after
		return c.ID, before, after, nil
	})
}

// DeleteCustomer removes the customer with id. While the customer has
// sites it is a conflict, unless cascade is set: then its sites (and their
// domains) go too. Their containers are the caller's to remove.
func (s *Store) DeleteCustomer(ctx context.Context, actor, id string, cascade bool) error {
	if validateID("id", id) != nil {
		return ErrNotFound
	}
	return s.write(ctx, change{actor, "delete", "customer"}, func(tx pgx.Tx) (string, any, any, error) {
		if cascade {
			sites, err := collectAll[Site](tx.Query(ctx, `DELETE FROM sites WHERE customer_id = $1 RETURNING `+siteColumns, id))
			if err != nil {
				return "", nil, nil, err
			}
			for i := range sites {
				if err := appendAudit(ctx, tx, change{actor, "delete", "site"}, sites[i].ID, &sites[i], nil); err != nil {
					return "", nil, nil, err
				}
			}
		}
		before, err := collectOne[Customer](tx.Query(ctx, `DELETE FROM customers WHERE id = $1 RETURNING `+customerColumns, id))
		if err != nil {
			return "", nil, nil, err
		}
		return id, before, nil, nil
	})
}
