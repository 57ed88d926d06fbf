package postgres

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"

	"github.com/edgelicense/caddy-license-api/store"
)

// Channel is the PostgreSQL notification channel on which changes of
// definitions are announced to every node sharing the database. Channels are
// per database, not per schema: deployments that share a database in
// separate schemas hear each other's announcements, which costs them only
// needless cache clears.
const Channel = "license_api_changes"

// PayloadAll is the payload of the notification an import that changed
// anything sends: any definition may have changed.
const PayloadAll = "all"

// licensePrefix starts the payload of a change to one license.
const licensePrefix = "license:"

// LicensePayload is the payload Activate and Deactivate send when they
// change a binding: the license's active flag and its devices may be cached
// as they were. It is "license:<license id>"; the license's cached entry
// holds its devices, so naming the license is enough.
func LicensePayload(licenseID int64) string {
	return licensePrefix + strconv.FormatInt(licenseID, 10)
}

// ParseLicensePayload reads a payload made by LicensePayload; ok is false
// for any other payload.
func ParseLicensePayload(payload string) (licenseID int64, ok bool) {
	id, ok := strings.CutPrefix(payload, licensePrefix)
	if !ok {
		return 0, false
	}
	licenseID, err := strconv.ParseInt(id, 10, 64)
	return licenseID, err == nil
}

const (
	// defaultListenPing is how long the subscription's connection may stay
	// silent before it is pinged. A connection into a network black hole
	// never reports an error by itself; the ping finds it out.
	defaultListenPing = 30 * time.Second
	// Reconnection backoff bounds: the first retry is quick, and a database
	// that stays away is not hammered.
	minListenBackoff = 100 * time.Millisecond
	maxListenBackoff = 5 * time.Second
)

// Notify announces a change of definitions on Channel, for changes made
// outside Import. payload is up to the caller; PostgreSQL limits it to under
// 8000 bytes. Like a read, it is bounded by Config.Timeout.
func (b *Backend) Notify(ctx context.Context, payload string) error {
	return b.do(ctx, func(ctx context.Context) error {
		_, err := b.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, Channel, payload)
		return err
	})
}

// Subscribe starts a goroutine that listens on Channel over a connection of
// its own (outside the pool) and calls onNotify with each payload, from every
// node including this one. After each (re)connection, the first included,
// and before any notification it brings, it calls onReconnect: notifications
// sent while it was not listening are lost, so a cache kept coherent by them
// must be cleared there. After an error it reconnects with backoff; it stops
// when ctx ends or the Backend is closed. The callbacks run on that
// goroutine, one at a time, and should return quickly.
func (b *Backend) Subscribe(ctx context.Context, onNotify func(payload string), onReconnect func()) {
	b.subMu.Lock()
	defer b.subMu.Unlock()
	if b.closing {
		return
	}
	b.subs.Go(func() {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(b.stop, cancel)
		defer stop()
		b.listen(ctx, onNotify, onReconnect)
	})
}

func (b *Backend) listen(ctx context.Context, onNotify func(string), onReconnect func()) {
	backoff := minListenBackoff
	for {
		err := b.listenOnce(ctx, onNotify, onReconnect, &backoff)
		if ctx.Err() != nil {
			return
		}
		b.logger.Warn("lost the license store's change notifications; reconnecting",
			zap.Error(err), zap.Duration("retry_in", backoff))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxListenBackoff)
	}
}

// listenOnce connects, listens and delivers notifications until the
// connection fails or ctx ends.
func (b *Backend) listenOnce(ctx context.Context, onNotify func(string), onReconnect func(), backoff *time.Duration) error {
	cctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, b.pool.Config().ConnConfig)
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
		defer cancel()
		conn.Close(ctx)
	}()
	if _, err := conn.Exec(cctx, `LISTEN `+Channel); err != nil {
		return err
	}
	*backoff = minListenBackoff
	onReconnect()
	for {
		wctx, cancel := context.WithTimeout(ctx, b.listenPing)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err == nil {
			onNotify(n.Payload)
			continue
		}
		if ctx.Err() != nil || !pgconn.Timeout(err) {
			return err
		}
		// Silent for listenPing: check that the server is still there.
		pctx, cancel := context.WithTimeout(ctx, b.timeout)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return err
		}
	}
}

// Watch implements store.ChangeFeed over Subscribe. A payload it does not
// know is taken as "all": dropping a cache is always safe.
func (b *Backend) Watch(ctx context.Context, onChange func(store.Change), onReconnect func()) {
	b.Subscribe(ctx, func(payload string) {
		if id, ok := ParseLicensePayload(payload); ok {
			onChange(store.Change{LicenseID: id})
			return
		}
		onChange(store.Change{All: true})
	}, onReconnect)
}
