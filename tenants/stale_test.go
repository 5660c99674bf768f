package tenants

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestStaleResponses: copies are written in batches, a newer copy is not
// overwritten by an older one, each site is trimmed to its bound oldest
// first, and copies of a deleted site go with it.
func TestStaleResponses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newTestStore(t)
	_, _, site := fixture(t, s)

	if _, err := s.GetStaleResponse(ctx, site.ID, "GET ada.example.com/"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no copy yet: %v", err)
	}
	t0 := time.Now().Add(-time.Minute).Truncate(time.Microsecond)
	first := StaleResponse{SiteID: site.ID, Key: "GET ada.example.com/", Status: 200,
		Header: map[string][]string{"Content-Type": {"text/html"}}, Body: []byte("<p>hi</p>"), StoredAt: t0}
	if err := s.SaveStaleResponses(ctx, []StaleResponse{first}, 1<<20); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetStaleResponse(ctx, site.ID, first.Key)
	if err != nil || got.Status != 200 || !bytes.Equal(got.Body, first.Body) || got.Header["Content-Type"][0] != "text/html" || !got.StoredAt.Equal(t0) {
		t.Fatalf("copy read back: %+v, %v", got, err)
	}

	older := first
	older.Body, older.StoredAt = []byte("older"), t0.Add(-time.Hour)
	if err := s.SaveStaleResponses(ctx, []StaleResponse{older}, 1<<20); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetStaleResponse(ctx, site.ID, first.Key); string(got.Body) != "<p>hi</p>" {
		t.Fatalf("an older copy replaced a newer one: %q", got.Body)
	}

	// 20 copies of ~1 KB within a bound of 8 KB: the newest 7 stay.
	var batch []StaleResponse
	for i := range 20 {
		batch = append(batch, StaleResponse{SiteID: site.ID, Key: fmt.Sprintf("GET ada.example.com/%02d", i), Status: 200,
			Body: bytes.Repeat([]byte("x"), 1000), StoredAt: t0.Add(time.Duration(i+1) * time.Second)})
	}
	// A copy of a site that no longer exists does not fail the batch.
	batch = append(batch, StaleResponse{SiteID: "00000000-0000-0000-0000-000000000000", Key: "GET gone/", Status: 200, StoredAt: t0})
	const bound = 8000
	if err := s.SaveStaleResponses(ctx, batch, bound); err != nil {
		t.Fatal(err)
	}
	n, size, err := s.StaleStats(ctx, site.ID)
	if err != nil || n != 7 || size > bound {
		t.Fatalf("after trimming to %d bytes: %d copies, %d bytes, %v", bound, n, size, err)
	}
	if _, err := s.GetStaleResponse(ctx, site.ID, "GET ada.example.com/19"); err != nil {
		t.Fatalf("the newest copy was trimmed: %v", err)
	}
	for _, k := range []string{"GET ada.example.com/12", first.Key} {
		if _, err := s.GetStaleResponse(ctx, site.ID, k); !errors.Is(err, ErrNotFound) {
			t.Fatalf("old copy %s survived the trim: %v", k, err)
		}
	}

	if err := s.DeleteSite(ctx, "test", site.ID); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := s.StaleStats(ctx, site.ID); n != 0 {
		t.Fatalf("%d copies outlived their site", n)
	}
}
