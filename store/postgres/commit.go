package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/edgelicense/caddy-license-api/consumption"
	"github.com/edgelicense/caddy-license-api/store"
)

const (
	// maxBatch bounds how many writes share one transaction, so that
	// one batch's latency, and how long it holds its row locks, stay small
	// even under a flood.
	maxBatch = 256

	// committers is how many batches one node has in flight. Two, because
	// most of a batch's time is its COMMIT waiting for the WAL flush: while
	// one batch waits, the other already holds its connection and takes
	// its locks the moment they are free, or runs beside it when it
	// touches other rows. More would only queue on the same row locks and
	// take connections from the reads.
	committers = 2

	// maxWriteAttempts bounds how often a batch is tried when the database
	// aborts it for a reason that a new attempt can clear: a deadlock with
	// an import, a serialization failure, or a connection found broken
	// before COMMIT was sent.
	maxWriteAttempts = 4
)

var (
	// errClosed is returned for writes that arrive after Close.
	errClosed = errors.New("postgres store: closed")
	// errNotWritten is returned for writes whose time ran out before any
	// transaction took them: nothing was written for them.
	errNotWritten = errors.New("postgres store: timed out waiting for the database; the write was not made")
	// errUnstorable is returned for writes of text PostgreSQL cannot store.
	errUnstorable = errors.New("postgres store: a hardware id, API key or event is not UTF-8 text without NUL bytes")
)

// States of a pending write. The caller and the committer race to
// move it out of queued: the caller to give up, the committer to take it
// into a batch. Whoever wins decides what the caller is told.
const (
	queued int32 = iota
	taken
	abandoned
)

// opKind says which Recorder method a pending write is.
type opKind uint8

const (
	consumeFeature opKind = iota
	consumeLicense
	activate
	deactivate
)

// pending is one queued write and, once done is closed, its result. Of the
// inputs and outputs, those of its kind are used.
type pending struct {
	kind     opKind
	fc       consumption.FeatureConsumption // consumeFeature
	lc       consumption.LicenseConsumption // consumeLicense
	dc       consumption.DeviceChange       // activate, deactivate
	deadline time.Time                      // Config.Timeout after it was submitted
	state    atomic.Int32

	feature    consumption.FeatureOutcome
	license    consumption.LicenseOutcome
	activation consumption.Activation
	err        error
	done       chan struct{}
}

// licenseID is the license row the write locks, 0 for none.
func (p *pending) licenseID() int64 {
	switch p.kind {
	case consumeLicense:
		return p.lc.LicenseID
	case activate, deactivate:
		return p.dc.LicenseID
	}
	return 0
}

// storable checks the text the write stores. PostgreSQL refuses text that
// is not UTF-8 or holds a NUL byte, which a client can put in a hardware id;
// such a write must fail alone, not abort the batch it would share.
func (p *pending) storable() error {
	var texts [3]string
	switch p.kind {
	case consumeFeature:
		texts = [3]string{p.fc.HardwareID, p.fc.APIKey, p.fc.Event}
	case consumeLicense:
		texts = [3]string{p.lc.HardwareID, p.lc.APIKey, p.lc.Event}
	default:
		texts = [3]string{p.dc.HardwareID, p.dc.APIKey}
	}
	for _, t := range texts {
		if !utf8.ValidString(t) || strings.ContainsRune(t, 0) {
			return errUnstorable
		}
	}
	return nil
}

// reset clears the outputs of an earlier attempt.
func (p *pending) reset() {
	p.feature, p.license, p.activation, p.err = consumption.FeatureOutcome{}, consumption.LicenseOutcome{}, consumption.Activation{}, nil
}

// committer takes every write waiting in its queue and commits them in one
// transaction; each caller is answered only after that transaction has
// committed. Batching needs no timer: requests that arrive while a commit is
// under way form the next batch.
type committer struct {
	pool   *pgxpool.Pool
	logger *zap.Logger

	mu     sync.RWMutex // held for reading while enqueueing, so close can't race a send
	closed bool
	queue  chan *pending
	quit   chan struct{}
	exited sync.WaitGroup
	stats  store.WriteCounters
}

func newCommitter(pool *pgxpool.Pool, logger *zap.Logger) *committer {
	w := &committer{
		pool:   pool,
		logger: logger,
		queue:  make(chan *pending, maxBatch),
		quit:   make(chan struct{}),
	}
	for range committers {
		w.exited.Go(w.run)
	}
	return w
}

// submit queues p and waits for its answer. It returns within
// Config.Timeout (plus the time to notice a dead connection): once p's
// batch has committed, with a refusal, or with an error. A caller whose ctx
// ends while its write is still queued is told so and nothing is written;
// once a transaction has taken the write, the caller waits for that
// transaction, which itself ends by the deadline.
func (b *Backend) submit(ctx context.Context, p *pending) error {
	if err := p.storable(); err != nil {
		return err
	}
	p.deadline = time.Now().Add(b.timeout)
	p.done = make(chan struct{})
	timer := time.NewTimer(b.timeout)
	defer timer.Stop()
	if err := b.w.enqueue(ctx, p, timer.C); err != nil {
		return err
	}
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
	case <-timer.C:
	}
	if p.state.CompareAndSwap(queued, abandoned) {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("postgres store: the write was not made: %w", err)
		}
		return errNotWritten
	}
	// A batch holds it, and the caller must learn whether that batch
	// committed. The batch's deadline is no later than p.deadline.
	<-p.done
	return p.err
}

// ConsumeFeature implements consumption.Recorder. It returns once the
// batch's COMMIT has returned, which PostgreSQL answers only once durable,
// so the Durable is nil.
func (b *Backend) ConsumeFeature(ctx context.Context, c consumption.FeatureConsumption) (consumption.FeatureOutcome, consumption.Durable, error) {
	p := &pending{kind: consumeFeature, fc: c}
	err := b.submit(ctx, p)
	return p.feature, nil, err
}

// ConsumeLicense implements consumption.Recorder, like ConsumeFeature.
func (b *Backend) ConsumeLicense(ctx context.Context, c consumption.LicenseConsumption) (consumption.LicenseOutcome, consumption.Durable, error) {
	p := &pending{kind: consumeLicense, lc: c}
	err := b.submit(ctx, p)
	return p.license, nil, err
}

// Activate implements consumption.Recorder. The activation limit is checked
// against the devices bound while the license row is locked, so concurrent
// activations, on any node, cannot exceed it. A binding it changes is
// announced on Channel (see LicensePayload) when its batch commits.
func (b *Backend) Activate(ctx context.Context, a consumption.DeviceChange) (consumption.Activation, error) {
	p := &pending{kind: activate, dc: a}
	err := b.submit(ctx, p)
	return p.activation, err
}

// Deactivate implements consumption.Recorder, and announces the change like
// Activate.
func (b *Backend) Deactivate(ctx context.Context, d consumption.DeviceChange) error {
	return b.submit(ctx, &pending{kind: deactivate, dc: d})
}

func (w *committer) enqueue(ctx context.Context, p *pending, timeout <-chan time.Time) error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return errClosed
	}
	select {
	case w.queue <- p:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("postgres store: the write was not made: %w", ctx.Err())
	case <-timeout:
		return errNotWritten
	}
}

// close stops taking writes and returns once those queued are
// committed (or have failed).
func (w *committer) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	close(w.quit)
	w.exited.Wait()
}

func (w *committer) run() {
	batch := make([]*pending, 0, maxBatch)
	for {
		select {
		case p := <-w.queue:
			batch = w.gather(append(batch[:0], p))
		case <-w.quit:
			// No sender can be blocked now (close holds the lock until
			// closed is set), so what is queued is all there will be.
			for {
				batch = w.gather(batch[:0])
				if len(batch) == 0 {
					return
				}
				w.commit(batch)
			}
		}
		w.commit(batch)
	}
}

// gather adds what is waiting in the queue to batch, up to maxBatch.
func (w *committer) gather(batch []*pending) []*pending {
	for len(batch) < maxBatch {
		select {
		case p := <-w.queue:
			batch = append(batch, p)
		default:
			return batch
		}
	}
	return batch
}

// commit writes the batch, in arrival order, in one transaction and answers
// its callers.
func (w *committer) commit(batch []*pending) {
	now := time.Now()
	var deadline time.Time
	live := batch[:0]
	for _, p := range batch {
		if !p.state.CompareAndSwap(queued, taken) {
			continue // its caller gave up and was answered
		}
		if !now.Before(p.deadline) {
			p.err = errNotWritten
			close(p.done)
			continue
		}
		if deadline.IsZero() || p.deadline.Before(deadline) {
			deadline = p.deadline
		}
		live = append(live, p)
	}
	if len(live) == 0 {
		return
	}
	// The earliest caller's deadline bounds the transaction, so that every
	// caller is answered in time. It is not any caller's ctx: one caller's
	// cancellation must not abort the others' commit.
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	err := w.write(ctx, live)
	if err == nil {
		w.stats.Committed(len(live))
	}
	for _, p := range live {
		if err != nil {
			// Nothing of the batch was written (or, after an interrupted
			// COMMIT, it cannot be known); refusals decided inside it are
			// reported as the store error too, since the state they saw was
			// rolled back.
			p.reset()
			p.err = err
		}
		close(p.done)
	}
}

// write tries the batch until it commits, fails for good, or runs out of
// attempts or time.
func (w *committer) write(ctx context.Context, batch []*pending) error {
	var err error
	for attempt := 1; ; attempt++ {
		var commitSent bool
		commitSent, err = w.try(ctx, batch)
		if err == nil {
			return nil
		}
		if commitSent && commitOutcomeUnknown(err) {
			w.logger.Error("a commit was interrupted; its writes were answered as failed but may have been made",
				zap.Int("writes", len(batch)), zap.Error(err))
			return fmt.Errorf("postgres store: the commit was interrupted, the write may have been made: %w", err)
		}
		if attempt == maxWriteAttempts || ctx.Err() != nil || !w.retryable(err) {
			return fmt.Errorf("postgres store: writing: %w", err)
		}
	}
}

// retryable reports whether a new attempt may succeed where err failed.
func (w *committer) retryable(err error) bool {
	if lockConflict(err) {
		return true
	}
	if connectionLost(err) {
		w.pool.Reset() // see Backend.connLost
		return true
	}
	return false
}

// lockConflict reports whether the database aborted a transaction to
// resolve a conflict with another one: a serialization failure or a
// deadlock. Trying again succeeds once the other has finished.
func lockConflict(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

// commitOutcomeUnknown reports whether an error from COMMIT leaves open
// whether the transaction committed: the server may have committed it and
// the answer been lost. An error the server sent, or its answer that the
// transaction was rolled back, is definite.
func commitOutcomeUnknown(err error) bool {
	var pgErr *pgconn.PgError
	return !errors.As(err, &pgErr) && !errors.Is(err, pgx.ErrTxCommitRollback)
}

// lockedFeature is a license feature row held FOR UPDATE by the batch, with
// its counter as the batch has changed it so far.
type lockedFeature struct {
	f       consumption.LicenseFeature
	cur     consumption.Counter
	changed bool
}

// lockedLicense is a license row held FOR UPDATE by the batch, likewise.
type lockedLicense struct {
	l       consumption.License
	cur     consumption.Counter
	changed bool
}

// Every batch, of every node, locks the rows it needs in one global order:
// licenses, then license features, each in ascending id order. Batches that
// want the same rows therefore queue behind each other and never deadlock.
// (An import locks in its own order; a deadlock with one is retried.)
const (
	sqlLockLicenses = `SELECT ` + licenseColumns + `, l.total_consumptions, l.period_start
		FROM licenses l WHERE l.id = ANY($1) ORDER BY l.id FOR UPDATE OF l`
	sqlLockFeatures = `SELECT ` + featureColumns + `, total_consumptions, period_start
		FROM license_features WHERE id = ANY($1) ORDER BY id FOR UPDATE`
	sqlUpdateFeatureCounters = `UPDATE license_features f SET total_consumptions = u.total, period_start = u.period_start
		FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS u(id, total, period_start) WHERE f.id = u.id`
	sqlUpdateLicenseCounters = `UPDATE licenses l SET total_consumptions = u.total, period_start = u.period_start
		FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS u(id, total, period_start) WHERE l.id = u.id`
	// WITH ORDINALITY and ORDER BY make the ledger ids follow arrival order.
	sqlAppendLedger = `INSERT INTO consumption_ledger (at, license_id, license_feature_id, feature, hardware_id,
			requested, applied, total, api_key, event)
		SELECT at, license_id, license_feature_id, feature, hardware_id, requested, applied, total, api_key, event
		FROM unnest($1::timestamptz[], $2::bigint[], $3::bigint[], $4::text[], $5::text[],
			$6::bigint[], $7::bigint[], $8::bigint[], $9::text[], $10::text[])
			WITH ORDINALITY AS u(at, license_id, license_feature_id, feature, hardware_id,
				requested, applied, total, api_key, event, n)
		ORDER BY n`
	sqlNotifyAll = `SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload`

	// The device statements run once per activation or deactivation, which
	// are rare next to consumptions, under the lock of the license row.
	sqlDeviceState = `SELECT count(*) FILTER (WHERE active),
			COALESCE(max(id) FILTER (WHERE hardware_id = $2 AND active), 0)
		FROM devices WHERE license_id = $1`
	sqlBindDevice = `WITH d AS (
			INSERT INTO devices (license_id, hardware_id, active) VALUES ($1, $2, true)
			ON CONFLICT (license_id, hardware_id) DO UPDATE SET active = true RETURNING id),
		l AS (UPDATE licenses SET active = true WHERE id = $1 AND NOT active)
		SELECT id FROM d`
	sqlUnbindDevice = `UPDATE devices SET active = false WHERE license_id = $1 AND hardware_id = $2 AND active`
)

// ledgerRows are the columns of the ledger rows a batch appends.
type ledgerRows struct {
	at                             []time.Time
	license, feature               []int64
	code, hardware, apiKey, event  []string
	requested, applied, totalAfter []int64
}

func (l *ledgerRows) add(at time.Time, licenseID, featureID int64, code, hardwareID string,
	requested, applied, total int64, apiKey, event string) {
	l.at = append(l.at, at)
	l.license = append(l.license, licenseID)
	l.feature = append(l.feature, featureID)
	l.code = append(l.code, code)
	l.hardware = append(l.hardware, hardwareID)
	l.requested = append(l.requested, requested)
	l.applied = append(l.applied, applied)
	l.totalAfter = append(l.totalAfter, total)
	l.apiKey = append(l.apiKey, apiKey)
	l.event = append(l.event, event)
}

// batchTx is one attempt at a batch's transaction and what it has decided.
type batchTx struct {
	tx       pgx.Tx
	licenses map[int64]*lockedLicense
	features map[int64]*lockedFeature
	ledger   ledgerRows
	notices  []string
}

// try makes one attempt at the batch's transaction: lock the batch's rows,
// decide every write in arrival order (counters in memory with
// consumption.Apply and ApplyLicense, device bindings with a statement
// each), write the counters and ledger rows, commit. It reports whether
// COMMIT was sent, after which a failure may hide a success.
func (w *committer) try(ctx context.Context, batch []*pending) (commitSent bool, err error) {
	// Read committed is enough, and explicit so that a server default of
	// serializable changes nothing: exactness comes from the row locks,
	// under which a read sees the latest committed row.
	tx, err := w.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return false, err
	}
	defer tx.Rollback(ctx) // after Commit, a no-op that returns the connection

	t := &batchTx{tx: tx}
	var licenseIDs, featureIDs []int64
	for _, p := range batch {
		if p.kind == consumeFeature {
			featureIDs = append(featureIDs, p.fc.LicenseFeatureID)
		} else {
			licenseIDs = append(licenseIDs, p.licenseID())
		}
	}
	if err := t.lock(ctx, licenseIDs, featureIDs); err != nil {
		return false, err
	}
	for _, p := range batch {
		p.reset()
		if err := t.decide(ctx, p); err != nil {
			return false, err
		}
	}
	if err := t.write(ctx); err != nil {
		return false, err
	}
	return true, tx.Commit(ctx)
}

// lock takes the batch's rows in the global order and reads them.
func (t *batchTx) lock(ctx context.Context, licenseIDs, featureIDs []int64) error {
	t.licenses = map[int64]*lockedLicense{}
	t.features = map[int64]*lockedFeature{}
	if ids := sortedUnique(licenseIDs); len(ids) > 0 {
		rows, err := t.tx.Query(ctx, sqlLockLicenses, ids)
		if err != nil {
			return err
		}
		for rows.Next() {
			r := new(lockedLicense)
			if r.l, err = scanLicense(rows, &r.cur.Total, &r.cur.PeriodStart); err != nil {
				rows.Close()
				return err
			}
			t.licenses[r.l.ID] = r
		}
		if err := rows.Err(); err != nil {
			return err
		}
	}
	if ids := sortedUnique(featureIDs); len(ids) > 0 {
		rows, err := t.tx.Query(ctx, sqlLockFeatures, ids)
		if err != nil {
			return err
		}
		for rows.Next() {
			r := new(lockedFeature)
			if err := scanFeature(rows, &r.f, &r.cur.Total, &r.cur.PeriodStart); err != nil {
				rows.Close()
				return err
			}
			t.features[r.f.ID] = r
		}
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

func sortedUnique(ids []int64) []int64 {
	slices.Sort(ids)
	return slices.Compact(ids)
}

// decide decides one write. A refusal goes to p.err; a returned error aborts
// the batch.
func (t *batchTx) decide(ctx context.Context, p *pending) error {
	switch p.kind {
	case consumeFeature:
		c := &p.fc
		r := t.features[c.LicenseFeatureID]
		if r == nil {
			p.err = consumption.ErrUnsupportedProductFeature
			return nil
		}
		next, applied, refusal := consumption.Apply(r.f.Settings, r.cur, c.Requested, c.Time)
		if refusal != nil {
			p.err = refusal
			return nil
		}
		r.cur, r.changed = next, true
		t.ledger.add(c.Time, c.LicenseID, r.f.ID, r.f.Code, c.HardwareID, c.Requested, applied, next.Total, c.APIKey, c.Event)
		p.feature = consumption.FeatureOutcome{Feature: r.f, Total: next.Total, Applied: applied}

	case consumeLicense:
		c := &p.lc
		r := t.licenses[c.LicenseID]
		if r == nil {
			p.err = consumption.ErrLicenseNotFound
			return nil
		}
		next, applied, refusal := consumption.ApplyLicense(r.l.Consumption, r.cur, c.Requested, c.Time)
		if refusal != nil {
			p.err = refusal
			return nil
		}
		r.cur, r.changed = next, true
		t.ledger.add(c.Time, r.l.ID, 0, "", c.HardwareID, c.Requested, applied, next.Total, c.APIKey, c.Event)
		p.license = consumption.LicenseOutcome{LicenseID: r.l.ID, Settings: r.l.Consumption, Total: next.Total, Applied: applied}

	case activate:
		r := t.licenses[p.dc.LicenseID]
		if r == nil {
			p.err = consumption.ErrLicenseNotFound
			return nil
		}
		var active, id int64
		if err := t.tx.QueryRow(ctx, sqlDeviceState, r.l.ID, p.dc.HardwareID).Scan(&active, &id); err != nil {
			return fmt.Errorf("reading devices: %w", err)
		}
		if id != 0 {
			p.activation = consumption.Activation{DeviceID: id, TimesActivated: active}
			return nil
		}
		if refusal := r.l.ActivationAllowed(active); refusal != nil {
			p.err = refusal
			return nil
		}
		if err := t.tx.QueryRow(ctx, sqlBindDevice, r.l.ID, p.dc.HardwareID).Scan(&id); err != nil {
			return fmt.Errorf("binding device: %w", err)
		}
		p.activation = consumption.Activation{DeviceID: id, TimesActivated: active + 1, Changed: true}
		t.notices = append(t.notices, LicensePayload(r.l.ID))

	case deactivate:
		tag, err := t.tx.Exec(ctx, sqlUnbindDevice, p.dc.LicenseID, p.dc.HardwareID)
		if err != nil {
			return fmt.Errorf("unbinding device: %w", err)
		}
		if tag.RowsAffected() == 0 {
			p.err = consumption.ErrDeviceNotFound
			return nil
		}
		t.notices = append(t.notices, LicensePayload(p.dc.LicenseID))
	}
	return nil
}

// write sends the batch's counters, ledger rows and notifications in one
// round trip.
func (t *batchTx) write(ctx context.Context) error {
	var q pgx.Batch
	var want []int64 // rows each counter update must change
	var fid, ftotal, fstart []int64
	for _, r := range t.features {
		if r.changed {
			fid, ftotal, fstart = append(fid, r.f.ID), append(ftotal, r.cur.Total), append(fstart, r.cur.PeriodStart)
		}
	}
	if len(fid) > 0 {
		q.Queue(sqlUpdateFeatureCounters, fid, ftotal, fstart)
		want = append(want, int64(len(fid)))
	}
	var lid, ltotal, lstart []int64
	for _, r := range t.licenses {
		if r.changed {
			lid, ltotal, lstart = append(lid, r.l.ID), append(ltotal, r.cur.Total), append(lstart, r.cur.PeriodStart)
		}
	}
	if len(lid) > 0 {
		q.Queue(sqlUpdateLicenseCounters, lid, ltotal, lstart)
		want = append(want, int64(len(lid)))
	}
	if l := &t.ledger; len(l.at) > 0 {
		q.Queue(sqlAppendLedger, l.at, l.license, l.feature, l.code, l.hardware,
			l.requested, l.applied, l.totalAfter, l.apiKey, l.event)
	}
	if len(t.notices) > 0 {
		// Delivered when, and only if, the transaction commits.
		q.Queue(sqlNotifyAll, Channel, t.notices)
	}
	if q.Len() == 0 {
		return nil
	}
	res := t.tx.SendBatch(ctx, &q)
	var err error
	for i := 0; i < q.Len() && err == nil; i++ {
		var tag pgconn.CommandTag
		tag, err = res.Exec()
		if err == nil && i < len(want) && tag.RowsAffected() != want[i] {
			// The rows are locked by this transaction and never deleted.
			err = fmt.Errorf("updated %d counters, want %d", tag.RowsAffected(), want[i])
		}
	}
	return errors.Join(err, res.Close())
}
