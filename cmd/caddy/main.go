// Command caddy is Caddy with its standard modules and the license API, the
// same binary that `xcaddy build --with github.com/edgelicense/caddy-license-api`
// produces.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/edgelicense/caddy-license-api"
)

func main() {
	caddycmd.Main()
}
