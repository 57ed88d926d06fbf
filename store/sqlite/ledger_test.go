package sqlite

import (
	"context"
	"time"

	"github.com/edgelicense/caddy-license-api/store/storetest"
)

// ledger reads the consumption ledger of one license feature (0: the
// license's own counter), oldest first: storetest.LedgerReader.
func (b *Backend) ledger(ctx context.Context, licenseID, licenseFeatureID int64) ([]storetest.LedgerEntry, error) {
	rows, err := b.read.QueryContext(ctx, `SELECT id, at, license_id, license_feature_id, feature, hardware_id, requested, applied, total, api_key, event
		FROM consumption_ledger WHERE license_id = ? AND license_feature_id = ? ORDER BY id`, licenseID, licenseFeatureID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storetest.LedgerEntry
	for rows.Next() {
		var e storetest.LedgerEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.LicenseID, &e.LicenseFeatureID, &e.Feature, &e.HardwareID,
			&e.Requested, &e.Applied, &e.Total, &e.APIKey, &e.Event); err != nil {
			return nil, err
		}
		e.Time = time.UnixMilli(at).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}
