package ui

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

// The audit log page: every change, filtered by entity, entity id, actor
// and time, paged backwards by id.

func (u *UI) routesAudit() {
	u.op("GET /audit", u.auditList)
}

// auditPage is how many entries one page shows.
const auditPage = 50

// auditRow is an entry as the page shows it: the fields that changed, and
// the JSON before and after, indented.
type auditRow struct {
	tenants.AuditEntry
	Changed       []string
	Before, After string
}

type auditData struct {
	Entries  []auditRow
	Entities []string
	// Older is the query of the next page back, "" at the end.
	Older string
}

// auditTime reads a datetime-local ("2006-01-02T15:04") or date input as
// UTC; a date as the end of an Until is the next midnight.
func auditTime(field, s string, end bool) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	t, err := time.ParseInLocation("2006-01-02", s, time.UTC)
	if err != nil {
		return time.Time{}, badField(field, "must be a date (2006-01-02) or a date and time (2006-01-02T15:04), in UTC")
	}
	if end {
		t = t.AddDate(0, 0, 1)
	}
	return t, nil
}

func (u *UI) auditList(w http.ResponseWriter, r *http.Request, req *request) error {
	q := r.URL.Query()
	f := tenants.AuditFilter{Entity: q.Get("entity"), EntityID: strings.TrimSpace(q.Get("entity_id")),
		Actor: strings.TrimSpace(q.Get("actor")), ActorExact: q.Get("exact") != "", Limit: auditPage}
	v := u.view(r, req, "Audit log", "audit", nil)
	v.Form = q
	d := auditData{Entities: tenants.AuditEntities}
	v.Data = &d
	var err error
	if before := q.Get("before"); before != "" {
		if f.BeforeID, err = strconv.ParseInt(before, 10, 64); err != nil || f.BeforeID < 1 {
			err = badField("before", "must be the id of an audit entry")
		}
	}
	if err == nil {
		f.Since, err = auditTime("since", q.Get("since"), false)
	}
	if err == nil {
		f.Until, err = auditTime("until", q.Get("until"), true)
	}
	var list []tenants.AuditEntry
	if err == nil {
		list, err = u.svc.ListAudit(r.Context(), f)
	}
	if err != nil {
		if statusOf(err) != http.StatusUnprocessableEntity {
			return err
		}
		// A bad filter comes back with its message next to it.
		u.render(w, statusOf(err), "audit", v.withError(err, q))
		return nil
	}
	for _, e := range list {
		d.Entries = append(d.Entries, auditRow{AuditEntry: e, Changed: changedFields(e.Before, e.After),
			Before: indentJSON(e.Before), After: indentJSON(e.After)})
	}
	if len(list) == auditPage {
		older := url.Values{}
		for k, vs := range q {
			if k != "before" && len(vs) > 0 && vs[0] != "" {
				older.Set(k, vs[0])
			}
		}
		older.Set("before", strconv.FormatInt(list[len(list)-1].ID, 10))
		d.Older = "?" + older.Encode()
	}
	u.render(w, http.StatusOK, "audit", v)
	return nil
}

// indentJSON is raw indented for reading, "" for none.
func indentJSON(raw []byte) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return string(raw)
	}
	return buf.String()
}

// changedFields lists the top-level fields whose values differ between two
// JSON objects (updated_at aside: every update changes it).
func changedFields(before, after []byte) []string {
	if len(before) == 0 || len(after) == 0 {
		return nil
	}
	var b, a map[string]any
	if json.Unmarshal(before, &b) != nil || json.Unmarshal(after, &a) != nil {
		return nil
	}
	var out []string
	for k, av := range a {
		if k == "updated_at" {
			continue
		}
		if bv, ok := b[k]; !ok || !reflect.DeepEqual(av, bv) {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
