package cache

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgelicense/caddy-license-api/consumption"
	"github.com/edgelicense/caddy-license-api/store"
)

// countingDefs answers every lookup from fixed data and counts the calls.
type countingDefs struct {
	calls   int
	product consumption.Product
	during  func() // runs inside a lookup, to race it with Clear
}

func (d *countingDefs) Product(_ context.Context, code string) (consumption.Product, bool, error) {
	d.calls++
	if d.during != nil {
		d.during()
	}
	if code != d.product.ShortCode {
		return consumption.Product{}, false, nil
	}
	return d.product, true, nil
}

func (d *countingDefs) LicenseByKey(_ context.Context, pid int64, k string) (consumption.License, bool, error) {
	d.calls++
	return consumption.License{ID: 7, ProductID: pid, Key: k}, true, nil
}

func (d *countingDefs) LicenseByID(_ context.Context, id int64) (consumption.License, bool, error) {
	d.calls++
	return consumption.License{ID: id}, true, nil
}

func (d *countingDefs) LicensesByUser(context.Context, int64, string) ([]consumption.License, error) {
	d.calls++
	return []consumption.License{{ID: 7}, {ID: 8}}, nil
}

func (d *countingDefs) Device(context.Context, int64, string) (consumption.Device, bool, error) {
	d.calls++
	return consumption.Device{}, false, nil
}

func (d *countingDefs) Blacklisted(context.Context, int64, string) (bool, error) {
	d.calls++
	return false, nil
}

func (d *countingDefs) PasswordHash(context.Context, int64, string) (string, error) {
	d.calls++
	return "", nil
}

func (d *countingDefs) Feature(context.Context, int64, string) (consumption.LicenseFeature, bool, error) {
	d.calls++
	return consumption.LicenseFeature{}, false, nil
}

// store.LicenseBundle returns licenses 7 and 8 of product 1, keys "K-7" and
// "K-8", with feature "f" and the active device "hw"; and counts the call.
func (d *countingDefs) LicenseBundle(_ context.Context, id int64) (store.LicenseBundle, bool, error) {
	d.calls++
	if d.during != nil {
		d.during()
	}
	if id != 7 && id != 8 {
		return store.LicenseBundle{}, false, nil
	}
	return store.LicenseBundle{
		License:  consumption.License{ID: id, ProductID: 1, Key: "K-" + strconv.FormatInt(id, 10)},
		Features: []consumption.LicenseFeature{{ID: 70, LicenseID: id, Code: "f"}},
		Devices:  []consumption.Device{{ID: 71, LicenseID: id, HardwareID: "hw", Active: true}},
	}, true, nil
}

// LicenseBundleByKey returns the bundle of product 1's license with key k,
// and counts the call.
func (d *countingDefs) LicenseBundleByKey(ctx context.Context, pid int64, k string) (store.LicenseBundle, bool, error) {
	id, err := strconv.ParseInt(strings.TrimPrefix(k, "K-"), 10, 64)
	if pid != 1 || err != nil || !strings.HasPrefix(k, "K-") {
		d.calls++
		return store.LicenseBundle{}, false, nil
	}
	return d.LicenseBundle(ctx, id)
}

// LicenseBundles pages through licenses 7 and 8, and counts the call.
func (d *countingDefs) LicenseBundles(ctx context.Context, after int64, limit int) ([]store.LicenseBundle, error) {
	var out []store.LicenseBundle
	for id := max(after+1, 7); id <= 8 && len(out) < limit; id++ {
		lb, _, _ := d.LicenseBundle(ctx, id)
		d.calls--
		out = append(out, lb)
	}
	d.calls++
	return out, nil
}

// Blacklist bars "hw-bad" and "hw-worse" from product 1, and counts the call.
func (d *countingDefs) Blacklist(_ context.Context, productID int64) ([]string, error) {
	d.calls++
	if productID != 1 {
		return nil, nil
	}
	return []string{"hw-bad", "hw-worse"}, nil
}

func newTestCache(t *testing.T, d store.Source) *Cache {
	t.Helper()
	c, err := New(d, 1000, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestCacheServesHitsAndMisses(t *testing.T) {
	d := &countingDefs{product: consumption.Product{ID: 1, ShortCode: "cad"}}
	c := newTestCache(t, d)
	ctx := context.Background()
	for _, code := range []string{"cad", "nope"} {
		c.Product(ctx, code)
		c.c.Wait() // ristretto applies sets asynchronously
		p, ok, err := c.Product(ctx, code)
		if err != nil || ok != (code == "cad") || (ok && p.ID != 1) {
			t.Errorf("%s: %+v %v %v", code, p, ok, err)
		}
	}
	if d.calls != 2 {
		t.Errorf("%d backend reads for two keys read twice each, want 2 (hits and misses cached)", d.calls)
	}
	c.Clear()
	c.Product(ctx, "cad")
	if d.calls != 3 {
		t.Errorf("Clear did not drop the entry: %d backend reads", d.calls)
	}
}

// TestCacheClearDuringLoad checks that a load that began before Clear does
// not store its possibly stale result after it.
func TestCacheClearDuringLoad(t *testing.T) {
	d := &countingDefs{product: consumption.Product{ID: 1, ShortCode: "cad"}}
	c := newTestCache(t, d)
	d.during = c.Clear
	c.Product(context.Background(), "cad")
	d.during = nil
	c.c.Wait()
	if _, ok := c.c.Get(key('p', 0, "cad")); ok {
		t.Error("a value loaded before Clear was cached after it")
	}
}

// TestCacheForgetLicense checks that forgetting a license by id reaches it
// however it is looked up (by key, by user), and the device, and nothing else.
func TestCacheForgetLicense(t *testing.T) {
	d := &countingDefs{}
	c := newTestCache(t, d)
	ctx := context.Background()
	lookups := func() {
		c.LicenseByKey(ctx, 1, "K-7")   // id 7
		c.c.Wait()                      // ristretto applies sets asynchronously
		c.LicensesByUser(ctx, 2, "ana") // ids 7 and 8
		c.Device(ctx, 7, "hw")
		c.Device(ctx, 7, "other")
		c.c.Wait()
	}
	lookups()
	lookups() // the second round loads licenses by id that the first cached
	before := d.calls
	lookups()
	if d.calls != before {
		t.Fatalf("a warm cache read the backend %d times", d.calls-before)
	}
	c.ForgetLicense(7)
	lookups()
	if got := d.calls - before; got != 1 {
		t.Errorf("%d backend reads after forgetting license 7 and hw, want 1 (license 7's bundle, devices included)", got)
	}
	l, ok, err := c.LicenseByKey(ctx, 1, "K-7")
	if err != nil || !ok || l.ID != 7 {
		t.Errorf("license by key after forgetting: %+v %v %v", l, ok, err)
	}
}

// TestCacheBundle checks that a license's features and devices are served
// from the one entry its first lookup loads, found or not.
func TestCacheBundle(t *testing.T) {
	d := &countingDefs{}
	c := newTestCache(t, d)
	ctx := context.Background()
	if f, ok, err := c.Feature(ctx, 7, "f"); err != nil || !ok || f.ID != 70 {
		t.Fatalf("feature f: %+v %v %v", f, ok, err)
	}
	c.c.Wait()
	for _, tc := range []struct {
		code, hw string
		found    bool
	}{{"f", "hw", true}, {"g", "other", false}} {
		if _, ok, err := c.Feature(ctx, 7, tc.code); err != nil || ok != tc.found {
			t.Errorf("feature %q: %v %v", tc.code, ok, err)
		}
		if dev, ok, err := c.Device(ctx, 7, tc.hw); err != nil || ok != tc.found || (ok && !dev.Active) {
			t.Errorf("device %q: %+v %v %v", tc.hw, dev, ok, err)
		}
	}
	if l, ok, err := c.LicenseByID(ctx, 7); err != nil || !ok || l.ID != 7 {
		t.Errorf("license 7: %+v %v %v", l, ok, err)
	}
	if d.calls != 1 {
		t.Errorf("%d backend reads for one license's features, devices and row, want 1", d.calls)
	}
	c.Feature(ctx, 9, "f")
	c.c.Wait()
	if _, ok, err := c.Device(ctx, 9, "hw"); ok || err != nil {
		t.Errorf("device of an unknown license: %v %v", ok, err)
	}
	if d.calls != 2 {
		t.Errorf("an unknown license was read %d times, want once (misses cached)", d.calls-1)
	}
}

// TestCacheBlacklist checks that a product's blacklist is read once, as a
// set, and answers for every hardware id.
func TestCacheBlacklist(t *testing.T) {
	d := &countingDefs{}
	c := newTestCache(t, d)
	ctx := context.Background()
	c.Blacklisted(ctx, 1, "hw")
	c.Blacklisted(ctx, 2, "hw")
	c.c.Wait()
	for _, tc := range []struct {
		product int64
		hw      string
		barred  bool
	}{{1, "hw-bad", true}, {1, "hw-worse", true}, {1, "hw", false}, {2, "hw-bad", false}} {
		if got, err := c.Blacklisted(ctx, tc.product, tc.hw); err != nil || got != tc.barred {
			t.Errorf("blacklisted(%d, %s) = %v, %v", tc.product, tc.hw, got, err)
		}
	}
	if d.calls != 2 {
		t.Errorf("%d backend reads for two products' blacklists, want 2", d.calls)
	}
}

// TestCacheForgetDuringLoad checks that a license's bundle loaded while the
// license is forgotten is not stored: it may predate the change.
func TestCacheForgetDuringLoad(t *testing.T) {
	d := &countingDefs{}
	c := newTestCache(t, d)
	d.during = func() { c.ForgetLicense(7) }
	c.Feature(context.Background(), 7, "f")
	d.during = nil
	c.c.Wait()
	if _, ok := c.c.Get(key('l', 7, "")); ok {
		t.Error("a bundle loaded before ForgetLicense was cached after it")
	}
}

// TestCacheHoldsMaxEntries checks that the cache holds as many entries as
// it is sized for.
func TestCacheHoldsMaxEntries(t *testing.T) {
	d := &countingDefs{}
	c := newTestCache(t, d) // 1000 entries
	ctx := context.Background()
	for range 2 {
		for i := range 900 {
			c.Product(ctx, strconv.Itoa(i))
		}
		c.c.Wait()
	}
	if d.calls != 900 {
		t.Errorf("%d backend reads for 900 products read twice, want 900", d.calls)
	}
}

// TestCacheWarm checks that warming loads every license and its key, so
// that requests for them read nothing more.
func TestCacheWarm(t *testing.T) {
	d := &countingDefs{}
	c := newTestCache(t, d)
	ctx := context.Background()
	if n, err := c.Warm(ctx); n != 2 || err != nil {
		t.Fatalf("Warm: %d licenses, %v; want 2", n, err)
	}
	before := d.calls
	for _, k := range []string{"K-7", "K-8"} {
		l, ok, err := c.LicenseByKey(ctx, 1, k)
		if err != nil || !ok || "K-"+strconv.FormatInt(l.ID, 10) != k {
			t.Errorf("license %s: %+v %v %v", k, l, ok, err)
		}
		if _, ok, _ := c.Device(ctx, l.ID, "hw"); !ok {
			t.Errorf("device of %s not found", k)
		}
	}
	if d.calls != before {
		t.Errorf("%d backend reads after warming", d.calls-before)
	}

	small, err := New(d, 2, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	if n, err := small.Warm(ctx); n != 1 || err != nil {
		t.Errorf("Warm of a cache of 2 entries: %d licenses, %v; want 1 (one bundle fills half)", n, err)
	}
}

// TestCacheWarmForgetDuringLoad checks that a page read while a license is
// forgotten is read again rather than stored.
func TestCacheWarmForgetDuringLoad(t *testing.T) {
	d := &countingDefs{}
	c := newTestCache(t, d)
	forgets := 0
	d.during = func() {
		if forgets == 0 {
			forgets++
			c.ForgetLicense(7)
		}
	}
	if n, err := c.Warm(context.Background()); n != 2 || err != nil {
		t.Fatalf("Warm: %d licenses, %v; want 2", n, err)
	}
	if d.calls != 2 {
		t.Errorf("%d page reads, want 2 (the overtaken page again)", d.calls)
	}
}

// TestCacheLicenseByKeyLoadsBundle checks that a key's first lookup caches
// its license's bundle too, so that the request's device and feature
// lookups that follow read nothing.
func TestCacheLicenseByKeyLoadsBundle(t *testing.T) {
	d := &countingDefs{}
	c := newTestCache(t, d)
	ctx := context.Background()
	l, ok, err := c.LicenseByKey(ctx, 1, "K-7")
	if err != nil || !ok || l.ID != 7 {
		t.Fatalf("license by key: %+v %v %v", l, ok, err)
	}
	if _, ok, _ := c.Device(ctx, 7, "hw"); !ok {
		t.Error("device hw not found")
	}
	if _, ok, _ := c.Feature(ctx, 7, "f"); !ok {
		t.Error("feature f not found")
	}
	if _, ok, _ := c.LicenseByKey(ctx, 1, "K-7"); !ok || d.calls != 1 {
		t.Errorf("%d backend reads for a key, its license's device and feature, and the key again; want 1", d.calls)
	}
}

// TestCacheKeyIndex checks the index of license keys: unknown keys stay out
// of it (and are still answered from memory), a stale entry is read again,
// Clear empties it, and it never holds more than the cache's size.
func TestCacheKeyIndex(t *testing.T) {
	d := &countingDefs{}
	c := newTestCache(t, d)
	ctx := context.Background()
	for range 2 {
		for _, k := range []string{"nope", "K-9", "K-x"} {
			if _, ok, err := c.LicenseByKey(ctx, 1, k); ok || err != nil {
				t.Fatalf("unknown key %q: found %v, %v", k, ok, err)
			}
		}
		c.c.Wait()
	}
	if d.calls != 3 || len(c.keys.m) != 0 {
		t.Errorf("unknown keys, twice: %d backend reads (want 3), %d index entries (want 0)", d.calls, len(c.keys.m))
	}

	if l, ok, _ := c.LicenseByKey(ctx, 1, "K-7"); !ok || l.ID != 7 || c.keys.m[keyOfProduct{1, "K-7"}] != 7 {
		t.Fatalf("K-7: %+v %v; index %v", l, ok, c.keys.m)
	}
	c.keys.m[keyOfProduct{1, "K-7"}] = 8 // as if license 7's key now named license 8
	if l, ok, _ := c.LicenseByKey(ctx, 1, "K-7"); !ok || l.ID != 7 || c.keys.m[keyOfProduct{1, "K-7"}] != 7 {
		t.Errorf("K-7 with a stale index entry: %+v %v; index %v", l, ok, c.keys.m)
	}

	c.Clear()
	if len(c.keys.m) != 0 {
		t.Errorf("Clear left %d index entries", len(c.keys.m))
	}

	small, err := New(d, 1, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	for _, k := range []string{"K-7", "K-8", "K-7"} {
		if l, ok, _ := small.LicenseByKey(ctx, 1, k); !ok || l.Key != k {
			t.Errorf("%s in a cache of one entry: %+v %v", k, l, ok)
		}
		if len(small.keys.m) > 1 {
			t.Errorf("a cache of one entry indexes %d keys", len(small.keys.m))
		}
	}
}

// TestCacheOfOneEntry checks that the smallest cache max_entries allows
// works: ristretto's admission sketch panicked with a single counter.
func TestCacheOfOneEntry(t *testing.T) {
	d := &countingDefs{}
	c, err := New(d, 1, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 2 {
		if l, ok, err := c.LicenseByID(context.Background(), 7); !ok || err != nil || l.ID != 7 {
			t.Fatalf("license 7: %+v %v %v", l, ok, err)
		}
	}
	if d.calls != 1 {
		t.Errorf("%d backend reads for one license twice, want 1", d.calls)
	}
}
