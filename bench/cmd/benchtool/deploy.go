package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/agistaffers/caddy-multitenant/internal/testimage"
)

// deploy builds the test context (the test server, compiled here, FROM
// scratch, with BUILT_FROM=marker in its env), uploads it to the site's
// deploy route and times, from the upload's start, when the new version
// first answers (GET /env shows the marker, polled every 5ms) and when the
// deploy's answer ends (the old container drained and removed).
func deploy(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("deploy", flag.ExitOnError)
	caddy := fs.String("caddy", "", "Caddy HTTP address")
	host := fs.String("host", "", "the site's Host header")
	adminHost := fs.String("admin-host", "admin.example.com", "the admin API's Host header")
	token := fs.String("token", "", "a write API key")
	site := fs.String("site", "", "site id")
	marker := fs.String("marker", "", "BUILT_FROM of the new version")
	fs.Parse(args)

	dir, err := os.MkdirTemp("", "benchtool-deploy-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := testimage.CompileServer(ctx, dir)
	if err != nil {
		return err
	}
	server, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	body, err := testimage.Context(testimage.Dockerfile+"ENV BUILT_FROM="+*marker+"\n", server, true)
	if err != nil {
		return err
	}

	began := time.Now()
	served := make(chan time.Duration, 1)
	pollCtx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	go func() {
		for pollCtx.Err() == nil {
			if status, got, err := get(pollCtx, http.DefaultClient, *caddy, *host, "/env"); err == nil && status == 200 &&
				strings.Contains(got, `"BUILT_FROM":"`+*marker+`"`) {
				served <- time.Since(began)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+*caddy+"/api/v1/sites/"+*site+"/deploy", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Host = *adminHost
	req.Header.Set("Authorization", "Bearer "+*token)
	req.Header.Set("Content-Type", "application/gzip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var last string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			last = line
		}
	}
	done := time.Since(began)
	var rel struct{ Status, Outcome string }
	if err := json.Unmarshal([]byte(last), &rel); err != nil || rel.Status != "live" {
		return fmt.Errorf("deploy: %s: %s", resp.Status, last)
	}
	select {
	case d := <-served:
		fmt.Printf("upload→new version serving: %.2fs\nupload→deploy answered (old container drained and removed): %.2fs\noutcome: %s\n",
			d.Seconds(), done.Seconds(), rel.Outcome)
	case <-time.After(30 * time.Second):
		return fmt.Errorf("the new version never answered")
	}
	return nil
}
