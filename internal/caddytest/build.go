// Package caddytest builds the custom Caddy of this module for end-to-end
// tests and runs it as a real process.
package caddytest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// build is one way of building the Caddy under test, done once per test
// process (the Go build cache makes later processes cheap).
type build struct {
	flags []string
	once  sync.Once
	path  string
	err   error
	out   []byte
}

var (
	plainBuild = &build{}
	raceBuild  = &build{flags: []string{"-race"}}
)

func (b *build) binary(t testing.TB) string {
	t.Helper()
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "caddy-multitenant-bin-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, "caddy")
		args := append(append([]string{"build"}, b.flags...), "-o", b.path, "./cmd/caddy")
		cmd := exec.Command("go", args...)
		cmd.Dir = ModuleRoot()
		b.out, b.err = cmd.CombinedOutput()
	})
	if b.err != nil {
		t.Fatalf("building caddy %v: %v\n%s", b.flags, b.err, b.out)
	}
	return b.path
}

// Binary returns the path of a Caddy built from ./cmd/caddy of this
// module.
func Binary(t testing.TB) string { return plainBuild.binary(t) }

// RaceBinary returns the path of a Caddy built from ./cmd/caddy of this
// module with the race detector.
func RaceBinary(t testing.TB) string { return raceBuild.binary(t) }

// ModuleRoot returns the directory of this module's go.mod.
func ModuleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}
