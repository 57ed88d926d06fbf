// Package caddymodule hosts the license API in Caddy: the
// http.handlers.license_api handler, its Caddyfile directive, and the
// `caddy license-api` commands.
package caddymodule

import (
	"encoding/json"
	"errors"
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
	"github.com/edgelicense/caddy-license-api/store/seed"
	"github.com/edgelicense/caddy-license-api/store/sqlite"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler answers the LicenseSpring License API under a path prefix and
// passes every other request to the next handler, so it can stand in front
// of an application. Its store is opened by the license_api app (see App):
// a request that arrives before the store is open waits for it.
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
	// server's clock, either way; it must not be negative. Default: 15m.
	DateTolerance caddy.Duration `json:"date_tolerance,omitempty"`

	// StoreRaw is the backend store module (license_api.stores.*), opened
	// when Caddy starts the configuration. Default: sqlite at its default
	// path.
	StoreRaw json.RawMessage `json:"store,omitempty" caddy:"namespace=license_api.stores inline_key=backend"`

	// Seed is the path of a JSON seed file, checked at provision and
	// imported when the configuration starts, unless it is the file the
	// store last imported. Placeholders are replaced. Default: none.
	Seed string `json:"seed,omitempty"`

	// Cache sizes the in-memory cache of definitions. Default: see
	// CacheConfig.
	Cache *CacheConfig `json:"cache,omitempty"`

	logger    *zap.Logger
	prefix    string // Prefix + "/"
	verifier  *auth.Verifier
	emptyKeys int // APIKeys with an empty key or shared key, for Validate
	signer    *signing.Signer
	errSigs   *signatureCache
	// ready is closed once start has run or been abandoned; state, poolKey,
	// startErr and a default signer are set before. A nil ready (a handler
	// built by a test) is ready.
	ready    chan struct{}
	state    *sharedState
	poolKey  string
	startErr error
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
	// blacklist or an unknown key. Default: 1000000.
	MaxEntries int64 `json:"max_entries,omitempty"`
	// TTL is how long a definition may be served from memory before it is
	// read again. Default: 5m.
	TTL caddy.Duration `json:"ttl,omitempty"`
	// Warm, after each seed import, loads every license with its features
	// and devices into the cache (up to half of MaxEntries), so that no
	// request pays for a first read; warmed entries expire after TTL like
	// any other. Default: false.
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

// Provision sets up authentication, reads a configured signing key, loads
// the store module, and registers with the license_api app the work that
// opens the store (see App), so that it changes nothing outside the
// process.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	h.errSigs = new(signatureCache)
	h.ready = make(chan struct{})
	repl := caddy.NewReplacer()

	h.prefix = strings.TrimRight(h.Prefix, "/")
	if h.Prefix == "" {
		h.prefix = DefaultPrefix
	}
	h.prefix += "/"

	keys := make(map[string]string, len(h.APIKeys))
	for _, k := range h.APIKeys {
		key, shared := repl.ReplaceKnown(k.Key, ""), repl.ReplaceKnown(k.SharedKey, "")
		if key == "" || shared == "" {
			h.emptyKeys++
			continue
		}
		keys[key] = shared
	}
	tolerance := time.Duration(h.DateTolerance)
	if tolerance == 0 {
		tolerance = DefaultDateTolerance
	}
	h.verifier = auth.NewVerifier(keys, tolerance)

	if path := repl.ReplaceKnown(h.SigningKey, ""); path != "" {
		pem, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("signing_key: %w", err)
		}
		if h.signer, err = signing.ParsePrivateKeyPEM(pem); err != nil {
			return fmt.Errorf("signing_key %s: %w", path, err)
		}
	}

	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	opener, err := h.loadStore(ctx)
	if err != nil {
		return err
	}
	app, err := ctx.App("license_api")
	if err != nil {
		return err
	}
	// The seed is read and checked here, where a mistake in it fails
	// `caddy validate` too; it is imported at start.
	var plan *seed.Plan
	if path := repl.ReplaceKnown(h.Seed, ""); path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		if plan, err = seed.Parse(path, data); err != nil {
			return err
		}
	}
	app.(*App).onStart(func() error { return h.start(opener, plan) }, h.abandon)
	return nil
}

// Validate checks the configuration without opening anything.
func (h *Handler) Validate() error {
	if h.Prefix != "" && !strings.HasPrefix(h.Prefix, "/") {
		return fmt.Errorf("prefix %q must start with /", h.Prefix)
	}
	if h.emptyKeys > 0 {
		// Never echo the values: one of them is a secret.
		return fmt.Errorf("api_keys: %d of %d pairs have an empty api key or shared key after replacing placeholders",
			h.emptyKeys, len(h.APIKeys))
	}
	if h.DateTolerance < 0 {
		return fmt.Errorf("date_tolerance %s is negative", time.Duration(h.DateTolerance))
	}
	if h.Cache != nil && (h.Cache.MaxEntries < 0 || h.Cache.TTL < 0) {
		return errors.New("cache: max_entries and ttl must not be negative")
	}
	return nil
}

// start is the handler's share of the license_api app's Start: the default
// signing key, then the shared store with its seed. Requests wait for it
// (see ServeHTTP).
func (h *Handler) start(opener store.Opener, plan *seed.Plan) error {
	defer close(h.ready)
	if h.signer == nil {
		if err := h.defaultSigner(); err != nil {
			h.startErr = err
			return err
		}
	}
	if err := h.provisionState(opener, plan); err != nil {
		h.startErr = err
		return err
	}
	return nil
}

// abandon releases the requests waiting for a start that will not happen,
// because another handler's failed first.
func (h *Handler) abandon(err error) {
	h.startErr = err
	close(h.ready)
}

// defaultSigner loads the signing key generated in Caddy's data directory,
// generating it on first use.
func (h *Handler) defaultSigner() error {
	path := filepath.Join(caddy.AppDataDir(), "license_api", "signing_key.pem")
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
	if h.ready != nil {
		// Caddy starts its apps in no set order: the HTTP servers may take
		// requests before this handler's store is open.
		select {
		case <-h.ready:
		case <-r.Context().Done():
			return r.Context().Err()
		}
		if h.startErr != nil {
			// The configuration failed to start and is being torn down;
			// there may be no key to sign with.
			http.Error(w, "the license API failed to start", http.StatusServiceUnavailable)
			return nil
		}
	}
	h.serve(w, r, name, ep)
	return nil
}

var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
