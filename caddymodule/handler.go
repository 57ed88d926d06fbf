// Package caddymodule hosts the license API in Caddy: the
// http.handlers.license_api handler, its Caddyfile directive, and the
// `caddy license-api` commands.
package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/edgelicense/caddy-license-api/auth"
	"github.com/edgelicense/caddy-license-api/signing"
	"github.com/edgelicense/caddy-license-api/store"
	"github.com/edgelicense/caddy-license-api/store/sqlite"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler answers the LicenseSpring License API under a path prefix and
// passes every other request to the next handler, so it can stand in front of
// an application or a proxy to the LicenseSpring cloud.
type Handler struct {
	// Prefix is the path the API is served under. Default: /api/v4.
	Prefix string `json:"prefix,omitempty"`

	// APIKeys are the API keys clients may sign requests with. Default: none,
	// which refuses every request with invalid_api_key.
	APIKeys []APIKey `json:"api_keys,omitempty"`

	// SigningKey is the path of the PEM private key (RSA 2048 to 4096 bits,
	// or ECDSA P-256) that signs responses. Placeholders are replaced.
	// Default: license_api/signing_key.pem in Caddy's data directory,
	// generated (RSA-2048) on first use; the public key is written beside it
	// with a .pub suffix.
	SigningKey string `json:"signing_key,omitempty"`

	// CompanyID is the "company": {"id": ...} sent in responses. Default: 0.
	CompanyID int64 `json:"company_id,omitempty"`

	// DateTolerance is how far a request's Date header may be from the
	// server's clock, either way. Default: 15m.
	DateTolerance caddy.Duration `json:"date_tolerance,omitempty"`

	// StoreRaw is the backend store module (license_api.stores.*).
	// Default: sqlite at its default path.
	StoreRaw json.RawMessage `json:"store,omitempty" caddy:"namespace=license_api.stores inline_key=backend"`

	// Seed is the path of a JSON seed file imported at every provision
	// (idempotently: see the README). Placeholders are replaced. Default: none.
	Seed string `json:"seed,omitempty"`

	// Cache sizes the in-memory cache of definitions.
	Cache *CacheConfig `json:"cache,omitempty"`

	logger   *zap.Logger
	prefix   string // Prefix + "/"
	verifier *auth.Verifier
	signer   *signing.Signer
	state    *sharedState
	poolKey  string
	errSigs  *signatureCache
}

// APIKey is an API key and the shared key its requests are signed with. Put
// secrets in the environment and refer to them as {env.NAME}: the JSON config
// (which the admin endpoint shows) then never holds them.
type APIKey struct {
	// Key is the API key clients send. Placeholders are replaced.
	Key string `json:"api_key"`
	// SharedKey is the HMAC secret. Placeholders are replaced.
	SharedKey string `json:"shared_key"`
}

// CacheConfig sizes the definitions cache.
type CacheConfig struct {
	// MaxEntries bounds the number of cached definitions: a license with
	// its features and devices is one, as is a product, a user, a
	// blacklist or an unknown key. The keys of cached licenses are
	// indexed beside them, bounded by the same number.
	// Default: 1000000 (some 700 MB of heap when full of licenses like
	// licensebench's, each with a feature and a device).
	MaxEntries int64 `json:"max_entries,omitempty"`
	// TTL is how long a definition may be served from memory before it is
	// read again. Default: 5m.
	TTL caddy.Duration `json:"ttl,omitempty"`
	// Warm, after each seed import, loads every license with its features
	// and devices into the cache (up to half of MaxEntries), so that the
	// first request for a license reads nothing from the store. With
	// 100,000 licenses it takes about a second and raised Caddy's peak
	// RSS from about 180 to 260 MB in licensebench; it is off by default
	// because with the default MaxEntries it would read up to 500,000
	// licenses into memory. Its effect lasts one TTL, after which
	// licenses are read again when next asked for. Default: false.
	Warm bool `json:"warm,omitempty"`
}

// Defaults of the handler's configuration.
const (
	DefaultPrefix        = "/api/v4"
	DefaultDateTolerance = 15 * time.Minute
)

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.license_api",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets up authentication, the signing key, and the shared store.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	h.errSigs = new(signatureCache)
	repl := caddy.NewReplacer()

	if h.Prefix != "" && !strings.HasPrefix(h.Prefix, "/") {
		return fmt.Errorf("prefix %q must start with /", h.Prefix)
	}
	h.prefix = strings.TrimRight(h.Prefix, "/")
	if h.Prefix == "" {
		h.prefix = DefaultPrefix
	}
	h.prefix += "/"

	keys := make(map[string]string, len(h.APIKeys))
	for i, k := range h.APIKeys {
		key, shared := repl.ReplaceKnown(k.Key, ""), repl.ReplaceKnown(k.SharedKey, "")
		if key == "" || shared == "" {
			// Never echo the values: one of them is a secret.
			return fmt.Errorf("api_keys[%d]: api key and shared key must both be non-empty after replacing placeholders", i)
		}
		keys[key] = shared
	}
	tolerance := time.Duration(h.DateTolerance)
	if tolerance <= 0 {
		tolerance = DefaultDateTolerance
	}
	h.verifier = auth.NewVerifier(keys, tolerance)

	if err := h.provisionSigner(repl); err != nil {
		return err
	}

	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	opener, err := h.loadStore(ctx)
	if err != nil {
		return err
	}
	return h.provisionState(opener, repl.ReplaceKnown(h.Seed, ""))
}

func (h *Handler) provisionSigner(repl *caddy.Replacer) error {
	path := repl.ReplaceKnown(h.SigningKey, "")
	if path != "" {
		pem, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("signing_key: %w", err)
		}
		if h.signer, err = signing.ParsePrivateKeyPEM(pem); err != nil {
			return fmt.Errorf("signing_key %s: %w", path, err)
		}
		return nil
	}
	path = filepath.Join(caddy.AppDataDir(), "license_api", "signing_key.pem")
	s, created, err := signing.LoadOrCreateKeyFile(path, signing.RSA2048)
	if err != nil {
		return fmt.Errorf("default signing key: %w", err)
	}
	if created {
		h.logger.Warn("generated a response signing key; configure clients with its public key",
			zap.String("public_key", path+".pub"), zap.String("algorithm", s.Algorithm()))
	} else {
		h.logger.Info("using the generated response signing key",
			zap.String("public_key", path+".pub"), zap.String("algorithm", s.Algorithm()))
	}
	h.signer = s
	return nil
}

func (h *Handler) loadStore(ctx caddy.Context) (store.Opener, error) {
	if h.StoreRaw == nil {
		m := new(sqlite.Module)
		if err := m.Provision(ctx); err != nil {
			return nil, err
		}
		return m, nil
	}
	mod, err := ctx.LoadModule(h, "StoreRaw")
	if err != nil {
		return nil, fmt.Errorf("loading store module: %w", err)
	}
	opener, ok := mod.(store.Opener)
	if !ok {
		return nil, fmt.Errorf("store module %T cannot open a store", mod)
	}
	return opener, nil
}

// Cleanup releases this handler's use of the shared store; the store closes
// when the last configuration using it is gone.
func (h *Handler) Cleanup() error {
	if h.poolKey == "" {
		return nil
	}
	_, err := pool.Delete(h.poolKey)
	return err
}

// ServeHTTP answers the API's endpoints and passes everything else on.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	name, ok := strings.CutPrefix(r.URL.Path, h.prefix)
	if !ok {
		return next.ServeHTTP(w, r)
	}
	ep, ok := endpoints[name]
	if !ok {
		return next.ServeHTTP(w, r)
	}
	h.serve(w, r, name, ep)
	return nil
}

var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
