package caddymodule

import "github.com/caddyserver/caddy/v2"

func init() {
	caddy.RegisterModule(App{})
}

// App is the license_api Caddy app. It has no configuration of its own: each
// license_api handler registers with it, at Provision, the work that would
// change something outside the process (opening its store and creating its
// database file, importing its seed, warming its cache, generating the
// default signing key), and the app does that work in Start.
//
// Caddy starts the apps of a configuration only when it runs it. `caddy
// validate` provisions and validates every module but starts no app, so a
// validation opens no database, imports no seed and writes no key, and
// provisioning is free of side effects. A seed that fails to import fails
// Start, which fails the load or reload, and Caddy keeps the configuration
// it was running.
//
// Caddy provisions a configuration's modules one at a time and starts its
// apps after, so the app needs no lock.
type App struct {
	starts []startWork
}

// startWork is a handler's work for Start, and what to do instead when an
// earlier handler's work failed and this one will not run.
type startWork struct {
	run     func() error
	abandon func(error)
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "license_api",
		New: func() caddy.Module { return new(App) },
	}
}

// onStart registers work for Start: run, or abandon with the error that
// stopped Start before run's turn. Handlers call it from their Provision,
// which Caddy runs before Start.
func (a *App) onStart(run func() error, abandon func(error)) {
	a.starts = append(a.starts, startWork{run, abandon})
}

// Start does the registered work, in the order it was registered, and
// stops at the first failure. What the work opened before a failure is
// released by the handlers' Cleanup, which Caddy runs for a configuration
// that failed to start as for one that is replaced.
func (a *App) Start() error {
	for i, w := range a.starts {
		if err := w.run(); err != nil {
			for _, rest := range a.starts[i+1:] {
				rest.abandon(err)
			}
			return err
		}
	}
	return nil
}

// Stop does nothing: the stores must outlive the HTTP servers' graceful
// shutdown, which Caddy may run after this app's Stop, so they are released
// by the handlers' Cleanup, after every app has stopped.
func (a *App) Stop() error { return nil }

var _ caddy.App = (*App)(nil)
