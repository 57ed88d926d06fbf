package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/edgelicense/caddy-license-api/consumption"
	"github.com/edgelicense/caddy-license-api/store/seed"
)

// Import implements store.Backend: it upserts the plan in one transaction,
// with the SQLite store's semantics.
//
// Rows are written only where the plan changes them. Every node imports its
// seed at each start and reload, usually the same file: skipping unchanged
// rows keeps those imports from locking the counters that consumptions are
// waiting for, and from announcing a change that did not happen. An import
// that changed anything notifies Channel with PayloadAll as it commits.
//
// An import that changes counters or licenses in use may deadlock with a
// batch of writes, which locks its rows in another order; the database then
// aborts one of the two, and an aborted import is tried again.
//
// An import whose digest is the last one committed is skipped: the nodes
// of a cluster usually share one seed file, and each start or reload would
// otherwise read every row of it again.
func (b *Backend) Import(ctx context.Context, p *seed.Plan) (applied bool, err error) {
	digest := p.Digest()
	for attempt := 1; ; attempt++ {
		err := pgx.BeginTxFunc(ctx, b.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
			im := &importer{tx: tx, ctx: ctx, now: time.Now()}
			applied, err = im.run(p, digest)
			return err
		})
		if err == nil {
			return applied, nil
		}
		if attempt == maxWriteAttempts || ctx.Err() != nil || !lockConflict(err) {
			return false, fmt.Errorf("postgres store: import: %w", err)
		}
	}
}

// importer is the seed.Writer of one import transaction; changed
// records whether any row changed, so that an unchanged re-import notifies
// no node.
type importer struct {
	tx      pgx.Tx
	ctx     context.Context
	now     time.Time
	changed bool
	// writes are the license's statements that need no answer, with a
	// label for each one's errors; License sends them together once it
	// has read what it needs, one round trip instead of one per statement.
	// None of the license's reads depends on them.
	writes pgx.Batch
	labels []string
}

func (im *importer) run(p *seed.Plan, digest []byte) (applied bool, err error) {
	// The pool's connections end a transaction left idle for the store's
	// timeout (see parseConfig), but an import is idle between statements
	// while it hashes or verifies a seed password (Argon2id: about 100 ms
	// each, far more on a busy host). Allow it a minute: still bounded, for
	// a node that vanished mid-import; ctx bounds the import itself.
	if _, err := im.tx.Exec(im.ctx, `SET LOCAL idle_in_transaction_session_timeout = '1min'`); err != nil {
		return false, err
	}
	// Two nodes importing at once take turns, so that the second finds the
	// first's rows rather than racing it to insert them.
	// The lock also makes the digest read below the last one committed.
	if _, err := im.tx.Exec(im.ctx, `SELECT pg_advisory_xact_lock(`+lockKey("import")+`)`); err != nil {
		return false, err
	}
	var last []byte
	err = im.tx.QueryRow(im.ctx, `SELECT digest FROM seed_digest WHERE id = 1`).Scan(&last)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return false, fmt.Errorf("reading the last seed's digest: %w", err)
	}
	if bytes.Equal(last, digest) {
		return false, nil
	}
	if err := im.reserveIDs(p); err != nil {
		return false, err
	}
	if err := p.Apply(im); err != nil {
		return false, err
	}
	// Not a change of definitions: no node needs to hear of it.
	if _, err := im.tx.Exec(im.ctx, `INSERT INTO seed_digest (id, digest) VALUES (1, $1)
		ON CONFLICT (id) DO UPDATE SET digest = excluded.digest`, digest); err != nil {
		return false, fmt.Errorf("recording the seed's digest: %w", err)
	}
	if !im.changed {
		return true, nil
	}
	// Delivered when, and only if, the transaction commits.
	_, err = im.tx.Exec(im.ctx, `SELECT pg_notify($1, $2)`, Channel, PayloadAll)
	return true, err
}

// exec runs a statement at once (for products and the blacklist, outside
// any license's writes) and notes whether it changed a row.
func (im *importer) exec(sql string, args ...any) error {
	im.queue("", sql, args...)
	return im.flush()
}

// queue adds a statement to the license's writes; label, if not empty,
// prefixes its error.
func (im *importer) queue(label, sql string, args ...any) {
	im.writes.Queue(sql, args...)
	im.labels = append(im.labels, label)
}

// flush sends the queued writes, in order, and notes whether any changed a
// row.
func (im *importer) flush() error {
	if len(im.labels) == 0 {
		return nil
	}
	br := im.tx.SendBatch(im.ctx, &im.writes)
	var err error
	for _, label := range im.labels {
		tag, e := br.Exec()
		if e != nil {
			if label != "" {
				e = fmt.Errorf("%s: %w", label, e)
			}
			err = e
			break
		}
		if tag.RowsAffected() > 0 {
			im.changed = true
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	im.writes, im.labels = pgx.Batch{}, im.labels[:0]
	return err
}

// reserveIDs moves the id sequences of licenses and license features past
// both the ids in the tables and those the plan gives, so that an id this
// import generates can never be one the plan (or an earlier import) gave
// explicitly. setval is not transactional, which is harmless: a rolled-back
// import only leaves a gap.
func (im *importer) reserveIDs(p *seed.Plan) error {
	licenseID, featureID := p.MaxIDs()
	for _, t := range []struct {
		table string
		id    int64
	}{{"licenses", licenseID}, {"license_features", featureID}} {
		if _, err := im.tx.Exec(im.ctx, `SELECT setval(pg_get_serial_sequence($1, 'id'),
			GREATEST((SELECT COALESCE(max(id), 0) FROM `+t.table+`), $2::bigint) + 1, false)`, t.table, t.id); err != nil {
			return fmt.Errorf("reserving %s ids: %w", t.table, err)
		}
	}
	return nil
}

// featureValues are the settings columns of product_features and
// license_features, in schema order from feature_type on.
func featureValues(f *consumption.LicenseFeature) []any {
	return []any{string(f.Type), toTimestamptz(f.ExpiryDate), f.MaxConsumption, f.AllowUnlimited, f.AllowOverages,
		f.MaxOverages, f.AllowNegative, f.ResetConsumption, string(f.Period), f.IsFloating, f.IsFloatingCloud}
}

// featureSettingsSet assigns the settings columns from featureValues passed
// as $3 onwards.
const featureSettingsSet = `name = $3, feature_type = $4, expiry_date = $5, max_consumption = $6,
	allow_unlimited = $7, allow_overages = $8, max_overages = $9, allow_negative = $10,
	reset_consumption = $11, consumption_period = $12, is_floating = $13, is_floating_cloud = $14`

// sameFeature reports whether a stored feature already has the plan's
// definition (ID aside).
func sameFeature(stored, plan *consumption.LicenseFeature) bool {
	return stored.LicenseID == plan.LicenseID && stored.Code == plan.Code && stored.Name == plan.Name &&
		stored.Type == plan.Type && stored.ExpiryDate.Equal(plan.ExpiryDate) && stored.Settings == plan.Settings
}

// Product implements seed.Writer.
func (im *importer) Product(p *seed.Product) (int64, error) {
	var id int64
	var name, method string
	err := im.tx.QueryRow(im.ctx, `SELECT id, name, authorization_method FROM products WHERE short_code = $1`,
		p.ShortCode).Scan(&id, &name, &method)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		im.changed = true
		err = im.tx.QueryRow(im.ctx, `INSERT INTO products (short_code, name, authorization_method)
			VALUES ($1, $2, $3) RETURNING id`, p.ShortCode, p.Name, p.AuthMethod.String()).Scan(&id)
	case err == nil && (name != p.Name || method != p.AuthMethod.String()):
		err = im.exec(`UPDATE products SET name = $2, authorization_method = $3 WHERE id = $1`,
			id, p.Name, p.AuthMethod.String())
	}
	if err != nil {
		return 0, err
	}
	for i := range p.Features {
		if err := im.productFeature(id, &p.Features[i]); err != nil {
			return 0, fmt.Errorf("feature %q: %w", p.Features[i].Code, err)
		}
	}
	return id, nil
}

// BlacklistEntry implements seed.Writer.
func (im *importer) BlacklistEntry(e seed.BlacklistEntry, productID int64) error {
	return im.exec(`INSERT INTO blacklist (hardware_id, product_id) VALUES ($1, $2)
		ON CONFLICT DO NOTHING`, e.HardwareID, productID)
}

func (im *importer) productFeature(productID int64, f *consumption.LicenseFeature) error {
	var stored consumption.LicenseFeature
	err := scanFeature(im.tx.QueryRow(im.ctx, `SELECT `+productFeatureColumns+` FROM product_features
		WHERE product_id = $1 AND code = $2`, productID, f.Code), &stored)
	want := *f
	want.LicenseID = productID // scanFeature puts product_id there
	args := append([]any{productID, f.Code, f.Name}, featureValues(f)...)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return im.exec(`INSERT INTO product_features (product_id, code, name, feature_type,
			expiry_date, max_consumption, allow_unlimited, allow_overages, max_overages, allow_negative,
			reset_consumption, consumption_period, is_floating, is_floating_cloud)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`, args...)
	case err != nil:
		return err
	case sameFeature(&stored, &want):
		return nil
	}
	return im.exec(`UPDATE product_features SET `+featureSettingsSet+` WHERE product_id = $1 AND code = $2`, args...)
}

// existingLicense finds a license the seed does not give an id for by its
// natural key: the license key, or the first user of a user-based license.
func (im *importer) existingLicense(l *seed.License, pid int64) (int64, error) {
	var id int64
	var err error
	if len(l.Users) == 0 {
		err = im.tx.QueryRow(im.ctx, `SELECT id FROM licenses WHERE product_id = $1 AND license_key = $2`,
			pid, l.Key).Scan(&id)
	} else {
		err = im.tx.QueryRow(im.ctx, `SELECT l.id FROM license_users u JOIN licenses l ON l.id = u.license_id
			WHERE u.username = $1 AND l.product_id = $2 ORDER BY l.id LIMIT 1`, l.Users[0], pid).Scan(&id)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return id, err
}

// licenseSet assigns a license's columns from licenseArgs; $20 is the id.
const licenseSet = `product_id = $1, license_key = $2, enabled = $3, active = $4, validity_period = $5,
	license_type = $6, is_trial = $7, max_activations = $8, allow_unlimited_activations = $9,
	customer = $10, metadata = $11, max_consumption = $12, allow_unlimited = $13, allow_overages = $14,
	max_overages = $15, allow_negative = $16, reset_consumption = $17, consumption_period = $18,
	seeded_active = $19`

// licenseInsert lists licenseArgs' columns.
const licenseInsert = `INSERT INTO licenses (product_id, license_key, enabled, active, validity_period,
	license_type, is_trial, max_activations, allow_unlimited_activations, customer, metadata,
	max_consumption, allow_unlimited, allow_overages, max_overages, allow_negative, reset_consumption,
	consumption_period, seeded_active`

// licenseArgs are the values of a license's columns, in licenseSet's order.
func licenseArgs(l *seed.License, productID int64, active bool) []any {
	var key *string
	if l.Key != "" {
		key = &l.Key // else NULL: user-based licenses have no key, and NULLs never collide
	}
	c := &l.Consumption
	return []any{productID, key, l.Enabled, active, toTimestamptz(l.ValidityPeriod),
		string(l.Type), l.IsTrial, l.MaxActivations, l.AllowUnlimitedActivations, l.Customer, l.Metadata,
		c.MaxConsumption, c.AllowUnlimited, c.AllowOverages, c.MaxOverages, c.AllowNegative, c.ResetConsumption,
		string(c.Period), l.Active}
}

// sameLicense reports whether a stored license already has the plan's
// definition; users, id and the active flag are handled apart.
func sameLicense(stored, plan *consumption.License) bool {
	return stored.ProductID == plan.ProductID && stored.Key == plan.Key && stored.Enabled == plan.Enabled &&
		stored.ValidityPeriod.Equal(plan.ValidityPeriod) && stored.Type == plan.Type && stored.IsTrial == plan.IsTrial &&
		stored.MaxActivations == plan.MaxActivations && stored.AllowUnlimitedActivations == plan.AllowUnlimitedActivations &&
		stored.Customer == plan.Customer && stored.Metadata == plan.Metadata && stored.Consumption == plan.Consumption
}

// License implements seed.Writer. A license is read first, then its
// writes are sent together; a new one's users and features need no read.
func (im *importer) License(l *seed.License, pid int64) error {
	id := l.ID
	if id == 0 {
		var err error
		if id, err = im.existingLicense(l, pid); err != nil {
			return err
		}
	}
	var stored consumption.License
	var seededActive pgtype.Bool
	err := pgx.ErrNoRows
	if id != 0 {
		stored, err = scanLicense(im.tx.QueryRow(im.ctx, `SELECT `+licenseColumns+`, l.seeded_active
			FROM licenses l WHERE l.id = $1`, id), &seededActive)
	}
	isNew := errors.Is(err, pgx.ErrNoRows)
	switch {
	case isNew && id == 0:
		im.changed = true
		err = im.tx.QueryRow(im.ctx, licenseInsert+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
			$11, $12, $13, $14, $15, $16, $17, $18, $19) RETURNING id`, licenseArgs(l, pid, l.Active)...).Scan(&id)
	case isNew:
		err = nil
		im.queue("", licenseInsert+`, id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
			$11, $12, $13, $14, $15, $16, $17, $18, $19, $20)`, append(licenseArgs(l, pid, l.Active), id)...)
	case err == nil:
		// Activations change the active flag at run time; the seed's value
		// applies only when it differs from what the last import gave.
		active := l.Active
		if seededActive.Valid && seededActive.Bool == l.Active {
			active = stored.Active
		}
		want := l.License
		want.ProductID = pid
		if !sameLicense(&stored, &want) || active != stored.Active || !seededActive.Valid || seededActive.Bool != l.Active {
			im.queue("", `UPDATE licenses SET `+licenseSet+` WHERE id = $20`, append(licenseArgs(l, pid, active), id)...)
		}
	}
	if err != nil {
		return err
	}
	im.setSeededTotal("", "licenses", id, l.Total, &l.Consumption)
	if err := im.users(id, l, isNew); err != nil {
		return err
	}
	for i := range l.Features {
		if err := im.licenseFeature(id, &l.Features[i], isNew); err != nil {
			return fmt.Errorf("feature %q: %w", l.Features[i].Code, err)
		}
	}
	for _, d := range l.Devices {
		// Like a license's active flag, a device's binding changes at run
		// time; the seed only sets it when its own value changed.
		im.queue(fmt.Sprintf("device %q", d.HardwareID), `INSERT INTO devices (license_id, hardware_id, active, seeded_active)
			VALUES ($1, $2, $3, $3)
			ON CONFLICT (license_id, hardware_id) DO UPDATE SET active = excluded.active, seeded_active = excluded.active
			WHERE devices.seeded_active IS DISTINCT FROM excluded.active`, id, d.HardwareID, d.Active)
	}
	return im.flush()
}

// users makes the license's users the plan's, keeping each stored password
// hash that still matches the seed's password. A new license has none to
// read.
func (im *importer) users(licenseID int64, l *seed.License, isNew bool) error {
	stored := map[string]string{}
	if !isNew {
		rows, err := im.tx.Query(im.ctx, `SELECT username, password_hash FROM license_users WHERE license_id = $1`, licenseID)
		if err != nil {
			return err
		}
		var name, hash string
		if _, err := pgx.ForEachRow(rows, []any{&name, &hash}, func() error {
			stored[name] = hash
			return nil
		}); err != nil {
			return err
		}
	}
	users := l.Users
	if users == nil {
		users = []string{}
	}
	if len(stored) > 0 {
		im.queue("", `DELETE FROM license_users WHERE license_id = $1 AND username <> ALL($2)`, licenseID, users)
	}
	for i, u := range users {
		old, found := stored[u]
		hash, err := seed.PasswordHash(old, l.Passwords[i])
		if err != nil {
			return err
		}
		switch {
		case !found:
			im.queue("", `INSERT INTO license_users (license_id, username, password_hash) VALUES ($1, $2, $3)`,
				licenseID, u, hash)
		case hash != old:
			im.queue("", `UPDATE license_users SET password_hash = $3 WHERE license_id = $1 AND username = $2`,
				licenseID, u, hash)
		}
	}
	return nil
}

// licenseFeature queues the writes that make a license feature the plan's.
// A new license has no features to read, unless the plan names one by id,
// which may belong to another license.
func (im *importer) licenseFeature(licenseID int64, f *seed.LicenseFeature, licenseIsNew bool) error {
	label := fmt.Sprintf("feature %q", f.Code)
	id := f.ID
	var stored consumption.LicenseFeature
	err := pgx.ErrNoRows
	switch {
	case id != 0:
		err = scanFeature(im.tx.QueryRow(im.ctx, `SELECT `+featureColumns+` FROM license_features WHERE id = $1`, id), &stored)
	case !licenseIsNew:
		err = scanFeature(im.tx.QueryRow(im.ctx, `SELECT `+featureColumns+` FROM license_features
			WHERE license_id = $1 AND code = $2`, licenseID, f.Code), &stored)
		id = stored.ID
	}
	want := f.LicenseFeature
	want.LicenseID = licenseID
	values := featureValues(&want)
	switch {
	case errors.Is(err, pgx.ErrNoRows) && id == 0:
		// With its counter: the id the row gets is not known here.
		im.changed = true
		var periodStart int64
		if f.Total != nil {
			periodStart = im.periodStart(&f.Settings)
		}
		im.queue(label, `INSERT INTO license_features (license_id, code, name, feature_type,
			expiry_date, max_consumption, allow_unlimited, allow_overages, max_overages, allow_negative,
			reset_consumption, consumption_period, is_floating, is_floating_cloud,
			total_consumptions, period_start, seeded_total)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, COALESCE($15::bigint, 0), $16, $15::bigint)`,
			append(append([]any{licenseID, f.Code, f.Name}, values...), f.Total, periodStart)...)
		return nil
	case errors.Is(err, pgx.ErrNoRows):
		im.queue(label, `INSERT INTO license_features (id, license_id, code, name, feature_type,
			expiry_date, max_consumption, allow_unlimited, allow_overages, max_overages, allow_negative,
			reset_consumption, consumption_period, is_floating, is_floating_cloud)
			VALUES ($15, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
			append(append([]any{licenseID, f.Code, f.Name}, values...), id)...)
	case err != nil:
		return err
	case !sameFeature(&stored, &want):
		// The parameters follow featureSettingsSet's numbering.
		im.queue(label, `UPDATE license_features SET license_id = $1, code = $2, `+featureSettingsSet+` WHERE id = $15`,
			append(append([]any{licenseID, f.Code, f.Name}, values...), id)...)
	}
	im.setSeededTotal(label, "license_features", id, f.Total, &f.Settings)
	return nil
}

// setSeededTotal queues the write of a counter from the seed, made only
// when the seed's value is new to this database, so that re-importing an
// unchanged file never undoes consumptions.
func (im *importer) setSeededTotal(label, table string, id int64, total *int64, s *consumption.Settings) {
	if total == nil {
		return
	}
	im.queue(label, `UPDATE `+table+` SET total_consumptions = $1, period_start = $2, seeded_total = $1
		WHERE id = $3 AND seeded_total IS DISTINCT FROM $1`, *total, im.periodStart(s), id)
}

// periodStart is where a counter the seed sets starts its period: now, or a
// resetting counter would drop the value at once.
func (im *importer) periodStart(s *consumption.Settings) int64 {
	if s.ResetConsumption && s.Period != consumption.NoPeriod {
		return s.Period.Start(im.now).Unix()
	}
	return 0
}
