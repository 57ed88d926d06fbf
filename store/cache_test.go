package store

import (
	"context"
	"testing"
	"time"

	"github.com/edgelicense/caddy-license-api/consumption"
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

func newTestCache(t *testing.T, d consumption.Definitions) *Cache {
	t.Helper()
	c, err := NewCache(d, 1000, time.Minute)
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
		c.LicenseByKey(ctx, 1, "K")     // id 7
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
	c.ForgetLicense(7, "hw")
	lookups()
	if got := d.calls - before; got != 2 {
		t.Errorf("%d backend reads after forgetting license 7 and hw, want 2 (license 7 by id, the device)", got)
	}
	l, ok, err := c.LicenseByKey(ctx, 1, "K")
	if err != nil || !ok || l.ID != 7 {
		t.Errorf("license by key after forgetting: %+v %v %v", l, ok, err)
	}
}
