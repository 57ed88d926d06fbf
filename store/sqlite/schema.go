package sqlite

// schemaVersion is stored in PRAGMA user_version; a later schema change
// adds a migration from the version before it.
const schemaVersion = 4

// migrations[v] brings a database of schema version v to version v+1.
var migrations = map[int]string{
	// Version 2 drops the ledger's index by license and feature: every
	// consumption wrote one more page for it, at a random place once
	// licenses are many (the commit's WAL writes and checkpoints grew
	// with it), while only audits read the ledger by license.
	1: `DROP INDEX IF EXISTS consumption_ledger_by_counter`,
	// Version 3 records the digest of the last seed imported, so that
	// importing the same file again is skipped.
	2: seedDigestTable,
	// Version 4 moves the counters out of licenses and license_features
	// into counterTables.
	3: counterTables + `
INSERT INTO license_counters (id, total, period_start, seeded_total)
	SELECT id, total_consumptions, period_start, seeded_total FROM licenses;
INSERT INTO feature_counters (id, total, period_start, seeded_total)
	SELECT id, total_consumptions, period_start, seeded_total FROM license_features;
ALTER TABLE licenses DROP COLUMN total_consumptions;
ALTER TABLE licenses DROP COLUMN period_start;
ALTER TABLE licenses DROP COLUMN seeded_total;
ALTER TABLE license_features DROP COLUMN total_consumptions;
ALTER TABLE license_features DROP COLUMN period_start;
ALTER TABLE license_features DROP COLUMN seeded_total;`,
}

// seedDigestTable holds the seed.Plan.Digest of the last import committed.
// A later migration that adds columns a seed fills must empty it, so that
// the next start imports the unchanged seed again rather than skipping it.
const seedDigestTable = `CREATE TABLE IF NOT EXISTS seed_digest (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	digest BLOB NOT NULL
);`

// counterTables hold the counters of licenses and of license features, one
// row of a few bytes per counter, keyed by the id of what it counts. A
// consumption rewrites only that row: kept among the definitions' rows, a
// few hundred bytes each, the counters of the licenses in use spread over
// as many pages, and each commit wrote (and each checkpoint copied back)
// one page per counter it changed; here they share a few. seeded_total is
// the total the last seed import gave the counter, NULL when none did (see
// the import's counter upserts).
const counterTables = `
CREATE TABLE IF NOT EXISTS license_counters (
	id INTEGER PRIMARY KEY REFERENCES licenses(id),
	total INTEGER NOT NULL,
	period_start INTEGER NOT NULL,
	seeded_total INTEGER
);
CREATE TABLE IF NOT EXISTS feature_counters (
	id INTEGER PRIMARY KEY REFERENCES license_features(id),
	total INTEGER NOT NULL,
	period_start INTEGER NOT NULL,
	seeded_total INTEGER
);`

// schema creates the tables on first open. Booleans are 0/1 integers, times
// are Unix milliseconds (NULL for "never"), and blacklist.product_id 0 bars a
// device from every product. The seeded_* columns remember the value the
// last seed import gave to state that also changes at run time (counters,
// activation flags), so that an import changes that state only when the
// seed's value itself changed.
const schema = `
CREATE TABLE IF NOT EXISTS products (
	id INTEGER PRIMARY KEY,
	short_code TEXT NOT NULL UNIQUE,
	name TEXT NOT NULL,
	authorization_method TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS product_features (
	id INTEGER PRIMARY KEY,
	product_id INTEGER NOT NULL REFERENCES products(id),
	code TEXT NOT NULL,
	name TEXT NOT NULL,
	feature_type TEXT NOT NULL,
	expiry_date INTEGER,
	max_consumption INTEGER NOT NULL,
	allow_unlimited INTEGER NOT NULL,
	allow_overages INTEGER NOT NULL,
	max_overages INTEGER NOT NULL,
	allow_negative INTEGER NOT NULL,
	reset_consumption INTEGER NOT NULL,
	consumption_period TEXT NOT NULL,
	is_floating INTEGER NOT NULL,
	is_floating_cloud INTEGER NOT NULL,
	UNIQUE (product_id, code)
);
CREATE TABLE IF NOT EXISTS licenses (
	id INTEGER PRIMARY KEY,
	product_id INTEGER NOT NULL REFERENCES products(id),
	license_key TEXT,
	enabled INTEGER NOT NULL,
	active INTEGER NOT NULL,
	validity_period INTEGER,
	license_type TEXT NOT NULL,
	is_trial INTEGER NOT NULL,
	max_activations INTEGER NOT NULL,
	allow_unlimited_activations INTEGER NOT NULL,
	customer TEXT NOT NULL,
	metadata TEXT NOT NULL,
	max_consumption INTEGER NOT NULL,
	allow_unlimited INTEGER NOT NULL,
	allow_overages INTEGER NOT NULL,
	max_overages INTEGER NOT NULL,
	allow_negative INTEGER NOT NULL,
	reset_consumption INTEGER NOT NULL,
	consumption_period TEXT NOT NULL,
	seeded_active INTEGER,
	UNIQUE (product_id, license_key)
);
CREATE TABLE IF NOT EXISTS license_users (
	license_id INTEGER NOT NULL REFERENCES licenses(id),
	username TEXT NOT NULL,
	password_hash TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (license_id, username)
);
CREATE INDEX IF NOT EXISTS license_users_by_name ON license_users (username, license_id);
CREATE TABLE IF NOT EXISTS license_features (
	id INTEGER PRIMARY KEY,
	license_id INTEGER NOT NULL REFERENCES licenses(id),
	code TEXT NOT NULL,
	name TEXT NOT NULL,
	feature_type TEXT NOT NULL,
	expiry_date INTEGER,
	max_consumption INTEGER NOT NULL,
	allow_unlimited INTEGER NOT NULL,
	allow_overages INTEGER NOT NULL,
	max_overages INTEGER NOT NULL,
	allow_negative INTEGER NOT NULL,
	reset_consumption INTEGER NOT NULL,
	consumption_period TEXT NOT NULL,
	is_floating INTEGER NOT NULL,
	is_floating_cloud INTEGER NOT NULL,
	UNIQUE (license_id, code)
);
CREATE TABLE IF NOT EXISTS devices (
	id INTEGER PRIMARY KEY,
	license_id INTEGER NOT NULL REFERENCES licenses(id),
	hardware_id TEXT NOT NULL,
	active INTEGER NOT NULL,
	seeded_active INTEGER,
	UNIQUE (license_id, hardware_id)
);
CREATE TABLE IF NOT EXISTS blacklist (
	hardware_id TEXT NOT NULL,
	product_id INTEGER NOT NULL,
	PRIMARY KEY (hardware_id, product_id)
);
-- license_feature_id is 0 (and feature '') for license-level consumptions.
-- Its only index is its id, the order it is written in (see migrations).
CREATE TABLE IF NOT EXISTS consumption_ledger (
	id INTEGER PRIMARY KEY,
	at INTEGER NOT NULL,
	license_id INTEGER NOT NULL,
	license_feature_id INTEGER NOT NULL,
	feature TEXT NOT NULL,
	hardware_id TEXT NOT NULL,
	requested INTEGER NOT NULL,
	applied INTEGER NOT NULL,
	total INTEGER NOT NULL,
	api_key TEXT NOT NULL,
	event TEXT NOT NULL
);
` + counterTables + seedDigestTable

// featureColumns are read, in this order, by scanFeature.
const featureColumns = `id, license_id, code, name, feature_type, expiry_date,
	max_consumption, allow_unlimited, allow_overages, max_overages, allow_negative,
	reset_consumption, consumption_period, is_floating, is_floating_cloud`

// licenseColumns are read, in this order, by scanLicense; l is licenses.
const licenseColumns = `l.id, l.product_id, COALESCE(l.license_key, ''), l.enabled, l.active, l.validity_period,
	l.license_type, l.is_trial, l.max_activations, l.allow_unlimited_activations, l.customer, l.metadata,
	l.max_consumption, l.allow_unlimited, l.allow_overages, l.max_overages, l.allow_negative,
	l.reset_consumption, l.consumption_period`
