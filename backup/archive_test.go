package backup

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"
)

// A volume much larger than the memory a backup may use streams through
// the writer and the verifier (running at once, through a pipe) while the
// heap stays within a few parts: nothing holds a whole stream.
func TestArchiveStreamsInBoundedMemory(t *testing.T) {
	const (
		volume = 256 << 20 // the volume
		bound  = 16 << 20  // the heap the writer and the verifier may grow by, together
	)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapAlloc, uint64(0)

	pr, pw := io.Pipe()
	verified := make(chan error, 1)
	go func() {
		m, err := Verify(pr, 1)
		if err == nil && (len(m.Volumes) != 1 || m.Volumes[0].Size != volume) {
			err = errors.New("the manifest does not list the volume")
		}
		pr.CloseWithError(err)
		verified <- err
	}()
	aw := newArchiveWriter(pw, time.Unix(0, 0))
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	st, err := aw.stream("volumes/big", func(w io.Writer) error {
		for written := 0; written < volume; written += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return err
			}
			if written%(4<<20) == 0 {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapAlloc)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	m := &Manifest{Format: FormatVersion, SchemaVersion: 1, Volumes: []Volume{{SiteID: "big", Stream: st}}}
	if err := aw.close(m); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := <-verified; err != nil {
		t.Fatal(err)
	}
	grew := int64(peak) - int64(base)
	t.Logf("streamed %d MiB; the heap grew by %.1f MiB at most", volume>>20, float64(grew)/(1<<20))
	if grew > bound {
		t.Fatalf("the heap grew by %d bytes while streaming %d: more than %d", grew, volume, bound)
	}
}

// archive writes an archive of the given streams and manifest tweak.
func archive(t *testing.T, tweak func(*Manifest), streams map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	aw := newArchiveWriter(&buf, time.Unix(0, 0))
	m := &Manifest{Format: FormatVersion, SchemaVersion: 3}
	for _, name := range []string{"db/sites", "volumes/a"} {
		st, err := aw.stream(name, func(w io.Writer) error { _, err := io.WriteString(w, streams[name]); return err })
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(name, "db/") {
			m.Tables = append(m.Tables, Table{Table: "sites", Stream: st})
		} else {
			m.Volumes = append(m.Volumes, Volume{SiteID: "a", Stream: st})
		}
	}
	if tweak != nil {
		tweak(m)
	}
	if err := aw.close(m); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestVerify(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 2*PartSize+10) // three parts
	good := archive(t, nil, map[string]string{"db/sites": "1\tada\n", "volumes/a": big})
	m, err := Verify(bytes.NewReader(good), 3)
	if err != nil {
		t.Fatal(err)
	}
	if m.Volumes[0].Parts != 3 || m.Volumes[0].Size != int64(len(big)) {
		t.Fatalf("volume stream: %+v", m.Volumes[0].Stream)
	}

	// Read back, the streams are what was written, parts joined.
	ar, err := newArchiveReader(bytes.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct{ name, body string }{{"db/sites", "1\tada\n"}, {"volumes/a", big}} {
		name, r, err := ar.next()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r)
		if name != want.name || string(b) != want.body {
			t.Fatalf("stream %s: %d bytes, want %s: %d bytes", name, len(b), want.name, len(want.body))
		}
	}
	if _, _, err := ar.next(); err != io.EOF {
		t.Fatalf("after the last stream: %v", err)
	}

	if _, err := Verify(bytes.NewReader(good), 2); !errors.Is(err, ErrNewerSchema) || !strings.Contains(err.Error(), "schema version 3") {
		t.Fatalf("newer schema: %v", err)
	}
	lied := archive(t, func(m *Manifest) { m.Volumes[0].SHA256 = strings.Repeat("0", 64) }, map[string]string{"volumes/a": "data"})
	if _, err := Verify(bytes.NewReader(lied), 3); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "volumes/a") {
		t.Fatalf("wrong checksum: %v", err)
	}
	// A flipped byte inside the compressed data: gzip's own checksum, or
	// the manifest's, catches it.
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0xff
	if _, err := Verify(bytes.NewReader(flipped), 3); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("flipped byte: %v", err)
	}
	if _, err := Verify(bytes.NewReader(good[:len(good)-100]), 3); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("truncated: %v", err)
	}
}
