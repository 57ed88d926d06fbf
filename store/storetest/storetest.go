// Package storetest is the conformance suite every store.Backend passes: the
// consumption rules, the ledger, reset periods and seed import behave the same
// on every backend. A backend's own test calls Run with a function that opens
// a fresh, empty store.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgelicense/caddy-license-api/auth"
	"github.com/edgelicense/caddy-license-api/consumption"
	"github.com/edgelicense/caddy-license-api/store"
	"github.com/edgelicense/caddy-license-api/store/seed"
)

// Opener returns a new, empty backend and a reader of its ledger; the suite
// closes the backend.
type Opener func(t *testing.T) (store.Backend, LedgerReader)

// LedgerReader returns the consumption ledger of one license feature, or
// with licenseFeatureID 0 of the license's own counter, oldest first. The
// server itself never reads the ledger back, so the contract has no such
// method: each backend's tests read it with their own SQL.
type LedgerReader func(ctx context.Context, licenseID, licenseFeatureID int64) ([]LedgerEntry, error)

// LedgerEntry is one accepted consumption as the ledger keeps it.
type LedgerEntry struct {
	ID               int64
	Time             time.Time
	LicenseID        int64
	LicenseFeatureID int64
	Feature          string
	HardwareID       string
	Requested        int64
	Applied          int64
	Total            int64
	APIKey           string
	Event            string
}

// backend is the backend under test with its ledger, and the lookups the
// suite checks by, read through the backend's Source as the cache reads
// them: one license, feature or device from its bundle, a blacklist entry
// from the product's blacklist.
type backend struct {
	store.Backend
	Ledger LedgerReader
}

// LicenseByID reads the license from its bundle.
func (b backend) LicenseByID(ctx context.Context, id int64) (consumption.License, bool, error) {
	lb, ok, err := b.LicenseBundle(ctx, id)
	return lb.License, ok, err
}

// LicenseByKey reads the license from its bundle by key.
func (b backend) LicenseByKey(ctx context.Context, productID int64, key string) (consumption.License, bool, error) {
	lb, ok, err := b.LicenseBundleByKey(ctx, productID, key)
	return lb.License, ok, err
}

// Feature reads a license feature from its license's bundle.
func (b backend) Feature(ctx context.Context, licenseID int64, code string) (consumption.LicenseFeature, bool, error) {
	lb, ok, err := b.LicenseBundle(ctx, licenseID)
	if err != nil || !ok {
		return consumption.LicenseFeature{}, false, err
	}
	f, ok := lb.Feature(code)
	return f, ok, nil
}

// Device reads a device from its license's bundle.
func (b backend) Device(ctx context.Context, licenseID int64, hardwareID string) (consumption.Device, bool, error) {
	lb, ok, err := b.LicenseBundle(ctx, licenseID)
	if err != nil || !ok {
		return consumption.Device{}, false, err
	}
	d, ok := lb.Device(hardwareID)
	return d, ok, nil
}

// Blacklisted looks the device up in the product's blacklist.
func (b backend) Blacklisted(ctx context.Context, productID int64, hardwareID string) (bool, error) {
	barred, err := b.Blacklist(ctx, productID)
	return slices.Contains(barred, hardwareID), err
}

// Seed is the data set the suite imports first.
const Seed = `{
 "products": [
  {"short_code": "cad", "name": "CAD Suite", "authorization_method": "license-key",
   "features": [
    {"code": "render", "name": "Render", "feature_type": "consumption", "max_consumption": 100},
    {"code": "export", "name": "Export", "feature_type": "consumption", "max_consumption": 5,
     "allow_negative_consumptions": true},
    {"code": "daily", "name": "Daily", "feature_type": "consumption", "max_consumption": 2,
     "reset_consumption": true, "consumption_period": "daily"},
    {"code": "pro", "name": "Pro", "feature_type": "activation"}]},
  {"short_code": "team", "name": "Team", "authorization_method": "user",
   "features": [{"code": "seats", "name": "Seats", "max_consumption": 3}]}],
 "licenses": [
  {"id": 1001, "product": "cad", "license_key": "AAAA-BBBB", "enabled": true, "active": true,
   "validity_period": "2030-01-01T00:00:00Z", "metadata": {"note": "<b>&</b> \u2028 ünïcode"},
   "features": [
    {"code": "render", "id": 5001, "total_consumptions": 0},
    {"code": "export", "id": 5002, "max_consumption": 7, "allow_overages": true, "max_overages": 1},
    {"code": "daily", "id": 5003},
    {"code": "pro", "id": 5004}],
   "devices": [{"hardware_id": "hw-1", "active": true}, {"hardware_id": "hw-off", "active": false}]},
  {"product": "team", "users": ["Ana@Example.com", {"username": "bob@example.com", "password": "hunter2"}],
   "features": [{"code": "seats"}], "devices": [{"hardware_id": "hw-1"}]},
  {"id": 1003, "product": "cad", "license_key": "CONS", "license_type": "consumption", "active": false,
   "max_activations": 2, "max_consumptions": 10, "allow_overages": true, "max_overages": 2,
   "allow_negative_consumptions": true, "customer": {"email": "c@example.com", "10": 1, "2": 2}}],
 "blacklist": [{"hardware_id": "hw-bad", "product": "cad"}, {"hardware_id": "hw-everywhere"}]
}`

// Run runs the suite.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b backend)
	}{
		{"Definitions", testDefinitions},
		{"Bundles", testBundles},
		{"Consume", testConsume},
		{"ConcurrentLimit", testConcurrentLimit},
		{"ResetPeriod", testResetPeriod},
		{"Reimport", testReimport},
		{"ImportIsAtomic", testImportIsAtomic},
		{"Activation", testActivation},
		{"ConcurrentActivations", testConcurrentActivations},
		{"LicenseConsumption", testLicenseConsumption},
		{"Passwords", testPasswords},
		{"GeneratedIDs", testGeneratedIDs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sb, ledger := open(t)
			b := backend{sb, ledger}
			t.Cleanup(func() {
				if err := b.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			})
			ImportSeed(t, b, Seed)
			tt.fn(t, b)
		})
	}
}

// ImportSeed parses the seed text and imports it into b, failing t on any error. It
// returns whether the import was applied (see store.Backend.Import).
func ImportSeed(t *testing.T, b store.Backend, text string) (applied bool) {
	t.Helper()
	p, err := seed.Parse("seed.json", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	applied, err = b.Import(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return applied
}

func mustFeature(t *testing.T, b backend, licenseID int64, code string) consumption.LicenseFeature {
	t.Helper()
	f, ok, err := b.Feature(context.Background(), licenseID, code)
	if err != nil || !ok {
		t.Fatalf("feature %q of license %d: found %v, %v", code, licenseID, ok, err)
	}
	return f
}

func testDefinitions(t *testing.T, b backend) {
	ctx := context.Background()
	cad, ok, err := b.Product(ctx, "cad")
	if err != nil || !ok || cad.Name != "CAD Suite" || cad.AuthMethod != consumption.KeyBased {
		t.Fatalf("product cad: %+v %v %v", cad, ok, err)
	}
	team, ok, err := b.Product(ctx, "team")
	if err != nil || !ok || team.AuthMethod != consumption.UserBased {
		t.Fatalf("product team: %+v %v %v", team, ok, err)
	}
	if _, ok, err := b.Product(ctx, "nope"); ok || err != nil {
		t.Errorf("unknown product: found %v, %v", ok, err)
	}
	lic, ok, err := b.LicenseByKey(ctx, cad.ID, "AAAA-BBBB")
	want := consumption.License{ID: 1001, ProductID: cad.ID, Key: "AAAA-BBBB", Enabled: true, Active: true,
		ValidityPeriod: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), Type: consumption.Perpetual, MaxActivations: 1,
		Metadata: `{"note":"<b>&</b>   ünïcode"}`}
	if err != nil || !ok || !reflect.DeepEqual(lic, want) {
		t.Errorf("license by key: %+v %v %v, want %+v", lic, ok, err, want)
	}
	if byID, ok, err := b.LicenseByID(ctx, 1001); err != nil || !ok || !reflect.DeepEqual(byID, want) {
		t.Errorf("license by id: %+v %v %v, want %+v", byID, ok, err, want)
	}
	if _, ok, err := b.LicenseByID(ctx, 999999); ok || err != nil {
		t.Errorf("unknown license id: found %v, %v", ok, err)
	}
	if _, ok, _ := b.LicenseByKey(ctx, team.ID, "AAAA-BBBB"); ok {
		t.Error("a license key matched under another product")
	}
	users, err := b.LicensesByUser(ctx, team.ID, "ana@example.com")
	if err != nil || len(users) != 1 || users[0].ID == 0 || users[0].ProductID != team.ID {
		t.Errorf("licenses of ana: %+v %v", users, err)
	}
	if users, _ := b.LicensesByUser(ctx, cad.ID, "ana@example.com"); len(users) != 0 {
		t.Errorf("ana has licenses of another product: %+v", users)
	}
	for _, d := range []struct {
		hw           string
		found, activ bool
	}{{"hw-1", true, true}, {"hw-off", true, false}, {"hw-none", false, false}} {
		got, ok, err := b.Device(ctx, 1001, d.hw)
		if err != nil || ok != d.found || got.Active != d.activ {
			t.Errorf("device %s: %+v %v %v", d.hw, got, ok, err)
		}
	}
	for _, c := range []struct {
		pid    int64
		hw     string
		barred bool
	}{{cad.ID, "hw-bad", true}, {team.ID, "hw-bad", false}, {team.ID, "hw-everywhere", true}, {cad.ID, "hw-1", false}} {
		if got, err := b.Blacklisted(ctx, c.pid, c.hw); err != nil || got != c.barred {
			t.Errorf("blacklisted(%d, %s) = %v, %v", c.pid, c.hw, got, err)
		}
	}
	export := mustFeature(t, b, 1001, "export")
	wantExport := consumption.LicenseFeature{ID: 5002, LicenseID: 1001, Code: "export", Name: "Export",
		Type: consumption.ConsumptionFeature, Settings: consumption.Settings{MaxConsumption: 7,
			AllowOverages: true, MaxOverages: 1, AllowNegative: true}}
	if export != wantExport {
		t.Errorf("export with overrides: %+v, want %+v", export, wantExport)
	}
	if f := mustFeature(t, b, 1001, "daily"); f.Period != consumption.Daily || !f.ResetConsumption {
		t.Errorf("daily: %+v", f)
	}
	if f := mustFeature(t, b, 1001, "pro"); f.Type != consumption.ActivationFeature {
		t.Errorf("pro: %+v", f)
	}
	if _, ok, _ := b.Feature(ctx, 1001, "seats"); ok {
		t.Error("a feature the license does not list was found")
	}
}

// bundleSeed adds a license whose feature codes and hardware ids sort
// differently in byte order than in a linguistic collation (upper case
// first), to check the order store.LicenseBundle promises.
const bundleSeed = `{
 "products": [{"short_code": "bun", "name": "Bundles",
   "features": [{"code": "beta"}, {"code": "Zed"}, {"code": "alpha"}]}],
 "licenses": [{"product": "bun", "license_key": "BUN",
   "features": [{"code": "beta"}, {"code": "Zed"}, {"code": "alpha"}],
   "devices": [{"hardware_id": "hw-b"}, {"hardware_id": "HW-Z", "active": false}, {"hardware_id": "hw-a"}]}]
}`

// testBundles checks that a license's bundle holds its features and
// devices in the promised order, and the per-product blacklists. (What the
// bundle's rows hold is testDefinitions', which reads them from bundles.)
func testBundles(t *testing.T, b backend) {
	ctx := context.Background()
	lb, ok, err := b.LicenseBundle(ctx, 1001)
	if err != nil || !ok {
		t.Fatalf("bundle of 1001: %v %v", ok, err)
	}
	if lb.License.ID != 1001 || lb.License.Key != "AAAA-BBBB" {
		t.Errorf("bundle's license %+v, want 1001 AAAA-BBBB", lb.License)
	}
	var codes []string
	ids := map[int64]string{5001: "render", 5002: "export", 5003: "daily", 5004: "pro"}
	for _, f := range lb.Features {
		codes = append(codes, f.Code)
		if f.LicenseID != 1001 || ids[f.ID] != f.Code {
			t.Errorf("bundle's feature %+v: want license 1001 and the seed's id for %q", f, f.Code)
		}
	}
	if want := []string{"daily", "export", "pro", "render"}; !reflect.DeepEqual(codes, want) {
		t.Errorf("bundle's features %q, want %q", codes, want)
	}
	var hws []string
	devIDs := map[int64]bool{}
	for _, d := range lb.Devices {
		hws = append(hws, d.HardwareID)
		if d.LicenseID != 1001 || d.ID == 0 || devIDs[d.ID] {
			t.Errorf("bundle's device %+v: want license 1001 and an id of its own", d)
		}
		devIDs[d.ID] = true
	}
	if want := []string{"hw-1", "hw-off"}; !reflect.DeepEqual(hws, want) {
		t.Errorf("bundle's devices %q, want %q", hws, want)
	}
	cad, _, _ := b.Product(ctx, "cad")
	team, _, _ := b.Product(ctx, "team")
	byKey, ok, err := b.LicenseBundleByKey(ctx, cad.ID, "AAAA-BBBB")
	if err != nil || !ok || !reflect.DeepEqual(byKey.License, lb.License) || !slices.Equal(byKey.Features, lb.Features) ||
		!slices.Equal(byKey.Devices, lb.Devices) {
		t.Errorf("bundle by key %+v %v %v, want %+v", byKey, ok, err, lb)
	}
	for _, k := range []struct {
		pid int64
		key string
	}{{cad.ID, "NOPE"}, {team.ID, "AAAA-BBBB"}} {
		if _, ok, err := b.LicenseBundleByKey(ctx, k.pid, k.key); ok || err != nil {
			t.Errorf("bundle by key %q of product %d: found %v, %v", k.key, k.pid, ok, err)
		}
	}
	if lb, ok, err := b.LicenseBundle(ctx, 1003); err != nil || !ok || lb.License.Key != "CONS" ||
		len(lb.Features) != 0 || len(lb.Devices) != 0 {
		t.Errorf("bundle of 1003, without features or devices: %+v %v %v", lb, ok, err)
	}
	if _, ok, err := b.LicenseBundle(ctx, 999999); ok || err != nil {
		t.Errorf("bundle of an unknown license: found %v, %v", ok, err)
	}

	ImportSeed(t, b, bundleSeed)
	bun, _, _ := b.Product(ctx, "bun")
	l, _, _ := b.LicenseByKey(ctx, bun.ID, "BUN")
	lb, _, err = b.LicenseBundle(ctx, l.ID)
	codes, hws = nil, nil
	for _, f := range lb.Features {
		codes = append(codes, f.Code)
		if got, ok := lb.Feature(f.Code); !ok || got != f {
			t.Errorf("Feature(%q) of the bundle: %+v %v", f.Code, got, ok)
		}
	}
	for _, d := range lb.Devices {
		hws = append(hws, d.HardwareID)
		if got, ok := lb.Device(d.HardwareID); !ok || got != d {
			t.Errorf("Device(%q) of the bundle: %+v %v", d.HardwareID, got, ok)
		}
	}
	if want := []string{"Zed", "alpha", "beta"}; err != nil || !reflect.DeepEqual(codes, want) {
		t.Errorf("features %q (%v), want byte order %q", codes, err, want)
	}
	if want := []string{"HW-Z", "hw-a", "hw-b"}; !reflect.DeepEqual(hws, want) {
		t.Errorf("devices %q, want byte order %q", hws, want)
	}

	// A scan by pages of two finds every license, each bundle as read alone.
	var scanned []int64
	for after := int64(0); ; {
		page, err := b.LicenseBundles(ctx, after, 2)
		if err != nil {
			t.Fatalf("bundles after %d: %v", after, err)
		}
		if len(page) == 0 {
			break
		}
		for _, got := range page {
			scanned = append(scanned, got.License.ID)
			want, _, _ := b.LicenseBundle(ctx, got.License.ID)
			if !reflect.DeepEqual(got.License, want.License) || !slices.Equal(got.Features, want.Features) ||
				!slices.Equal(got.Devices, want.Devices) {
				t.Errorf("scanned bundle %+v, read alone %+v", got, want)
			}
		}
		after = page[len(page)-1].License.ID
	}
	if len(scanned) != 4 || !slices.IsSorted(scanned) || scanned[0] != 1001 || scanned[1] != 1003 {
		t.Errorf("scanned licenses %v, want 1001, 1003 and the two with generated ids, in id order", scanned)
	}

	for _, c := range []struct {
		pid  int64
		want []string
	}{{cad.ID, []string{"hw-bad", "hw-everywhere"}}, {team.ID, []string{"hw-everywhere"}}, {bun.ID, []string{"hw-everywhere"}}} {
		got, err := b.Blacklist(ctx, c.pid)
		slices.Sort(got)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("blacklist of product %d: %q %v, want %q", c.pid, got, err, c.want)
		}
	}
}

// ConsumeFeature records c through r and waits for it to be durable, as a
// caller must before acknowledging it.
func ConsumeFeature(ctx context.Context, r consumption.Recorder, c consumption.FeatureConsumption) (consumption.FeatureOutcome, error) {
	out, durable, err := r.ConsumeFeature(ctx, c)
	if err == nil {
		err = durable.Wait()
	}
	return out, err
}

// ConsumeLicense is ConsumeFeature for a license's own consumption.
func ConsumeLicense(ctx context.Context, r consumption.Recorder, c consumption.LicenseConsumption) (consumption.LicenseOutcome, error) {
	out, durable, err := r.ConsumeLicense(ctx, c)
	if err == nil {
		err = durable.Wait()
	}
	return out, err
}

func consume(b backend, feature int64, n int64, at time.Time) (consumption.FeatureOutcome, error) {
	return ConsumeFeature(context.Background(), b, consumption.FeatureConsumption{
		Time: at, LicenseID: 1001, LicenseFeatureID: feature, Feature: "f", HardwareID: "hw-1",
		Requested: n, APIKey: "key-1", Event: consumption.EventConsumptionAdd,
	})
}

func testConsume(t *testing.T, b backend) {
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	steps := []struct {
		n, total, applied int64
		err               error
	}{
		{5, 5, 5, nil},
		{3, 8, 3, nil}, // max 7 + 1 overage
		{1, 8, 0, consumption.ErrFeatureNotEnoughConsumptions},
		{-2, 6, -2, nil},
		{-10, 0, -6, nil}, // stops at 0
		{0, 0, 0, nil},
	}
	var want []LedgerEntry
	before := b.WriteStats()
	for i, s := range steps {
		out, err := consume(b, 5002, s.n, at.Add(time.Duration(i)*time.Second))
		if !errors.Is(err, s.err) {
			t.Fatalf("step %d (%+d): err %v, want %v", i, s.n, err, s.err)
		}
		if err != nil {
			continue
		}
		if out.Total != s.total || out.Applied != s.applied || out.Feature.ID != 5002 || out.Feature.MaxConsumption != 7 {
			t.Errorf("step %d (%+d): %+v, want total %d applied %d", i, s.n, out, s.total, s.applied)
		}
		want = append(want, LedgerEntry{Time: at.Add(time.Duration(i) * time.Second), LicenseID: 1001,
			LicenseFeatureID: 5002, Feature: "export", HardwareID: "hw-1", Requested: s.n, Applied: s.applied,
			Total: s.total, APIKey: "key-1", Event: consumption.EventConsumptionAdd})
	}
	// One after the other, each write is a transaction of its own, the
	// refused one included; a backend that syncs its log syncs each.
	after := b.WriteStats()
	writes, commits, syncs := after.Writes-before.Writes, after.Commits-before.Commits, after.Syncs-before.Syncs
	if n := uint64(len(steps)); writes != n || commits != n || syncs != 0 && syncs < n {
		t.Errorf("write stats after %d consumptions: %d writes, %d commits, %d syncs", n, writes, commits, syncs)
	}
	got, err := b.Ledger(context.Background(), 1001, 5002)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("ledger has %d rows, want %d", len(got), len(want))
	}
	for i := range got {
		got[i].ID = 0
		if got[i] != want[i] {
			t.Errorf("ledger row %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if _, err := ConsumeFeature(context.Background(), b, consumption.FeatureConsumption{LicenseFeatureID: 999999, Requested: 1}); !errors.Is(err, consumption.ErrUnsupportedProductFeature) {
		t.Errorf("consuming a license feature that does not exist: %v", err)
	}
}

// testConcurrentLimit is the promise users care most about: 200 concurrent
// consumptions of 1 against a limit of 100 grant exactly 100.
func testConcurrentLimit(t *testing.T, b backend) {
	ExactLimit(t, []store.Backend{b}, b.Ledger, 1001, 5001, 200, 100)
}

// ExactLimit sends n concurrent consumptions of 1 of a license feature whose
// limit is limit, spread round-robin over backends (one store, or several
// sharing a database, as several nodes do), and checks that exactly limit
// are granted and the rest refused with feature_not_enough_consumptions,
// that the counter is limit, and that the ledger, as ledgerOf reads it,
// holds limit rows applying 1 each with totals 1..limit in ledger order.
func ExactLimit(t *testing.T, backends []store.Backend, ledgerOf LedgerReader, licenseID, featureID int64, n, limit int) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	granted, refused := 0, 0
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			_, err := ConsumeFeature(context.Background(), backends[i%len(backends)], consumption.FeatureConsumption{
				Time: time.Now(), LicenseID: licenseID, LicenseFeatureID: featureID, Feature: "f",
				HardwareID: "hw-1", Requested: 1, APIKey: "key-1", Event: consumption.EventConsumptionAdd,
			})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				granted++
			case errors.Is(err, consumption.ErrFeatureNotEnoughConsumptions):
				refused++
			default:
				t.Errorf("unexpected error: %v", err)
			}
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	t.Logf("%d consumptions over %d backend(s) took %s", n, len(backends), time.Since(began))
	if granted != limit || refused != n-limit {
		t.Errorf("granted %d and refused %d, want %d and %d", granted, refused, limit, n-limit)
	}
	st, err := backends[0].LicenseStatus(context.Background(), licenseID, "")
	if err != nil {
		t.Fatal(err)
	}
	counter := int64(-1)
	for _, f := range st.Features {
		if f.ID == featureID {
			counter = f.Counter.Total
		}
	}
	if counter != int64(limit) {
		t.Errorf("counter is %d, want %d (-1: feature missing from the status)", counter, limit)
	}
	ledger, err := ledgerOf(context.Background(), licenseID, featureID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ledger) != limit {
		t.Fatalf("ledger has %d rows, want %d", len(ledger), limit)
	}
	for i, e := range ledger {
		if e.Total != int64(i+1) || e.Applied != 1 {
			t.Fatalf("ledger row %d: total %d applied %d, want total %d applied 1", i, e.Total, e.Applied, i+1)
		}
	}
}

func testResetPeriod(t *testing.T, b backend) {
	day := time.Date(2026, 11, 27, 23, 59, 59, 0, time.UTC)
	for i, s := range []struct {
		at    time.Time
		total int64
		err   error
	}{
		{day, 1, nil},
		{day, 2, nil},
		{day, 2, consumption.ErrFeatureNotEnoughConsumptions},
		{day.Add(time.Second), 1, nil}, // midnight: a new day
		{day.Add(24 * time.Hour), 2, nil},
		{day.Add(24*time.Hour + time.Second), 1, nil},
	} {
		out, err := consume(b, 5003, 1, s.at)
		if !errors.Is(err, s.err) || (err == nil && out.Total != s.total) {
			t.Errorf("step %d at %s: total %d, err %v; want %d, %v", i, s.at, out.Total, err, s.total, s.err)
		}
	}
}

func testReimport(t *testing.T, b backend) {
	at := time.Now()
	if _, err := consume(b, 5001, 40, at); err != nil {
		t.Fatal(err)
	}
	// The same file again (every Caddy reload does this) is skipped; the
	// same definitions in other bytes are applied, and keep the counter.
	if ImportSeed(t, b, Seed) {
		t.Error("re-importing the same file was applied; want it skipped")
	}
	if !ImportSeed(t, b, Seed+"\n") {
		t.Error("importing a file with other bytes was skipped")
	}
	if out, err := consume(b, 5001, 0, at); err != nil || out.Total != 40 {
		t.Fatalf("after re-import: total %d, %v; want 40 kept", out.Total, err)
	}
	// A changed file changes definitions but not the counter it leaves unset.
	changed := `{"products": [{"short_code": "cad", "name": "CAD Suite 2", "features": [
		{"code": "render", "name": "Render 2", "max_consumption": 500}]}],
	 "licenses": [{"id": 1001, "product": "cad", "license_key": "AAAA-BBBB", "enabled": false,
		"features": [{"code": "render", "id": 5001}]}]}`
	ImportSeed(t, b, changed)
	ctx := context.Background()
	if p, _, _ := b.Product(ctx, "cad"); p.Name != "CAD Suite 2" {
		t.Errorf("product name not updated: %q", p.Name)
	}
	p, _, _ := b.Product(ctx, "cad")
	if l, ok, err := b.LicenseByKey(ctx, p.ID, "AAAA-BBBB"); !ok || err != nil || l.Enabled {
		t.Errorf("license not disabled: %+v %v %v", l, ok, err)
	}
	f := mustFeature(t, b, 1001, "render")
	if f.MaxConsumption != 500 || f.Name != "Render 2" {
		t.Errorf("feature not updated: %+v", f)
	}
	// The counter's settings change with the file: a store that keeps them
	// beside its counters must notice the import.
	if out, err := consume(b, 5001, 0, at); err != nil || out.Total != 40 || out.Feature.MaxConsumption != 500 {
		t.Errorf("after a changed import: total %d, max %d, %v; want 40 kept, max 500", out.Total, out.Feature.MaxConsumption, err)
	}
	// A file that sets a new total sets the counter, once.
	setTotal := `{"products": [{"short_code": "cad", "features": [{"code": "render", "max_consumption": 500}]}],
	 "licenses": [{"id": 1001, "product": "cad", "license_key": "AAAA-BBBB",
		"features": [{"code": "render", "total_consumptions": 7}]}]}`
	ImportSeed(t, b, setTotal)
	if out, err := consume(b, 5001, 1, at); err != nil || out.Total != 8 {
		t.Errorf("after setting total 7: total %d, %v; want 8", out.Total, err)
	}
	// Re-formatted, so that it is applied rather than skipped.
	ImportSeed(t, b, " "+setTotal)
	if out, err := consume(b, 5001, 0, at); err != nil || out.Total != 8 {
		t.Errorf("re-importing total 7 reset the counter: total %d, %v; want 8", out.Total, err)
	}
	// Only the last import's digest counts: an older file is applied again.
	if !ImportSeed(t, b, changed) {
		t.Error("importing an earlier file again was skipped")
	}
	if f := mustFeature(t, b, 1001, "render"); f.Name != "Render 2" {
		t.Errorf("feature after importing the changed file again: %+v", f)
	}
}

// testImportIsAtomic imports a seed that the parser accepts but the database
// refuses halfway (a second license with an existing key), and checks that
// nothing of it was applied.
func testImportIsAtomic(t *testing.T, b backend) {
	bad := `{"products": [{"short_code": "new", "features": []}, {"short_code": "cad", "features": [{"code": "render"}]}],
	 "licenses": [{"id": 2002, "product": "cad", "license_key": "AAAA-BBBB"}]}`
	p, err := seed.Parse("bad.json", []byte(bad))
	if err != nil {
		t.Fatal(err)
	}
	// Twice: the failed import must not have recorded its digest.
	for range 2 {
		if _, err := b.Import(context.Background(), p); err == nil {
			t.Fatal("importing a second license with an existing key succeeded")
		}
	}
	if _, ok, err := b.Product(context.Background(), "new"); ok || err != nil {
		t.Errorf("a failed import left product new behind (%v, %v)", ok, err)
	}
}

func change(licenseID int64, hw string) consumption.DeviceChange {
	return consumption.DeviceChange{Time: time.Now(), LicenseID: licenseID, HardwareID: hw, APIKey: "key-1"}
}

func testActivation(t *testing.T, b backend) {
	ctx := context.Background()
	// 1001 allows one activation and has hw-1 bound.
	a, err := b.Activate(ctx, change(1001, "hw-1"))
	if err != nil || a.Changed || a.TimesActivated != 1 || a.DeviceID == 0 {
		t.Fatalf("re-activating a bound device: %+v %v; want no change", a, err)
	}
	if _, err := b.Activate(ctx, change(1001, "hw-2")); !errors.Is(err, consumption.ErrLicenseActivatedMaxTimes) {
		t.Fatalf("a second device past max_activations 1: %v", err)
	}
	if err := b.Deactivate(ctx, change(1001, "hw-1")); err != nil {
		t.Fatal(err)
	}
	if err := b.Deactivate(ctx, change(1001, "hw-1")); !errors.Is(err, consumption.ErrDeviceNotFound) {
		t.Errorf("deactivating twice: %v, want device_not_found", err)
	}
	if d, ok, _ := b.Device(ctx, 1001, "hw-1"); !ok || d.Active {
		t.Errorf("hw-1 after deactivation: %+v %v", d, ok)
	}
	a, err = b.Activate(ctx, change(1001, "hw-2"))
	if err != nil || !a.Changed || a.TimesActivated != 1 {
		t.Fatalf("activating into the freed slot: %+v %v", a, err)
	}
	st, err := b.LicenseStatus(ctx, 1001, "hw-2")
	if err != nil || st.TimesActivated != 1 || st.DeviceID != a.DeviceID || len(st.Features) != 4 || st.Features[0].ID != 5001 {
		t.Errorf("status after activation: %+v %v", st, err)
	}
	if st, _ := b.LicenseStatus(ctx, 1001, "hw-1"); st.DeviceID != 0 {
		t.Errorf("an unbound device has device id %d", st.DeviceID)
	}

	// The first activation makes an inactive license active.
	cad, _, _ := b.Product(ctx, "cad")
	if l, _, _ := b.LicenseByKey(ctx, cad.ID, "CONS"); l.Active {
		t.Fatal("CONS is seeded inactive")
	}
	if _, err := b.Activate(ctx, change(1003, "hw-9")); err != nil {
		t.Fatal(err)
	}
	if l, _, _ := b.LicenseByKey(ctx, cad.ID, "CONS"); !l.Active {
		t.Error("the first activation did not make the license active")
	}

	// Re-importing the seed (every reload does) keeps what activations did.
	ImportSeed(t, b, Seed)
	if l, _, _ := b.LicenseByKey(ctx, cad.ID, "CONS"); !l.Active {
		t.Error("re-importing the seed deactivated an activated license")
	}
	if d, _, _ := b.Device(ctx, 1001, "hw-1"); d.Active {
		t.Error("re-importing the seed re-bound a deactivated device")
	}
	if d, ok, _ := b.Device(ctx, 1001, "hw-2"); !ok || !d.Active {
		t.Error("re-importing the seed unbound an activated device")
	}
}

// testConcurrentActivations races 10 devices for CONS's two slots.
func testConcurrentActivations(t *testing.T, b backend) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	granted, refused := 0, 0
	for i := range 10 {
		wg.Go(func() {
			_, err := b.Activate(context.Background(), change(1003, fmt.Sprintf("hw-%d", i)))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				granted++
			case errors.Is(err, consumption.ErrLicenseActivatedMaxTimes):
				refused++
			default:
				t.Errorf("activation: %v", err)
			}
		})
	}
	wg.Wait()
	st, err := b.LicenseStatus(context.Background(), 1003, "")
	if granted != 2 || refused != 8 || err != nil || st.TimesActivated != 2 {
		t.Errorf("granted %d, refused %d, %d active (%v); want 2, 8, 2", granted, refused, st.TimesActivated, err)
	}
}

func testLicenseConsumption(t *testing.T, b backend) {
	ctx := context.Background()
	lc := func(n int64) (consumption.LicenseOutcome, error) {
		return ConsumeLicense(ctx, b, consumption.LicenseConsumption{Time: time.Now(), LicenseID: 1003,
			HardwareID: "hw-1", Requested: n, APIKey: "key-1", Event: consumption.EventConsumptionAdd})
	}
	for i, s := range []struct {
		n, total int64
		err      error
	}{
		{12, 12, nil}, // 10 + 2 overages
		{1, 12, consumption.ErrLicenseNotEnoughConsumptions},
		{-20, 0, nil},
	} {
		out, err := lc(s.n)
		if !errors.Is(err, s.err) || (err == nil && (out.Total != s.total || out.LicenseID != 1003 || out.Settings.MaxConsumption != 10)) {
			t.Errorf("step %d (%+d): %+v %v; want total %d, %v", i, s.n, out, err, s.total, s.err)
		}
	}
	ledger, err := b.Ledger(ctx, 1003, 0)
	if err != nil || len(ledger) != 2 || ledger[1].Applied != -12 || ledger[1].Feature != "" {
		t.Errorf("license ledger: %+v %v", ledger, err)
	}
	if st, _ := b.LicenseStatus(ctx, 1003, ""); st.Counter.Total != 0 {
		t.Errorf("status counter %d, want 0", st.Counter.Total)
	}
	cad, _, _ := b.Product(ctx, "cad")
	l, _, _ := b.LicenseByKey(ctx, cad.ID, "CONS")
	if l.Type != consumption.ConsumptionType || l.MaxActivations != 2 || l.Customer != `{"2":2,"10":1,"email":"c@example.com"}` {
		t.Errorf("CONS: type %q, max_activations %d, customer %s", l.Type, l.MaxActivations, l.Customer)
	}
}

func testPasswords(t *testing.T, b backend) {
	ctx := context.Background()
	team, _, _ := b.Product(ctx, "team")
	lics, _ := b.LicensesByUser(ctx, team.ID, "bob@example.com")
	if len(lics) != 1 {
		t.Fatalf("bob has %d licenses", len(lics))
	}
	hash, err := b.PasswordHash(ctx, lics[0].ID, "bob@example.com")
	if err != nil || !auth.VerifyPassword(hash, "hunter2") || strings.Contains(hash, "hunter2") {
		t.Fatalf("bob's stored hash %q (%v) does not verify hunter2, or holds it", hash, err)
	}
	if h, _ := b.PasswordHash(ctx, lics[0].ID, "ana@example.com"); h != "" {
		t.Errorf("ana has no password in the seed but a hash %q", h)
	}
	ImportSeed(t, b, Seed)
	if again, _ := b.PasswordHash(ctx, lics[0].ID, "bob@example.com"); again != hash {
		t.Error("re-importing the seed re-hashed an unchanged password")
	}
}

// testGeneratedIDs imports licenses and features without ids before ones
// that name ids a naive generator would hand out first; every one must
// survive with its own id.
func testGeneratedIDs(t *testing.T, b backend) {
	ctx := context.Background()
	ImportSeed(t, b, `{"products": [{"short_code": "gen", "features": [{"code": "a", "max_consumption": 1}, {"code": "b", "max_consumption": 1}]}],
	 "licenses": [
	  {"product": "gen", "license_key": "GEN-1", "features": [{"code": "a"}, {"code": "b"}]},
	  {"id": 1004, "product": "gen", "license_key": "GEN-2", "features": [{"code": "a", "id": 5005}]},
	  {"id": 1005, "product": "gen", "license_key": "GEN-3", "features": [{"code": "a", "id": 5006}]}]}`)
	gen, _, _ := b.Product(ctx, "gen")
	seen := map[int64]string{}
	for _, key := range []string{"GEN-1", "GEN-2", "GEN-3", "AAAA-BBBB"} {
		pid := gen.ID
		if key == "AAAA-BBBB" {
			cad, _, _ := b.Product(ctx, "cad")
			pid = cad.ID
		}
		l, ok, err := b.LicenseByKey(ctx, pid, key)
		if err != nil || !ok {
			t.Fatalf("license %s is gone (%v)", key, err)
		}
		if other, dup := seen[l.ID]; dup {
			t.Errorf("licenses %s and %s share id %d", key, other, l.ID)
		}
		seen[l.ID] = key
	}
	if l, _, _ := b.LicenseByKey(ctx, gen.ID, "GEN-2"); l.ID != 1004 {
		t.Errorf("GEN-2 has id %d, want the seed's 1004", l.ID)
	}
	l1, _, _ := b.LicenseByKey(ctx, gen.ID, "GEN-1")
	fa, okA, _ := b.Feature(ctx, l1.ID, "a")
	fb, okB, _ := b.Feature(ctx, l1.ID, "b")
	if !okA || !okB || fa.ID == fb.ID || fa.ID == 5005 || fa.ID == 5006 || fb.ID == 5005 || fb.ID == 5006 {
		t.Errorf("GEN-1's features: %+v %+v", fa, fb)
	}
	// A feature whose id the store chose has a counter, from zero.
	if out, err := consume(b, fb.ID, 1, time.Now()); err != nil || out.Total != 1 || out.Feature.ID != fb.ID {
		t.Errorf("consuming GEN-1's feature b: %+v, %v; want total 1", out, err)
	}
	for _, id := range []int64{5001, 5002} {
		if f, ok, _ := b.Feature(ctx, 1001, map[int64]string{5001: "render", 5002: "export"}[id]); !ok || f.ID != id {
			t.Errorf("feature %d of 1001 was taken over: %+v", id, f)
		}
	}
}
