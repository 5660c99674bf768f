// Command benchtool is the Go half of the benchmark scripts in bench/: it
// prepares a schema with a template and sites, reads upstreams from Docker,
// measures cold starts and the thundering herd, and cleans up. The bash
// drivers (bench/*.sh) own the Caddy process and the PostgreSQL server.
//
//	benchtool freeports N
//	benchtool setup     -db URL -schema S -sites a,b,c   (prints a=<id> lines)
//	benchtool upstream  -schema S -site ID               (prints 127.0.0.1:port)
//	benchtool wait      -caddy ADDR -host H              (GET until 200)
//	benchtool coldstart -caddy ADDR -admin ADDR -schema S -site ID -host H -runs N
//	benchtool wake      -caddy ADDR -admin ADDR -schema S -site ID -host H -slow-site ID -slow-host H -wakes N -runs N
//	benchtool herd      -caddy ADDR -admin ADDR -schema S -site ID -host H -n N [-stop]
//	benchtool swarmcold -caddy ADDR -admin ADDR -schema S -sites sub=id,… -manager HOST -network NET -rounds N
//	benchtool deploy    -caddy ADDR -host H -token T -site ID -marker M  (times a deploy from source)
//	benchtool cleanup   -schema S [-db URL]
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	args := os.Args[2:]
	var err error
	switch os.Args[1] {
	case "freeports":
		err = freePorts(args)
	case "setup":
		err = setup(ctx, args)
	case "upstream":
		err = upstream(ctx, args)
	case "wait":
		err = waitOK(ctx, args)
	case "coldstart":
		err = coldstart(ctx, args)
	case "wake":
		err = wake(ctx, args)
	case "herd":
		err = herd(ctx, args)
	case "stale":
		err = staleBench(ctx, args)
	case "swarmcold":
		err = swarmCold(ctx, args)
	case "deploy":
		err = deploy(ctx, args)
	case "cleanup":
		err = cleanup(ctx, args)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchtool %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: benchtool freeports|setup|upstream|wait|coldstart|wake|herd|stale|swarmcold|deploy|cleanup [flags]")
	os.Exit(2)
}

// freePorts prints N distinct free loopback TCP ports, one a line. They are
// held open together until all are chosen so they differ.
func freePorts(args []string) error {
	n := 1
	if len(args) > 0 {
		var err error
		if n, err = strconv.Atoi(args[0]); err != nil {
			return err
		}
	}
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		ls = append(ls, l)
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
	}
	return nil
}
