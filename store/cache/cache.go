// Package cache is the definitions cache: it serves consumption.Definitions
// from memory in front of a store.Source, and is the only user of ristretto.
package cache

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unique"

	"github.com/dgraph-io/ristretto/v2"

	"github.com/edgelicense/caddy-license-api/consumption"
	"github.com/edgelicense/caddy-license-api/store"
)

// Cache serves Definitions from memory (ristretto) in front of a backend. It
// caches misses too, so a client hammering an unknown key costs no database
// reads. It never holds counters: those are read and written only inside the
// backend's atomic step.
//
// A license is cached as one entry with its features and devices (a
// store.LicenseBundle), and a product's blacklist as one set, so that a request
// about a license not seen before costs one backend call for all it reads
// of that license rather than one per lookup, and the cache holds a few
// entries per license rather than one per feature and device.
type Cache struct {
	next       store.Source
	c          *ristretto.Cache[string, any]
	ttl        time.Duration
	maxEntries int64
	keys       keyIndex
	// hits and misses count lookups served from memory and from the
	// backend. Ristretto's own metrics would count them too, but also keep
	// an admission time for up to 100,000 keys: some 90 bytes per cached
	// license that nothing here reads.
	hits, misses atomic.Uint64
	// clock is the generation, moved by Clear and ForgetLicense. A load
	// stores its result only if the clock has not moved since it began,
	// checked under mu's read lock; Clear and ForgetLicense move it and
	// drop entries under the write lock, so no store slips in between the
	// check and the drop.
	mu    sync.RWMutex
	clock atomic.Uint64
}

// Default cache settings.
const (
	DefaultEntries = 1_000_000
	DefaultTTL     = 5 * time.Minute
)

// minCounters is the fewest admission counters a cache gets, however small.
const minCounters = 64

// New returns a Cache of at most maxEntries entries (0 for
// DefaultEntries), each kept at most ttl (0 for DefaultTTL).
func New(next store.Source, maxEntries int64, ttl time.Duration) (*Cache, error) {
	if maxEntries <= 0 {
		maxEntries = DefaultEntries
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	c, err := ristretto.NewCache(&ristretto.Config[string, any]{
		// Ristretto advises ten admission counters per entry, for a cache
		// that is full; at the default size those cost 45 MB however few
		// entries the cache holds, and this one is full only with half a
		// million licenses in use within a ttl. One per entry keeps its
		// admission policy working, with rougher estimates, for 4 MB.
		// Ristretto's sketch needs some counters to index at all: with one
		// it panics on its first set.
		NumCounters: max(maxEntries, minCounters),
		MaxCost:     maxEntries, // every entry costs 1
		// Without this, ristretto adds its own bookkeeping (56 bytes) to
		// each entry's cost, and the cache would hold not maxEntries but
		// 1/57th of it.
		IgnoreInternalCost: true,
		BufferItems:        64,
	})
	if err != nil {
		return nil, err
	}
	return &Cache{next: next, c: c, ttl: ttl, maxEntries: maxEntries, keys: keyIndex{m: map[keyOfProduct]int64{}}}, nil
}

// Clear drops every entry, after definitions changed. A read that started
// before Clear (or ForgetLicense) does not store its possibly stale result
// afterwards.
func (c *Cache) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clock.Add(1)
	c.c.Clear()
	c.keys.clear()
}

// Stats returns how many lookups were served from memory and how many read
// the backend.
func (c *Cache) Stats() (hits, misses uint64) { return c.hits.Load(), c.misses.Load() }

// Close releases the cache's goroutines.
func (c *Cache) Close() { c.c.Close() }

// lookup returns the cached value for key, or loads, caches and returns it.
func lookup[T any](c *Cache, key string, load func() (T, error)) (T, error) {
	if v, ok := c.c.Get(key); ok {
		c.hits.Add(1)
		return v.(T), nil
	}
	c.misses.Add(1)
	gen := c.clock.Load()
	v, err := load()
	if err != nil {
		return v, err
	}
	c.store(gen, entry{key, v})
	return v, nil
}

// entry is a key and the value to cache under it.
type entry struct {
	key string
	v   any
}

// store caches entries loaded from the backend by a read that began at
// generation gen, unless a Clear or ForgetLicense has come since; it
// reports whether none had.
func (c *Cache) store(gen uint64, entries ...entry) bool {
	return c.storeKeyed(gen, nil, entries...)
}

// storeKeyed is store that also indexes the key-based licenses among
// keyed, which must be the same bundles as those stored.
func (c *Cache) storeKeyed(gen uint64, keyed []*store.LicenseBundle, entries ...entry) bool {
	stored := false
	c.mu.RLock()
	current := c.clock.Load() == gen
	if current {
		for _, e := range entries {
			stored = c.c.SetWithTTL(e.key, e.v, 1, c.ttl) || stored
		}
		c.keys.add(c.maxEntries, keyed)
	}
	c.mu.RUnlock()
	if stored {
		// Ristretto applies sets asynchronously. The request that missed
		// looks the license up again at once (its device, then its
		// feature), and without waiting would load the bundle again.
		// Waiting also keeps Warm's pages from overflowing the set
		// buffer, which drops what does not fit.
		c.c.Wait()
	}
	return current
}

type found[T any] struct {
	v  T
	ok bool
}

func lookupFound[T any](c *Cache, key string, load func() (T, bool, error)) (T, bool, error) {
	f, err := lookup(c, key, func() (found[T], error) {
		v, ok, err := load()
		return found[T]{v, ok}, err
	})
	return f.v, f.ok, err
}

// Keys start with a letter per kind and separate parts with NUL, which no
// short code, key or hardware id carries.
func key(kind byte, id int64, s string) string {
	b := make([]byte, 0, 2+20+1+len(s))
	b = append(b, kind, 0)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, 0)
	b = append(b, s...)
	return string(b)
}

// Product implements consumption.Definitions.
func (c *Cache) Product(ctx context.Context, shortCode string) (consumption.Product, bool, error) {
	return lookupFound(c, key('p', 0, shortCode), func() (consumption.Product, bool, error) {
		return c.next.Product(ctx, shortCode)
	})
}

// Licenses are cached by id ('l'), as bundles; lookups by key (the key
// index) and by user ('u') hold only ids. A change to a license then
// invalidates one entry, whatever it is addressed by, which is what a node
// told "license 7 changed" by another node can do.

// keyIndex maps the license keys of licenses in the cache to their ids.
// A key names the same license until an import, which clears the cache, so
// an entry needs no ttl and outlives its bundle's; only keys of stored
// licenses get in, so clients can't grow it, and it is cleared whole should
// it ever reach maxEntries. An entry costs some 60 bytes, its key sharing
// the bundle's string, where a ristretto entry costs three times that.
type keyIndex struct {
	mu sync.RWMutex
	m  map[keyOfProduct]int64
}

type keyOfProduct struct {
	productID int64
	key       string
}

func (x *keyIndex) get(productID int64, key string) (int64, bool) {
	x.mu.RLock()
	id, ok := x.m[keyOfProduct{productID, key}]
	x.mu.RUnlock()
	return id, ok
}

// add indexes the key-based licenses among bundles.
func (x *keyIndex) add(maxEntries int64, bundles []*store.LicenseBundle) {
	if len(bundles) == 0 {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, lb := range bundles {
		if l := &lb.License; l.Key != "" {
			if int64(len(x.m)) >= maxEntries {
				x.m = map[keyOfProduct]int64{}
			}
			x.m[keyOfProduct{l.ProductID, l.Key}] = l.ID
		}
	}
}

// clear empties the index, in a new map: clearing a map keeps its memory.
func (x *keyIndex) clear() {
	x.mu.Lock()
	x.m = map[keyOfProduct]int64{}
	x.mu.Unlock()
}

// bundle returns the license with id and its features and devices, from
// memory or the backend; nil when there is no such license.
func (c *Cache) bundle(ctx context.Context, id int64) (*store.LicenseBundle, error) {
	return lookup(c, key('l', id, ""), func() (*store.LicenseBundle, error) {
		lb, ok, err := c.next.LicenseBundle(ctx, id)
		if err != nil || !ok {
			return nil, err
		}
		shareStrings(&lb)
		return &lb, nil
	})
}

// license returns the license with id, from memory or the backend.
func (c *Cache) license(ctx context.Context, id int64) (consumption.License, bool, error) {
	lb, err := c.bundle(ctx, id)
	if err != nil || lb == nil {
		return consumption.License{}, false, err
	}
	return lb.License, true, nil
}

// LicenseByID implements consumption.Definitions.
func (c *Cache) LicenseByID(ctx context.Context, id int64) (consumption.License, bool, error) {
	return c.license(ctx, id)
}

// LicenseByKey implements consumption.Definitions. A key found in the
// index is served from its license's bundle; one not found is read with its
// license's bundle, in one backend call, and both are cached. Unknown keys
// are cached as ristretto entries ('k'), which expire and are evicted like
// any other, since clients choose them.
func (c *Cache) LicenseByKey(ctx context.Context, productID int64, k string) (consumption.License, bool, error) {
	if id, ok := c.keys.get(productID, k); ok {
		l, ok, err := c.license(ctx, id)
		// The bundle names its key: should an index entry ever be stale
		// (a license deleted and its key given to another), the key is
		// read again below.
		if err != nil || ok && l.ProductID == productID && l.Key == k {
			return l, ok, err
		}
	}
	kk := key('k', productID, k)
	if _, ok := c.c.Get(kk); ok {
		c.hits.Add(1)
		return consumption.License{}, false, nil
	}
	c.misses.Add(1)
	gen := c.clock.Load()
	lb, ok, err := c.next.LicenseBundleByKey(ctx, productID, k)
	if err != nil {
		return consumption.License{}, false, err
	}
	if !ok {
		c.store(gen, entry{kk, struct{}{}})
		return consumption.License{}, false, nil
	}
	shareStrings(&lb)
	c.storeKeyed(gen, []*store.LicenseBundle{&lb}, entry{key('l', lb.License.ID, ""), &lb})
	return lb.License, true, nil
}

// LicensesByUser implements consumption.Definitions.
func (c *Cache) LicensesByUser(ctx context.Context, productID int64, username string) ([]consumption.License, error) {
	ids, err := lookup(c, key('u', productID, username), func() ([]int64, error) {
		lics, err := c.next.LicensesByUser(ctx, productID, username)
		ids := make([]int64, len(lics))
		for i, l := range lics {
			ids[i] = l.ID
		}
		return ids, err
	})
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	out := make([]consumption.License, 0, len(ids))
	for _, id := range ids {
		l, ok, err := c.license(ctx, id)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, l)
		}
	}
	return out, nil
}

// Device implements consumption.Definitions from the license's bundle.
func (c *Cache) Device(ctx context.Context, licenseID int64, hardwareID string) (consumption.Device, bool, error) {
	lb, err := c.bundle(ctx, licenseID)
	if err != nil || lb == nil {
		return consumption.Device{}, false, err
	}
	d, ok := lb.Device(hardwareID)
	return d, ok, nil
}

// Blacklisted implements consumption.Definitions from the product's cached
// blacklist ('b'), which holds the entries barring every product too.
func (c *Cache) Blacklisted(ctx context.Context, productID int64, hardwareID string) (bool, error) {
	barred, err := lookup(c, key('b', productID, ""), func() (map[string]struct{}, error) {
		hws, err := c.next.Blacklist(ctx, productID)
		if err != nil || len(hws) == 0 {
			return nil, err
		}
		set := make(map[string]struct{}, len(hws))
		for _, hw := range hws {
			set[hw] = struct{}{}
		}
		return set, nil
	})
	_, found := barred[hardwareID]
	return found, err
}

// Feature implements consumption.Definitions from the license's bundle.
func (c *Cache) Feature(ctx context.Context, licenseID int64, code string) (consumption.LicenseFeature, bool, error) {
	lb, err := c.bundle(ctx, licenseID)
	if err != nil || lb == nil {
		return consumption.LicenseFeature{}, false, err
	}
	f, ok := lb.Feature(code)
	return f, ok, nil
}

// PasswordHash implements consumption.Definitions.
func (c *Cache) PasswordHash(ctx context.Context, licenseID int64, username string) (string, error) {
	return lookup(c, key('w', licenseID, username), func() (string, error) {
		return c.next.PasswordHash(ctx, licenseID, username)
	})
}

// ForgetLicense drops what the cache holds of a license whose activation
// state changed: its entry, which holds its features and devices. It is
// consumption.Service's Forget hook, and what a node does when another node
// announces such a change.
func (c *Cache) ForgetLicense(licenseID int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clock.Add(1) // a read under way must not store what it read before the change
	c.c.Del(key('l', licenseID, ""))
}

// shareStrings points the strings of a loaded bundle that many licenses
// have in common (types, periods, feature codes and names, empty customer
// and metadata objects) at one copy each. A backend reads every row's
// strings into memory of their own, and across 100,000 cached licenses
// those copies weighed more than the licenses' own keys.
func shareStrings(lb *store.LicenseBundle) {
	l := &lb.License
	l.Type = unique.Make(l.Type).Value()
	l.Consumption.Period = unique.Make(l.Consumption.Period).Value()
	l.Customer, l.Metadata = shareEmpty(l.Customer), shareEmpty(l.Metadata)
	for i := range lb.Features {
		f := &lb.Features[i]
		f.Code = unique.Make(f.Code).Value()
		f.Name = unique.Make(f.Name).Value()
		f.Type = unique.Make(f.Type).Value()
		f.Period = unique.Make(f.Period).Value()
	}
}

// shareEmpty returns a constant for the empty JSON object most licenses'
// customer and metadata are; others are left alone, being mostly unique.
func shareEmpty(s string) string {
	if s == "{}" {
		return "{}"
	}
	return s
}

// warmPage is how many licenses Warm reads per backend call: few enough
// that a page's sets fit ristretto's set buffer (32,768 items) with room to
// spare, many enough that the calls' own cost is small.
const warmPage = 1000

// Warm loads the bundles of all licenses, in id order, with their keys'
// entries, until it has loaded them all or filled half the cache; the other
// half is left to what requests bring (users, products, unknown keys). It
// is meant for just after a seed import, so that licenses a request has not
// asked for yet cost no backend read; warmed entries expire after the ttl
// like any other. It returns how many licenses it loaded. A page that a
// Clear or ForgetLicense may have overtaken is read again.
func (c *Cache) Warm(ctx context.Context) (int, error) {
	var after int64
	loaded := 0
	for budget := c.maxEntries / 2; ; {
		gen := c.clock.Load()
		page, err := c.next.LicenseBundles(ctx, after, warmPage)
		if err != nil || len(page) == 0 {
			return loaded, err
		}
		// The entries point into the page rather than into copies: its
		// bundles are stored together and expire together.
		n := min(int64(len(page)), budget)
		entries := make([]entry, n)
		keyed := make([]*store.LicenseBundle, n)
		for i := range n {
			shareStrings(&page[i])
			entries[i] = entry{key('l', page[i].License.ID, ""), &page[i]}
			keyed[i] = &page[i]
		}
		if !c.storeKeyed(gen, keyed, entries...) {
			continue
		}
		loaded += int(n)
		budget -= n
		if n < warmPage {
			return loaded, nil
		}
		after = page[len(page)-1].License.ID
	}
}
