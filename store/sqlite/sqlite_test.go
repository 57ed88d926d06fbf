package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgelicense/caddy-license-api/apierror"
	"github.com/edgelicense/caddy-license-api/consumption"
	"github.com/edgelicense/caddy-license-api/store"
	"github.com/edgelicense/caddy-license-api/store/seed"
	"github.com/edgelicense/caddy-license-api/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) (store.Backend, storetest.LedgerReader) {
		b, err := Open(filepath.Join(t.TempDir(), "license_api.db"))
		if err != nil {
			t.Fatal(err)
		}
		return b, b.ledger
	})
}

// TestTwoWriters opens one database file twice, as two processes (or two
// configurations during a reload) do, and interleaves their consumptions:
// each store must decide on the counter the other wrote, not on what it
// last wrote itself.
func TestTwoWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "license_api.db")
	stores := [2]*Backend{open2(t, path), open2(t, path)}
	storetest.ImportSeed(t, stores[0], storetest.Seed)
	var total int64
	for i, n := range []int64{3, 4, 1, 2, 5} {
		out, err := consumeRender(stores[i%2], n)
		total += n
		if err != nil || out.Total != total {
			t.Fatalf("consumption %d (%d, store %d): total %d, %v; want %d", i, n, i%2, out.Total, err, total)
		}
	}
}

// TestWriteConnectionReplaced has another store lower a limit while this
// store's write connection is replaced, as database/sql does with one it
// finds bad: data_version only compares on one connection, so the new one
// must not be trusted to have seen the change.
func TestWriteConnectionReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "license_api.db")
	a, b := open2(t, path), open2(t, path)
	storetest.ImportSeed(t, a, storetest.Seed)
	if out, err := consumeRender(a, 40); err != nil || out.Total != 40 {
		t.Fatalf("consuming 40: %+v, %v", out, err)
	}
	storetest.ImportSeed(t, b, `{"products": [{"short_code": "cad", "features": [{"code": "render", "max_consumption": 10}]}],
		"licenses": [{"id": 1001, "product": "cad", "license_key": "AAAA-BBBB", "features": [{"code": "render", "id": 5001}]}]}`)
	c, err := a.write.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c.Raw(func(any) error { return driver.ErrBadConn }) // the pool discards the connection
	c.Close()
	if out, err := consumeRender(a, 1); !errors.Is(err, consumption.ErrFeatureNotEnoughConsumptions) {
		t.Errorf("consuming 1 against the new limit of 10: total %d, max %d, %v; want feature_not_enough_consumptions",
			out.Total, out.Feature.MaxConsumption, err)
	}
}

// TestTwoStoresExactLimit races consumptions through two stores on one file.
func TestTwoStoresExactLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "license_api.db")
	a, b := open2(t, path), open2(t, path)
	storetest.ImportSeed(t, a, storetest.Seed)
	storetest.ExactLimit(t, []store.Backend{a, b}, b.ledger, 1001, 5001, 300, 100)
}

func open2(t *testing.T, path string) *Backend {
	t.Helper()
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func consumeRender(b *Backend, n int64) (consumption.FeatureOutcome, error) {
	return storetest.ConsumeFeature(context.Background(), b, consumption.FeatureConsumption{
		Time: time.Now(), LicenseID: 1001, LicenseFeatureID: 5001, Feature: "render", HardwareID: "hw-1",
		Requested: n, APIKey: "key-1", Event: consumption.EventConsumptionAdd,
	})
}

// TestCounterGuard makes the committer's copy of a counter row differ from
// the database behind its back (a change data_version would not show) and
// checks that the compare-and-set guard fails the consumption, as a store
// failure, rather than granting it against the wrong value or settings,
// and that nothing of it is written.
func TestCounterGuard(t *testing.T) {
	feature := func(b *Backend) error {
		_, err := consumeRender(b, 1)
		return err
	}
	license := func(b *Backend) error {
		_, err := consumeLicense(b, 1)
		return err
	}
	for _, c := range []struct {
		name    string
		key     rowKey
		consume func(*Backend) error
		tamper  func(*counterRow)
	}{
		{"feature total", rowKey{id: 5001}, feature, func(r *counterRow) { r.stored.Total, r.cur.Total = 7, 7 }},
		{"feature settings", rowKey{id: 5001}, feature, func(r *counterRow) { r.settings.MaxConsumption = 1000 }},
		{"license total", rowKey{license: true, id: 1003}, license, func(r *counterRow) { r.stored.Total, r.cur.Total = 7, 7 }},
		{"license settings", rowKey{license: true, id: 1003}, license, func(r *counterRow) { r.settings.AllowNegative = false }},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := open2(t, filepath.Join(t.TempDir(), "license_api.db"))
			storetest.ImportSeed(t, b, storetest.Seed)
			if err := c.consume(b); err != nil { // reads the row into the copy
				t.Fatal(err)
			}
			ledger := func() (n int64) {
				if err := b.write.QueryRow(`SELECT COUNT(*) FROM consumption_ledger`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			before := ledger()
			// The last consumption's answer ordered the committer's work on
			// the copy before this, and the next one's queueing orders this
			// before its next use.
			row := b.w.rows.m[c.key]
			if row == nil {
				t.Fatalf("the committer has no copy of %+v", c.key)
			}
			c.tamper(row)
			err := c.consume(b)
			if err == nil || errors.As(err, new(*apierror.Error)) {
				t.Fatalf("consuming against a tampered copy: %v; want a store failure", err)
			}
			if after := ledger(); after != before {
				t.Errorf("the failed batch wrote %d ledger rows", after-before)
			}
			// The copy was dropped with the batch: the next one reads the row.
			if err := c.consume(b); err != nil {
				t.Errorf("consuming after the failure: %v", err)
			}
		})
	}
}

// TestMigrateFromVersion1 opens a database as schema version 1 left it (with
// the ledger index by counter, without the seed digest, with the counters in
// the licenses' and features' rows) and checks that it is brought to the
// current version, keeping its data.
func TestMigrateFromVersion1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "license_api.db")
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	storetest.ImportSeed(t, b, storetest.Seed)
	if _, err := consumeRender(b, 3); err != nil {
		t.Fatal(err)
	}
	licenseBefore, err := consumeLicense(b, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.write.Exec(`CREATE INDEX consumption_ledger_by_counter ON consumption_ledger (license_id, license_feature_id, id);
		DROP TABLE seed_digest;
		ALTER TABLE licenses ADD COLUMN total_consumptions INTEGER NOT NULL DEFAULT 0;
		ALTER TABLE licenses ADD COLUMN period_start INTEGER NOT NULL DEFAULT 0;
		ALTER TABLE licenses ADD COLUMN seeded_total INTEGER;
		UPDATE licenses SET (total_consumptions, period_start, seeded_total) =
			(SELECT total, period_start, seeded_total FROM license_counters c WHERE c.id = licenses.id);
		ALTER TABLE license_features ADD COLUMN total_consumptions INTEGER NOT NULL DEFAULT 0;
		ALTER TABLE license_features ADD COLUMN period_start INTEGER NOT NULL DEFAULT 0;
		ALTER TABLE license_features ADD COLUMN seeded_total INTEGER;
		UPDATE license_features SET (total_consumptions, period_start, seeded_total) =
			(SELECT total, period_start, seeded_total FROM feature_counters c WHERE c.id = license_features.id);
		DROP TABLE license_counters;
		DROP TABLE feature_counters;
		PRAGMA user_version = 1`); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil { // a second Close is harmless
		t.Fatal(err)
	}
	b = open2(t, path)
	var version, indexes, digests int
	if err := b.write.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	if err := b.write.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE name = 'consumption_ledger_by_counter'`).Scan(&indexes); err != nil {
		t.Fatal(err)
	}
	if err := b.write.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE name = 'seed_digest'`).Scan(&digests); err != nil {
		t.Fatal(err)
	}
	if version != schemaVersion || indexes != 0 || digests != 1 {
		t.Errorf("after opening a version 1 database: version %d, %d ledger index, %d seed_digest table; want %d, none, one",
			version, indexes, digests, schemaVersion)
	}
	var oldColumns int
	if err := b.write.QueryRow(`SELECT (SELECT COUNT(*) FROM pragma_table_info('licenses') WHERE name LIKE '%total%')
		+ (SELECT COUNT(*) FROM pragma_table_info('license_features') WHERE name LIKE '%total%')`).Scan(&oldColumns); err != nil {
		t.Fatal(err)
	}
	if oldColumns != 0 {
		t.Errorf("%d counter columns left in licenses and license_features, want none", oldColumns)
	}
	// A seed imported before the digest was recorded is applied once more.
	for i, want := range []bool{true, false} {
		p, err := seed.Parse("seed.json", []byte(storetest.Seed))
		if err != nil {
			t.Fatal(err)
		}
		if applied, err := b.Import(context.Background(), p); err != nil || applied != want {
			t.Errorf("import %d after the migration: applied %v, %v; want %v", i+1, applied, err, want)
		}
	}
	if out, err := consumeRender(b, 1); err != nil || out.Total != 4 {
		t.Errorf("consuming after the migration: total %d, %v; want 4", out.Total, err)
	}
	if out, err := consumeLicense(b, 1); err != nil || out.Total != licenseBefore.Total+1 {
		t.Errorf("consuming the license after the migration: total %d, %v; want %d", out.Total, err, licenseBefore.Total+1)
	}
}

// consumeLicense consumes n of the seed's consumption license.
func consumeLicense(b *Backend, n int64) (consumption.LicenseOutcome, error) {
	return storetest.ConsumeLicense(context.Background(), b, consumption.LicenseConsumption{
		Time: time.Now(), LicenseID: 1003, HardwareID: "hw-1", Requested: n, APIKey: "key-1",
		Event: consumption.EventConsumptionAdd,
	})
}

// TestSyncFailure makes the write-ahead log's sync fail: the consumption
// whose commit it was to make durable must be answered with that failure,
// not as made, and the store must refuse every write after it, imports
// included, since what the disk kept is unknown.
func TestSyncFailure(t *testing.T) {
	b := open2(t, filepath.Join(t.TempDir(), "license_api.db"))
	storetest.ImportSeed(t, b, storetest.Seed)
	if out, err := consumeRender(b, 1); err != nil || out.Total != 1 {
		t.Fatalf("consuming 1: %+v, %v", out, err)
	}
	failing := &failingWAL{}
	b.w.syncMu.Lock()
	b.w.wal = failing
	b.w.syncMu.Unlock()
	for i := range 2 {
		if out, err := consumeRender(b, 1); err == nil || !strings.Contains(err.Error(), "disk on fire") {
			t.Errorf("consumption %d after the failed sync: %+v, %v; want the sync's error", i, out, err)
		}
	}
	p, err := seed.Parse("seed.json", []byte(storetest.Seed))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Import(context.Background(), p); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("import after the failed sync: %v; want the sync's error", err)
	}
	if failing.syncs != 1 {
		t.Errorf("%d syncs tried, want 1: the store takes no more writes after one failed", failing.syncs)
	}
}

// failingWAL is a write-ahead log whose syncs fail.
type failingWAL struct{ syncs int }

func (f *failingWAL) sync() error  { f.syncs++; return errors.New("disk on fire") }
func (f *failingWAL) close() error { return nil }

// TestWALFileReopened checks that the write-ahead log kept open between
// syncs follows SQLite deleting and making it again: a sync after that must
// flush the new file, not the deleted one.
func TestWALFileReopened(t *testing.T) {
	path := filepath.Join(t.TempDir(), "license_api.db-wal")
	w := &walFile{path: path}
	defer w.close()
	if err := w.sync(); err != nil || w.f != nil {
		t.Fatalf("sync of a log that does not exist: %v, file %v; want nothing done", err, w.f)
	}
	for i := range 2 {
		if err := os.WriteFile(path, []byte("frames"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := w.sync(); err != nil {
			t.Fatal(err)
		}
		held, err := w.f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		named, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if !os.SameFile(held, named) {
			t.Errorf("log %d: the synced file is not the one named %s", i, path)
		}
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBatchGrowsDuringSync holds a sync of the write-ahead log and checks
// that writes arriving meanwhile, one first and then four, are committed in
// one transaction once it ends, rather than the first alone as soon as it
// ran.
func TestBatchGrowsDuringSync(t *testing.T) {
	b := open2(t, filepath.Join(t.TempDir(), "license_api.db"))
	storetest.ImportSeed(t, b, storetest.Seed)
	held := &heldWAL{entered: make(chan struct{}), release: make(chan struct{})}
	b.w.syncMu.Lock()
	b.w.wal = held
	b.w.syncMu.Unlock()

	errs := make(chan error, 6)
	go func() {
		_, err := consumeRender(b, 1)
		errs <- err
	}()
	<-held.entered // the first write is committed, and its sync held
	before := b.WriteStats().Commits
	ran := make(chan struct{})
	write := func() {
		errs <- b.do(context.Background(), func(context.Context, *writeTx) (error, error) {
			ran <- struct{}{}
			return nil, nil
		})
	}
	go write()
	<-ran
	for range 4 {
		go write()
	}
	for range 4 {
		<-ran
	}
	close(held.release)
	for range 6 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := b.WriteStats().Commits - before; n != 1 {
		t.Errorf("the five writes made during the sync took %d commits, want 1", n)
	}
	if out, err := consumeRender(b, 1); err != nil || out.Total != 2 {
		t.Errorf("consuming after: %+v, %v; want a total of 2", out, err)
	}
}

// heldWAL is a write-ahead log whose first sync waits for release, then
// returns err.
type heldWAL struct {
	entered, release chan struct{}
	once             sync.Once
	err              error
}

func (h *heldWAL) sync() (err error) {
	h.once.Do(func() {
		close(h.entered)
		<-h.release
		err = h.err
	})
	return err
}

func (h *heldWAL) close() error { return nil }

// TestDecidedBeforeDurable holds a sync of the write-ahead log, which then
// fails, and checks the two phases of a consumption: its outcome comes
// while the sync is held, as soon as its batch is committed, and its
// Durable reports the sync's failure, so the consumption is never
// acknowledged as made.
func TestDecidedBeforeDurable(t *testing.T) {
	b := open2(t, filepath.Join(t.TempDir(), "license_api.db"))
	storetest.ImportSeed(t, b, storetest.Seed)
	held := &heldWAL{entered: make(chan struct{}), release: make(chan struct{}), err: errors.New("disk on fire")}
	b.w.syncMu.Lock()
	b.w.wal = held
	b.w.syncMu.Unlock()

	type decision struct {
		out     consumption.FeatureOutcome
		durable consumption.Durable
		err     error
	}
	decided := make(chan decision, 1)
	go func() {
		out, durable, err := b.ConsumeFeature(context.Background(), consumption.FeatureConsumption{
			Time: time.Now(), LicenseID: 1001, LicenseFeatureID: 5001, Feature: "render", HardwareID: "hw-1",
			Requested: 1, APIKey: "key-1", Event: consumption.EventConsumptionAdd})
		decided <- decision{out, durable, err}
	}()
	var d decision
	select {
	case d = <-decided:
	case <-time.After(10 * time.Second):
		t.Fatal("the consumption was not decided while its sync was held")
	}
	if d.err != nil || d.out.Total != 1 || d.durable == nil {
		t.Fatalf("decided %+v, %v, durable %v; want a total of 1 and a sync to wait for", d.out, d.err, d.durable != nil)
	}
	<-held.entered
	close(held.release)
	if err := d.durable.Wait(); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("Wait after the failed sync: %v; want the sync's error", err)
	}
}
