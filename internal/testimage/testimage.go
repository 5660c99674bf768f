// Package testimage builds the small site image that provisioner tests (and
// bench tools) run: a static Go HTTP server on FROM scratch, built locally
// because the test environment has no image registry.
//
// One image covers every behaviour; containers select it with environment
// variables (see ./server): SITE_NAME, PORT, LISTEN_DELAY, EXIT_AT_START,
// DATA_DIR.
package testimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/client"
)

// DefaultTag is the tag tests use unless they need a second image. Its
// version is a digest of the server's source: checkouts of different
// sources testing on one engine at once (branches side by side) each run
// their own image, never the one another just built under the same name.
var DefaultTag = "caddy-multitenant-testsite:" + sourceVersion()

// sourceVersion is a digest of ./server's files, "latest" when they
// cannot be read (Build then fails, saying why).
func sourceVersion() string {
	dir, err := serverDir()
	if err != nil {
		return "latest"
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "latest"
	}
	h := sha256.New()
	for _, e := range entries {
		body, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil || !e.Type().IsRegular() {
			continue
		}
		fmt.Fprintf(h, "%s %d\n", e.Name(), len(body))
		h.Write(body)
	}
	return "src-" + hex.EncodeToString(h.Sum(nil))[:12]
}

var (
	mu    sync.Mutex
	onces = map[string]*onceResult{}
)

type onceResult struct {
	once sync.Once
	err  error
}

// Build builds the test image as tag (once per process and tag) and returns
// tag. It fails the test, never skips it, when Go or Docker is unavailable:
// these tests exist to run against the real engine.
func Build(t testing.TB, tag string) string {
	t.Helper()
	mu.Lock()
	r, ok := onces[tag]
	if !ok {
		r = &onceResult{}
		onces[tag] = r
	}
	mu.Unlock()
	r.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		r.err = BuildImage(ctx, tag)
	})
	if r.err != nil {
		t.Fatalf("building test image %s: %v", tag, r.err)
	}
	return tag
}

// BuildImage compiles ./server (CGO_ENABLED=0, -trimpath) and builds a
// FROM scratch image tagged tag on the engine named by the DOCKER_* env.
func BuildImage(ctx context.Context, tag string) error {
	dir, err := os.MkdirTemp("", "testimage-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	bin, err := CompileServer(ctx, dir)
	if err != nil {
		return err
	}
	binary, err := os.ReadFile(bin)
	if err != nil {
		return err
	}

	archive, err := Context(Dockerfile, binary, false)
	if err != nil {
		return err
	}

	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return fmt.Errorf("docker client: %w", err)
	}
	defer cli.Close()
	resp, err := cli.ImageBuild(ctx, bytes.NewReader(archive), build.ImageBuildOptions{
		Tags:        []string{tag},
		Dockerfile:  "Dockerfile",
		Remove:      true,
		ForceRemove: true,
	})
	if err != nil {
		return fmt.Errorf("docker build %s: %w", tag, err)
	}
	defer resp.Body.Close()
	// The build reports failures inside the JSON stream, not as an HTTP
	// error, so the stream must be read to the end and checked.
	dec := json.NewDecoder(resp.Body)
	var log strings.Builder
	for {
		var msg struct {
			Stream      string `json:"stream"`
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			break
		} else if err != nil {
			return fmt.Errorf("reading build output of %s: %w", tag, err)
		}
		log.WriteString(msg.Stream)
		if msg.Error != "" {
			return fmt.Errorf("docker build %s: %s\n%s", tag, msg.Error, log.String())
		}
	}
	if _, err := cli.ImageInspect(ctx, tag); err != nil {
		return fmt.Errorf("image %s missing after build: %w\n%s", tag, err, log.String())
	}
	return nil
}

// Dockerfile builds the test image from a context holding the compiled
// server (CompileServer) as "server".
const Dockerfile = "FROM scratch\nCOPY server /server\nEXPOSE 8080\nENTRYPOINT [\"/server\"]\n"

// Context is a build context of dockerfile and the compiled server
// (CompileServer) as "server": a tar archive, gzip-compressed with gz.
func Context(dockerfile string, server []byte, gz bool) ([]byte, error) {
	var buf bytes.Buffer
	var w io.Writer = &buf
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	tw := tar.NewWriter(w)
	for _, f := range []struct {
		name string
		mode int64
		body []byte
	}{{"Dockerfile", 0o644, []byte(dockerfile)}, {"server", 0o755, server}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body)), ModTime: time.Unix(0, 0)}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

// CompileServer compiles ./server (static, for linux) into dir and
// returns the binary's path: what a test's own build context holds.
func CompileServer(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "server")
	src, err := serverDir()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, goBinary(), "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("compiling test server: %v: %s", err, out)
	}
	return bin, nil
}

// serverDir locates ./server next to this source file; the path is known at
// compile time, which is fine for tests and bench tools run from a checkout.
func serverDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("cannot locate testimage source")
	}
	dir := filepath.Join(filepath.Dir(file), "server")
	if _, err := os.Stat(filepath.Join(dir, "main.go")); err != nil {
		return "", fmt.Errorf("test server source: %w", err)
	}
	return dir, nil
}

// goBinary prefers the toolchain that runs the tests.
func goBinary() string {
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return "go"
}

// ProbeResult is the answer of the test server's /probe/ routes, asked
// from inside its container: OK with a Value, or the Error met.
type ProbeResult struct {
	OK    bool   `json:"ok"`
	Value string `json:"value,omitempty"`
	Error string `json:"error,omitempty"`
}

// Probe asks the test server at baseURL (http://host:port) to run the
// probe path (e.g. "/probe/dial?addr=10.0.0.2:8080") from inside its
// container, sending host as the Host header when not empty.
func Probe(t testing.TB, method, baseURL, host, path string) ProbeResult {
	t.Helper()
	req, err := http.NewRequest(method, baseURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	c := http.Client{Timeout: 15 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("probe %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var res ProbeResult
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &res) != nil {
		t.Fatalf("probe %s: status %d: %s", path, resp.StatusCode, body)
	}
	return res
}
