package caddymodule

import (
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

func init() {
	// Not RegisterHandlerDirective: that reads a first argument starting
	// with "/" as a path matcher, while license_api's first argument is its
	// prefix. The handler matches its own paths and passes the rest on, so
	// it needs no matcher; wrap it in handle or route to restrict it.
	httpcaddyfile.RegisterDirective("license_api", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("license_api", httpcaddyfile.Before, "respond")
}

func parseCaddyfile(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	var lh Handler
	if err := lh.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	return h.NewRoute(nil, &lh), nil
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	license_api [<prefix>] {
//	    api_key <api_key> <shared_key>    # repeatable; use {env.*} for secrets
//	    signing_key <path>                # RSA or ECDSA P-256 private key PEM
//	    company_id <int>
//	    date_tolerance <duration>         # default 15m
//	    store <module> [<args...>]        # default: sqlite in Caddy's data directory
//	    seed <path>
//	    cache {
//	        max_entries <n>               # default 1000000
//	        ttl <duration>                # default 5m
//	        warm on|off                   # default off
//	    }
//	}
//
// The store line is handed to the store module's own Caddyfile syntax, e.g.
// "store sqlite /var/lib/caddy/license.db".
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	if d.NextArg() {
		h.Prefix = d.Val()
		if !strings.HasPrefix(h.Prefix, "/") {
			return d.Errf("prefix %q must start with /; to restrict license_api with a matcher, put it in handle or route", h.Prefix)
		}
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "api_key":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.Err("api_key takes an API key and its shared key")
			}
			h.APIKeys = append(h.APIKeys, APIKey{Key: args[0], SharedKey: args[1]})
		case "signing_key":
			if err := oneArg(d, &h.SigningKey); err != nil {
				return err
			}
		case "seed":
			if err := oneArg(d, &h.Seed); err != nil {
				return err
			}
		case "company_id":
			var s string
			if err := oneArg(d, &s); err != nil {
				return err
			}
			id, err := strconv.ParseInt(s, 10, 64)
			if err != nil || id < 0 {
				return d.Errf("company_id %q is not a non-negative integer", s)
			}
			h.CompanyID = id
		case "date_tolerance":
			dur, err := durationArg(d)
			if err != nil {
				return err
			}
			h.DateTolerance = dur
		case "store":
			if !d.NextArg() {
				return d.ArgErr()
			}
			name := d.Val()
			mod, err := caddyfile.UnmarshalModule(d, "license_api.stores."+name)
			if err != nil {
				return err
			}
			h.StoreRaw = caddyconfig.JSONModuleObject(mod, "backend", name, nil)
		case "cache":
			if err := h.unmarshalCache(d); err != nil {
				return err
			}
		default:
			return d.Errf("unrecognized license_api option %q", d.Val())
		}
	}
	return nil
}

func (h *Handler) unmarshalCache(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	if h.Cache == nil {
		h.Cache = new(CacheConfig)
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "max_entries":
			var s string
			if err := oneArg(d, &s); err != nil {
				return err
			}
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n <= 0 {
				return d.Errf("max_entries %q is not a positive integer", s)
			}
			h.Cache.MaxEntries = n
		case "ttl":
			dur, err := durationArg(d)
			if err != nil {
				return err
			}
			h.Cache.TTL = dur
		case "warm":
			var s string
			if err := oneArg(d, &s); err != nil {
				return err
			}
			if s != "on" && s != "off" {
				return d.Errf("warm %q is neither on nor off", s)
			}
			h.Cache.Warm = s == "on"
		default:
			return d.Errf("unrecognized cache option %q", d.Val())
		}
	}
	return nil
}

func oneArg(d *caddyfile.Dispenser, dst *string) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

func durationArg(d *caddyfile.Dispenser) (caddy.Duration, error) {
	name := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return 0, err
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil || dur <= 0 {
		return 0, d.Errf("%s %q is not a positive duration", name, s)
	}
	return caddy.Duration(dur), nil
}

var _ caddyfile.Unmarshaler = (*Handler)(nil)
