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

func (d *countingDefs) LicenseByKey(context.Context, int64, string) (consumption.License, bool, error) {
	d.calls++
	return consumption.License{}, false, nil
}

func (d *countingDefs) LicensesByUser(context.Context, int64, string) ([]consumption.License, error) {
	d.calls++
	return nil, nil
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

// TestCacheForgetLicense checks that an activation's change reaches every
// entry that names the license: by key, by each user, and the device.
func TestCacheForgetLicense(t *testing.T) {
	d := &countingDefs{}
	c := newTestCache(t, d)
	ctx := context.Background()
	lookups := func() {
		c.LicenseByKey(ctx, 1, "K")
		c.LicensesByUser(ctx, 2, "ana")
		c.LicensesByUser(ctx, 2, "bob")
		c.Device(ctx, 7, "hw")
		c.Device(ctx, 7, "other")
		c.c.Wait()
	}
	lookups()
	before := d.calls
	c.ForgetLicense(&consumption.License{ID: 7, ProductID: 1, Key: "K"}, "hw")
	c.ForgetLicense(&consumption.License{ID: 8, ProductID: 2, Users: []string{"ana", "bob"}}, "x")
	lookups()
	if got := d.calls - before; got != 4 {
		t.Errorf("%d lookups read the backend after ForgetLicense, want 4 (key, two users, the device; not the other device)", got)
	}
}
