package manage

import "context"

// StaleCopies is what PostgreSQL keeps of a site's stale responses (the
// last good answers it serves while starting): what every node can
// serve. Each node's memory holds its own within the same bound.
type StaleCopies struct {
	Responses int   `json:"responses"`
	Bytes     int64 `json:"bytes"`
}

// StaleCopies returns what PostgreSQL keeps of the site's stale
// responses.
func (s *Service) StaleCopies(ctx context.Context, siteID string) (StaleCopies, error) {
	n, size, err := s.store.StaleStats(ctx, siteID)
	if err != nil {
		return StaleCopies{}, err
	}
	return StaleCopies{Responses: n, Bytes: size}, nil
}
