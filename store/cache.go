package store

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"

	"github.com/edgelicense/caddy-license-api/consumption"
)

// Cache serves Definitions from memory (ristretto) in front of a backend. It
// caches misses too, so a client hammering an unknown key costs no database
// reads. It never holds counters: those are read and written only inside the
// backend's atomic step.
type Cache struct {
	next  consumption.Definitions
	c     *ristretto.Cache[string, any]
	ttl   time.Duration
	clock atomic.Uint64 // generation, bumped by Clear
}

// Default cache settings.
const (
	DefaultCacheEntries = 1_000_000
	DefaultCacheTTL     = 5 * time.Minute
)

// NewCache returns a Cache of at most maxEntries entries (0 for
// DefaultCacheEntries), each kept at most ttl (0 for DefaultCacheTTL).
func NewCache(next consumption.Definitions, maxEntries int64, ttl time.Duration) (*Cache, error) {
	if maxEntries <= 0 {
		maxEntries = DefaultCacheEntries
	}
	if ttl <= 0 {
		ttl = DefaultCacheTTL
	}
	c, err := ristretto.NewCache(&ristretto.Config[string, any]{
		NumCounters: maxEntries * 10, // ristretto's advice: ten counters per entry
		MaxCost:     maxEntries,      // every entry costs 1
		BufferItems: 64,
		Metrics:     true,
	})
	if err != nil {
		return nil, err
	}
	return &Cache{next: next, c: c, ttl: ttl}, nil
}

// Clear drops every entry, after definitions changed. A read that started
// before Clear (or ForgetLicense) does not store its possibly stale result
// afterwards.
func (c *Cache) Clear() {
	c.clock.Add(1)
	c.c.Clear()
}

// Stats returns how many lookups were served from memory and how many read
// the backend.
func (c *Cache) Stats() (hits, misses uint64) { return c.c.Metrics.Hits(), c.c.Metrics.Misses() }

// Close releases the cache's goroutines.
func (c *Cache) Close() { c.c.Close() }

// lookup returns the cached value for key, or loads, caches and returns it.
func lookup[T any](c *Cache, key string, load func() (T, error)) (T, error) {
	if v, ok := c.c.Get(key); ok {
		return v.(T), nil
	}
	gen := c.clock.Load()
	v, err := load()
	if err != nil {
		return v, err
	}
	if c.clock.Load() == gen {
		c.c.SetWithTTL(key, v, 1, c.ttl)
	}
	return v, nil
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

// Licenses are cached by id ('l'); lookups by key ('k') and by user ('u')
// cache only ids. A change to a license then invalidates one entry, whatever
// it is addressed by, which is what a node told "license 7 changed" by
// another node can do.

// license returns the license with id, from memory or the backend.
func (c *Cache) license(ctx context.Context, id int64) (consumption.License, bool, error) {
	return lookupFound(c, key('l', id, ""), func() (consumption.License, bool, error) {
		return c.next.LicenseByID(ctx, id)
	})
}

// LicenseByID implements consumption.Definitions.
func (c *Cache) LicenseByID(ctx context.Context, id int64) (consumption.License, bool, error) {
	return c.license(ctx, id)
}

// LicenseByKey implements consumption.Definitions.
func (c *Cache) LicenseByKey(ctx context.Context, productID int64, k string) (consumption.License, bool, error) {
	id, ok, err := lookupFound(c, key('k', productID, k), func() (int64, bool, error) {
		l, ok, err := c.next.LicenseByKey(ctx, productID, k)
		return l.ID, ok, err
	})
	if err != nil || !ok {
		return consumption.License{}, false, err
	}
	return c.license(ctx, id)
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

// Device implements consumption.Definitions.
func (c *Cache) Device(ctx context.Context, licenseID int64, hardwareID string) (consumption.Device, bool, error) {
	return lookupFound(c, key('d', licenseID, hardwareID), func() (consumption.Device, bool, error) {
		return c.next.Device(ctx, licenseID, hardwareID)
	})
}

// Blacklisted implements consumption.Definitions.
func (c *Cache) Blacklisted(ctx context.Context, productID int64, hardwareID string) (bool, error) {
	return lookup(c, key('b', productID, hardwareID), func() (bool, error) {
		return c.next.Blacklisted(ctx, productID, hardwareID)
	})
}

// Feature implements consumption.Definitions.
func (c *Cache) Feature(ctx context.Context, licenseID int64, code string) (consumption.LicenseFeature, bool, error) {
	return lookupFound(c, key('f', licenseID, code), func() (consumption.LicenseFeature, bool, error) {
		return c.next.Feature(ctx, licenseID, code)
	})
}

// PasswordHash implements consumption.Definitions.
func (c *Cache) PasswordHash(ctx context.Context, licenseID int64, username string) (string, error) {
	return lookup(c, key('w', licenseID, username), func() (string, error) {
		return c.next.PasswordHash(ctx, licenseID, username)
	})
}

// ForgetLicense drops what the cache holds of a license whose activation
// state changed and of the device. It is consumption.Service's Forget hook,
// and what a node does when another node announces such a change.
func (c *Cache) ForgetLicense(licenseID int64, hardwareID string) {
	c.clock.Add(1) // a read under way must not store what it read before the change
	c.c.Del(key('l', licenseID, ""))
	c.c.Del(key('d', licenseID, hardwareID))
}
