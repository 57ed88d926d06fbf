package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/edgelicense/caddy-license-api/consumption"
	"github.com/edgelicense/caddy-license-api/store"
)

// maxBatch bounds how many writes share one transaction, so that one batch's
// latency stays small even under a flood.
const maxBatch = 256

// errClosed is returned for writes that arrive after Close.
var errClosed = errors.New("sqlite store is closed")

// op decides and writes one change inside a batch's transaction. It returns
// a refusal (a apierror.Error: nothing written for this op) or, as err, a
// failure that aborts the whole batch.
type op func(ctx context.Context, tx *writeTx) (refusal error, err error)

// pending is one queued write and its result.
type pending struct {
	ctx context.Context
	op  op
	// refusal is op's refusal, or the caller's context error when it gave
	// up before the write ran; set by the committer before decided or done
	// is closed, and not changed after.
	refusal error
	// decided, when not nil, is closed once the write's batch is
	// committed, before it is durable.
	decided chan struct{}
	// err is why the write's batch was not committed or not made durable;
	// set before done is closed.
	err  error
	done chan struct{}
}

// result is the write's result once done is closed.
func (p *pending) result() error {
	if p.err != nil {
		return p.err
	}
	return p.refusal
}

// committer owns the write connection. It takes every write waiting in its
// queue and commits them in one transaction, in arrival order; each caller
// is answered only after that transaction is durable (a consumption's
// caller learns its outcome at the commit, to prepare its answer during the
// sync: see decide). Batching needs no timer: writes that arrive while a
// commit is under way form the next batch.
//
// Durability is pipelined. The connection commits without waiting for the
// disk (synchronous=NORMAL), and syncLoop then syncs the write-ahead log
// and answers every batch committed before that sync began, while the
// committer goes on with the next batch. A commit is thus as durable as
// with synchronous=FULL before its callers hear of it, but the disk's
// flush no longer stalls the batches behind it, and one flush serves every
// batch committed while the previous one was under way.
type committer struct {
	db          *sql.DB
	stmts       [numWriteStmts]*sql.Stmt
	ledgerStmts [len(ledgerChunks)]*sql.Stmt

	// rows and dataVersion belong to the committer's goroutine; stale is
	// set by an import (see invalidate).
	rows        counterRows
	ledgerBuf   []any
	dataVersion int64
	conn        any // the driver connection dataVersion was read on
	stale       atomic.Bool

	mu     sync.RWMutex // held for reading while enqueueing, so close can't race a send
	closed bool
	queue  chan *pending
	quit   chan struct{}
	exited chan struct{}

	// committed carries committed batches to syncLoop; wal makes them
	// durable. fault is the error of a failed sync, after which every write
	// fails: what the disk kept of the batches since is unknown (Linux may
	// even report a later sync as successful), so they can't be answered
	// as made, nor a later one decided on counters that may be lost.
	committed chan []*pending
	syncMu    sync.Mutex // syncLoop and Import sync wal
	wal       syncer
	fault     atomic.Pointer[error]

	// syncing is true while syncLoop syncs, and synced gets a token each
	// time it is done: a batch begun while a sync is under way takes in
	// the writes that arrive until it ends (see extend).
	syncing atomic.Bool
	synced  chan struct{}
	stats   store.WriteCounters
}

// maxUnsynced bounds how many committed batches may wait for syncLoop;
// the committer waits when that many do.
const maxUnsynced = 64

// The write statements, prepared once on the write connection.
const (
	readFeatureRow = iota
	updateFeatureCounter
	readLicenseRow
	readLicenseCounter
	updateLicenseCounter
	readDevice
	countActiveDevices
	upsertActiveDevice
	markLicenseActive
	deactivateDevice
	readDataVersion
	numWriteStmts
)

var writeQueries = [numWriteStmts]string{
	readFeatureRow: `SELECT ` + featureColumns + `, total, period_start
		FROM license_features JOIN feature_counters USING (id) WHERE id = ?`,
	// The guards on the old values and the settings decided with make each
	// counter write a compare-and-set: should the committer's copy of a row
	// ever differ from the database, the batch fails instead of granting
	// against a stale limit.
	updateFeatureCounter: `UPDATE feature_counters SET total = ?, period_start = ?
		WHERE id = ? AND total = ? AND period_start = ?
		AND EXISTS (SELECT 1 FROM license_features WHERE id = ?3` + settingsGuard + `)`,
	readLicenseRow: `SELECT ` + licenseColumns + ` FROM licenses l WHERE l.id = ?`,
	readLicenseCounter: `SELECT max_consumption, allow_unlimited, allow_overages, max_overages, allow_negative,
		reset_consumption, consumption_period, total, period_start
		FROM licenses JOIN license_counters USING (id) WHERE id = ?`,
	updateLicenseCounter: `UPDATE license_counters SET total = ?, period_start = ?
		WHERE id = ? AND total = ? AND period_start = ?
		AND EXISTS (SELECT 1 FROM licenses WHERE id = ?3` + settingsGuard + `)`,
	readDevice:         `SELECT id, active FROM devices WHERE license_id = ? AND hardware_id = ?`,
	countActiveDevices: `SELECT COUNT(*) FROM devices WHERE license_id = ? AND active = 1`,
	upsertActiveDevice: `INSERT INTO devices (license_id, hardware_id, active) VALUES (?, ?, 1)
		ON CONFLICT (license_id, hardware_id) DO UPDATE SET active = 1 RETURNING id`,
	markLicenseActive: `UPDATE licenses SET active = 1 WHERE id = ?`,
	deactivateDevice:  `UPDATE devices SET active = 0 WHERE license_id = ? AND hardware_id = ? AND active = 1`,
	readDataVersion:   `PRAGMA data_version`,
}

// The ledger is appended once per batch, by statements of ledgerChunks[i]
// rows each: one statement per row cost as much as the rest of a
// consumption's write.
var ledgerChunks = [...]int{32, 16, 8, 4, 2, 1}

// ledgerColumns is how many values one ledger row has in appendLedgerRows.
const ledgerColumns = 10

func appendLedgerRows(rows int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO consumption_ledger (at, license_id, license_feature_id, feature, hardware_id,
		requested, applied, total, api_key, event) VALUES `)
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
	}
	return b.String()
}

// settingsGuard compares the settings columns of the row a counter counts
// for (the same in licenses and license_features) with those of a
// consumption.Settings, in the order setCounter gives them.
const settingsGuard = ` AND max_consumption = ? AND allow_unlimited = ? AND allow_overages = ?
	AND max_overages = ? AND allow_negative = ? AND reset_consumption = ? AND consumption_period = ?`

// syncer flushes a write-ahead log to disk; close releases it.
type syncer interface {
	sync() error
	close() error
}

// newCommitter starts the committer of db, whose write-ahead log wal
// flushes to disk.
func newCommitter(db *sql.DB, wal syncer) (*committer, error) {
	w := &committer{
		db:        db,
		rows:      newCounterRows(),
		queue:     make(chan *pending, maxBatch),
		quit:      make(chan struct{}),
		exited:    make(chan struct{}),
		committed: make(chan []*pending, maxUnsynced),
		wal:       wal,
		synced:    make(chan struct{}, 1),
	}
	for i, q := range writeQueries {
		st, err := db.Prepare(q)
		if err != nil {
			return nil, fmt.Errorf("preparing %q: %w", q, err)
		}
		w.stmts[i] = st
	}
	for i, rows := range ledgerChunks {
		st, err := db.Prepare(appendLedgerRows(rows))
		if err != nil {
			return nil, fmt.Errorf("preparing the ledger insert: %w", err)
		}
		w.ledgerStmts[i] = st
	}
	go w.run()
	go w.syncLoop()
	return w, nil
}

// writeTx is a batch's transaction, with its statements bound on first use.
type writeTx struct {
	tx    *sql.Tx
	w     *committer
	bound [numWriteStmts]*sql.Stmt
	// boundLedger are the ledger statements, bound on first use like bound.
	boundLedger [len(ledgerChunks)]*sql.Stmt
	// ledger holds the batch's ledger rows, ledgerColumns values each, in
	// arrival order, until flush appends them.
	ledger []any
}

func (t *writeTx) stmt(i int) *sql.Stmt {
	if t.bound[i] == nil {
		t.bound[i] = t.tx.Stmt(t.w.stmts[i])
	}
	return t.bound[i]
}

// do queues op and waits for its batch to be committed and durable.
func (b *Backend) do(ctx context.Context, o op) error {
	p := &pending{ctx: ctx, op: o, done: make(chan struct{})}
	if err := b.w.enqueue(p); err != nil {
		return err
	}
	// Wait for the commit even if ctx ends: once queued, the write may be
	// made, and its caller must learn the truth.
	<-p.done
	return p.result()
}

// decide queues op and returns once its batch is committed, with the wait
// for the batch's sync: the caller can prepare its answer during the sync.
// A refusal is returned only once the batch is durable, since it was
// decided on counters that may not be yet; so is any error.
func (b *Backend) decide(ctx context.Context, o op) (consumption.Durable, error) {
	p := &pending{ctx: ctx, op: o, decided: make(chan struct{}), done: make(chan struct{})}
	if err := b.w.enqueue(p); err != nil {
		return nil, err
	}
	select {
	case <-p.decided:
		if p.refusal == nil {
			return func() error {
				<-p.done
				return p.err
			}, nil
		}
	case <-p.done:
	}
	<-p.done
	return nil, p.result()
}

func (w *committer) enqueue(p *pending) error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return errClosed
	}
	w.queue <- p
	return nil
}

// close stops taking writes and returns once those queued are committed.
func (w *committer) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	close(w.quit)
	<-w.exited
}

func (w *committer) run() {
	defer close(w.committed)
	var batch []*pending
	for {
		select {
		case p := <-w.queue:
			// A new slice: the last one is syncLoop's until answered.
			batch = append(make([]*pending, 0, 8), p)
			// Under load, the handlers that will queue the next writes are
			// runnable but not yet running: yielding once lets them queue
			// before the batch is gathered, so that one commit (and one
			// fsync) serves them too. With nothing else runnable it returns
			// at once, so a lone write is not delayed.
			runtime.Gosched()
		case <-w.quit:
			// No sender can be blocked now (close holds the lock until
			// closed is set), so what is queued is all there will be.
			for {
				select {
				case p := <-w.queue:
					w.commit([]*pending{p})
				default:
					return
				}
			}
		}
	gather:
		for len(batch) < maxBatch {
			select {
			case p := <-w.queue:
				batch = append(batch, p)
			default:
				break gather
			}
		}
		w.commit(batch)
	}
}

// commit applies the batch, in arrival order, in one transaction, tells
// the callers waiting for the decision, and hands the batch to syncLoop to
// be answered once durable.
func (w *committer) commit(batch []*pending) {
	err := w.failed()
	if err == nil {
		batch, err = w.apply(batch)
	}
	if err == nil {
		for _, p := range batch {
			if p.decided != nil {
				close(p.decided)
			}
		}
		w.committed <- batch
		return
	}
	// Nothing of the batch was written; refusals decided inside it are
	// reported as the store error too, since the state they saw was
	// rolled back.
	answer(batch, err)
}

// answer tells each caller of batch its result, or err.
func answer(batch []*pending, err error) {
	for _, p := range batch {
		if err != nil {
			p.err = err
		}
		close(p.done)
	}
}

// syncLoop answers committed batches once the write-ahead log is synced:
// one sync for every batch committed before it began.
func (w *committer) syncLoop() {
	defer close(w.exited)
	defer func() {
		w.syncMu.Lock()
		defer w.syncMu.Unlock()
		w.wal.close()
	}()
	var batches [][]*pending
	for b := range w.committed {
		batches = append(batches[:0], b)
	gather:
		for {
			select {
			case b, ok := <-w.committed:
				if !ok {
					break gather
				}
				batches = append(batches, b)
			default:
				break gather
			}
		}
		w.syncing.Store(true)
		err := w.sync()
		w.syncing.Store(false)
		select {
		case w.synced <- struct{}{}:
		default: // a token is waiting already
		}
		for _, b := range batches {
			answer(b, err)
		}
		clear(batches)
	}
}

// sync makes every transaction committed so far durable, or reports, now
// and for every later write, why it could not.
func (w *committer) sync() error {
	if err := w.failed(); err != nil {
		return err
	}
	w.syncMu.Lock()
	err := w.wal.sync()
	w.syncMu.Unlock()
	if err != nil {
		err = fmt.Errorf("syncing the sqlite write-ahead log (the store takes no more writes until Caddy restarts): %w", err)
		w.fault.CompareAndSwap(nil, &err)
		return *w.fault.Load()
	}
	w.stats.Synced()
	return nil
}

// failed returns the error of a failed sync, if one failed.
func (w *committer) failed() error {
	if err := w.fault.Load(); err != nil {
		return *err
	}
	return nil
}

// apply applies batch, in arrival order, in one transaction, and returns
// it with the writes that extend took in.
func (w *committer) apply(batch []*pending) (_ []*pending, err error) {
	ctx := context.Background() // one caller's cancellation must not abort the others' commit
	conn, err := w.db.Conn(ctx)
	if err != nil {
		return batch, fmt.Errorf("beginning a write: %w", err)
	}
	defer conn.Close()
	// data_version values compare only on one connection, and the pool
	// replaces one it finds bad (an interrupted import can leave it so):
	// on a new connection, the copy can't be checked and is dropped.
	conn.Raw(func(dc any) error {
		if dc != w.conn {
			w.rows.clear()
			w.conn = dc
		}
		return nil
	})
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return batch, fmt.Errorf("beginning a write: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
			// The copy holds this batch's changes, which the database
			// does not.
			w.rows.clear()
		}
	}()
	wt := &writeTx{tx: tx, w: w, ledger: w.ledgerBuf[:0]}
	defer func() {
		clear(wt.ledger) // drop the strings; keep the array for the next batch
		w.ledgerBuf = wt.ledger[:0]
	}()
	if err := w.checkRows(ctx, wt); err != nil {
		return batch, err
	}
	for _, p := range batch {
		if err := wt.run(ctx, p); err != nil {
			return batch, err
		}
	}
	if batch, err = w.extend(ctx, wt, batch); err != nil {
		return batch, err
	}
	if err := wt.flush(ctx); err != nil {
		return batch, err
	}
	if err := tx.Commit(); err != nil {
		return batch, fmt.Errorf("committing: %w", err)
	}
	w.stats.Committed(len(batch))
	return batch, nil
}

// extend takes writes that arrive while a sync is under way into the
// batch's transaction, until the sync is done or the batch is full. Its
// writes could not be answered before the next sync anyway, and committing
// them together costs one commit instead of several: since the committer
// does not wait for the disk, it would otherwise commit batches of a few
// writes as fast as they came, each paying for its transaction. With no
// sync under way it returns at once.
func (w *committer) extend(ctx context.Context, wt *writeTx, batch []*pending) ([]*pending, error) {
	select {
	case <-w.synced: // from a sync that ended before this batch began
	default:
	}
	for len(batch) < maxBatch && w.syncing.Load() {
		select {
		case p := <-w.queue:
			batch = append(batch, p)
			if err := wt.run(ctx, p); err != nil {
				return batch, err
			}
		case <-w.synced:
			return batch, nil
		case <-w.quit:
			return batch, nil
		}
	}
	return batch, nil
}

// run applies p's write, unless its caller gave up before anything was
// written for it; an error aborts the batch.
func (t *writeTx) run(ctx context.Context, p *pending) error {
	if p.refusal = p.ctx.Err(); p.refusal != nil {
		return nil
	}
	refusal, err := p.op(ctx, t)
	p.refusal = refusal
	return err
}

// checkRows drops the copy of the counter rows when it may differ from the
// database: after an import, or a commit by another connection (another
// process, or a previous configuration's store during a reload). The batch's
// transaction holds the write lock, so nothing changes after this check
// until it commits.
func (w *committer) checkRows(ctx context.Context, t *writeTx) error {
	var v int64
	if err := t.stmt(readDataVersion).QueryRowContext(ctx).Scan(&v); err != nil {
		return fmt.Errorf("reading data_version: %w", err)
	}
	if w.stale.Swap(false) || v != w.dataVersion || len(w.rows.m) > maxCounterRows {
		w.rows.clear()
	}
	w.dataVersion = v
	return nil
}

// invalidate tells the committer that the counter rows changed behind it.
// The import calls it while its transaction holds the write connection, so
// the next batch, which can only begin after the import ends, sees it.
func (w *committer) invalidate() { w.stale.Store(true) }

// maxCounterRows bounds the committer's copy of counter rows (a few hundred
// bytes each). Past it the copy is dropped whole before a batch: the hot
// rows come back at their next use, and nothing needs an eviction order.
const maxCounterRows = 16384

// counterRow is the committer's copy of one counter: the settings it is
// decided with and its value in the database and after the consumptions of
// the batch under way.
type counterRow struct {
	key      rowKey
	feature  consumption.LicenseFeature // feature rows; zero for a license's own counter
	settings consumption.Settings
	stored   consumption.Counter
	cur      consumption.Counter
	dirty    bool
}

// counterRows is what the committer knows of the counter rows it has read
// or written. While its connection is the only writer, that is what the
// database holds after each commit, so a hot counter costs no read per
// consumption, and a batch writes each counter it changed once, however
// many consumptions of it the batch holds.
type counterRows struct {
	m     map[rowKey]*counterRow
	dirty []*counterRow // in the order the batch first changed them
}

// rowKey names a counter row: its table and id.
type rowKey struct {
	license bool // licenses, else license_features
	id      int64
}

func newCounterRows() counterRows { return counterRows{m: map[rowKey]*counterRow{}} }

func (r *counterRows) clear() {
	clear(r.m)
	r.dirty = r.dirty[:0]
}

// set records that the batch changed row to next.
func (r *counterRows) set(row *counterRow, next consumption.Counter) {
	if !row.dirty {
		row.dirty = true
		r.dirty = append(r.dirty, row)
	}
	row.cur = next
}

// featureRow returns the copy of a license feature's counter row, reading
// it on first use; nil when there is no such feature.
func (t *writeTx) featureRow(ctx context.Context, id int64) (*counterRow, error) {
	k := rowKey{id: id}
	if row := t.w.rows.m[k]; row != nil {
		return row, nil
	}
	row := &counterRow{key: k}
	err := scanFeature(t.stmt(readFeatureRow).QueryRowContext(ctx, id), &row.feature, &row.stored.Total, &row.stored.PeriodStart)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading license feature: %w", err)
	}
	row.settings, row.cur = row.feature.Settings, row.stored
	t.w.rows.m[k] = row
	return row, nil
}

// licenseRow returns the copy of a license's own counter row, reading it on
// first use; nil when there is no such license.
func (t *writeTx) licenseRow(ctx context.Context, id int64) (*counterRow, error) {
	k := rowKey{license: true, id: id}
	if row := t.w.rows.m[k]; row != nil {
		return row, nil
	}
	row := &counterRow{key: k}
	s := &row.settings
	var period string
	err := t.stmt(readLicenseCounter).QueryRowContext(ctx, id).Scan(&s.MaxConsumption, &s.AllowUnlimited,
		&s.AllowOverages, &s.MaxOverages, &s.AllowNegative, &s.ResetConsumption, &period,
		&row.stored.Total, &row.stored.PeriodStart)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading license: %w", err)
	}
	s.Period = consumption.Period(period)
	row.cur = row.stored
	t.w.rows.m[k] = row
	return row, nil
}

// flush appends the batch's ledger rows and writes each counter the batch
// changed, once, with the compare-and-set guard on the value it had before
// the batch.
func (t *writeTx) flush(ctx context.Context) error {
	for vals := t.ledger; len(vals) > 0; {
		for i, rows := range ledgerChunks {
			if n := rows * ledgerColumns; n <= len(vals) {
				if t.boundLedger[i] == nil {
					t.boundLedger[i] = t.tx.Stmt(t.w.ledgerStmts[i])
				}
				if _, err := t.boundLedger[i].ExecContext(ctx, vals[:n]...); err != nil {
					return fmt.Errorf("appending to the ledger: %w", err)
				}
				vals = vals[n:]
				break
			}
		}
	}
	r := &t.w.rows
	for _, row := range r.dirty {
		stmt := updateFeatureCounter
		if row.key.license {
			stmt = updateLicenseCounter
		}
		if err := t.setCounter(ctx, stmt, row); err != nil {
			return err
		}
	}
	// Only now that every write is made: until then an error must leave
	// the rows dirty, for apply to drop them.
	for _, row := range r.dirty {
		row.stored, row.dirty = row.cur, false
	}
	r.dirty = r.dirty[:0]
	return nil
}

// ConsumeFeature implements consumption.Recorder. It returns once the
// consumption's batch is committed; the Durable waits for its sync.
func (b *Backend) ConsumeFeature(ctx context.Context, c consumption.FeatureConsumption) (out consumption.FeatureOutcome, durable consumption.Durable, err error) {
	durable, err = b.decide(ctx, func(ctx context.Context, t *writeTx) (error, error) {
		row, err := t.featureRow(ctx, c.LicenseFeatureID)
		if err != nil {
			return nil, err
		}
		if row == nil {
			return consumption.ErrUnsupportedProductFeature, nil
		}
		next, applied, refusal := consumption.Apply(row.settings, row.cur, c.Requested, c.Time)
		if refusal != nil {
			return refusal, nil
		}
		f := &row.feature
		t.appendLedger(c.Time.UnixMilli(), c.LicenseID, f.ID, f.Code, c.HardwareID, c.Requested, applied, next.Total, c.APIKey, c.Event)
		t.w.rows.set(row, next)
		out = consumption.FeatureOutcome{Feature: *f, Total: next.Total, Applied: applied}
		return nil, nil
	})
	return out, durable, err
}

// ConsumeLicense implements consumption.Recorder, like ConsumeFeature.
func (b *Backend) ConsumeLicense(ctx context.Context, c consumption.LicenseConsumption) (out consumption.LicenseOutcome, durable consumption.Durable, err error) {
	durable, err = b.decide(ctx, func(ctx context.Context, t *writeTx) (error, error) {
		row, err := t.licenseRow(ctx, c.LicenseID)
		if err != nil {
			return nil, err
		}
		if row == nil {
			return consumption.ErrLicenseNotFound, nil
		}
		next, applied, refusal := consumption.ApplyLicense(row.settings, row.cur, c.Requested, c.Time)
		if refusal != nil {
			return refusal, nil
		}
		t.appendLedger(c.Time.UnixMilli(), c.LicenseID, 0, "", c.HardwareID, c.Requested, applied, next.Total, c.APIKey, c.Event)
		t.w.rows.set(row, next)
		out = consumption.LicenseOutcome{LicenseID: c.LicenseID, Settings: row.settings, Total: next.Total, Applied: applied}
		return nil, nil
	})
	return out, durable, err
}

// Activate implements consumption.Recorder. The limit is checked against
// the devices bound when the write runs, inside the write transaction, so
// concurrent activations can't exceed it.
func (b *Backend) Activate(ctx context.Context, a consumption.DeviceChange) (out consumption.Activation, err error) {
	err = b.do(ctx, func(ctx context.Context, t *writeTx) (error, error) {
		l, err := scanLicense(t.stmt(readLicenseRow).QueryRowContext(ctx, a.LicenseID))
		if errors.Is(err, sql.ErrNoRows) {
			return consumption.ErrLicenseNotFound, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading license: %w", err)
		}
		var active int64
		if err := t.stmt(countActiveDevices).QueryRowContext(ctx, l.ID).Scan(&active); err != nil {
			return nil, err
		}
		var id int64
		var bound bool
		err = t.stmt(readDevice).QueryRowContext(ctx, l.ID, a.HardwareID).Scan(&id, &bound)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
		if bound {
			out = consumption.Activation{DeviceID: id, TimesActivated: active}
			return nil, nil
		}
		if refusal := l.ActivationAllowed(active); refusal != nil {
			return refusal, nil
		}
		if err := t.stmt(upsertActiveDevice).QueryRowContext(ctx, l.ID, a.HardwareID).Scan(&id); err != nil {
			return nil, fmt.Errorf("binding device: %w", err)
		}
		if _, err := t.stmt(markLicenseActive).ExecContext(ctx, l.ID); err != nil {
			return nil, err
		}
		out = consumption.Activation{DeviceID: id, TimesActivated: active + 1, Changed: true}
		return nil, nil
	})
	return out, err
}

// Deactivate implements consumption.Recorder.
func (b *Backend) Deactivate(ctx context.Context, d consumption.DeviceChange) error {
	return b.do(ctx, func(ctx context.Context, t *writeTx) (error, error) {
		res, err := t.stmt(deactivateDevice).ExecContext(ctx, d.LicenseID, d.HardwareID)
		if err != nil {
			return nil, fmt.Errorf("unbinding device: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return consumption.ErrDeviceNotFound, err
		}
		return nil, nil
	})
}

// setCounter writes a counter with the compare-and-set guard.
func (t *writeTx) setCounter(ctx context.Context, stmt int, row *counterRow) error {
	s := &row.settings
	res, err := t.stmt(stmt).ExecContext(ctx, row.cur.Total, row.cur.PeriodStart, row.key.id, row.stored.Total, row.stored.PeriodStart,
		s.MaxConsumption, s.AllowUnlimited, s.AllowOverages, s.MaxOverages, s.AllowNegative, s.ResetConsumption, string(s.Period))
	if err != nil {
		return fmt.Errorf("updating counter: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("counter or settings of row %d changed under the write lock (%d rows, %v)", row.key.id, n, err)
	}
	return nil
}

// appendLedger queues a ledger row for flush.
func (t *writeTx) appendLedger(at, licenseID, featureID int64, feature, hardwareID string,
	requested, applied, total int64, apiKey, event string) {
	t.ledger = append(t.ledger, at, licenseID, featureID, feature, hardwareID,
		requested, applied, total, apiKey, event)
}
