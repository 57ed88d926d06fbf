package postgres

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edgelicense/caddy-license-api/consumption"
	"github.com/edgelicense/caddy-license-api/store"
	"github.com/edgelicense/caddy-license-api/store/seed"
	"github.com/edgelicense/caddy-license-api/store/storetest"
)

func TestConformance(t *testing.T) {
	testDSN(t) // skip (or fail in CI) before storetest runs its subtests
	storetest.Run(t, func(t *testing.T) (store.Backend, storetest.LedgerReader) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b, err := Open(ctx, Config{DSN: freshSchema(t)})
		if err != nil {
			t.Fatal(err)
		}
		return b, b.ledger // storetest closes b
	})
}

// raiseRender lifts storetest.Seed's render feature (5001) to max.
func raiseRender(max int) string {
	return `{"products": [{"short_code": "cad", "name": "CAD Suite", "features": [
		{"code": "render", "name": "Render", "max_consumption": ` + strconv.Itoa(max) + `}]}],
	 "licenses": [{"id": 1001, "product": "cad", "license_key": "AAAA-BBBB",
		"validity_period": "2030-01-01T00:00:00Z", "features": [{"code": "render", "id": 5001}]}]}`
}

// counter reads a license feature's stored counter directly.
func counter(t *testing.T, b *Backend, id int64) int64 {
	t.Helper()
	var total int64
	if err := b.pool.QueryRow(context.Background(), `SELECT total_consumptions FROM license_features WHERE id = $1`, id).Scan(&total); err != nil {
		t.Fatal(err)
	}
	return total
}

// TestTwoBackendsOneDatabase is exactness across nodes: two Backends, each
// with its own pool and committers, share one database and split 1000
// concurrent consumptions of 1 against a limit of 600.
func TestTwoBackendsOneDatabase(t *testing.T) {
	dsn := freshSchema(t)
	nodes := []*Backend{open(t, Config{DSN: dsn, MaxConns: 4}), open(t, Config{DSN: dsn, MaxConns: 4})}
	importJSON(t, nodes[0], storetest.Seed)
	importJSON(t, nodes[1], raiseRender(600))

	storetest.ExactLimit(t, []store.Backend{nodes[0], nodes[1]}, nodes[1].ledger, 1001, 5001, 1000, 600)
}

// TestTwoBackendsLicenseLimits races license-level writes across two
// Backends: 10 devices for the two activation slots of storetest.Seed's
// license 1003, and 30 license consumptions of 1 against its 10 + 2
// overages.
func TestTwoBackendsLicenseLimits(t *testing.T) {
	dsn := freshSchema(t)
	nodes := []*Backend{open(t, Config{DSN: dsn, MaxConns: 4}), open(t, Config{DSN: dsn, MaxConns: 4})}
	importJSON(t, nodes[0], storetest.Seed)

	race := func(n int, write func(b *Backend, i int) error, refusal error) (granted int) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				err := write(nodes[i%2], i)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					granted++
				case !errors.Is(err, refusal):
					t.Errorf("unexpected error: %v", err)
				}
			})
		}
		close(start)
		wg.Wait()
		return granted
	}
	ctx := context.Background()
	activations := race(10, func(b *Backend, i int) error {
		_, err := b.Activate(ctx, consumption.DeviceChange{Time: time.Now(), LicenseID: 1003,
			HardwareID: "hw-" + strconv.Itoa(i), APIKey: "key-1"})
		return err
	}, consumption.ErrLicenseActivatedMaxTimes)
	consumed := race(30, func(b *Backend, i int) error {
		_, err := storetest.ConsumeLicense(ctx, b, consumption.LicenseConsumption{Time: time.Now(), LicenseID: 1003,
			HardwareID: "hw-" + strconv.Itoa(i), Requested: 1, APIKey: "key-1", Event: consumption.EventConsumptionAdd})
		return err
	}, consumption.ErrLicenseNotEnoughConsumptions)
	st, err := nodes[1].LicenseStatus(ctx, 1003, "")
	if err != nil {
		t.Fatal(err)
	}
	if activations != 2 || st.TimesActivated != 2 {
		t.Errorf("%d activations granted, %d devices active; want 2 and 2", activations, st.TimesActivated)
	}
	if consumed != 12 || st.Counter.Total != 12 {
		t.Errorf("%d license consumptions granted, total %d; want 12 and 12", consumed, st.Counter.Total)
	}
	ledger, err := nodes[0].ledger(ctx, 1003, 0)
	if err != nil || len(ledger) != 12 || ledger[11].Total != 12 {
		t.Errorf("license ledger: %d rows, %v", len(ledger), err)
	}
}

// TestNodesStartTogether opens several Backends on an empty schema at once:
// the advisory lock lets one migrate while the others wait, and then they
// import the same seed at once, which the import lock serializes: the first
// applies it, and the others find its digest and skip it.
func TestNodesStartTogether(t *testing.T) {
	dsn := freshSchema(t)
	const nodes = 4
	backends := make([]*Backend, nodes)
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			backends[i], errs[i] = Open(ctx, Config{DSN: dsn, MaxConns: 2})
		})
	}
	wg.Wait()
	for i, b := range backends {
		if errs[i] != nil {
			t.Fatalf("node %d: %v", i, errs[i])
		}
		t.Cleanup(func() { b.Close() })
	}
	plan, err := seed.Parse("seed.json", []byte(storetest.Seed))
	if err != nil {
		t.Fatal(err)
	}
	applied := make([]bool, nodes)
	for i, b := range backends {
		wg.Go(func() { applied[i], errs[i] = b.Import(context.Background(), plan) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("import on node %d: %v", i, err)
		}
	}
	if n := len(slices.DeleteFunc(applied, func(a bool) bool { return !a })); n != 1 {
		t.Errorf("%d nodes applied the seed, want 1", n)
	}
	var versions, products int
	if err := backends[0].pool.QueryRow(context.Background(),
		`SELECT (SELECT count(*) FROM schema_version), (SELECT count(*) FROM products)`).Scan(&versions, &products); err != nil {
		t.Fatal(err)
	}
	if versions != len(migrations) || products != 2 {
		t.Errorf("%d schema versions and %d products, want %d and 2", versions, products, len(migrations))
	}
}

// TestGeneratedIDsAvoidSeededOnes imports a license and a feature without
// ids before others that name ids the sequences would otherwise hand out
// first; each must stay a row of its own.
func TestGeneratedIDsAvoidSeededOnes(t *testing.T) {
	b := open(t, Config{DSN: freshSchema(t)})
	importJSON(t, b, `{"products": [{"short_code": "p", "features": [{"code": "a"}, {"code": "b"}]}],
	 "licenses": [
		{"product": "p", "license_key": "GEN", "features": [{"code": "a"}, {"code": "b", "id": 1}]},
		{"id": 1, "product": "p", "license_key": "ONE", "features": [{"code": "a", "id": 2}]}]}`)
	ctx := context.Background()
	p, _, err := b.Product(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	genBundle, ok, err := b.LicenseBundleByKey(ctx, p.ID, "GEN")
	gen := genBundle.License
	if err != nil || !ok || gen.ID <= 1 {
		t.Fatalf("license GEN: %+v %v %v; want an id above the seeded 1", gen, ok, err)
	}
	if one, ok, err := b.LicenseBundleByKey(ctx, p.ID, "ONE"); err != nil || !ok || one.License.ID != 1 {
		t.Fatalf("license ONE: %+v %v %v", one, ok, err)
	}
	ids := map[int64]string{}
	for _, f := range []struct {
		license int64
		code    string
	}{{gen.ID, "a"}, {gen.ID, "b"}, {1, "a"}} {
		lf, ok, err := b.feature(ctx, f.license, f.code)
		if err != nil || !ok {
			t.Fatalf("feature %s of %d: %v %v", f.code, f.license, ok, err)
		}
		if prev, dup := ids[lf.ID]; dup {
			t.Errorf("features %s and %d/%s share id %d", prev, f.license, f.code, lf.ID)
		}
		ids[lf.ID] = strconv.FormatInt(f.license, 10) + "/" + f.code
	}
}

// TestReimportWritesNothing checks that importing an unchanged seed updates
// no row (so it takes no counter locks) while a changed one does.
func TestReimportWritesNothing(t *testing.T) {
	b := open(t, Config{DSN: freshSchema(t)})
	importJSON(t, b, storetest.Seed)
	xmins := func() []string {
		rows, err := b.pool.Query(context.Background(), `SELECT xmin::text FROM products
			UNION ALL SELECT xmin::text FROM product_features UNION ALL SELECT xmin::text FROM licenses
			UNION ALL SELECT xmin::text FROM license_users UNION ALL SELECT xmin::text FROM license_features
			UNION ALL SELECT xmin::text FROM devices UNION ALL SELECT xmin::text FROM blacklist`)
		if err != nil {
			t.Fatal(err)
		}
		out, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(out)
		return out
	}
	before := xmins()
	importJSON(t, b, storetest.Seed)
	if after := xmins(); !slices.Equal(before, after) {
		t.Errorf("re-importing the same seed rewrote rows")
	}
	importJSON(t, b, raiseRender(600))
	if after := xmins(); slices.Equal(before, after) {
		t.Errorf("a changed seed wrote nothing")
	}
	if f, _, _ := b.feature(context.Background(), 1001, "render"); f.MaxConsumption != 600 {
		t.Errorf("render max is %d after the change, want 600", f.MaxConsumption)
	}
}

// TestUnstorableTextFailsAlone sends writes whose hardware ids PostgreSQL
// cannot store (a NUL byte, invalid UTF-8) among good ones: they must fail
// without taking down the batches they would have shared.
func TestUnstorableTextFailsAlone(t *testing.T) {
	b := open(t, Config{DSN: freshSchema(t)})
	importJSON(t, b, storetest.Seed)
	var wg sync.WaitGroup
	var good, bad atomic.Int32
	start := make(chan struct{})
	for i := range 200 {
		hw, unstorable := "hw-"+strconv.Itoa(i), i%10 == 0
		if unstorable {
			hw = []string{"hw\x00nul", "hw-\xff"}[i/10%2]
		}
		wg.Go(func() {
			<-start
			_, err := storetest.ConsumeFeature(context.Background(), b, consumption.FeatureConsumption{Time: time.Now(),
				LicenseID: 1001, LicenseFeatureID: 5002, HardwareID: hw, Requested: 0, APIKey: "key-1",
				Event: consumption.EventConsumptionAdd})
			switch {
			case !unstorable && err == nil:
				good.Add(1)
			case unstorable && errors.Is(err, errUnstorable):
				bad.Add(1)
			default:
				t.Errorf("hardware id %q: %v", hw, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if good.Load() != 180 || bad.Load() != 20 {
		t.Errorf("%d good and %d bad writes answered as such, want 180 and 20", good.Load(), bad.Load())
	}
	if _, err := b.Activate(context.Background(), consumption.DeviceChange{LicenseID: 1003, HardwareID: "a\x00b"}); !errors.Is(err, errUnstorable) {
		t.Errorf("activating a hardware id with a NUL byte: %v", err)
	}
}

// TestImportOutlastsShortTimeout imports a seed with a password through a
// store whose timeout is shorter than one Argon2id hash: the server must not
// end the import's transaction while it hashes between statements.
func TestImportOutlastsShortTimeout(t *testing.T) {
	u, err := url.Parse(freshSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("connect_timeout", "10") // connecting may take longer than 30 ms
	u.RawQuery = q.Encode()
	b := open(t, Config{DSN: u.String(), Timeout: 30 * time.Millisecond})
	importJSON(t, b, storetest.Seed)
}
