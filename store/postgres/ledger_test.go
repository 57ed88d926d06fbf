package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/edgelicense/caddy-license-api/consumption"
	"github.com/edgelicense/caddy-license-api/store/storetest"
)

// ledger reads the consumption ledger of one license feature (0: the
// license's own counter), oldest first: storetest.LedgerReader.
func (b *Backend) ledger(ctx context.Context, licenseID, licenseFeatureID int64) ([]storetest.LedgerEntry, error) {
	var out []storetest.LedgerEntry
	err := b.do(ctx, func(ctx context.Context) error {
		rows, err := b.pool.Query(ctx, `SELECT id, at, license_id, license_feature_id, feature, hardware_id, requested, applied, total, api_key, event
			FROM consumption_ledger WHERE license_id = $1 AND license_feature_id = $2 ORDER BY id`, licenseID, licenseFeatureID)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (storetest.LedgerEntry, error) {
			var e storetest.LedgerEntry
			err := r.Scan(&e.ID, &e.Time, &e.LicenseID, &e.LicenseFeatureID, &e.Feature, &e.HardwareID,
				&e.Requested, &e.Applied, &e.Total, &e.APIKey, &e.Event)
			e.Time = e.Time.UTC()
			return e, err
		})
		return err
	})
	return out, err
}

// feature reads a license feature from its license's bundle, as the cache
// does.
func (b *Backend) feature(ctx context.Context, licenseID int64, code string) (consumption.LicenseFeature, bool, error) {
	lb, ok, err := b.LicenseBundle(ctx, licenseID)
	if err != nil || !ok {
		return consumption.LicenseFeature{}, false, err
	}
	f, ok := lb.Feature(code)
	return f, ok, nil
}
