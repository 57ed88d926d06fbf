// Package sqlite is the embedded store of the license API: one SQLite file in
// WAL mode, through the pure-Go modernc.org/sqlite driver so that an xcaddy
// build needs no C compiler.
//
// Reads go through a pool of connections that WAL lets run beside the single
// writer. Every write goes through one connection: consumptions are queued to
// a committer that applies all that are waiting in one transaction (group
// commit), so durability costs one fsync per batch rather than per request,
// and that fsync runs beside the next batch rather than before it.
// The committer decides on its own copy of the counter rows, so a batch reads
// a hot counter at most once and writes it once, whatever number of its
// consumptions the batch holds.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"runtime"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/edgelicense/caddy-license-api/consumption"
	"github.com/edgelicense/caddy-license-api/store"
)

// Backend is a store.Backend over one SQLite database file.
type Backend struct {
	read  *sql.DB
	write *sql.DB
	stmts readStmts
	w     *committer

	closeOnce sync.Once
	closeErr  error
}

var _ store.Backend = (*Backend)(nil)

// Open opens (creating if needed) the database at path.
func Open(path string) (*Backend, error) {
	// synchronous(NORMAL) commits without flushing the write-ahead log:
	// the committer flushes it itself, and answers a write only after
	// that (see committer). SQLite still syncs around checkpoints.
	// busy_timeout covers a second process, or the previous configuration
	// during a reload, holding the write lock for a moment.
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Set("_txlock", "immediate")
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	// The writer reads the definition and the counter of every license
	// feature in use and rewrites the counter; 8 MB of page cache holds
	// both for some 130,000 licenses of one feature (100,000 take 4.9 MB of
	// definitions and 1 MB of counters), and a page it lacks is one read
	// from the OS's cache.
	// SQLite's default (2 MB) made the committer read pages back at
	// every batch with 100,000 licenses; more only adds to the resident
	// set (32 MB cost 40 MB of RSS in licensebench, for no throughput).
	// Readers are served by the definitions cache and keep the default.
	wq := url.Values{"_pragma": {"cache_size(-8192)"}}
	write, err := sql.Open("sqlite", dsn+"&"+wq.Encode())
	if err != nil {
		return nil, err
	}
	// One writer: SQLite serialises writers anyway, and one connection lets
	// the committer keep its statements prepared.
	write.SetMaxOpenConns(1)
	write.SetConnMaxIdleTime(0)
	write.SetConnMaxLifetime(0)
	if err := createSchema(write); err != nil {
		write.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	read, err := sql.Open("sqlite", dsn)
	if err != nil {
		write.Close()
		return nil, err
	}
	read.SetMaxOpenConns(2 * runtime.GOMAXPROCS(0))
	read.SetMaxIdleConns(2 * runtime.GOMAXPROCS(0))
	b := &Backend{read: read, write: write}
	if err := b.stmts.prepare(read); err != nil {
		b.closeDBs()
		return nil, err
	}
	if b.w, err = newCommitter(write, &walFile{path: path + "-wal"}); err != nil {
		b.closeDBs()
		return nil, err
	}
	return b, nil
}

// walFile is the write-ahead log as the committer syncs it: kept open
// between syncs, since opening it for each cost a third as much CPU as the
// fsync itself.
type walFile struct {
	path string
	f    *os.File
}

// sync flushes the write-ahead log to disk. SQLite deletes the log when its
// last connection closes (after checkpointing it into the database and
// syncing that) and makes a new one at the next write, so a file found
// unlinked is opened again by name; one that does not exist has nothing to
// flush.
func (w *walFile) sync() error {
	if w.f != nil && !linked(w.f) {
		w.f.Close()
		w.f = nil
	}
	if w.f == nil {
		f, err := os.OpenFile(w.path, os.O_RDWR, 0) // Windows flushes only files open for writing
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		w.f = f
	}
	return w.f.Sync()
}

// close releases the file.
func (w *walFile) close() error {
	if w.f == nil {
		return nil
	}
	return w.f.Close()
}

// createSchema creates the tables in a new database and refuses one made by
// another schema version.
func createSchema(db *sql.DB) error {
	var version int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
		return err
	}
	var tables int
	if err := db.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'`).Scan(&tables); err != nil {
		return err
	}
	switch {
	case version > 0 && version < schemaVersion:
		return migrate(db, version)
	case version == schemaVersion:
		return nil
	case version == 0 && tables == 0:
		if _, err := db.Exec(schema); err != nil {
			return fmt.Errorf("creating schema: %w", err)
		}
		_, err := db.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion))
		return err
	case version == 0:
		return errors.New("database was made by a development build before schema versions; move it away and restart to create a new one")
	}
	return fmt.Errorf("database has schema version %d, this build knows %d", version, schemaVersion)
}

// migrate brings the schema from version to schemaVersion in one
// transaction.
func migrate(db *sql.DB, version int) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for v := version; v < schemaVersion; v++ {
		if _, err := tx.Exec(migrations[v]); err != nil {
			return fmt.Errorf("migrating schema version %d to %d: %w", v, v+1, err)
		}
	}
	if _, err := tx.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)); err != nil {
		return err
	}
	return tx.Commit()
}

// WriteStats implements store.Backend.
func (b *Backend) WriteStats() store.WriteStats { return b.w.stats.Stats() }

// Close finishes queued consumptions, then closes the database.
// Closing again returns the first Close's result.
func (b *Backend) Close() error {
	b.closeOnce.Do(func() {
		b.w.close()
		b.closeErr = b.closeDBs()
	})
	return b.closeErr
}

func (b *Backend) closeDBs() error {
	return errors.Join(b.read.Close(), b.write.Close())
}

type readStmts struct {
	product, licenseByKey, licenseByID, licensesByUser, password *sql.Stmt
	// LicenseBundle, LicenseBundles and Blacklist
	bundleFeatures, bundleDevices, licensePage, pageFeatures, pageDevices, blacklist *sql.Stmt
	// LicenseStatus
	activeDevices, deviceID, licenseCounter, features *sql.Stmt
}

func (s *readStmts) prepare(db *sql.DB) error {
	for _, p := range []struct {
		dst **sql.Stmt
		q   string
	}{
		{&s.product, `SELECT id, short_code, name, authorization_method FROM products WHERE short_code = ?`},
		{&s.licenseByKey, `SELECT ` + licenseColumns + ` FROM licenses l WHERE l.product_id = ? AND l.license_key = ?`},
		{&s.licenseByID, `SELECT ` + licenseColumns + ` FROM licenses l WHERE l.id = ?`},
		{&s.licensesByUser, `SELECT ` + licenseColumns + ` FROM license_users u JOIN licenses l ON l.id = u.license_id
			WHERE u.username = ? AND l.product_id = ? ORDER BY l.id`},
		{&s.password, `SELECT password_hash FROM license_users WHERE license_id = ? AND username = ?`},
		{&s.activeDevices, `SELECT COUNT(*) FROM devices WHERE license_id = ? AND active = 1`},
		{&s.deviceID, `SELECT id FROM devices WHERE license_id = ? AND hardware_id = ? AND active = 1`},
		{&s.licenseCounter, `SELECT total, period_start FROM license_counters WHERE id = ?`},
		{&s.features, `SELECT ` + featureColumns + `, total, period_start
			FROM license_features JOIN feature_counters USING (id) WHERE license_id = ? ORDER BY id`},
		// TEXT compares in byte order (SQLite's BINARY collation), the
		// order store.LicenseBundle promises.
		{&s.bundleFeatures, `SELECT ` + featureColumns + ` FROM license_features WHERE license_id = ? ORDER BY code`},
		{&s.bundleDevices, `SELECT id, hardware_id, active FROM devices WHERE license_id = ? ORDER BY hardware_id`},
		{&s.licensePage, `SELECT ` + licenseColumns + ` FROM licenses l WHERE l.id > ? ORDER BY l.id LIMIT ?`},
		{&s.pageFeatures, `SELECT ` + featureColumns + ` FROM license_features
			WHERE license_id BETWEEN ? AND ? ORDER BY license_id, code`},
		{&s.pageDevices, `SELECT id, license_id, hardware_id, active FROM devices
			WHERE license_id BETWEEN ? AND ? ORDER BY license_id, hardware_id`},
		{&s.blacklist, `SELECT hardware_id FROM blacklist WHERE product_id IN (0, ?)`},
	} {
		st, err := db.Prepare(p.q)
		if err != nil {
			return fmt.Errorf("preparing %q: %w", p.q, err)
		}
		*p.dst = st
	}
	return nil
}

// Product implements consumption.Definitions.
func (b *Backend) Product(ctx context.Context, shortCode string) (consumption.Product, bool, error) {
	var p consumption.Product
	var method string
	err := b.stmts.product.QueryRowContext(ctx, shortCode).Scan(&p.ID, &p.ShortCode, &p.Name, &method)
	if errors.Is(err, sql.ErrNoRows) {
		return p, false, nil
	}
	p.AuthMethod, _ = consumption.ParseAuthMethod(method)
	return p, err == nil, err
}

// licenseByKey reads the product's license with the key.
func (b *Backend) licenseByKey(ctx context.Context, productID int64, key string) (consumption.License, bool, error) {
	l, err := scanLicense(b.stmts.licenseByKey.QueryRowContext(ctx, productID, key))
	if errors.Is(err, sql.ErrNoRows) {
		return l, false, nil
	}
	return l, err == nil, err
}

// licenseByID reads a license by its id.
func (b *Backend) licenseByID(ctx context.Context, id int64) (consumption.License, bool, error) {
	l, err := scanLicense(b.stmts.licenseByID.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return l, false, nil
	}
	return l, err == nil, err
}

// LicensesByUser implements consumption.Definitions.
func (b *Backend) LicensesByUser(ctx context.Context, productID int64, username string) ([]consumption.License, error) {
	return queryAll(ctx, b.stmts.licensesByUser, func(s scanner) (consumption.License, error) { return scanLicense(s) },
		username, productID)
}

// PasswordHash implements consumption.Definitions.
func (b *Backend) PasswordHash(ctx context.Context, licenseID int64, username string) (string, error) {
	var hash string
	err := b.stmts.password.QueryRowContext(ctx, licenseID, username).Scan(&hash)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return hash, err
}

// LicenseStatus implements consumption.Recorder. Its reads are not one
// snapshot; each is current, which is what a status answer needs.
func (b *Backend) LicenseStatus(ctx context.Context, licenseID int64, hardwareID string) (consumption.LicenseStatus, error) {
	var st consumption.LicenseStatus
	if err := b.stmts.activeDevices.QueryRowContext(ctx, licenseID).Scan(&st.TimesActivated); err != nil {
		return st, err
	}
	if err := b.stmts.deviceID.QueryRowContext(ctx, licenseID, hardwareID).Scan(&st.DeviceID); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return st, err
	}
	if err := b.stmts.licenseCounter.QueryRowContext(ctx, licenseID).Scan(&st.Counter.Total, &st.Counter.PeriodStart); err != nil {
		return st, err
	}
	rows, err := b.stmts.features.QueryContext(ctx, licenseID)
	if err != nil {
		return st, err
	}
	defer rows.Close()
	for rows.Next() {
		var f consumption.FeatureState
		if err := scanFeature(rows, &f.LicenseFeature, &f.Counter.Total, &f.Counter.PeriodStart); err != nil {
			return st, err
		}
		st.Features = append(st.Features, f)
	}
	return st, rows.Err()
}

// LicenseBundle implements store.Source. Its three reads are not one
// snapshot; the Cache drops a bundle that a change may have overtaken.
func (b *Backend) LicenseBundle(ctx context.Context, licenseID int64) (store.LicenseBundle, bool, error) {
	l, ok, err := b.licenseByID(ctx, licenseID)
	if err != nil || !ok {
		return store.LicenseBundle{}, false, err
	}
	return b.bundle(ctx, l)
}

// LicenseBundleByKey implements store.Source, with LicenseBundle's caveat.
func (b *Backend) LicenseBundleByKey(ctx context.Context, productID int64, key string) (store.LicenseBundle, bool, error) {
	l, ok, err := b.licenseByKey(ctx, productID, key)
	if err != nil || !ok {
		return store.LicenseBundle{}, false, err
	}
	return b.bundle(ctx, l)
}

// bundle reads the features and devices of license l.
func (b *Backend) bundle(ctx context.Context, l consumption.License) (store.LicenseBundle, bool, error) {
	lb := store.LicenseBundle{License: l}
	var err error
	lb.Features, err = queryAll(ctx, b.stmts.bundleFeatures, func(s scanner) (consumption.LicenseFeature, error) {
		var f consumption.LicenseFeature
		err := scanFeature(s, &f)
		return f, err
	}, l.ID)
	if err != nil {
		return store.LicenseBundle{}, false, err
	}
	lb.Devices, err = queryAll(ctx, b.stmts.bundleDevices, func(s scanner) (consumption.Device, error) {
		d := consumption.Device{LicenseID: l.ID}
		err := s.Scan(&d.ID, &d.HardwareID, &d.Active)
		return d, err
	}, l.ID)
	if err != nil {
		return store.LicenseBundle{}, false, err
	}
	return lb, true, nil
}

// LicenseBundles implements store.Source. Its three reads are not one
// snapshot either.
func (b *Backend) LicenseBundles(ctx context.Context, afterID int64, limit int) ([]store.LicenseBundle, error) {
	lics, err := queryAll(ctx, b.stmts.licensePage, func(s scanner) (consumption.License, error) { return scanLicense(s) }, afterID, limit)
	if err != nil || len(lics) == 0 {
		return nil, err
	}
	first, last := lics[0].ID, lics[len(lics)-1].ID
	features, err := queryAll(ctx, b.stmts.pageFeatures, func(s scanner) (consumption.LicenseFeature, error) {
		var f consumption.LicenseFeature
		err := scanFeature(s, &f)
		return f, err
	}, first, last)
	if err != nil {
		return nil, err
	}
	devices, err := queryAll(ctx, b.stmts.pageDevices, func(s scanner) (consumption.Device, error) {
		var d consumption.Device
		err := s.Scan(&d.ID, &d.LicenseID, &d.HardwareID, &d.Active)
		return d, err
	}, first, last)
	if err != nil {
		return nil, err
	}
	return store.GroupBundles(lics, features, devices), nil
}

// Blacklist implements store.Source.
func (b *Backend) Blacklist(ctx context.Context, productID int64) ([]string, error) {
	return queryAll(ctx, b.stmts.blacklist, func(s scanner) (string, error) {
		var hw string
		err := s.Scan(&hw)
		return hw, err
	}, productID)
}

// queryAll runs a read statement and returns its rows, each read by scan.
func queryAll[T any](ctx context.Context, st *sql.Stmt, scan func(scanner) (T, error), args ...any) ([]T, error) {
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

type scanner interface{ Scan(dest ...any) error }

// scanLicense reads licenseColumns, and then any extra destinations.
func scanLicense(s scanner, extra ...any) (consumption.License, error) {
	var l consumption.License
	var validity sql.NullInt64
	var typ, period string
	c := &l.Consumption
	dest := append([]any{&l.ID, &l.ProductID, &l.Key, &l.Enabled, &l.Active, &validity,
		&typ, &l.IsTrial, &l.MaxActivations, &l.AllowUnlimitedActivations, &l.Customer, &l.Metadata,
		&c.MaxConsumption, &c.AllowUnlimited, &c.AllowOverages, &c.MaxOverages, &c.AllowNegative,
		&c.ResetConsumption, &period}, extra...)
	err := s.Scan(dest...)
	if err != nil {
		return l, err
	}
	l.ValidityPeriod = fromMillis(validity)
	l.Type = consumption.LicenseType(typ)
	c.Period = consumption.Period(period)
	return l, nil
}

// scanFeature reads featureColumns, and then any extra destinations.
func scanFeature(s scanner, f *consumption.LicenseFeature, extra ...any) error {
	var expiry sql.NullInt64
	var typ, period string
	dest := append([]any{&f.ID, &f.LicenseID, &f.Code, &f.Name, &typ, &expiry,
		&f.MaxConsumption, &f.AllowUnlimited, &f.AllowOverages, &f.MaxOverages, &f.AllowNegative,
		&f.ResetConsumption, &period, &f.IsFloating, &f.IsFloatingCloud}, extra...)
	if err := s.Scan(dest...); err != nil {
		return err
	}
	f.Type = consumption.FeatureType(typ)
	f.Period = consumption.Period(period)
	f.ExpiryDate = fromMillis(expiry)
	return nil
}

func fromMillis(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.UnixMilli(n.Int64).UTC()
}

func toMillis(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}
