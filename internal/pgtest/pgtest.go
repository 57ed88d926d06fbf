// Package pgtest is test support for tests that need PostgreSQL: where the
// test database is, and a schema of each test's own in it, so that tests
// running at once never see each other's tables.
//
// The database comes from LICENSE_API_TEST_POSTGRES (a postgres:// URL).
// Without it a test is skipped, with a message saying how to run it, except
// when CI is true: CI must test PostgreSQL, so there it fails instead.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DSN returns the test database's URL, skipping or failing the test when
// there is none.
func DSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("LICENSE_API_TEST_POSTGRES")
	if dsn == "" {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatal("LICENSE_API_TEST_POSTGRES must be set in CI")
		}
		t.Skip("LICENSE_API_TEST_POSTGRES is not set; set it to a PostgreSQL URL such as " +
			"postgres://postgres@127.0.0.1:5432/test?sslmode=disable to run the PostgreSQL tests")
	}
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatal("LICENSE_API_TEST_POSTGRES must be a postgres:// URL")
	}
	return dsn
}

// Schema creates an empty schema named prefix_<random>, dropped when the
// test ends, and returns its name and the test database's URL with
// search_path set to it: a store opened on that URL creates its tables
// there.
func Schema(t testing.TB, prefix string) (name, dsn string) {
	t.Helper()
	base := DSN(t)
	b := make([]byte, 6)
	rand.Read(b)
	name = prefix + "_" + hex.EncodeToString(b)
	admin := func(sql string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := admin(`CREATE SCHEMA ` + name); err != nil {
		t.Fatalf("creating schema %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := admin(`DROP SCHEMA ` + name + ` CASCADE`); err != nil {
			t.Errorf("dropping schema %s: %v", name, err)
		}
	})
	u, _ := url.Parse(base)
	q := u.Query()
	q.Set("search_path", name) // pgx passes unknown settings on as run-time parameters
	u.RawQuery = q.Encode()
	return name, u.String()
}
