package manage

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
)

// spoolContext copies a build context to a temporary file, checking on
// the way that it is what the engine builds from (a gzip-compressed tar
// archive with a Dockerfile at its root), so that nothing is recorded
// for an upload that could never build, and the engine reads it at its
// own pace. The caller removes the file (remove) when done.
func spoolContext(r io.Reader) (f *os.File, remove func(), err error) {
	f, err = os.CreateTemp("", "caddy-multitenant-build-*.tar.gz")
	if err != nil {
		return nil, nil, fmt.Errorf("spooling the build context: %w", err)
	}
	remove = func() {
		f.Close()
		os.Remove(f.Name())
	}
	defer func() {
		if err != nil {
			remove()
		}
	}()
	pr, pw := io.Pipe()
	checked := make(chan error, 1)
	go func() {
		err := checkContext(pr)
		// Drain what the check did not need, so the copy never blocks.
		_, _ = io.Copy(io.Discard, pr)
		checked <- err
	}()
	_, copyErr := io.Copy(io.MultiWriter(f, pw), r)
	pw.CloseWithError(copyErr)
	if err := <-checked; copyErr == nil && err != nil {
		return nil, nil, err
	}
	if copyErr != nil {
		return nil, nil, fmt.Errorf("reading the build context: %w", copyErr)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, nil, fmt.Errorf("spooling the build context: %w", err)
	}
	return f, remove, nil
}

// checkContext reads a build context far enough to find its Dockerfile.
func checkContext(r io.Reader) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return invalid("context", "the build context must be a gzip-compressed tar archive (tar.gz)")
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		switch {
		case errors.Is(err, io.EOF):
			return invalid("context", "the build context has no Dockerfile at its root")
		case err != nil:
			return invalid("context", "the build context is not a valid tar.gz archive")
		case h.Typeflag == tar.TypeReg && path.Clean(h.Name) == "Dockerfile":
			return nil
		}
	}
}
