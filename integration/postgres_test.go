package integration

import (
	"context"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edgelicense/caddy-license-api/internal/pgtest"
)

// pgSchema is a fresh PostgreSQL schema of the test database, dropped when
// the test ends (after the nodes started later have stopped).
type pgSchema struct {
	t    *testing.T
	name string
	// dsn reaches the test database with search_path set to the schema:
	// nodes given it create their tables there, apart from every other
	// test's.
	dsn  string
	pool *pgxpool.Pool
}

func newSchema(t *testing.T) *pgSchema {
	t.Helper()
	name, dsn := pgtest.Schema(t, "lit")
	s := &pgSchema{t: t, name: name, dsn: dsn}
	cfg, err := pgxpool.ParseConfig(s.dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 2
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if s.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.pool.Close)
	return s
}

// store is the Caddyfile store line for the schema, reached at addr
// (host:port; "" for the database's own) with password (none if "").
func (s *pgSchema) store(addr, password, block string) string {
	u, err := url.Parse(s.dsn)
	if err != nil {
		s.t.Fatal(err)
	}
	if addr != "" {
		u.Host = addr
	}
	if password != "" {
		u.User = url.UserPassword(u.User.Username(), password)
	}
	line := `store postgres "` + u.String() + `"`
	if block != "" {
		line += " {\n\t\t\t" + block + "\n\t\t}"
	}
	return line
}

// addr is the host:port of the database.
func (s *pgSchema) addr() string {
	u, err := url.Parse(s.dsn)
	if err != nil {
		s.t.Fatal(err)
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), "5432")
	}
	return u.Host
}

func (s *pgSchema) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

// exec runs a statement in the schema.
func (s *pgSchema) exec(sql string, args ...any) {
	s.t.Helper()
	ctx, cancel := s.ctx()
	defer cancel()
	if _, err := s.pool.Exec(ctx, sql, args...); err != nil {
		s.t.Fatalf("%s: %v", sql, err)
	}
}

// int returns the single integer a query gives (0 for no row or NULL).
func (s *pgSchema) int(sql string, args ...any) int64 {
	s.t.Helper()
	ctx, cancel := s.ctx()
	defer cancel()
	var v *int64
	if err := s.pool.QueryRow(ctx, sql, args...).Scan(&v); err != nil && err != pgx.ErrNoRows {
		s.t.Fatalf("%s: %v", sql, err)
	}
	if v == nil {
		return 0
	}
	return *v
}

// ints returns the first column of a query's rows.
func (s *pgSchema) ints(sql string, args ...any) []int64 {
	s.t.Helper()
	ctx, cancel := s.ctx()
	defer cancel()
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		s.t.Fatalf("%s: %v", sql, err)
	}
	v, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		s.t.Fatalf("%s: %v", sql, err)
	}
	return v
}

// counter is a license feature's total_consumptions.
func (s *pgSchema) counter(licenseFeatureID int64) int64 {
	s.t.Helper()
	return s.int(`SELECT total_consumptions FROM license_features WHERE id = $1`, licenseFeatureID)
}

// ledgerTotals are the totals of a license feature's ledger rows, in ledger
// order.
func (s *pgSchema) ledgerTotals(licenseFeatureID int64) []int64 {
	s.t.Helper()
	return s.ints(`SELECT total FROM consumption_ledger WHERE license_feature_id = $1 ORDER BY id`, licenseFeatureID)
}

// ledgerRow is a row of the consumption ledger.
type ledgerRow struct {
	total int64
	at    time.Time
}

// ledger returns a license feature's ledger rows, in ledger order.
func (s *pgSchema) ledger(licenseFeatureID int64) []ledgerRow {
	s.t.Helper()
	ctx, cancel := s.ctx()
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT total, at FROM consumption_ledger WHERE license_feature_id = $1 ORDER BY id`, licenseFeatureID)
	if err != nil {
		s.t.Fatal(err)
	}
	v, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ledgerRow, error) {
		var l ledgerRow
		err := r.Scan(&l.total, &l.at)
		return l, err
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return v
}
