package backup

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"strconv"
	"strings"
	"time"
)

// PartSize is the most of a stream held in memory at once, writing or
// reading: what a backup needs does not grow with a volume's size.
const PartSize = 1 << 20

// maxManifest bounds the manifest read back: it names streams, not rows.
const maxManifest = 64 << 20

// archiveWriter writes a gzipped tar of streams and, last, the manifest.
type archiveWriter struct {
	gz  *gzip.Writer
	tw  *tar.Writer
	buf []byte
	now time.Time
}

func newArchiveWriter(w io.Writer, now time.Time) *archiveWriter {
	// BestSpeed: volumes are often compressed already (images, archives),
	// and a backup should not hold a core for long.
	gz, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
	return &archiveWriter{gz: gz, tw: tar.NewWriter(gz), buf: make([]byte, 0, PartSize), now: now}
}

// stream stores what fill writes as the stream name.
func (a *archiveWriter) stream(name string, fill func(io.Writer) error) (Stream, error) {
	pw := &partWriter{a: a, s: Stream{Name: name}, sum: sha256.New()}
	if err := fill(pw); err != nil {
		return Stream{}, err
	}
	if err := pw.flush(); err != nil {
		return Stream{}, err
	}
	pw.s.SHA256 = hex.EncodeToString(pw.sum.Sum(nil))
	return pw.s, nil
}

// close writes the manifest and ends the archive.
func (a *archiveWriter) close(m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := a.entry(ManifestName, b); err != nil {
		return err
	}
	if err := a.tw.Close(); err != nil {
		return fmt.Errorf("writing archive: %w", err)
	}
	if err := a.gz.Close(); err != nil {
		return fmt.Errorf("writing archive: %w", err)
	}
	return nil
}

func (a *archiveWriter) entry(name string, b []byte) error {
	h := &tar.Header{Name: name, Mode: 0o600, Size: int64(len(b)), ModTime: a.now, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	if err := a.tw.WriteHeader(h); err != nil {
		return fmt.Errorf("writing archive: %w", err)
	}
	if _, err := a.tw.Write(b); err != nil {
		return fmt.Errorf("writing archive: %w", err)
	}
	return nil
}

// partWriter cuts what is written into parts of PartSize.
type partWriter struct {
	a   *archiveWriter
	s   Stream
	sum hash.Hash
}

func (w *partWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		take := min(len(p), PartSize-len(w.a.buf))
		w.a.buf = append(w.a.buf, p[:take]...)
		p, n = p[take:], n+take
		if len(w.a.buf) == PartSize {
			if err := w.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

func (w *partWriter) flush() error {
	if len(w.a.buf) == 0 {
		return nil
	}
	if err := w.a.entry(partName(w.s.Name, w.s.Parts), w.a.buf); err != nil {
		return err
	}
	w.sum.Write(w.a.buf)
	w.s.Parts++
	w.s.Size += int64(len(w.a.buf))
	w.a.buf = w.a.buf[:0]
	return nil
}

func partName(stream string, n int) string { return fmt.Sprintf("%s/%06d", stream, n) }

// splitPart returns the stream and part number of an entry name.
func splitPart(name string) (stream string, n int, ok bool) {
	dir, base := path.Split(name)
	n, err := strconv.Atoi(base)
	if err != nil || len(base) != 6 || dir == "" {
		return "", 0, false
	}
	return strings.TrimSuffix(dir, "/"), n, true
}

// ErrCorrupt marks an archive that does not match its manifest, or is no
// archive of this kind at all.
var ErrCorrupt = errors.New("the archive is damaged or not a backup archive")

// ErrNewerSchema marks an archive of a schema newer than this binary's.
var ErrNewerSchema = errors.New("the archive is from a newer schema")

// Verify reads a whole archive and checks it against its manifest: every
// stream present, in order, of the size and checksum it lists, and
// nothing else. It returns the manifest. latest is the newest schema
// version this binary knows; a newer archive is refused, first, since no
// checksum makes it restorable.
func Verify(r io.Reader, latest int32) (*Manifest, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	tr := tar.NewReader(gz)
	type seen struct {
		parts int
		size  int64
		sum   hash.Hash
	}
	streams := map[string]*seen{}
	var current string
	var m *Manifest
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		if m != nil {
			return nil, fmt.Errorf("%w: entry %s after the manifest", ErrCorrupt, h.Name)
		}
		if h.Name == ManifestName {
			m = new(Manifest)
			if err := json.NewDecoder(io.LimitReader(tr, maxManifest)).Decode(m); err != nil {
				return nil, fmt.Errorf("%w: reading manifest: %w", ErrCorrupt, err)
			}
			continue
		}
		name, n, ok := splitPart(h.Name)
		if !ok {
			return nil, fmt.Errorf("%w: unexpected entry %s", ErrCorrupt, h.Name)
		}
		st := streams[name]
		switch {
		case st == nil && n == 0:
			st = &seen{sum: sha256.New()}
			streams[name] = st
		case st == nil || name != current || n != st.parts:
			return nil, fmt.Errorf("%w: entry %s out of order", ErrCorrupt, h.Name)
		}
		current = name
		written, err := io.Copy(st.sum, tr)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		st.parts++
		st.size += written
	}
	if err := gz.Close(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if m == nil {
		return nil, fmt.Errorf("%w: no manifest", ErrCorrupt)
	}
	if m.Format != FormatVersion {
		return nil, fmt.Errorf("%w: archive format %d, this binary reads %d", ErrCorrupt, m.Format, FormatVersion)
	}
	if m.SchemaVersion > latest {
		return nil, fmt.Errorf("%w: the archive is of schema version %d (written by %s), this binary knows up to %d: restore it with that release or a newer one",
			ErrNewerSchema, m.SchemaVersion, m.Binary, latest)
	}
	listed := map[string]bool{}
	for _, s := range m.streams() {
		listed[s.Name] = true
		st := streams[s.Name]
		if st == nil {
			st = &seen{sum: sha256.New()} // an empty stream has no part
		}
		if got := hex.EncodeToString(st.sum.Sum(nil)); st.parts != s.Parts || st.size != s.Size || got != s.SHA256 {
			return nil, fmt.Errorf("%w: %s: %d bytes in %d parts with sha256 %s, the manifest says %d bytes in %d parts with sha256 %s",
				ErrCorrupt, s.Name, st.size, st.parts, got, s.Size, s.Parts, s.SHA256)
		}
	}
	for name := range streams {
		if !listed[name] {
			return nil, fmt.Errorf("%w: stream %s is not in the manifest", ErrCorrupt, name)
		}
	}
	return m, nil
}

// archiveReader reads a verified archive's streams in order.
type archiveReader struct {
	gz      *gzip.Reader
	tr      *tar.Reader
	pending *tar.Header // read while looking for the end of a stream
	cur     *streamReader
}

func newArchiveReader(r io.Reader) (*archiveReader, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return &archiveReader{gz: gz, tr: tar.NewReader(gz)}, nil
}

// next returns the next stream's name and content; io.EOF after the last.
// What of the previous stream was not read is skipped.
func (a *archiveReader) next() (string, io.Reader, error) {
	if a.cur != nil {
		if _, err := io.Copy(io.Discard, a.cur); err != nil {
			return "", nil, err
		}
	}
	h, err := a.header()
	if err != nil {
		return "", nil, err
	}
	if h.Name == ManifestName {
		return "", nil, io.EOF
	}
	name, _, ok := splitPart(h.Name)
	if !ok {
		return "", nil, fmt.Errorf("%w: unexpected entry %s", ErrCorrupt, h.Name)
	}
	a.cur = &streamReader{a: a, name: name}
	return name, a.cur, nil
}

// each calls fn with every stream in order, until fn fails.
func (a *archiveReader) each(fn func(name string, r io.Reader) error) error {
	for {
		name, r, err := a.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(name, r); err != nil {
			return err
		}
	}
}

func (a *archiveReader) header() (*tar.Header, error) {
	if h := a.pending; h != nil {
		a.pending = nil
		return h, nil
	}
	h, err := a.tr.Next()
	if err == io.EOF {
		return nil, fmt.Errorf("%w: no manifest", ErrCorrupt)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return h, nil
}

// streamReader reads one stream across its parts.
type streamReader struct {
	a    *archiveReader
	name string
	done bool
}

func (s *streamReader) Read(p []byte) (int, error) {
	for !s.done {
		n, err := s.a.tr.Read(p)
		if err != io.EOF {
			return n, err
		}
		if n > 0 { // the part's end comes with its last bytes
			return n, nil
		}
		h, err := s.a.header()
		if err != nil {
			return 0, err
		}
		if name, _, ok := splitPart(h.Name); !ok || name != s.name {
			s.a.pending, s.done = h, true
		}
	}
	return 0, io.EOF
}
