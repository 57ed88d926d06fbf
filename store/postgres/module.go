package postgres

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/edgelicense/caddy-license-api/store"
)

func init() {
	caddy.RegisterModule(Module{})
}

// openTimeout bounds Module.Open: connecting, and migrating the schema,
// which may wait for another node's migration.
const openTimeout = time.Minute

// keySecret keys the digest in Module.Key. It is random per process: keys
// need only be stable within one process (they pair configurations across
// reloads), and a keyed digest of the DSN cannot be used to guess its
// password offline.
var keySecret = func() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}()

// Module is the license_api.stores.postgres Caddy module: a PostgreSQL
// database that several Caddy nodes share.
type Module struct {
	// DSN is the PostgreSQL connection string, as a URL
	// (postgres://user:password@host:5432/db?sslmode=verify-full) or as
	// keyword/value pairs. Placeholders such as {env.DATABASE_URL} are
	// replaced, which keeps the password out of the configuration. It is
	// never logged. Required; there is no default.
	DSN string `json:"dsn"`

	// MaxConns bounds the connection pool of this Caddy instance.
	// Default: 4 × GOMAXPROCS.
	MaxConns int32 `json:"max_conns,omitempty"`

	// Timeout bounds every read and consumption, and each attempt to
	// connect; a call that runs out fails, and is answered 503.
	// Default: 2s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	dsn    string // DSN with placeholders replaced
	server string // user@host:port/database: names the database without secrets
}

// CaddyModule returns the Caddy module information.
func (Module) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "license_api.stores.postgres",
		New: func() caddy.Module { return new(Module) },
	}
}

// Provision replaces placeholders in the DSN and reads the server it names.
func (m *Module) Provision(caddy.Context) error {
	m.dsn = caddy.NewReplacer().ReplaceKnown(m.DSN, "")
	if pc, err := pgxpool.ParseConfig(m.dsn); err == nil {
		c := pc.ConnConfig
		m.server = c.User + "@" + net.JoinHostPort(c.Host, strconv.Itoa(int(c.Port))) + "/" + c.Database
	}
	return nil
}

// Validate checks the settings and that the DSN parses, without connecting.
func (m *Module) Validate() error {
	if m.dsn == "" {
		return errors.New("postgres store: dsn is required")
	}
	if m.MaxConns < 0 {
		return fmt.Errorf("postgres store: max_conns %d is negative", m.MaxConns)
	}
	if m.Timeout < 0 {
		return fmt.Errorf("postgres store: timeout %s is negative", time.Duration(m.Timeout))
	}
	if m.server == "" {
		return errBadDSN
	}
	return nil
}

// Key identifies the database and the pool's settings without the
// password, which it may be logged with: handlers and configurations with
// the same DSN and settings share one open store, and a change of either
// opens a new one.
func (m *Module) Key() string {
	h := hmac.New(sha256.New, keySecret)
	fmt.Fprintf(h, "%s\x00%d\x00%d", m.dsn, m.MaxConns, m.Timeout)
	return "postgres:" + m.server + "#" + hex.EncodeToString(h.Sum(nil)[:8])
}

// Open connects to the database and migrates its schema.
func (m *Module) Open(logger *zap.Logger) (store.Backend, error) {
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	cfg := Config{DSN: m.dsn, MaxConns: m.MaxConns, Timeout: time.Duration(m.Timeout), Logger: logger}
	b, err := Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	logger.Info("opened postgres license store", zap.String("server", m.server),
		zap.Int32("max_conns", b.pool.Config().MaxConns), zap.Duration("timeout", b.timeout))
	return b, nil
}

// UnmarshalCaddyfile sets up the module from Caddyfile tokens. Syntax:
//
//	postgres <dsn> {
//		max_conns <n>
//		timeout   <duration>
//	}
//
// The block is optional.
func (m *Module) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module name
	if !d.NextArg() {
		return d.ArgErr()
	}
	m.DSN = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "max_conns":
			if !d.NextArg() {
				return d.ArgErr()
			}
			n, err := strconv.ParseInt(d.Val(), 10, 32)
			if err != nil || n <= 0 {
				return d.Errf("max_conns %q is not a positive integer", d.Val())
			}
			m.MaxConns = int32(n)
		case "timeout":
			if !d.NextArg() {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(d.Val())
			if err != nil || dur <= 0 {
				return d.Errf("timeout %q is not a positive duration", d.Val())
			}
			m.Timeout = caddy.Duration(dur)
		default:
			return d.Errf("unrecognized postgres store option %q", d.Val())
		}
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	return nil
}

var (
	_ caddy.Validator       = (*Module)(nil)
	_ caddy.Provisioner     = (*Module)(nil)
	_ caddyfile.Unmarshaler = (*Module)(nil)
	_ store.Opener          = (*Module)(nil)
)
