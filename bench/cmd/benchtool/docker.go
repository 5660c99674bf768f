package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/jackc/pgx/v5"

	"github.com/agistaffers/caddy-multitenant/provisioner"
)

// LabelBench marks the containers and volumes benchtool itself creates (the
// cold-start baseline); its value is the run's schema.
const LabelBench = "caddy-multitenant.bench"

func dockerClient(ctx context.Context) (*client.Client, error) {
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	c.NegotiateAPIVersion(ctx)
	return c, nil
}

// siteContainers lists the containers (all states) of site in namespace.
func siteContainers(ctx context.Context, cli *client.Client, namespace, siteID string) ([]container.Summary, error) {
	return cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", provisioner.LabelNamespace+"="+namespace),
		filters.Arg("label", provisioner.LabelSite+"="+siteID),
	)})
}

// siteContainer returns the one container of site, failing if there is
// not exactly one.
func siteContainer(ctx context.Context, cli *client.Client, namespace, siteID string) (container.InspectResponse, error) {
	list, err := siteContainers(ctx, cli, namespace, siteID)
	if err != nil {
		return container.InspectResponse{}, err
	}
	if len(list) != 1 {
		return container.InspectResponse{}, fmt.Errorf("site %s has %d containers, want 1", siteID, len(list))
	}
	return cli.ContainerInspect(ctx, list[0].ID)
}

// published returns the 127.0.0.1:port a running container publishes its
// first port on.
func published(c container.InspectResponse) (string, error) {
	if c.NetworkSettings == nil {
		return "", errors.New("container has no network settings")
	}
	for _, bindings := range c.NetworkSettings.Ports {
		for _, b := range bindings {
			if b.HostPort != "" {
				ip := b.HostIP
				if ip == "" || ip == "0.0.0.0" {
					ip = "127.0.0.1"
				}
				return ip + ":" + b.HostPort, nil
			}
		}
	}
	return "", fmt.Errorf("container %s publishes no port (is it running?)", c.Name)
}

// upstream prints the published address of a site's running container.
func upstream(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("upstream", flag.ExitOnError)
	schema := fs.String("schema", "", "namespace")
	site := fs.String("site", "", "site id")
	fs.Parse(args)
	cli, err := dockerClient(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	c, err := siteContainer(ctx, cli, *schema, *site)
	if err != nil {
		return err
	}
	addr, err := published(c)
	if err != nil {
		return err
	}
	fmt.Println(addr)
	return nil
}

// cleanup removes every container and volume of the namespace (the
// provisioner's and the baseline's) and, with -db, drops the schema.
func cleanup(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("cleanup", flag.ExitOnError)
	schema := fs.String("schema", "", "namespace")
	db := fs.String("db", "", "PostgreSQL URL: also drop the schema")
	fs.Parse(args)
	if *schema == "" {
		return errors.New("-schema is required")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var errs []error
	cli, err := dockerClient(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	removed := 0
	// Every container first: a baseline twin is on its site's customer
	// network, which goes only once both are gone.
	for _, label := range []string{provisioner.LabelNamespace, LabelBench} {
		f := filters.NewArgs(filters.Arg("label", label+"="+*schema))
		list, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
		errs = append(errs, err)
		for _, c := range list {
			err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
			errs = append(errs, err)
			if err == nil {
				removed++
			}
		}
	}
	for _, label := range []string{provisioner.LabelNamespace, LabelBench} {
		f := filters.NewArgs(filters.Arg("label", label+"="+*schema))
		vols, err := cli.VolumeList(ctx, volume.ListOptions{Filters: f})
		errs = append(errs, err)
		for _, v := range vols.Volumes {
			err := cli.VolumeRemove(ctx, v.Name, true)
			errs = append(errs, err)
			if err == nil {
				removed++
			}
		}
		// Images built from source for the namespace's sites.
		imgs, err := cli.ImageList(ctx, image.ListOptions{Filters: f})
		errs = append(errs, err)
		for _, img := range imgs {
			_, err := cli.ImageRemove(ctx, img.ID, image.RemoveOptions{Force: true, PruneChildren: true})
			errs = append(errs, err)
			if err == nil {
				removed++
			}
		}
		nets, err := cli.NetworkList(ctx, network.ListOptions{Filters: f})
		errs = append(errs, err)
		for _, n := range nets {
			errs = append(errs, cli.NetworkRemove(ctx, n.ID))
		}
	}
	if *db != "" {
		errs = append(errs, execSQL(ctx, *db, "DROP SCHEMA IF EXISTS "+pgx.Identifier{*schema}.Sanitize()+" CASCADE"))
	}
	fmt.Printf("cleanup: removed %d containers/volumes of namespace %s\n", removed, *schema)
	return errors.Join(errs...)
}

// waitOK GETs / of host through Caddy until it answers 200.
func waitOK(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("wait", flag.ExitOnError)
	caddy := fs.String("caddy", "", "Caddy HTTP address")
	host := fs.String("host", "", "Host header")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after")
	fs.Parse(args)
	deadline := time.Now().Add(*timeout)
	var last string
	for time.Now().Before(deadline) {
		status, body, err := get(ctx, oneShot, *caddy, *host, "/")
		if err == nil && status == http.StatusOK {
			return nil
		}
		last = fmt.Sprintf("%d %q %v", status, body, err)
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s via %s: no 200 within %s (last: %s)", *host, *caddy, *timeout, last)
}

// oneShot makes a new connection for every request, so a cold start is
// measured with its connection set-up, as a first visitor sees it.
var oneShot = &http.Client{
	Timeout:   60 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
}

func get(ctx context.Context, c *http.Client, addr, host, path string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return 0, "", err
	}
	if host != "" {
		req.Host = host
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// metric reads one sample of Caddy's Prometheus metrics from the admin
// API: name with its label set exactly as exposed (e.g.
// `caddy_tenants_cold_starts_total{result="started"}`). A missing series
// reads as 0.
func metric(ctx context.Context, admin, series string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	return 0, sc.Err()
}

const coldStartsStarted = `caddy_tenants_cold_starts_total{result="started"}`

// readyPath is the tenant handler's readiness endpoint (pages.go): 204
// while the site's container is known running, 503 otherwise, and it never
// starts the site.
const readyPath = "/.well-known/caddy-multitenant/ready"

// waitCaddySeesStopped polls readyPath until Caddy no longer considers the
// site running (its die-event watcher saw the stop).
func waitCaddySeesStopped(ctx context.Context, caddy, host string) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		status, _, err := get(ctx, oneShot, caddy, host, readyPath)
		if err == nil && status != http.StatusNoContent {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("caddy still considers %s running 15s after its container stopped", host)
}

// killAndWait kills a container and waits until the engine reports it not
// running.
func killAndWait(ctx context.Context, cli *client.Client, id string) error {
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	waitC, errC := cli.ContainerWait(wctx, id, container.WaitConditionNotRunning)
	if err := cli.ContainerKill(ctx, id, "KILL"); err != nil {
		return fmt.Errorf("killing %s: %w", id, err)
	}
	select {
	case <-waitC:
		return nil
	case err := <-errC:
		return fmt.Errorf("waiting for %s to stop: %w", id, err)
	}
}
