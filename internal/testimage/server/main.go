// Command server is the site every provisioner test runs: a static binary
// (stdlib only) whose behaviour is chosen through environment variables, so
// one image covers healthy, slow and crashing sites.
//
//	PORT           listen port (default 8080)
//	LISTEN_DELAY   a Go duration to sleep before listening (slow starters)
//	EXIT_AT_START  if set, print a line on stderr and exit 3: after that
//	               long if it is a Go duration, else immediately
//	SITE_NAME      echoed by GET /
//	DATA_DIR       where PUT/GET /file store files (default /data)
//
// Routes: GET / ("hello from <SITE_NAME>"), GET /env (JSON), PUT|GET
// /file?name=x, GET /health, GET /ws (raw upgrade, then byte echo), POST
// /exit?code=N, GET /status?code=N (answers with that status, for the
// figures' error counts), GET /burn?ms=N (keeps a CPU busy that long,
// for the figures' CPU use), GET /work?n=N (N SHA-256 rounds: fixed CPU
// work, for throughput), GET /hostname?ms=N (the replica's hostname after
// N ms), GET /page?header=Name:Value&size=N (answers
// "page <boot>" padded with dots to N bytes, with the given response
// headers; boot is the process's start time in nanoseconds, so a copy
// kept from an earlier run of the container tells itself apart) and POST /sick (GET /health answers 500 from
// then on, until the process restarts, for the health monitoring).
//
// Probes, for the isolation tests, each answering a JSON probeResult from
// inside the container: GET /probe/dial?addr=host:port (a TCP connection,
// 1s timeout), GET /probe/resolve?name=x (a DNS lookup), GET
// /probe/stat?path=p (whether the path exists), PUT /probe/write?path=p
// (whether a file can be written there) and GET /probe/whoami (uid:gid).
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

func main() {
	if v := os.Getenv("EXIT_AT_START"); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			time.Sleep(d)
		}
		fmt.Fprintln(os.Stderr, "fatal: EXIT_AT_START is set, exiting with code 3")
		os.Exit(3)
	}
	if d := os.Getenv("LISTEN_DELAY"); d != "" {
		dur, err := time.ParseDuration(d)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bad LISTEN_DELAY %q: %v\n", d, err)
			os.Exit(2)
		}
		time.Sleep(dur)
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	dataDir := os.Getenv("DATA_DIR")
	if dataDir == "" {
		dataDir = "/data"
	}
	logger := log.New(os.Stdout, "", log.LstdFlags)

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, "hello from %s", os.Getenv("SITE_NAME"))
	})
	// /hostname tells the replicas of a site apart (the container's or
	// task's hostname is its own), after ?ms= milliseconds (requests in
	// flight for an autoscaler to see).
	mux.HandleFunc("GET /hostname", func(w http.ResponseWriter, r *http.Request) {
		if ms, _ := strconv.Atoi(r.URL.Query().Get("ms")); ms > 0 {
			select {
			case <-time.After(time.Duration(min(ms, 10000)) * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
		name, err := os.Hostname()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		io.WriteString(w, name)
	})
	var sick atomic.Bool
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		if sick.Load() {
			http.Error(w, "sick", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("POST /sick", func(w http.ResponseWriter, r *http.Request) {
		sick.Store(true)
		logger.Printf("health path fails from now on")
		io.WriteString(w, "sick")
	})
	mux.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		env := map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(env)
	})
	mux.HandleFunc("/file", func(w http.ResponseWriter, r *http.Request) {
		name := filepath.Base(r.URL.Query().Get("name"))
		if name == "" || name == "." || name == "/" {
			http.Error(w, "missing name", http.StatusBadRequest)
			return
		}
		path := filepath.Join(dataDir, name)
		switch r.Method {
		case http.MethodPut:
			body, err := io.ReadAll(r.Body)
			if err == nil {
				err = os.WriteFile(path, body, 0o644)
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.WriteHeader(http.StatusCreated)
		case http.MethodGet:
			b, err := os.ReadFile(path)
			if os.IsNotExist(err) {
				http.NotFound(w, r)
				return
			} else if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.Write(b)
		default:
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		}
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		hj, ok := w.(http.Hijacker)
		if !ok {
			http.Error(w, "hijack unsupported", http.StatusInternalServerError)
			return
		}
		conn, rw, err := hj.Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		if err := rw.Flush(); err != nil {
			return
		}
		// Echo whatever arrives (including bytes already buffered) until
		// the peer closes.
		echo(rw.Reader, conn)
	})
	mux.HandleFunc("/exit", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		logger.Printf("exiting with code %d", code)
		os.Exit(code)
	})

	boot := strconv.FormatInt(time.Now().UnixNano(), 10)
	mux.HandleFunc("GET /page", func(w http.ResponseWriter, r *http.Request) {
		for _, h := range r.URL.Query()["header"] {
			name, value, _ := strings.Cut(h, ":")
			w.Header().Add(name, strings.TrimSpace(value))
		}
		body := "page " + boot
		if n, _ := strconv.Atoi(r.URL.Query().Get("size")); n > len(body) {
			body += strings.Repeat(".", n-len(body))
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, body)
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.URL.Query().Get("code"))
		if err != nil || code < 200 || code > 599 {
			http.Error(w, "code: a status from 200 to 599", http.StatusBadRequest)
			return
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, "status %d", code)
	})
	mux.HandleFunc("GET /burn", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		var spins uint64
		for deadline := time.Now().Add(time.Duration(min(max(ms, 0), 10000)) * time.Millisecond); time.Now().Before(deadline); {
			spins++
		}
		fmt.Fprintf(w, "%d", spins)
	})

	// /work does a fixed amount of CPU work (n SHA-256 rounds, 50,000 by
	// default: about 10 ms of one core), unlike /burn's wall-clock spin:
	// what a CPU-bound site's throughput is measured with.
	mux.HandleFunc("GET /work", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || n <= 0 {
			n = 50000
		}
		sum := sha256.Sum256([]byte(r.URL.RawQuery))
		for range min(n, 10_000_000) {
			sum = sha256.Sum256(sum[:])
		}
		fmt.Fprintf(w, "%x", sum[:8])
	})

	mux.HandleFunc("GET /probe/dial", func(w http.ResponseWriter, r *http.Request) {
		conn, err := net.DialTimeout("tcp", r.URL.Query().Get("addr"), time.Second)
		if err == nil {
			conn.Close()
		}
		answer(w, err, "")
	})
	mux.HandleFunc("GET /probe/resolve", func(w http.ResponseWriter, r *http.Request) {
		addrs, err := net.LookupHost(r.URL.Query().Get("name"))
		answer(w, err, strings.Join(addrs, ","))
	})
	mux.HandleFunc("GET /probe/stat", func(w http.ResponseWriter, r *http.Request) {
		_, err := os.Stat(r.URL.Query().Get("path"))
		answer(w, err, "")
	})
	mux.HandleFunc("PUT /probe/write", func(w http.ResponseWriter, r *http.Request) {
		answer(w, os.WriteFile(r.URL.Query().Get("path"), []byte("probe"), 0o644), "")
	})
	mux.HandleFunc("GET /probe/whoami", func(w http.ResponseWriter, r *http.Request) {
		answer(w, nil, fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid()))
	})

	logged := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		logger.Printf("%s %s %s", r.RemoteAddr, r.Method, r.URL.RequestURI())
		mux.ServeHTTP(w, r)
	})
	logger.Printf("listening on :%s", port)
	if err := http.ListenAndServe(":"+port, logged); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// probeResult is what a probe found: OK with its Value, or the Error.
type probeResult struct {
	OK    bool   `json:"ok"`
	Value string `json:"value,omitempty"`
	Error string `json:"error,omitempty"`
}

func answer(w http.ResponseWriter, err error, value string) {
	res := probeResult{OK: err == nil, Value: value}
	if err != nil {
		res.Error = err.Error()
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(res)
}

func echo(r *bufio.Reader, w io.Writer) {
	buf := make([]byte, 32*1024)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
