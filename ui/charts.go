package ui

import (
	"context"
	"html/template"

	"github.com/agistaffers/caddy-multitenant/manage"
)

// TODO(ui-charts): server-rendered SVG charts.

// platformCharts renders the overview's charts of fig.
func platformCharts(fig *manage.PlatformFigures) template.HTML { return "" }

// siteCharts renders a site's charts of fig.
func siteCharts(fig *manage.SiteFigures) template.HTML { return "" }

var _ = context.Background
