// Package postgres is the shared store of the license API: a PostgreSQL
// database that several Caddy nodes use at once, through pgx's connection
// pool.
//
// Writes (consumptions, activations, deactivations) are exact across nodes:
// each node queues them to a committer that applies all that are waiting in
// one transaction (group commit). That transaction first locks the license
// and license feature rows it changes, licenses first and each in ascending
// id order, so that batches of different nodes touching the same counter or
// license run one after the other and never deadlock each other. The rules
// are the consumption package's (Apply, ApplyLicense,
// License.ActivationAllowed), run in Go while the rows are locked.
//
// Every read and every write is bounded by Config.Timeout, so that an
// unreachable database turns into prompt errors (answered 503 by the
// handler) rather than hanging requests; the pool reconnects on its own once
// the database is back.
//
// Errors and log lines never quote the connection string, so they cannot
// leak its password.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/edgelicense/caddy-license-api/consumption"
	"github.com/edgelicense/caddy-license-api/store"
)

// DefaultTimeout bounds each store call when Config.Timeout is 0.
const DefaultTimeout = 2 * time.Second

// maxReadAttempts bounds how often a read is retried after finding its
// connection broken: once normally suffices, because the first broken
// connection resets the whole pool.
const maxReadAttempts = 3

// Config configures Open.
type Config struct {
	// DSN is the connection string, as a URL
	// (postgres://user:password@host:5432/db?sslmode=verify-full) or as
	// keyword/value pairs; libpq's PG* environment variables fill what it
	// leaves out. Required.
	DSN string
	// MaxConns bounds the connection pool; it overrides pool_max_conns in
	// the DSN. Default: 4 × GOMAXPROCS.
	MaxConns int32
	// MinConns is how many connections the pool keeps open while idle.
	// Default: 0.
	MinConns int32
	// Timeout bounds every read and write (queueing included), and each
	// attempt to connect unless the DSN sets connect_timeout. Default:
	// DefaultTimeout.
	Timeout time.Duration
	// Logger receives the store's warnings, such as a lost notification
	// connection. Default: none.
	Logger *zap.Logger
}

// Backend is a store.Backend over a PostgreSQL database. Several Backends,
// in one process or many, may share a database.
type Backend struct {
	pool    *pgxpool.Pool
	timeout time.Duration
	logger  *zap.Logger
	w       *committer

	// listenPing is how long a subscription's connection may stay silent
	// before it is pinged; tests shorten it.
	listenPing time.Duration

	// Subscribers run until their own context ends or Close cancels stop.
	// subMu orders Subscribe's subs.Go before Close's subs.Wait.
	stop     context.Context
	stopSubs context.CancelFunc
	subMu    sync.Mutex
	closing  bool
	subs     sync.WaitGroup
}

var (
	_ store.Backend    = (*Backend)(nil)
	_ store.ChangeFeed = (*Backend)(nil)
)

// errBadDSN replaces pgx's parse errors, which quote the connection string
// with the password masked only on a best-effort basis.
var errBadDSN = errors.New("postgres store: the dsn is not a valid PostgreSQL connection string (URL or keyword=value pairs)")

// Open connects to the database and brings its schema up to date. ctx bounds
// the schema migration, which may wait for another node's.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	pc, err := parseConfig(cfg)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	b := &Backend{pool: pool, timeout: cfg.Timeout, logger: cfg.Logger, listenPing: defaultListenPing}
	if err := migrate(ctx, pool, b.logger); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres store: migrating the schema: %w", err)
	}
	b.stop, b.stopSubs = context.WithCancel(context.Background())
	b.w = newCommitter(pool, b.logger)
	return b, nil
}

// parseConfig turns cfg, its defaults applied, into a pool configuration.
func parseConfig(cfg Config) (*pgxpool.Config, error) {
	if cfg.DSN == "" {
		return nil, errors.New("postgres store: the dsn is empty")
	}
	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, errBadDSN
	}
	pc.MaxConns = cfg.MaxConns
	if pc.MaxConns <= 0 {
		pc.MaxConns = int32(4 * runtime.GOMAXPROCS(0))
	}
	pc.MinConns = min(cfg.MinConns, pc.MaxConns)
	// A connection that takes longer than a call may wait is of no use to
	// the call that asked for it, and without a bound a connection attempt
	// into a black hole would hold a pool slot for minutes.
	if pc.ConnConfig.ConnectTimeout == 0 {
		pc.ConnConfig.ConnectTimeout = cfg.Timeout
	}
	// A node cut off in the middle of a batch leaves its transaction open
	// on the server, holding counter locks that every other node waits for,
	// until TCP gives up on it (hours by default). A write batch is never
	// idle between statements for longer than a round trip, so the server
	// may end one that is idle for a whole Timeout. (Imports, which hash
	// passwords between statements, allow themselves longer.)
	const idleTx = "idle_in_transaction_session_timeout"
	if _, set := pc.ConnConfig.RuntimeParams[idleTx]; !set {
		pc.ConnConfig.RuntimeParams[idleTx] = strconv.FormatInt(max(cfg.Timeout.Milliseconds(), 1), 10)
	}
	return pc, nil
}

// WriteStats implements store.Backend. Syncs stay 0: PostgreSQL flushes its
// own write-ahead log.
func (b *Backend) WriteStats() store.WriteStats { return b.w.stats.Stats() }

// Close finishes the writes already queued, stops the subscribers and closes
// the pool.
func (b *Backend) Close() error {
	b.w.close()
	b.subMu.Lock()
	b.closing = true
	b.subMu.Unlock()
	b.stopSubs()
	b.subs.Wait()
	b.pool.Close()
	return nil
}

// do runs one idempotent call (a read, a notification) under the store's
// timeout. A connection that broke while idle (the database restarted, or the
// network dropped it) fails the first query sent on it; such calls are safe
// to repeat, so the call is retried on a fresh connection.
func (b *Backend) do(ctx context.Context, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if attempt < maxReadAttempts && ctx.Err() == nil && b.connLost(err) {
			continue
		}
		return fmt.Errorf("postgres store: %w", err)
	}
}

// connLost reports whether err says the connection it came from is gone,
// and if so resets the pool: whatever broke that connection (a restart, a
// network cut) broke the idle ones too, and handing those out one by one
// would fail one request each.
func (b *Backend) connLost(err error) bool {
	if !connectionLost(err) {
		return false
	}
	b.pool.Reset()
	return true
}

// connectionLost reports whether err ended an established connection: the
// socket failed or the server went away under it. A failure to connect is not
// one (retrying at once would fail again), nor is the caller's deadline.
func connectionLost(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08 is "connection exception"; 57P01..57P03 are the
		// server shutting down or restarting under the connection.
		return strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03"
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) || pgconn.Timeout(err) {
		return false
	}
	var netErr net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, pgconn.ErrConnClosed) ||
		(errors.As(err, &netErr) && !netErr.Timeout())
}

// queryRow reads one row; found is false, with a nil error, when there is none.
func (b *Backend) queryRow(ctx context.Context, scan func(pgx.Row) error, sql string, args ...any) (found bool, err error) {
	err = b.do(ctx, func(ctx context.Context) error {
		err := scan(b.pool.QueryRow(ctx, sql, args...))
		found = err == nil
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	return found, err
}

const (
	sqlProduct       = `SELECT id, short_code, name, authorization_method FROM products WHERE short_code = $1`
	sqlLicenseByKey  = `SELECT ` + licenseColumns + ` FROM licenses l WHERE l.product_id = $1 AND l.license_key = $2`
	sqlLicenseByID   = `SELECT ` + licenseColumns + ` FROM licenses l WHERE l.id = $1`
	sqlLicensesByUsr = `SELECT ` + licenseColumns + ` FROM license_users u JOIN licenses l ON l.id = u.license_id
		WHERE u.username = $1 AND l.product_id = $2 ORDER BY l.id`
	sqlPassword = `SELECT password_hash FROM license_users WHERE license_id = $1 AND username = $2`
	// sqlLicenseState and sqlFeatureStates are LicenseStatus's reads.
	sqlLicenseState = `SELECT (SELECT count(*) FROM devices WHERE license_id = l.id AND active),
			COALESCE((SELECT id FROM devices WHERE license_id = l.id AND hardware_id = $2 AND active), 0),
			l.total_consumptions, l.period_start
		FROM licenses l WHERE l.id = $1`
	sqlFeatureStates = `SELECT ` + featureColumns + `, total_consumptions, period_start FROM license_features
		WHERE license_id = $1 ORDER BY id`
	// sqlBundleFeatures and sqlBundleDevices are LicenseBundle's reads
	// besides sqlLicenseByID; COLLATE "C" sorts in byte order, the order
	// store.LicenseBundle promises, whatever the database's collation.
	// LicenseBundleByKey reads the same by key, in the same round trip as
	// sqlLicenseByKey.
	sqlBundleFeatures = `SELECT ` + featureColumns + ` FROM license_features
		WHERE license_id = $1 ORDER BY code COLLATE "C"`
	sqlBundleDevices = `SELECT id, license_id, hardware_id, active FROM devices
		WHERE license_id = $1 ORDER BY hardware_id COLLATE "C"`
	sqlKeyID             = `(SELECT id FROM licenses WHERE product_id = $1 AND license_key = $2)`
	sqlKeyBundleFeatures = `SELECT ` + featureColumns + ` FROM license_features
		WHERE license_id = ` + sqlKeyID + ` ORDER BY code COLLATE "C"`
	sqlKeyBundleDevices = `SELECT id, license_id, hardware_id, active FROM devices
		WHERE license_id = ` + sqlKeyID + ` ORDER BY hardware_id COLLATE "C"`
	// sqlLicensePage, sqlPageFeatures and sqlPageDevices are
	// LicenseBundles' reads.
	sqlLicensePage  = `SELECT ` + licenseColumns + ` FROM licenses l WHERE l.id > $1 ORDER BY l.id LIMIT $2`
	sqlPageFeatures = `SELECT ` + featureColumns + ` FROM license_features
		WHERE license_id BETWEEN $1 AND $2 ORDER BY license_id, code COLLATE "C"`
	sqlPageDevices = `SELECT id, license_id, hardware_id, active FROM devices
		WHERE license_id BETWEEN $1 AND $2 ORDER BY license_id, hardware_id COLLATE "C"`
	sqlBlacklist = `SELECT hardware_id FROM blacklist WHERE product_id IN (0, $1)`
)

// Product implements consumption.Definitions.
func (b *Backend) Product(ctx context.Context, shortCode string) (consumption.Product, bool, error) {
	var p consumption.Product
	found, err := b.queryRow(ctx, func(r pgx.Row) error {
		var method string
		err := r.Scan(&p.ID, &p.ShortCode, &p.Name, &method)
		p.AuthMethod, _ = consumption.ParseAuthMethod(method)
		return err
	}, sqlProduct, shortCode)
	return p, found, err
}

// LicensesByUser implements consumption.Definitions.
func (b *Backend) LicensesByUser(ctx context.Context, productID int64, username string) ([]consumption.License, error) {
	var out []consumption.License
	err := b.do(ctx, func(ctx context.Context) error {
		rows, err := b.pool.Query(ctx, sqlLicensesByUsr, username, productID)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (consumption.License, error) { return scanLicense(r) })
		return err
	})
	return out, err
}

// PasswordHash implements consumption.Definitions.
func (b *Backend) PasswordHash(ctx context.Context, licenseID int64, username string) (string, error) {
	var hash string
	_, err := b.queryRow(ctx, func(r pgx.Row) error { return r.Scan(&hash) }, sqlPassword, licenseID, username)
	return hash, err
}

// LicenseStatus implements consumption.Recorder. Its two queries share one
// round trip but not one snapshot; each is current, which is what a status
// answer needs.
func (b *Backend) LicenseStatus(ctx context.Context, licenseID int64, hardwareID string) (consumption.LicenseStatus, error) {
	var st consumption.LicenseStatus
	err := b.do(ctx, func(ctx context.Context) error {
		st = consumption.LicenseStatus{}
		var q pgx.Batch
		q.Queue(sqlLicenseState, licenseID, hardwareID).QueryRow(func(r pgx.Row) error {
			return r.Scan(&st.TimesActivated, &st.DeviceID, &st.Counter.Total, &st.Counter.PeriodStart)
		})
		q.Queue(sqlFeatureStates, licenseID).Query(func(rows pgx.Rows) error {
			var err error
			st.Features, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (consumption.FeatureState, error) {
				var f consumption.FeatureState
				err := scanFeature(r, &f.LicenseFeature, &f.Counter.Total, &f.Counter.PeriodStart)
				return f, err
			})
			return err
		})
		err := b.pool.SendBatch(ctx, &q).Close()
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("license %d not found", licenseID)
		}
		return err
	})
	return st, err
}

// LicenseBundle implements store.Source. Its three queries share one round
// trip but not one snapshot; the Cache drops a bundle that a change may
// have overtaken.
func (b *Backend) LicenseBundle(ctx context.Context, licenseID int64) (store.LicenseBundle, bool, error) {
	return b.bundle(ctx, [3]string{sqlLicenseByID, sqlBundleFeatures, sqlBundleDevices}, licenseID)
}

// LicenseBundleByKey implements store.Source, in one round trip like
// LicenseBundle.
func (b *Backend) LicenseBundleByKey(ctx context.Context, productID int64, key string) (store.LicenseBundle, bool, error) {
	return b.bundle(ctx, [3]string{sqlLicenseByKey, sqlKeyBundleFeatures, sqlKeyBundleDevices}, productID, key)
}

// bundle reads a license, its features and its devices with the three
// queries q, which take the same args, in one round trip.
func (b *Backend) bundle(ctx context.Context, q [3]string, args ...any) (store.LicenseBundle, bool, error) {
	var lb store.LicenseBundle
	found := false
	err := b.do(ctx, func(ctx context.Context) error {
		lb, found = store.LicenseBundle{}, false
		var batch pgx.Batch
		batch.Queue(q[0], args...).QueryRow(func(r pgx.Row) error {
			var err error
			lb.License, err = scanLicense(r)
			found = err == nil
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			return err
		})
		batch.Queue(q[1], args...).Query(func(rows pgx.Rows) error {
			var err error
			lb.Features, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (consumption.LicenseFeature, error) {
				var f consumption.LicenseFeature
				err := scanFeature(r, &f)
				return f, err
			})
			return err
		})
		batch.Queue(q[2], args...).Query(func(rows pgx.Rows) error {
			var err error
			lb.Devices, err = pgx.CollectRows(rows, scanDevice)
			return err
		})
		return b.pool.SendBatch(ctx, &batch).Close()
	})
	if err != nil || !found {
		return store.LicenseBundle{}, false, err
	}
	return lb, true, nil
}

// scanDevice reads id, license_id, hardware_id, active.
func scanDevice(r pgx.CollectableRow) (consumption.Device, error) {
	var d consumption.Device
	err := r.Scan(&d.ID, &d.LicenseID, &d.HardwareID, &d.Active)
	return d, err
}

// LicenseBundles implements store.Source. The page's features and devices
// are read in a second round trip, once the page's id range is known.
func (b *Backend) LicenseBundles(ctx context.Context, afterID int64, limit int) ([]store.LicenseBundle, error) {
	var out []store.LicenseBundle
	err := b.do(ctx, func(ctx context.Context) error {
		rows, err := b.pool.Query(ctx, sqlLicensePage, afterID, limit)
		if err != nil {
			return err
		}
		lics, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (consumption.License, error) { return scanLicense(r) })
		if err != nil || len(lics) == 0 {
			out = nil
			return err
		}
		first, last := lics[0].ID, lics[len(lics)-1].ID
		var features []consumption.LicenseFeature
		var devices []consumption.Device
		var q pgx.Batch
		q.Queue(sqlPageFeatures, first, last).Query(func(rows pgx.Rows) error {
			var err error
			features, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (consumption.LicenseFeature, error) {
				var f consumption.LicenseFeature
				err := scanFeature(r, &f)
				return f, err
			})
			return err
		})
		q.Queue(sqlPageDevices, first, last).Query(func(rows pgx.Rows) error {
			var err error
			devices, err = pgx.CollectRows(rows, scanDevice)
			return err
		})
		if err := b.pool.SendBatch(ctx, &q).Close(); err != nil {
			return err
		}
		out = store.GroupBundles(lics, features, devices)
		return nil
	})
	return out, err
}

// Blacklist implements store.Source.
func (b *Backend) Blacklist(ctx context.Context, productID int64) ([]string, error) {
	var out []string
	err := b.do(ctx, func(ctx context.Context) error {
		rows, err := b.pool.Query(ctx, sqlBlacklist, productID)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	return out, err
}

// scanLicense reads licenseColumns, and then any extra destinations.
func scanLicense(r pgx.Row, extra ...any) (consumption.License, error) {
	var l consumption.License
	var validity pgtype.Timestamptz
	var typ, period string
	c := &l.Consumption
	dest := append([]any{&l.ID, &l.ProductID, &l.Key, &l.Enabled, &l.Active, &validity,
		&typ, &l.IsTrial, &l.MaxActivations, &l.AllowUnlimitedActivations, &l.Customer, &l.Metadata,
		&c.MaxConsumption, &c.AllowUnlimited, &c.AllowOverages, &c.MaxOverages, &c.AllowNegative,
		&c.ResetConsumption, &period}, extra...)
	if err := r.Scan(dest...); err != nil {
		return l, err
	}
	l.ValidityPeriod = fromTimestamptz(validity)
	l.Type = consumption.LicenseType(typ)
	c.Period = consumption.Period(period)
	return l, nil
}

// scanFeature reads featureColumns, and then any extra destinations.
func scanFeature(r pgx.Row, f *consumption.LicenseFeature, extra ...any) error {
	var expiry pgtype.Timestamptz
	var typ, period string
	dest := append([]any{&f.ID, &f.LicenseID, &f.Code, &f.Name, &typ, &expiry,
		&f.MaxConsumption, &f.AllowUnlimited, &f.AllowOverages, &f.MaxOverages, &f.AllowNegative,
		&f.ResetConsumption, &period, &f.IsFloating, &f.IsFloatingCloud}, extra...)
	if err := r.Scan(dest...); err != nil {
		return err
	}
	f.Type = consumption.FeatureType(typ)
	f.Period = consumption.Period(period)
	f.ExpiryDate = fromTimestamptz(expiry)
	return nil
}

// fromTimestamptz maps NULL ("never") to the zero time, and times to UTC as
// the seed parser gives them.
func fromTimestamptz(t pgtype.Timestamptz) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

// toTimestamptz maps the zero time ("never") to NULL.
func toTimestamptz(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}
