// Command caddy is Caddy with this plugin built in: what `xcaddy build
// --with github.com/agistaffers/caddy-multitenant` produces, kept here so
// tests and `make run` build the same binary with plain `go build`.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/agistaffers/caddy-multitenant"
)

func main() {
	caddycmd.Main()
}
