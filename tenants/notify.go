package tenants

import (
	"encoding/json"
	"fmt"
)

// ChangeChannel is the PostgreSQL NOTIFY channel the schema's triggers
// announce every change of customers, sites, domains and templates on.
const ChangeChannel = "tenants_changed"

// Change is the payload of one notification: enough to evict exactly the
// cache entries a change affects.
type Change struct {
	Schema     string   `json:"schema"` // the schema changed, as several may share a database
	Table      string   `json:"table"`  // customers, plans, sites, domains, templates or releases
	Op         string   `json:"op"`     // insert, update or delete
	ID         string   `json:"id"`
	SiteID     string   `json:"site_id,omitempty"`
	CustomerID string   `json:"customer_id,omitempty"`
	TemplateID string   `json:"template_id,omitempty"`
	Subdomains []string `json:"subdomains,omitempty"` // of a site, before and after
	Hostnames  []string `json:"hostnames,omitempty"`  // of a domain, before and after
}

// ParseChange decodes a notification payload.
func ParseChange(payload string) (Change, error) {
	var c Change
	if err := json.Unmarshal([]byte(payload), &c); err != nil {
		return Change{}, fmt.Errorf("decoding change notification: %w", err)
	}
	return c, nil
}
