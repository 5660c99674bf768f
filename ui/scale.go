package ui

import (
	"strconv"

	"github.com/agistaffers/caddy-multitenant/manage"
)

// scaleEventsShown is how many of a site's scaling decisions its page
// lists.
const scaleEventsShown = 10

// scalingData is the site page's Scaling section: the limits the
// autoscaler works within, the replicas of its latest decision, and the
// decisions.
type scalingData struct {
	*manage.SiteScaling
	// Replicas is the count the latest decision went to, "" when none
	// is recorded (the site has run one replica, or none, since).
	Replicas string
	Rows     []scaleEventRow
}

// scaleEventRow is one decision as the page lists it, in UTC.
type scaleEventRow struct {
	At, Change, Reason, Node string
}

func newScalingData(s *manage.SiteScaling) scalingData {
	d := scalingData{SiteScaling: s, Rows: make([]scaleEventRow, len(s.Events))}
	if len(s.Events) > 0 {
		d.Replicas = strconv.Itoa(s.Events[0].ToReplicas)
	}
	for i, e := range s.Events {
		d.Rows[i] = scaleEventRow{At: e.At.UTC().Format("Jan 2, 15:04:05 UTC"),
			Change: strconv.Itoa(e.FromReplicas) + " → " + strconv.Itoa(e.ToReplicas), Reason: e.Reason, Node: e.Node}
	}
	return d
}
