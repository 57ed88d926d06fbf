package consumption

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/edgelicense/caddy-license-api/auth"
)

func licenseRequest(product, key, user, hw string) *LicenseRequest {
	return &LicenseRequest{Product: product, LicenseKey: key, Username: user, HardwareID: hw}
}

func TestActivateLicenseErrorOrder(t *testing.T) {
	hash, err := auth.HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(m *memory, r *LicenseRequest)
		want   error
	}{
		{"unknown_product", func(m *memory, r *LicenseRequest) { r.Product = "nope" }, ErrUnknownProduct},
		{"license_not_found", func(m *memory, r *LicenseRequest) {
			r.LicenseKey = "NOPE"
			m.licenses[0].Enabled = false
		}, ErrLicenseNotFound},
		{"invalid_credentials before license_not_enabled", func(m *memory, r *LicenseRequest) {
			*r = *licenseRequest("team", "", "ana@example.com", "hw-9")
			r.Password = "wrong"
			m.passwords["21ana@example.com"] = hash
			m.licenses[2].Enabled = false
		}, ErrInvalidCredentials},
		{"license_not_enabled before license_expired", func(m *memory, r *LicenseRequest) {
			m.licenses[0].Enabled = false
			m.licenses[0].ValidityPeriod = now.Add(-time.Hour)
		}, ErrLicenseNotEnabled},
		{"license_expired before blacklisted", func(m *memory, r *LicenseRequest) {
			m.licenses[0].ValidityPeriod = now.Add(-time.Hour)
			m.blacklist["hw-9"] = true
		}, ErrLicenseExpired},
		{"blacklisted before license_activated_max_times", func(m *memory, r *LicenseRequest) {
			m.blacklist["hw-9"] = true
		}, ErrBlacklisted},
		{"license_activated_max_times", func(m *memory, r *LicenseRequest) {}, ErrLicenseActivatedMaxTimes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMemory()
			m.licenses[0].MaxActivations = 1 // hw-1 is bound already
			r := licenseRequest("cad", "KEY-1", "", "hw-9")
			tt.mutate(m, r)
			svc := &Service{Definitions: m, Recorder: m, Clock: func() time.Time { return now }}
			if _, err := svc.ActivateLicense(context.Background(), "k", r); !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestActivateLicense(t *testing.T) {
	m := newMemory()
	m.licenses[0].Active = false
	m.licenses[0].MaxActivations = 2
	var forgot []int64
	svc := &Service{Definitions: m, Recorder: m, Clock: func() time.Time { return now },
		Forget: func(id int64) { forgot = append(forgot, id) }}
	v, err := svc.ActivateLicense(context.Background(), "k", licenseRequest("cad", "KEY-1", "", "hw-9"))
	if err != nil {
		t.Fatal(err)
	}
	if !v.License.Active || v.Status.TimesActivated != 2 || v.Status.DeviceID == 0 || v.SignatureID != "KEY-1" {
		t.Errorf("view %+v", v)
	}
	if len(forgot) != 1 || forgot[0] != v.License.ID {
		t.Errorf("Forget calls %v, want one for license %d", forgot, v.License.ID)
	}
	// Re-activating a bound device changes nothing, so the cache keeps it.
	if _, err := svc.ActivateLicense(context.Background(), "k", licenseRequest("cad", "KEY-1", "", "hw-9")); err != nil || len(forgot) != 1 {
		t.Errorf("re-activation: %v, Forget calls %v", err, forgot)
	}
	if err := svc.DeactivateLicense(context.Background(), "k", licenseRequest("cad", "KEY-1", "", "hw-9")); err != nil || len(forgot) != 2 {
		t.Errorf("deactivation: %v, Forget calls %v", err, forgot)
	}
	if err := svc.DeactivateLicense(context.Background(), "k", licenseRequest("cad", "KEY-1", "", "hw-9")); !errors.Is(err, ErrDeviceNotFound) {
		t.Errorf("second deactivation: %v", err)
	}
}

func TestAddConsumptionErrorOrder(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(m *memory, r *LicenseConsumptionRequest)
		want   error
	}{
		{"device_not_found before license_not_consumption", func(m *memory, r *LicenseConsumptionRequest) {
			m.licenses[0].Type = Perpetual
			r.HardwareID = "hw-9"
		}, ErrDeviceNotFound},
		{"license_not_consumption before negative_consumptions_not_allowed", func(m *memory, r *LicenseConsumptionRequest) {
			m.licenses[0].Type = Perpetual
			r.Consumptions = int64p(-1)
		}, ErrLicenseNotConsumption},
		{"negative_consumptions_not_allowed", func(m *memory, r *LicenseConsumptionRequest) { r.Consumptions = int64p(-1) }, ErrNegativeConsumptionsNotAllowed},
		{"license_not_enough_consumptions", func(m *memory, r *LicenseConsumptionRequest) { r.Consumptions = int64p(11) }, ErrLicenseNotEnoughConsumptions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMemory()
			m.licenses[0].Type = ConsumptionType
			m.licenses[0].Consumption = Settings{MaxConsumption: 10}
			r := &LicenseConsumptionRequest{LicenseRequest: *licenseRequest("cad", "KEY-1", "", "hw-1")}
			tt.mutate(m, r)
			svc := &Service{Definitions: m, Recorder: m, Clock: func() time.Time { return now }}
			if _, _, err := svc.AddConsumption(context.Background(), "k", r); !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSignatureV1Message(t *testing.T) {
	tests := []struct {
		hw, key, user string
		validity      time.Time
		want          string
	}{
		{"HW-1", "AAAA-bbbb", "", time.Time{}, "hw-1#aaaa-bbbb#"},
		{"hw-1", "", "Ana@Example.com|sso", time.Time{}, "hw-1#ana@example.com#"},
		{"hw", "K", "", time.Date(2019, 6, 15, 0, 0, 0, 0, time.UTC), "hw#k#2019-06-15t00:00:00.000z"},
		{"hw", "K", "", time.Date(2019, 6, 15, 2, 0, 0, 5e6, time.FixedZone("", 2*3600)), "hw#k#2019-06-15t00:00:00.005z"},
	}
	for _, tt := range tests {
		r := licenseRequest("p", tt.key, tt.user, tt.hw)
		v := LicenseView{HardwareID: tt.hw, SignatureID: signatureID(r), License: License{ValidityPeriod: tt.validity}}
		if got := string(v.SignatureV1Message()); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}
