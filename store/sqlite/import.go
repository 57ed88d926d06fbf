package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/edgelicense/caddy-license-api/consumption"
	"github.com/edgelicense/caddy-license-api/store/seed"
)

// Import implements store.Backend: it upserts the plan in one transaction,
// unless the last import had the same digest.
func (b *Backend) Import(ctx context.Context, p *seed.Plan) (applied bool, err error) {
	if err := b.w.failed(); err != nil {
		return false, err
	}
	tx, err := b.write.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer func() {
		if err != nil || !applied {
			tx.Rollback()
		}
	}()
	digest := p.Digest()
	var last []byte
	err = tx.QueryRowContext(ctx, `SELECT digest FROM seed_digest WHERE id = 1`).Scan(&last)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("reading the last seed's digest: %w", err)
	}
	if bytes.Equal(last, digest) {
		return false, nil
	}
	im := importer{tx: tx, ctx: ctx, now: time.Now()}
	if err := im.prepare(); err != nil {
		return false, err
	}
	if err := im.reserveIDs(p); err != nil {
		return false, err
	}
	b.w.invalidate()
	if err := p.Apply(&im); err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO seed_digest (id, digest) VALUES (1, ?)
		ON CONFLICT (id) DO UPDATE SET digest = excluded.digest`, digest); err != nil {
		return false, fmt.Errorf("recording the seed's digest: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return false, err
	}
	applied = true
	if err := b.w.sync(); err != nil {
		return applied, err
	}
	// The import read and wrote pages of every table, which filled the
	// write connection's page cache with pages that consumptions mostly
	// never touch; those they do come back as they are used.
	_, err = b.write.ExecContext(ctx, `PRAGMA shrink_memory`)
	return applied, err
}

// importer is the seed.Writer of one import transaction.
type importer struct {
	tx  *sql.Tx
	ctx context.Context
	now time.Time
	// stmts are prepared once per import: a seed of 100,000 licenses runs
	// some 500,000 statements, and preparing each anew took most of the
	// import's time and garbage.
	stmts [numImportStmts]*sql.Stmt
	// nextLicense and nextFeature are the ids new rows without a seed id
	// get: above every stored id and every id the seed gives, so that a
	// generated id can't be taken by a row the seed names later.
	nextLicense, nextFeature int64
}

func (im *importer) reserveIDs(p *seed.Plan) error {
	if err := im.tx.QueryRowContext(im.ctx, `SELECT COALESCE(MAX(id), 0) + 1 FROM licenses`).Scan(&im.nextLicense); err != nil {
		return err
	}
	if err := im.tx.QueryRowContext(im.ctx, `SELECT COALESCE(MAX(id), 0) + 1 FROM license_features`).Scan(&im.nextFeature); err != nil {
		return err
	}
	license, feature := p.MaxIDs()
	im.nextLicense = max(im.nextLicense, license+1)
	im.nextFeature = max(im.nextFeature, feature+1)
	return nil
}

// featureValues are the settings columns of product_features and
// license_features, in schema order from feature_type on.
func featureValues(f *consumption.LicenseFeature) []any {
	return []any{string(f.Type), toMillis(f.ExpiryDate), f.MaxConsumption, f.AllowUnlimited, f.AllowOverages,
		f.MaxOverages, f.AllowNegative, f.ResetConsumption, string(f.Period), f.IsFloating, f.IsFloatingCloud}
}

// The statements of an import, prepared in its transaction.
const (
	upsertProduct = iota
	upsertProductFeature
	insertBlacklistEntry
	licenseIDByKey
	licenseIDByUser
	upsertLicense
	upsertLicenseCounter
	readUsers
	deleteUsers
	insertUser
	featureIDByCode
	upsertLicenseFeature
	upsertFeatureCounter
	upsertDevice
	numImportStmts
)

const featureSettingsSet = `name = excluded.name, feature_type = excluded.feature_type,
	expiry_date = excluded.expiry_date, max_consumption = excluded.max_consumption,
	allow_unlimited = excluded.allow_unlimited, allow_overages = excluded.allow_overages,
	max_overages = excluded.max_overages, allow_negative = excluded.allow_negative,
	reset_consumption = excluded.reset_consumption, consumption_period = excluded.consumption_period,
	is_floating = excluded.is_floating, is_floating_cloud = excluded.is_floating_cloud`

// upsertCounter creates the counter row of a license or license feature
// (at zero when the seed gives no total), or sets it from the seed only when
// the seed's total is new to this database, so that re-importing an
// unchanged file never undoes consumptions and a seed without a total keeps
// them. Its arguments are the id, the seed's total or NULL, and the period
// start.
func upsertCounter(table string) string {
	return `INSERT INTO ` + table + ` (id, total, period_start, seeded_total) VALUES (?1, COALESCE(?2, 0), ?3, ?2)
		ON CONFLICT (id) DO UPDATE SET total = excluded.total, period_start = excluded.period_start,
			seeded_total = excluded.seeded_total
		WHERE excluded.seeded_total IS NOT NULL AND ` + table + `.seeded_total IS NOT excluded.seeded_total`
}

var importQueries = [numImportStmts]string{
	upsertProduct: `INSERT INTO products (short_code, name, authorization_method) VALUES (?, ?, ?)
		ON CONFLICT (short_code) DO UPDATE SET name = excluded.name, authorization_method = excluded.authorization_method
		RETURNING id`,
	upsertProductFeature: `INSERT INTO product_features (product_id, code, name, feature_type,
		expiry_date, max_consumption, allow_unlimited, allow_overages, max_overages, allow_negative,
		reset_consumption, consumption_period, is_floating, is_floating_cloud)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (product_id, code) DO UPDATE SET ` + featureSettingsSet,
	insertBlacklistEntry: `INSERT INTO blacklist (hardware_id, product_id) VALUES (?, ?) ON CONFLICT DO NOTHING`,
	licenseIDByKey:       `SELECT id FROM licenses WHERE product_id = ? AND license_key = ?`,
	licenseIDByUser: `SELECT l.id FROM license_users u JOIN licenses l ON l.id = u.license_id
		WHERE u.username = ? AND l.product_id = ? ORDER BY l.id LIMIT 1`,
	// A license's active flag changes at run time (the first activation
	// sets it); the seed only sets it when its own value changed. The
	// upserts of licenses and license features return nothing: the row
	// keeps the id they are given, a conflict on it being what updates.
	upsertLicense: `INSERT INTO licenses (id, product_id, license_key, enabled, active,
		validity_period, license_type, is_trial, max_activations, allow_unlimited_activations, customer, metadata,
		max_consumption, allow_unlimited, allow_overages, max_overages, allow_negative, reset_consumption,
		consumption_period, seeded_active)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET product_id = excluded.product_id, license_key = excluded.license_key,
			enabled = excluded.enabled, validity_period = excluded.validity_period,
			active = CASE WHEN licenses.seeded_active IS excluded.active THEN licenses.active ELSE excluded.active END,
			seeded_active = excluded.active,
			license_type = excluded.license_type, is_trial = excluded.is_trial,
			max_activations = excluded.max_activations,
			allow_unlimited_activations = excluded.allow_unlimited_activations,
			customer = excluded.customer, metadata = excluded.metadata,
			max_consumption = excluded.max_consumption, allow_unlimited = excluded.allow_unlimited,
			allow_overages = excluded.allow_overages, max_overages = excluded.max_overages,
			allow_negative = excluded.allow_negative, reset_consumption = excluded.reset_consumption,
			consumption_period = excluded.consumption_period`,
	upsertLicenseCounter: upsertCounter("license_counters"),
	readUsers:            `SELECT username, password_hash FROM license_users WHERE license_id = ?`,
	deleteUsers:          `DELETE FROM license_users WHERE license_id = ?`,
	insertUser:           `INSERT INTO license_users (license_id, username, password_hash) VALUES (?, ?, ?)`,
	featureIDByCode:      `SELECT id FROM license_features WHERE license_id = ? AND code = ?`,
	upsertLicenseFeature: `INSERT INTO license_features (id, license_id, code, name, feature_type,
		expiry_date, max_consumption, allow_unlimited, allow_overages, max_overages, allow_negative,
		reset_consumption, consumption_period, is_floating, is_floating_cloud)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET license_id = excluded.license_id, code = excluded.code, ` + featureSettingsSet,
	upsertFeatureCounter: upsertCounter("feature_counters"),
	// Like a license's active flag, a device's binding changes at run time;
	// the seed only sets it when its own value changed.
	upsertDevice: `INSERT INTO devices (license_id, hardware_id, active, seeded_active)
		VALUES (?, ?, ?, ?)
		ON CONFLICT (license_id, hardware_id) DO UPDATE SET
			active = CASE WHEN devices.seeded_active IS excluded.active THEN devices.active ELSE excluded.active END,
			seeded_active = excluded.active`,
}

// prepare prepares the import's statements in its transaction, which
// closes them when it ends.
func (im *importer) prepare() error {
	for i, q := range importQueries {
		st, err := im.tx.PrepareContext(im.ctx, q)
		if err != nil {
			return fmt.Errorf("preparing %q: %w", q, err)
		}
		im.stmts[i] = st
	}
	return nil
}

// Product implements seed.Writer.
func (im *importer) Product(p *seed.Product) (int64, error) {
	var id int64
	err := im.stmts[upsertProduct].QueryRowContext(im.ctx, p.ShortCode, p.Name, p.AuthMethod.String()).Scan(&id)
	if err != nil {
		return 0, err
	}
	for i := range p.Features {
		f := &p.Features[i]
		args := append([]any{id, f.Code, f.Name}, featureValues(f)...)
		if _, err := im.stmts[upsertProductFeature].ExecContext(im.ctx, args...); err != nil {
			return 0, fmt.Errorf("feature %q: %w", f.Code, err)
		}
	}
	return id, nil
}

// BlacklistEntry implements seed.Writer.
func (im *importer) BlacklistEntry(e seed.BlacklistEntry, productID int64) error {
	_, err := im.stmts[insertBlacklistEntry].ExecContext(im.ctx, e.HardwareID, productID)
	return err
}

// existingLicense finds a license the seed does not give an id for by its
// natural key: the license key, or the first user of a user-based license.
func (im *importer) existingLicense(l *seed.License, pid int64) (int64, error) {
	var id int64
	var err error
	if len(l.Users) == 0 {
		err = im.stmts[licenseIDByKey].QueryRowContext(im.ctx, pid, l.Key).Scan(&id)
	} else {
		err = im.stmts[licenseIDByUser].QueryRowContext(im.ctx, l.Users[0], pid).Scan(&id)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return id, err
}

// License implements seed.Writer.
func (im *importer) License(l *seed.License, pid int64) error {
	id := l.ID
	if id == 0 {
		var err error
		if id, err = im.existingLicense(l, pid); err != nil {
			return err
		}
	}
	if id == 0 {
		id = im.nextLicense
		im.nextLicense++
	}
	key := sql.NullString{String: l.Key, Valid: l.Key != ""}
	c := &l.Consumption
	_, err := im.stmts[upsertLicense].ExecContext(im.ctx, id, pid, key, l.Enabled, l.Active,
		toMillis(l.ValidityPeriod), string(l.Type), l.IsTrial, l.MaxActivations, l.AllowUnlimitedActivations,
		l.Customer, l.Metadata, c.MaxConsumption, c.AllowUnlimited, c.AllowOverages, c.MaxOverages,
		c.AllowNegative, c.ResetConsumption, string(c.Period), l.Active)
	if err != nil {
		return err
	}
	if err := im.setCounter(upsertLicenseCounter, id, l.Total, c); err != nil {
		return err
	}
	if err := im.users(id, l); err != nil {
		return err
	}
	for i := range l.Features {
		if err := im.licenseFeature(id, &l.Features[i]); err != nil {
			return fmt.Errorf("feature %q: %w", l.Features[i].Code, err)
		}
	}
	for _, d := range l.Devices {
		if _, err := im.stmts[upsertDevice].ExecContext(im.ctx, id, d.HardwareID, d.Active, d.Active); err != nil {
			return fmt.Errorf("device %q: %w", d.HardwareID, err)
		}
	}
	return nil
}

func (im *importer) licenseFeature(licenseID int64, f *seed.LicenseFeature) error {
	id := f.ID
	if id == 0 {
		err := im.stmts[featureIDByCode].QueryRowContext(im.ctx, licenseID, f.Code).Scan(&id)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
	}
	if id == 0 {
		id = im.nextFeature
		im.nextFeature++
	}
	args := append([]any{id, licenseID, f.Code, f.Name}, featureValues(&f.LicenseFeature)...)
	if _, err := im.stmts[upsertLicenseFeature].ExecContext(im.ctx, args...); err != nil {
		return err
	}
	return im.setCounter(upsertFeatureCounter, id, f.Total, &f.Settings)
}

// users replaces the license's users, keeping each stored password hash
// that still matches the seed's password.
func (im *importer) users(licenseID int64, l *seed.License) error {
	// Only a license with users needs the stored hashes; one without (every
	// key-based license) still has its users deleted, in case it had some.
	var stored map[string]string
	if len(l.Users) > 0 {
		stored = map[string]string{}
		rows, err := im.stmts[readUsers].QueryContext(im.ctx, licenseID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var name, hash string
			if err := rows.Scan(&name, &hash); err != nil {
				rows.Close()
				return err
			}
			stored[name] = hash
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	if _, err := im.stmts[deleteUsers].ExecContext(im.ctx, licenseID); err != nil {
		return err
	}
	for i, u := range l.Users {
		hash, err := seed.PasswordHash(stored[u], l.Passwords[i])
		if err != nil {
			return err
		}
		if _, err := im.stmts[insertUser].ExecContext(im.ctx, licenseID, u, hash); err != nil {
			return err
		}
	}
	return nil
}

// setCounter runs stmt, upsertLicenseCounter or upsertFeatureCounter (see
// upsertCounter), for every license and feature, so that each has its
// counter row. A seed's total starts the period now, or a resetting counter
// would drop the value at once; a new counter without one starts at zero,
// its period unset until its first consumption.
func (im *importer) setCounter(stmt int, id int64, total *int64, s *consumption.Settings) error {
	var periodStart int64
	if total != nil && s.ResetConsumption && s.Period != consumption.NoPeriod {
		periodStart = s.Period.Start(im.now).Unix()
	}
	_, err := im.stmts[stmt].ExecContext(im.ctx, id, total, periodStart)
	return err
}
