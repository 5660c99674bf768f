package manage

import (
	"context"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

// PlanInput is what a new plan is made of.
type PlanInput struct {
	Slug          string `json:"slug"`
	Name          string `json:"name"`
	StripePriceID string `json:"stripe_price_id,omitempty"`
	MaxSites      int    `json:"max_sites,omitempty"`
	MemoryBytes   int64  `json:"memory_bytes,omitempty"`
	NanoCPUs      int64  `json:"nano_cpus,omitempty"`
	PidsLimit     int64  `json:"pids_limit,omitempty"`
	// MaxReplicas caps the replicas of the plan's sites (below their
	// template's max_replicas); absent: no cap.
	MaxReplicas *int `json:"max_replicas,omitempty"`
}

// PlanPatch changes the given fields of a plan.
type PlanPatch struct {
	Slug          *string `json:"slug,omitempty"`
	Name          *string `json:"name,omitempty"`
	StripePriceID *string `json:"stripe_price_id,omitempty"`
	MaxSites      *int    `json:"max_sites,omitempty"`
	MemoryBytes   *int64  `json:"memory_bytes,omitempty"`
	NanoCPUs      *int64  `json:"nano_cpus,omitempty"`
	PidsLimit     *int64  `json:"pids_limit,omitempty"`
	// MaxReplicas is a cap from 1 to 64, or null for none; it applies
	// at the autoscaler's next decision.
	MaxReplicas Nullable[int] `json:"max_replicas,omitzero"`
}

// ListPlans returns a page of plans.
func (s *Service) ListPlans(ctx context.Context, page Page) ([]tenants.Plan, error) {
	list, err := s.store.ListPlans(ctx, page)
	return list, fail("plan", err)
}

// GetPlan returns the plan ref names (id or slug).
func (s *Service) GetPlan(ctx context.Context, ref string) (*tenants.Plan, error) {
	return s.plan(ctx, "", ref)
}

// CreatePlan adds a plan; its limits must fit the Docker host.
func (s *Service) CreatePlan(ctx context.Context, actor string, in PlanInput) (*tenants.Plan, error) {
	p := &tenants.Plan{Slug: in.Slug, Name: in.Name, StripePriceID: in.StripePriceID, MaxSites: in.MaxSites,
		MemoryBytes: in.MemoryBytes, NanoCPUs: in.NanoCPUs, PidsLimit: in.PidsLimit, MaxReplicas: in.MaxReplicas}
	if err := s.checkHostLimits(ctx, p.Limits()); err != nil {
		return nil, err
	}
	if err := s.store.CreatePlan(ctx, actor, p); err != nil {
		return nil, fail("plan", err)
	}
	return p, nil
}

// UpdatePlan changes the plan ref names. Its sites get containers with
// the new limits at their next start.
func (s *Service) UpdatePlan(ctx context.Context, actor, ref string, patch PlanPatch) (*tenants.Plan, error) {
	p, err := s.plan(ctx, "", ref)
	if err != nil {
		return nil, err
	}
	set(&p.Slug, patch.Slug)
	set(&p.Name, patch.Name)
	set(&p.StripePriceID, patch.StripePriceID)
	set(&p.MaxSites, patch.MaxSites)
	set(&p.MemoryBytes, patch.MemoryBytes)
	set(&p.NanoCPUs, patch.NanoCPUs)
	set(&p.PidsLimit, patch.PidsLimit)
	if patch.MaxReplicas.Set {
		p.MaxReplicas = patch.MaxReplicas.Value
	}
	if err := s.checkHostLimits(ctx, p.Limits()); err != nil {
		return nil, err
	}
	if err := s.store.UpdatePlan(ctx, actor, p); err != nil {
		return nil, fail("plan", err)
	}
	return p, nil
}

// DeletePlan removes the plan ref names; a Conflict while customers are on
// it.
func (s *Service) DeletePlan(ctx context.Context, actor, ref string) error {
	p, err := s.plan(ctx, "", ref)
	if err != nil {
		return err
	}
	return fail("plan", s.store.DeletePlan(ctx, actor, p.ID))
}
