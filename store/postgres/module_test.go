package postgres

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

const password = "s3cr3t-pw"

// TestErrorsHideThePassword opens DSNs that cannot work, an unreachable port
// and unparsable strings, and checks that neither the error nor the
// module's key repeats the password.
func TestErrorsHideThePassword(t *testing.T) {
	for _, dsn := range []string{
		"postgres://postgres:" + password + "@127.0.0.1:1/test?sslmode=disable",
		"postgres://postgres:" + password + "@127.0.0.1:notaport/test",
		"postgres://postgres:" + password + "@127.0.0.1:1/test?sslmode=nonsense",
		"host=127.0.0.1 port=1 user=postgres password=" + password + " dbname=test sslmode=disable",
		"host=127.0.0.1 port=x password='" + password + "'",
	} {
		start := time.Now()
		_, err := Open(context.Background(), Config{DSN: dsn, Timeout: time.Second})
		if err == nil {
			t.Errorf("opening %s succeeded", dsn)
			continue
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("opening an unreachable database took %s", took)
		}
		if strings.Contains(err.Error(), password) {
			t.Errorf("the error shows the password: %v", err)
		}
		t.Logf("error: %v", err)
		m := &Module{DSN: dsn}
		err = m.Provision(caddy.Context{})
		if err == nil {
			err = m.Validate()
		}
		if err != nil {
			if strings.Contains(err.Error(), password) {
				t.Errorf("the provisioning error shows the password: %v", err)
			}
			continue
		}
		if strings.Contains(m.Key(), password) {
			t.Errorf("the key shows the password: %s", m.Key())
		}
	}
}

// TestModuleHidesThePassword opens the test database through the module
// with a password in the DSN (which trust authentication ignores, and any
// other accepts), and checks the key and the logs.
func TestModuleHidesThePassword(t *testing.T) {
	u, err := url.Parse(freshSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), password)
	t.Setenv("LICENSE_API_TEST_PG_DSN", u.String())
	m := &Module{DSN: "{env.LICENSE_API_TEST_PG_DSN}", MaxConns: 3, Timeout: caddy.Duration(time.Second)}
	if err := m.Provision(caddy.Context{}); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.DebugLevel)
	b, err := m.Open(zap.New(core))
	if err != nil {
		t.Skipf("the test database refused a password: %v", err)
	}
	defer b.Close()
	if _, _, err := b.Product(context.Background(), "none"); err != nil {
		t.Fatal(err)
	}
	key := m.Key()
	if strings.Contains(key, password) || !strings.HasPrefix(key, "postgres:"+u.User.Username()+"@") {
		t.Errorf("key %q", key)
	}
	if logs.Len() == 0 {
		t.Error("opening logged nothing")
	}
	for _, e := range logs.All() {
		line := e.Message
		for k, v := range e.ContextMap() {
			line += fmt.Sprintf(" %s=%v", k, v)
		}
		if strings.Contains(line, password) {
			t.Errorf("a log line shows the password: %s", line)
		}
	}
	other := &Module{DSN: u.String(), MaxConns: 4, Timeout: caddy.Duration(time.Second)}
	if err := other.Provision(caddy.Context{}); err != nil {
		t.Fatal(err)
	}
	if other.Key() == key {
		t.Error("configurations with different pool sizes share a key")
	}
}

func TestUnmarshalCaddyfile(t *testing.T) {
	for i, tc := range []struct {
		input   string
		want    Module
		wantErr bool
	}{
		{input: `postgres {env.DATABASE_URL}`, want: Module{DSN: "{env.DATABASE_URL}"}},
		{input: `postgres "postgres://u@db/x" {
			max_conns 16
			timeout 500ms
		}`, want: Module{DSN: "postgres://u@db/x", MaxConns: 16, Timeout: caddy.Duration(500 * time.Millisecond)}},
		{input: `postgres`, wantErr: true},
		{input: `postgres a b`, wantErr: true},
		{input: `postgres a { max_conns 0 }`, wantErr: true},
		{input: `postgres a { max_conns x }`, wantErr: true},
		{input: `postgres a { timeout -1s }`, wantErr: true},
		{input: `postgres a { timeout 1s 2s }`, wantErr: true},
		{input: `postgres a { nonsense 1 }`, wantErr: true},
	} {
		var m Module
		err := m.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
		if tc.wantErr {
			if err == nil {
				t.Errorf("test %d: no error for %q", i, tc.input)
			}
			continue
		}
		if err != nil {
			t.Errorf("test %d: %v", i, err)
			continue
		}
		if m != tc.want {
			t.Errorf("test %d: got %+v, want %+v", i, m, tc.want)
		}
	}
}
