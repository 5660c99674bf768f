package multitenant

import (
	"context"
	"time"
)

// writeBehindInterval is how often queued writes reach the database.
const writeBehindInterval = time.Second

// writeBehind collects what arrives on in, the latest of each key only,
// and hands it to save at most once every writeBehindInterval, until ctx
// ends; then it drains in and saves a last time, bounded, so a clean
// shutdown loses nothing queued. save reports whether the batch is done
// with: false keeps it (merged with newer values) for the next round.
func writeBehind[K comparable, V any](ctx context.Context, in <-chan V, key func(V) K, save func(context.Context, []V) bool) {
	ticker := time.NewTicker(writeBehindInterval)
	defer ticker.Stop()
	latest := make(map[K]V)
	flush := func(ctx context.Context) {
		if len(latest) == 0 {
			return
		}
		batch := make([]V, 0, len(latest))
		for _, v := range latest {
			batch = append(batch, v)
		}
		if save(ctx, batch) {
			clear(latest)
		}
	}
	for {
		select {
		case v := <-in:
			latest[key(v)] = v
		case <-ticker.C:
			flush(ctx)
		case <-ctx.Done():
			for drained := false; !drained; {
				select {
				case v := <-in:
					latest[key(v)] = v
				default:
					drained = true
				}
			}
			final, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			flush(final)
			cancel()
			return
		}
	}
}
