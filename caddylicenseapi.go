// Package caddylicenseapi registers every Caddy module of the license API, so
// that one line builds them into Caddy:
//
//	xcaddy build --with github.com/edgelicense/caddy-license-api
package caddylicenseapi

import (
	// The modules register themselves in their init functions.
	_ "github.com/edgelicense/caddy-license-api/caddymodule"
	_ "github.com/edgelicense/caddy-license-api/store/postgres"
	_ "github.com/edgelicense/caddy-license-api/store/sqlite"
)
