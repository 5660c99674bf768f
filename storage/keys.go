package storage

import (
	"path"
	"slices"
	"strings"
)

// Directory contents are found with a key range instead of LIKE: the keys
// under dir are exactly those in [dir+"/", dir+"0") in byte order, because
// '0' is the byte after '/'. A range needs no escaping of '%', '_' or '\'
// (a key may contain any of them), and the primary key index answers it
// directly. The queries compare with COLLATE "C" so the bounds mean byte
// order whatever the database's default collation is.

// cleanKey puts key in the canonical form the rows are stored under:
// slash-separated, no empty or dot components, no leading or trailing slash.
// Rooting it first keeps ".." from climbing above the root, and makes
// "", "/" and "." all name the root, "".
func cleanKey(key string) string {
	return strings.TrimPrefix(path.Clean("/"+key), "/")
}

// childRange returns the bounds [lo, hi) of the keys under dir; dir must not
// be the root, which has no upper bound.
func childRange(dir string) (lo, hi string) {
	return dir + "/", dir + "0"
}

// treeOrder sorts keys the way a depth-first directory walk visits them:
// component by component, so "a/b/c" comes before "a/b.txt" even though
// '.' sorts before '/'. That is the order certmagic's FileStorage lists in.
func treeOrder(keys []string) {
	slices.SortFunc(keys, func(a, b string) int {
		for {
			ca, restA, moreA := strings.Cut(a, "/")
			cb, restB, moreB := strings.Cut(b, "/")
			if c := strings.Compare(ca, cb); c != 0 {
				return c
			}
			switch {
			case !moreA && !moreB:
				return 0
			case !moreA:
				return -1
			case !moreB:
				return 1
			}
			a, b = restA, restB
		}
	})
}

// listing turns the file keys under dir (all of them, in tree order) into
// what List returns: with recursive, every file and every directory between
// dir and a file, each directory just before its contents; without, only
// the direct children of dir, files and directories alike.
func listing(dir string, files []string, recursive bool) []string {
	base := dir
	if base != "" {
		base += "/"
	}
	var out []string
	// Listed directories form a chain in tree order; remembering the last
	// one listed at each depth is enough to list each directory once.
	var listedDirs []string
	for _, file := range files {
		rel := strings.TrimPrefix(file, base)
		if !recursive {
			child, _, _ := strings.Cut(rel, "/")
			if n := len(out); n == 0 || out[n-1] != base+child {
				out = append(out, base+child)
			}
			continue
		}
		components := strings.Split(rel, "/")
		for depth := 1; depth < len(components); depth++ {
			subdir := base + strings.Join(components[:depth], "/")
			if depth <= len(listedDirs) && listedDirs[depth-1] == subdir {
				continue
			}
			listedDirs = append(listedDirs[:depth-1], subdir)
			// A key can be a file and a directory at once here (unlike on
			// disk); list the name once.
			if n := len(out); n == 0 || out[n-1] != subdir {
				out = append(out, subdir)
			}
		}
		out = append(out, file)
	}
	return out
}
