package sqlite

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/edgelicense/caddy-license-api/store"
)

func init() {
	caddy.RegisterModule(Module{})
}

// Module is the license_api.stores.sqlite Caddy module: the embedded store,
// and the default when a license_api handler names none.
type Module struct {
	// Path is the database file. Placeholders such as {env.*} are replaced.
	// Default: license_api/license_api.db in Caddy's data directory.
	Path string `json:"path,omitempty"`

	path string // Path, resolved at provision
}

// DefaultPath returns where the database lives when no path is configured.
func DefaultPath() string {
	return filepath.Join(caddy.AppDataDir(), "license_api", "license_api.db")
}

// CaddyModule returns the Caddy module information.
func (Module) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "license_api.stores.sqlite",
		New: func() caddy.Module { return new(Module) },
	}
}

// Provision resolves the database path.
func (m *Module) Provision(caddy.Context) error {
	p := caddy.NewReplacer().ReplaceKnown(m.Path, "")
	if p == "" {
		p = DefaultPath()
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return fmt.Errorf("sqlite store path: %w", err)
	}
	m.path = abs
	return nil
}

// Key identifies the database file, so every handler and configuration that
// uses it shares one open store (and one writer).
func (m *Module) Key() string { return "sqlite:" + m.path }

// Open opens the database, creating its directory if needed.
func (m *Module) Open(logger *zap.Logger) (store.Backend, error) {
	if err := os.MkdirAll(filepath.Dir(m.path), 0o700); err != nil {
		return nil, fmt.Errorf("creating the directory of %s: %w", m.path, err)
	}
	b, err := Open(m.path)
	if err != nil {
		return nil, err
	}
	logger.Info("opened sqlite license store", zap.String("path", m.path))
	return b, nil
}

// UnmarshalCaddyfile sets up the module from Caddyfile tokens. Syntax:
//
//	sqlite [<path>]
func (m *Module) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module name
	if d.NextArg() {
		m.Path = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(0) {
		return d.Err("the sqlite store takes no block")
	}
	return nil
}

var (
	_ caddy.Provisioner     = (*Module)(nil)
	_ caddyfile.Unmarshaler = (*Module)(nil)
	_ store.Opener          = (*Module)(nil)
)
