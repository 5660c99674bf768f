package storage

// One test per clause of certmagic.Storage's contract. Where FileStorage,
// certmagic's reference implementation, defines the behaviour (directory
// listings, Exists and Stat of directories), the same operations run on a
// FileStorage in a temporary directory and the results must match.

import (
	"bytes"
	"errors"
	"io/fs"
	"slices"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/agistaffers/caddy-multitenant/internal/pgtest"
)

// treeKeys is a key set with the shapes that trip prefix logic: a
// directory next to a file sharing its name's start ("a/b" and "a/b.txt"),
// a sibling whose name extends a directory's ("ab" next to "a"), and the
// LIKE wildcards and escape character inside components.
var treeKeys = []string{
	"a/b/c.txt",
	"a/b/d/e.txt",
	"a/b.txt",
	"a/bc/f",
	"a/file",
	"ab/c",
	"a0",
	"x%y/one",
	"xzy/two",
	"x_y/three",
	"x\\y/four",
	"x\\\\y/five",
	"certificates/acme/example.com/example.com.crt",
	"certificates/acme/example.com/example.com.key",
}

// stores returns a fresh PostgreSQL Storage and a FileStorage, both holding
// treeKeys (each key's value is the key itself).
func stores(t *testing.T) (*Storage, *certmagic.FileStorage) {
	t.Helper()
	ctx := testCtx(t)
	pg := newStorage(t, pgtest.Schema(t), Options{})
	file := &certmagic.FileStorage{Path: t.TempDir()}
	for _, key := range treeKeys {
		for _, s := range []certmagic.Storage{pg, file} {
			if err := s.Store(ctx, key, []byte(key)); err != nil {
				t.Fatalf("%T.Store(%q): %v", s, key, err)
			}
		}
	}
	return pg, file
}

// probes are the names every comparison looks at: each stored key, each
// directory, and near misses.
var probes = []string{
	"", "a", "a/b", "a/b/d", "a/b.txt", "a/bc", "a/file", "ab", "a0",
	"a/b/c", "a/b/c.tx", "a/", "ab/", "b", "x", "x%y", "x_y", "xzy", "x\\y", "x\\\\y", "x%", "x_",
	"certificates", "certificates/acme", "certificates/acme/example.com",
	"certificates/acme/example.com/example.com.crt", "missing/key",
}

func TestLoadMissingKeyIsNotExist(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := newStorage(t, pgtest.Schema(t), Options{})

	if _, err := s.Load(ctx, "nope/nothing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of missing key: got %v, want fs.ErrNotExist", err)
	}
	if _, err := s.Stat(ctx, "nope/nothing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat of missing key: got %v, want fs.ErrNotExist", err)
	}
	if _, err := s.List(ctx, "nope", true); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("List of missing dir: got %v, want fs.ErrNotExist", err)
	}
	if s.Exists(ctx, "nope") {
		t.Error("Exists of missing key: got true")
	}
	// A directory is not a file: Load of it is missing too.
	if err := s.Store(ctx, "dir/file", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, "dir"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a directory: got %v, want fs.ErrNotExist", err)
	}
}

func TestStoreThenLoadReturnsLastValue(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := newStorage(t, pgtest.Schema(t), Options{})

	for _, value := range [][]byte{[]byte("first"), []byte("second, longer"), {}, {0, 1, 2, 0xff}} {
		if err := s.Store(ctx, "k/v", value); err != nil {
			t.Fatalf("Store: %v", err)
		}
		got, err := s.Load(ctx, "k/v")
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if !bytes.Equal(got, value) {
			t.Fatalf("Load after Store(%q) = %q", value, got)
		}
	}
	if err := s.Store(ctx, "", []byte("x")); err == nil {
		t.Error("Store with empty key: got nil error")
	}
}

func TestDeleteMissingKeyIsNotAnError(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := newStorage(t, pgtest.Schema(t), Options{})

	if err := s.Delete(ctx, "never/stored"); err != nil {
		t.Errorf("Delete of missing key: %v", err)
	}
	if err := s.Store(ctx, "once", []byte("v")); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := s.Delete(ctx, "once"); err != nil {
			t.Errorf("Delete #%d: %v", i+1, err)
		}
	}
	if s.Exists(ctx, "once") {
		t.Error("key exists after Delete")
	}
}

func TestDeletePrefixIsComponentWise(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	pg, file := stores(t)

	for _, s := range []certmagic.Storage{pg, file} {
		if err := s.Delete(ctx, "a"); err != nil {
			t.Fatalf("%T.Delete(a): %v", s, err)
		}
		if err := s.Delete(ctx, "x%y"); err != nil {
			t.Fatalf("%T.Delete(x%%y): %v", s, err)
		}
	}
	for _, key := range []string{"a/b/c.txt", "a/b.txt", "a/file", "a/bc/f", "x%y/one"} {
		if pg.Exists(ctx, key) {
			t.Errorf("%s survived Delete of its directory", key)
		}
	}
	for _, key := range []string{"ab/c", "a0", "xzy/two", "x_y/three"} {
		if !pg.Exists(ctx, key) {
			t.Errorf("%s was deleted with a directory it is not in", key)
		}
	}
	compareListings(t, pg, file)
}

func TestExistsForFilesAndDirectories(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	pg, file := stores(t)

	for _, key := range probes {
		if got, want := pg.Exists(ctx, key), file.Exists(ctx, key); got != want {
			t.Errorf("Exists(%q) = %v, FileStorage says %v", key, got, want)
		}
	}
}

func TestStatOfFilesAndDirectories(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	before := time.Now().Add(-time.Minute) // the database clock may lag ours a little
	pg, file := stores(t)

	for _, key := range probes {
		got, gotErr := pg.Stat(ctx, key)
		want, wantErr := file.Stat(ctx, key)
		if errors.Is(wantErr, fs.ErrNotExist) {
			if !errors.Is(gotErr, fs.ErrNotExist) {
				t.Errorf("Stat(%q): got %+v, %v; want fs.ErrNotExist", key, got, gotErr)
			}
			continue
		}
		if gotErr != nil || wantErr != nil {
			t.Errorf("Stat(%q): got error %v, FileStorage's %v", key, gotErr, wantErr)
			continue
		}
		if got.Key != cleanKey(key) || got.IsTerminal != want.IsTerminal {
			t.Errorf("Stat(%q) = %+v, FileStorage says %+v", key, got, want)
		}
		if want.IsTerminal && got.Size != want.Size {
			t.Errorf("Stat(%q).Size = %d, want %d", key, got.Size, want.Size)
		}
		if got.Modified.Before(before) || got.Modified.After(time.Now().Add(time.Minute)) {
			t.Errorf("Stat(%q).Modified = %v, want about now", key, got.Modified)
		}
	}
}

func TestStatSizeOfLargeValue(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := newStorage(t, pgtest.Schema(t), Options{})
	// Large enough to be TOASTed (compressible, so compressed as well):
	// Size must be the value's length, not its stored size.
	value := bytes.Repeat([]byte("certificate "), 100_000)
	if err := s.Store(ctx, "big", value); err != nil {
		t.Fatal(err)
	}
	info, err := s.Stat(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(len(value)) || !info.IsTerminal {
		t.Errorf("Stat = %+v, want terminal with size %d", info, len(value))
	}
}

func TestListMatchesFileStorage(t *testing.T) {
	t.Parallel()
	pg, file := stores(t)
	compareListings(t, pg, file)
}

func TestKeysWithLikeWildcards(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := newStorage(t, pgtest.Schema(t), Options{})
	keys := []string{"p%/1", "pX/2", "p_/3", "pY/4", "p\\/5", "p\\\\/6", "p%%/7", "p/8"}
	for _, key := range keys {
		if err := s.Store(ctx, key, []byte(key)); err != nil {
			t.Fatal(err)
		}
	}
	for dir, want := range map[string][]string{
		"p%":    {"p%/1"},
		"p_":    {"p_/3"},
		"p\\":   {"p\\/5"},
		"p\\\\": {"p\\\\/6"},
		"p%%":   {"p%%/7"},
		"p":     {"p/8"},
	} {
		got, err := s.List(ctx, dir, true)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("List(%q) = %q, %v; want %q", dir, got, err, want)
		}
	}
	for _, key := range keys {
		got, err := s.Load(ctx, key)
		if err != nil || string(got) != key {
			t.Errorf("Load(%q) = %q, %v", key, got, err)
		}
	}
	if err := s.Delete(ctx, "p_"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "p%"); err != nil {
		t.Fatal(err)
	}
	got, err := s.List(ctx, "", false)
	want := []string{"p", "p%%", "pX", "pY", "p\\", "p\\\\"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("after deleting p_ and p%%: List = %q, %v; want %q", got, err, want)
	}
}

func TestKeysAreCleaned(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := newStorage(t, pgtest.Schema(t), Options{})
	if err := s.Store(ctx, "/a//b/./c/", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Load(ctx, "a/b/c"); err != nil || string(got) != "v" {
		t.Errorf("Load(a/b/c) = %q, %v", got, err)
	}
	if got, err := s.List(ctx, "a/", true); err != nil || !slices.Equal(got, []string{"a/b", "a/b/c"}) {
		t.Errorf("List(a/) = %q, %v", got, err)
	}
	// ".." cannot climb above the root into a sibling's namespace.
	if err := s.Store(ctx, "../../x", []byte("w")); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Load(ctx, "x"); err != nil || string(got) != "w" {
		t.Errorf("Load(x) = %q, %v", got, err)
	}
}

func TestDeleteRootEmptiesStorage(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	pg, file := stores(t)
	if err := pg.Delete(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if pg.Exists(ctx, "a") || pg.Exists(ctx, "") {
		t.Error("keys exist after deleting the root")
	}
	if _, err := pg.List(ctx, "", true); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("List of emptied root: %v, want fs.ErrNotExist", err)
	}
	// FileStorage agrees that everything under the root goes.
	if err := file.Delete(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if file.Exists(ctx, "a") {
		t.Error("FileStorage kept keys after deleting the root")
	}
}

// compareListings lists every probe, recursively and not, in both stores
// and requires the same keys in the same order, or both missing.
func compareListings(t *testing.T, pg *Storage, file *certmagic.FileStorage) {
	t.Helper()
	ctx := testCtx(t)
	for _, dir := range probes {
		for _, recursive := range []bool{false, true} {
			got, gotErr := pg.List(ctx, dir, recursive)
			want, wantErr := file.List(ctx, dir, recursive)
			if errors.Is(wantErr, fs.ErrNotExist) {
				if !errors.Is(gotErr, fs.ErrNotExist) {
					t.Errorf("List(%q, %v) = %q, %v; want fs.ErrNotExist", dir, recursive, got, gotErr)
				}
				continue
			}
			if gotErr != nil || wantErr != nil {
				t.Errorf("List(%q, %v): error %v, FileStorage's %v", dir, recursive, gotErr, wantErr)
				continue
			}
			if len(got) != 0 || len(want) != 0 {
				if !slices.Equal(got, want) {
					t.Errorf("List(%q, %v):\n got  %q\n want %q", dir, recursive, got, want)
				}
			}
		}
	}
}
