package consumption

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/edgelicense/caddy-license-api/apierror"
)

// memory is an in-memory Definitions and Counters for testing the rules.
type memory struct {
	products  map[string]Product
	licenses  []License
	users     map[int64][]string
	devices   []Device
	blacklist map[string]bool // hardware id, any product
	features  []LicenseFeature
	counters  map[int64]Counter
	recorded  []FeatureConsumption
	// For the lifecycle endpoints.
	passwords       map[string]string // fmt.Sprint(licenseID, user) -> hash
	licenseCounters map[int64]Counter
}

func (m *memory) Product(_ context.Context, code string) (Product, bool, error) {
	p, ok := m.products[code]
	return p, ok, nil
}

func (m *memory) LicenseByKey(_ context.Context, pid int64, key string) (License, bool, error) {
	for _, l := range m.licenses {
		if l.ProductID == pid && l.Key == key {
			return l, true, nil
		}
	}
	return License{}, false, nil
}

func (m *memory) LicenseByID(_ context.Context, id int64) (License, bool, error) {
	if l := m.license(id); l != nil {
		return *l, true, nil
	}
	return License{}, false, nil
}

func (m *memory) LicensesByUser(_ context.Context, pid int64, user string) ([]License, error) {
	var out []License
	for _, l := range m.licenses {
		for _, u := range m.users[l.ID] {
			if l.ProductID == pid && u == user {
				out = append(out, l)
			}
		}
	}
	return out, nil
}

func (m *memory) Device(_ context.Context, lid int64, hw string) (Device, bool, error) {
	for _, d := range m.devices {
		if d.LicenseID == lid && d.HardwareID == hw {
			return d, true, nil
		}
	}
	return Device{}, false, nil
}

func (m *memory) Blacklisted(_ context.Context, _ int64, hw string) (bool, error) {
	return m.blacklist[hw], nil
}

func (m *memory) Feature(_ context.Context, lid int64, code string) (LicenseFeature, bool, error) {
	for _, f := range m.features {
		if f.LicenseID == lid && f.Code == code {
			return f, true, nil
		}
	}
	return LicenseFeature{}, false, nil
}

func (m *memory) PasswordHash(_ context.Context, lid int64, user string) (string, error) {
	return m.passwords[fmt.Sprint(lid, user)], nil
}

func (m *memory) license(id int64) *License {
	for i := range m.licenses {
		if m.licenses[i].ID == id {
			return &m.licenses[i]
		}
	}
	return nil
}

func (m *memory) activeDevices(lid int64) (n int64) {
	for _, d := range m.devices {
		if d.LicenseID == lid && d.Active {
			n++
		}
	}
	return n
}

func (m *memory) Activate(_ context.Context, a DeviceChange) (Activation, error) {
	for i, d := range m.devices {
		if d.LicenseID == a.LicenseID && d.HardwareID == a.HardwareID {
			if d.Active {
				return Activation{DeviceID: d.ID, TimesActivated: m.activeDevices(a.LicenseID)}, nil
			}
			m.devices = append(m.devices[:i], m.devices[i+1:]...)
			break
		}
	}
	l := m.license(a.LicenseID)
	if err := l.ActivationAllowed(m.activeDevices(a.LicenseID)); err != nil {
		return Activation{}, err
	}
	id := int64(len(m.devices) + 100)
	m.devices = append(m.devices, Device{id, a.LicenseID, a.HardwareID, true})
	l.Active = true
	return Activation{DeviceID: id, TimesActivated: m.activeDevices(a.LicenseID), Changed: true}, nil
}

func (m *memory) Deactivate(_ context.Context, d DeviceChange) error {
	for i := range m.devices {
		if m.devices[i].LicenseID == d.LicenseID && m.devices[i].HardwareID == d.HardwareID && m.devices[i].Active {
			m.devices[i].Active = false
			return nil
		}
	}
	return ErrDeviceNotFound
}

func (m *memory) ConsumeLicense(_ context.Context, c LicenseConsumption) (LicenseOutcome, Durable, error) {
	l := m.license(c.LicenseID)
	next, applied, err := ApplyLicense(l.Consumption, m.licenseCounters[l.ID], c.Requested, c.Time)
	if err != nil {
		return LicenseOutcome{}, nil, err
	}
	m.licenseCounters[l.ID] = next
	return LicenseOutcome{LicenseID: l.ID, Settings: l.Consumption, Total: next.Total, Applied: applied}, nil, nil
}

func (m *memory) LicenseStatus(_ context.Context, lid int64, hw string) (LicenseStatus, error) {
	st := LicenseStatus{TimesActivated: m.activeDevices(lid), Counter: m.licenseCounters[lid]}
	for _, d := range m.devices {
		if d.LicenseID == lid && d.HardwareID == hw && d.Active {
			st.DeviceID = d.ID
		}
	}
	for _, f := range m.features {
		if f.LicenseID == lid {
			st.Features = append(st.Features, FeatureState{f, m.counters[f.ID]})
		}
	}
	return st, nil
}

func (m *memory) ConsumeFeature(_ context.Context, c FeatureConsumption) (FeatureOutcome, Durable, error) {
	for _, f := range m.features {
		if f.ID != c.LicenseFeatureID {
			continue
		}
		next, applied, err := Apply(f.Settings, m.counters[f.ID], c.Requested, c.Time)
		if err != nil {
			return FeatureOutcome{}, nil, err
		}
		m.counters[f.ID] = next
		m.recorded = append(m.recorded, c)
		return FeatureOutcome{Feature: f, Total: next.Total, Applied: applied}, nil, nil
	}
	return FeatureOutcome{}, nil, errors.New("no such license feature")
}

var now = utc("2026-11-27T12:00:00Z")

// newMemory builds a model in which the request made by okRequest succeeds,
// so that each case can break exactly one thing.
func newMemory() *memory {
	return &memory{
		products: map[string]Product{
			"cad":  {ID: 1, ShortCode: "cad", AuthMethod: KeyBased},
			"team": {ID: 2, ShortCode: "team", AuthMethod: UserBased},
		},
		licenses: []License{
			{ID: 10, ProductID: 1, Key: "KEY-1", Enabled: true, Active: true},
			{ID: 20, ProductID: 2, Enabled: true, Active: true},
			{ID: 21, ProductID: 2, Enabled: true, Active: true},
		},
		users:   map[int64][]string{20: {"ana@example.com"}, 21: {"ana@example.com"}},
		devices: []Device{{1, 10, "hw-1", true}, {2, 20, "hw-1", true}, {3, 21, "hw-1", true}},
		features: []LicenseFeature{
			{ID: 100, LicenseID: 10, Code: "render", Type: ConsumptionFeature, Settings: Settings{MaxConsumption: 5}},
			{ID: 200, LicenseID: 20, Code: "render", Type: ConsumptionFeature, Settings: Settings{MaxConsumption: 5}},
			{ID: 210, LicenseID: 21, Code: "render", Type: ConsumptionFeature, Settings: Settings{MaxConsumption: 5}},
		},
		blacklist:       map[string]bool{},
		counters:        map[int64]Counter{},
		passwords:       map[string]string{},
		licenseCounters: map[int64]Counter{},
	}
}

func okRequest() *FeatureConsumptionRequest {
	return featureRequest("hw-1", "cad", "render", "KEY-1")
}

func featureRequest(hw, product, feature, key string) *FeatureConsumptionRequest {
	r := &FeatureConsumptionRequest{Feature: feature}
	r.HardwareID, r.Product, r.LicenseKey = hw, product, key
	return r
}

func int64p(n int64) *int64 { return &n }

func TestAddFeatureConsumptionErrorOrder(t *testing.T) {
	// Each case breaks one rule and every rule after it, so only the
	// documented order gives the expected code.
	tests := []struct {
		name   string
		mutate func(m *memory, r *FeatureConsumptionRequest)
		want   error
	}{
		{"unknown_product", func(m *memory, r *FeatureConsumptionRequest) {
			breakAll(m, r)
			r.Product = "nope"
		}, ErrUnknownProduct},
		{"license_not_found", func(m *memory, r *FeatureConsumptionRequest) {
			breakAll(m, r)
			r.LicenseKey = "NOPE"
		}, ErrLicenseNotFound},
		{"license_not_enabled", breakAll, ErrLicenseNotEnabled},
		{"license_not_active", func(m *memory, r *FeatureConsumptionRequest) {
			breakAll(m, r)
			m.licenses[0].Enabled = true
		}, ErrLicenseNotActive},
		{"license_expired", func(m *memory, r *FeatureConsumptionRequest) {
			breakAll(m, r)
			m.licenses[0].Enabled, m.licenses[0].Active = true, true
		}, ErrLicenseExpired},
		{"blacklisted", func(m *memory, r *FeatureConsumptionRequest) {
			breakAll(m, r)
			m.licenses[0] = License{ID: 10, ProductID: 1, Key: "KEY-1", Enabled: true, Active: true}
		}, ErrBlacklisted},
		{"device_not_found", func(m *memory, r *FeatureConsumptionRequest) {
			m.devices[0].Active = false
			m.features[0].Type = ActivationFeature
			r.Consumptions = int64p(-100)
		}, ErrDeviceNotFound},
		{"device_not_found for an unknown hardware id", func(m *memory, r *FeatureConsumptionRequest) {
			r.HardwareID = "hw-other"
		}, ErrDeviceNotFound},
		{"unsupported_product_feature: not on the license", func(m *memory, r *FeatureConsumptionRequest) {
			r.Feature = "other"
			r.Consumptions = int64p(-100)
		}, ErrUnsupportedProductFeature},
		{"unsupported_product_feature: activation feature", func(m *memory, r *FeatureConsumptionRequest) {
			m.features[0].Type = ActivationFeature
			r.Consumptions = int64p(-100)
		}, ErrUnsupportedProductFeature},
		{"unsupported_product_feature: expired feature", func(m *memory, r *FeatureConsumptionRequest) {
			m.features[0].ExpiryDate = now
			r.Consumptions = int64p(-100)
		}, ErrUnsupportedProductFeature},
		{"negative_consumptions_not_allowed", func(m *memory, r *FeatureConsumptionRequest) {
			r.Consumptions = int64p(-100)
		}, ErrNegativeConsumptionsNotAllowed},
		{"feature_not_enough_consumptions", func(m *memory, r *FeatureConsumptionRequest) {
			r.Consumptions = int64p(6)
		}, ErrFeatureNotEnoughConsumptions},
		{"license_id of another license", func(m *memory, r *FeatureConsumptionRequest) {
			r.LicenseID = int64p(20)
		}, ErrLicenseNotFound},
		{"user-based: unknown user", func(m *memory, r *FeatureConsumptionRequest) {
			r.Product, r.LicenseKey, r.Username = "team", "", "bob@example.com"
		}, ErrLicenseNotFound},
		{"user-based: license_id not the user's", func(m *memory, r *FeatureConsumptionRequest) {
			r.Product, r.LicenseKey, r.Username, r.LicenseID = "team", "", "ana@example.com", int64p(10)
		}, ErrLicenseNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMemory()
			r := okRequest()
			tt.mutate(m, r)
			svc := &Service{Definitions: m, Recorder: m, Clock: func() time.Time { return now }}
			_, _, err := svc.AddFeatureConsumption(context.Background(), "api-key", r)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if len(m.recorded) != 0 || len(m.counters) != 0 {
				t.Errorf("a refused request changed state: %v %v", m.recorded, m.counters)
			}
		})
	}
}

// breakAll breaks every rule from license_not_enabled on.
func breakAll(m *memory, r *FeatureConsumptionRequest) {
	m.licenses[0].Enabled = false
	m.licenses[0].Active = false
	m.licenses[0].ValidityPeriod = now.Add(-time.Second)
	m.blacklist["hw-1"] = true
	m.devices[0].Active = false
	m.features[0].Type = ActivationFeature
	r.Consumptions = int64p(-100)
}

func TestAddFeatureConsumptionSucceeds(t *testing.T) {
	tests := []struct {
		name        string
		edit        func(r *FeatureConsumptionRequest)
		wantFeature int64
	}{
		{"key-based", func(r *FeatureConsumptionRequest) {}, 100},
		{"key-based with its license_id", func(r *FeatureConsumptionRequest) { r.LicenseID = int64p(10) }, 100},
		{"user-based, name in another case, newest license", func(r *FeatureConsumptionRequest) {
			r.Product, r.LicenseKey, r.Username = "team", "", "Ana@Example.COM"
		}, 210},
		{"user-based with license_id", func(r *FeatureConsumptionRequest) {
			r.Product, r.LicenseKey, r.Username, r.LicenseID = "team", "", "ana@example.com", int64p(20)
		}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMemory()
			r := okRequest()
			r.Consumptions = int64p(3)
			r.Event = []string{EventOfflineSync}
			tt.edit(r)
			svc := &Service{Definitions: m, Recorder: m, Clock: func() time.Time { return now }}
			out, _, err := svc.AddFeatureConsumption(context.Background(), "api-key", r)
			if err != nil {
				t.Fatal(err)
			}
			if out.Feature.ID != tt.wantFeature || out.Total != 3 || out.Applied != 3 {
				t.Errorf("outcome %+v, want feature %d with total 3", out, tt.wantFeature)
			}
			rec := m.recorded[0]
			if rec.APIKey != "api-key" || rec.Event != EventOfflineSync || rec.HardwareID != "hw-1" || rec.Requested != 3 || !rec.Time.Equal(now) {
				t.Errorf("recorded %+v", rec)
			}
		})
	}
}

func TestAddFeatureConsumptionMissingAddress(t *testing.T) {
	m := newMemory()
	svc := &Service{Definitions: m, Recorder: m}
	for _, r := range []*FeatureConsumptionRequest{
		featureRequest("hw-1", "cad", "render", ""),
		featureRequest("hw-1", "team", "render", "KEY-1"),
	} {
		_, _, err := svc.AddFeatureConsumption(context.Background(), "k", r)
		var e *apierror.Error
		if !errors.As(err, &e) || e.Code != CodeMissingField {
			t.Errorf("%s product without its address: err = %v, want missing_field", r.Product, err)
		}
	}
}
