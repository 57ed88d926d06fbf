package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"github.com/edgelicense/caddy-license-api/consumption"
)

// maxBatch bounds how many consumptions share one transaction, so that one
// batch's latency stays small even under a flood.
const maxBatch = 256

// errClosed is returned for consumptions that arrive after Close.
var errClosed = errors.New("sqlite store is closed")

// pending is one queued consumption and, once done is closed, its result.
type pending struct {
	ctx  context.Context
	c    consumption.FeatureConsumption
	out  consumption.FeatureOutcome
	err  error
	done chan struct{}
}

// committer owns the write connection. It takes every consumption waiting in
// its queue and commits them in one transaction; each caller is answered only
// after that transaction is durable. Batching needs no timer: requests that
// arrive while a commit is under way form the next batch.
type committer struct {
	db                   *sql.DB
	readRow, update, add *sql.Stmt

	mu     sync.RWMutex // held for reading while enqueueing, so close can't race a send
	closed bool
	queue  chan *pending
	quit   chan struct{}
	exited chan struct{}
}

func newCommitter(db *sql.DB) (*committer, error) {
	w := &committer{
		db:     db,
		queue:  make(chan *pending, maxBatch),
		quit:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	for _, p := range []struct {
		dst **sql.Stmt
		q   string
	}{
		{&w.readRow, `SELECT ` + featureColumns + `, total_consumptions, period_start FROM license_features WHERE id = ?`},
		// The guard on the old values makes the write a compare-and-set: it
		// holds even if a future change let two writers in at once.
		{&w.update, `UPDATE license_features SET total_consumptions = ?, period_start = ?
			WHERE id = ? AND total_consumptions = ? AND period_start = ?`},
		{&w.add, `INSERT INTO consumption_ledger (at, license_id, license_feature_id, feature, hardware_id,
			requested, applied, total, api_key, event) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
	} {
		st, err := db.Prepare(p.q)
		if err != nil {
			return nil, fmt.Errorf("preparing %q: %w", p.q, err)
		}
		*p.dst = st
	}
	go w.run()
	return w, nil
}

// ConsumeFeature implements consumption.Counters.
func (b *Backend) ConsumeFeature(ctx context.Context, c consumption.FeatureConsumption) (consumption.FeatureOutcome, error) {
	p := &pending{ctx: ctx, c: c, done: make(chan struct{})}
	if err := b.w.enqueue(p); err != nil {
		return consumption.FeatureOutcome{}, err
	}
	// Wait for the commit even if ctx ends: once queued, the consumption may
	// be written, and its caller must learn the truth.
	<-p.done
	return p.out, p.err
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

// close stops taking consumptions and returns once those queued are committed.
func (w *committer) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	close(w.quit)
	<-w.exited
}

func (w *committer) run() {
	defer close(w.exited)
	batch := make([]*pending, 0, maxBatch)
	for {
		select {
		case p := <-w.queue:
			batch = append(batch[:0], p)
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

// commit applies the batch, in arrival order, in one transaction.
func (w *committer) commit(batch []*pending) {
	err := w.apply(batch)
	for _, p := range batch {
		if err != nil && p.err == nil {
			// Nothing of the batch was written; refusals decided inside it
			// are reported as the store error too, since the state they saw
			// was rolled back.
			p.out, p.err = consumption.FeatureOutcome{}, err
		}
		close(p.done)
	}
}

func (w *committer) apply(batch []*pending) (err error) {
	ctx := context.Background() // one caller's cancellation must not abort the others' commit
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning a write: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	readRow, update, add := tx.Stmt(w.readRow), tx.Stmt(w.update), tx.Stmt(w.add)
	for _, p := range batch {
		if p.err = p.ctx.Err(); p.err != nil {
			continue // the caller gave up before anything was written for it
		}
		if err := w.consume(ctx, readRow, update, add, p); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing consumptions: %w", err)
	}
	return nil
}

// consume decides and writes one consumption inside the batch's transaction.
// A refusal is recorded in p.err; a returned error aborts the batch.
func (w *committer) consume(ctx context.Context, readRow, update, add *sql.Stmt, p *pending) error {
	var f consumption.LicenseFeature
	var cur consumption.Counter
	err := scanFeature(readRow.QueryRowContext(ctx, p.c.LicenseFeatureID), &f, &cur.Total, &cur.PeriodStart)
	if errors.Is(err, sql.ErrNoRows) {
		p.err = consumption.ErrUnsupportedProductFeature
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading license feature: %w", err)
	}
	next, applied, refusal := consumption.Apply(f.Settings, cur, p.c.Requested, p.c.Time)
	if refusal != nil {
		p.err = refusal
		return nil
	}
	res, err := update.ExecContext(ctx, next.Total, next.PeriodStart, f.ID, cur.Total, cur.PeriodStart)
	if err != nil {
		return fmt.Errorf("updating counter: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("counter of license feature %d changed under the write lock (%d rows, %v)", f.ID, n, err)
	}
	c := &p.c
	if _, err := add.ExecContext(ctx, c.Time.UnixMilli(), c.LicenseID, f.ID, f.Code, c.HardwareID,
		c.Requested, applied, next.Total, c.APIKey, c.Event); err != nil {
		return fmt.Errorf("appending to the ledger: %w", err)
	}
	p.out = consumption.FeatureOutcome{Feature: f, Total: next.Total, Applied: applied}
	return nil
}
