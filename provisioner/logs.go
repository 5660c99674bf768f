package provisioner

import (
	"context"
	"io"
)

// Logs streams the site's stdout and stderr (see Runtime.Logs): the last
// tail lines (tail <= 0: all), then with follow new lines until ctx ends
// or the reader is closed.
func (p *Provisioner) Logs(ctx context.Context, siteID string, tail int, follow bool) (io.ReadCloser, error) {
	return p.rt.Logs(ctx, siteID, tail, follow)
}
