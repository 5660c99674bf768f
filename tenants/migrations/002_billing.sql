-- Billing state of a customer, as Stripe last reported it. status stays
-- the one field routing reads; these say why it is what it is and let the
-- grace period and event ordering be decided in SQL.
ALTER TABLE customers
	-- Stripe's subscription status (active, trialing, past_due, unpaid,
	-- canceled, ...); '' while the customer has no subscription.
	ADD COLUMN subscription_status text NOT NULL DEFAULT '',
	ADD COLUMN current_period_end timestamptz,
	-- When the customer fell behind: the grace period runs from here.
	ADD COLUMN past_due_since timestamptz,
	-- created of the newest Stripe event applied to the customer: an older
	-- event arriving late must not roll the state back.
	ADD COLUMN last_billing_event_at timestamptz;

-- The grace-period sweep reads only past_due customers.
CREATE INDEX customers_past_due_idx ON customers (past_due_since) WHERE status = 'past_due';
