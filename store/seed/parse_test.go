package seed

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/edgelicense/caddy-license-api/consumption"
)

func TestParseErrors(t *testing.T) {
	const product = `{"short_code": "cad", "features": [{"code": "render", "max_consumption": 5}]}`
	tests := []struct {
		name, seed, place, reason string
	}{
		{"syntax", "{\n \"products\": [\n  {\"short_code\": \"cad\",}\n ]\n}", "line 3", "invalid character"},
		{"wrong type", `{"products": [{"short_code": 5}]}`, "products.short_code", "number"},
		{"unknown field", `{"products": [{"short_code": "cad", "feature": []}]}`, "line 1", `unknown field "feature"`},
		{"trailing content", `{} {}`, "line 1, column", "content after"},
		{"no short code", `{"products": [{"name": "x"}]}`, "products[0]", "short_code is required"},
		{"duplicate product", `{"products": [` + product + `,` + product + `]}`, "products[1]", "defined twice"},
		{"bad method", `{"products": [{"short_code": "cad", "authorization_method": "oauth"}]}`, "products[0]", "authorization_method"},
		{"bad feature type", `{"products": [{"short_code": "cad", "features": [{"code": "f", "feature_type": "metered"}]}]}`, "products[0].features[0]", "feature_type"},
		{"bad period", `{"products": [{"short_code": "cad", "features": [{"code": "f", "consumption_period": "hourly"}]}]}`, "products[0].features[0]", "hourly"},
		{"negative limit", `{"products": [{"short_code": "cad", "features": [{"code": "f", "max_consumption": -1}]}]}`, "products[0].features[0]", "max_consumption"},
		{"bad expiry", `{"products": [{"short_code": "cad", "features": [{"code": "f", "expiry_date": "next year"}]}]}`, "products[0].features[0]", "expiry_date"},
		{"unknown product", `{"licenses": [{"product": "cam", "license_key": "K"}]}`, "licenses[0]", `unknown product "cam"`},
		{"no key", `{"products": [` + product + `], "licenses": [{"product": "cad"}]}`, "licenses[0]", "license_key is required"},
		{"no users", `{"products": [{"short_code": "t", "authorization_method": "user"}], "licenses": [{"product": "t"}]}`, "licenses[0]", "users is required"},
		{"duplicate key", `{"products": [` + product + `], "licenses": [{"product": "cad", "license_key": "K"}, {"product": "cad", "license_key": "K"}]}`, "licenses[1]", "used twice"},
		{"duplicate id", `{"products": [` + product + `], "licenses": [{"id": 7, "product": "cad", "license_key": "A"}, {"id": 7, "product": "cad", "license_key": "B"}]}`, "licenses[1]", "licenses[0]"},
		{"unknown feature", `{"products": [` + product + `], "licenses": [{"product": "cad", "license_key": "K", "features": [{"code": "rendr"}]}]}`, "licenses[0].features[0]", `unknown feature "rendr"`},
		{"negative total", `{"products": [` + product + `], "licenses": [{"product": "cad", "license_key": "K", "features": [{"code": "render", "total_consumptions": -1}]}]}`, "licenses[0].features[0]", "total_consumptions"},
		{"bad validity", `{"products": [` + product + `], "licenses": [{"product": "cad", "license_key": "K", "validity_period": "2030-01-01"}]}`, "licenses[0]", "validity_period"},
		{"device without id", `{"products": [` + product + `], "licenses": [{"product": "cad", "license_key": "K", "devices": [{"active": true}]}]}`, "licenses[0].devices[0]", "hardware_id"},
		{"blacklist unknown product", `{"blacklist": [{"hardware_id": "h", "product": "cad"}]}`, "blacklist[0]", "unknown product"},
		// Licenses are decoded one at a time; a type error still names the
		// list and the exact line and column.
		{"wrong type in a later license", `{"products": [` + product + `], "licenses": [{"product": "cad", "license_key": "K"},` +
			"\n" + `  {"product": 5}]}`, "licenses.product (line 2, column 16)", "number"},
		{"unknown field in a license", `{"products": [` + product + `], "licenses": [{"product": "cad", "licence_key": "K"}]}`, "line 1", `unknown field "licence_key"`},
		{"syntax error after a bad license", `{"products": [` + product + `], "licenses": [{"product": "cam", "license_key": "K"}, {]}`, "line 1, column", "invalid character"},
		{"list given twice", `{"licenses": [], "Licenses": []}`, "line 1", "Licenses is given twice"},
		{"not an object", `[]`, "line 1", "must be a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("seed.json", []byte(tt.seed))
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a *Error", err)
			}
			if !strings.Contains(se.Place, tt.place) || !strings.Contains(err.Error(), tt.reason) || !strings.HasPrefix(err.Error(), "seed seed.json: ") {
				t.Errorf("error %q: want place %q and reason %q", err, tt.place, tt.reason)
			}
		})
	}
}

func TestParseResolvesOverrides(t *testing.T) {
	p, err := Parse("seed.json", []byte(`{
	 "products": [{"short_code": "cad", "name": "CAD", "features": [
	   {"code": "render", "name": "Render", "max_consumption": 10, "allow_negative_consumptions": true,
	    "reset_consumption": true, "consumption_period": "weekly", "expiry_date": "2030-01-01T00:00:00+02:00"},
	   {"code": "pro", "feature_type": "activation"}]},
	  {"short_code": "team", "authorization_method": "user"}],
	 "licenses": [
	  {"product": "cad", "license_key": "K", "enabled": false, "validity_period": "2031-05-01T12:00:00Z",
	   "features": [{"code": "render", "id": 9, "max_consumption": 20, "allow_negative_consumptions": false,
	                 "consumption_period": null, "expiry_date": null, "total_consumptions": 3},
	                {"code": "pro"}],
	   "devices": [{"hardware_id": "h1"}, {"hardware_id": "h2", "active": false}]},
	  {"product": "team", "users": ["Ana@Example.COM"]}],
	 "blacklist": [{"hardware_id": "bad"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Products) != 2 || p.Products[1].AuthMethod != consumption.UserBased {
		t.Fatalf("products %+v", p.Products)
	}
	def := p.Products[0].Features[0]
	if def.MaxConsumption != 10 || !def.AllowNegative || def.Period != consumption.Weekly ||
		!def.ExpiryDate.Equal(time.Date(2029, 12, 31, 22, 0, 0, 0, time.UTC)) {
		t.Errorf("product feature %+v", def)
	}
	licenses := planned(t, p)
	if p.Licenses != 2 || len(licenses) != 2 {
		t.Fatalf("%d licenses counted, %d planned; want 2", p.Licenses, len(licenses))
	}
	lic := licenses[0]
	if lic.Enabled || !lic.Active || !lic.ValidityPeriod.Equal(time.Date(2031, 5, 1, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("license %+v: want disabled, active by default, valid until 2031-05-01T12:00Z", lic.License)
	}
	f := lic.Features[0]
	want := consumption.LicenseFeature{ID: 9, Code: "render", Name: "Render", Type: consumption.ConsumptionFeature,
		Settings: consumption.Settings{MaxConsumption: 20, ResetConsumption: true}}
	if f.LicenseFeature != want || f.Total == nil || *f.Total != 3 {
		t.Errorf("license feature %+v (total %v), want overrides applied: %+v with total 3", f.LicenseFeature, f.Total, want)
	}
	if pro := lic.Features[1]; pro.Type != consumption.ActivationFeature || pro.Total != nil || pro.Name != "pro" {
		t.Errorf("pro %+v: want the product's type, its code as name, and the counter kept", pro)
	}
	if d := lic.Devices; len(d) != 2 || !d[0].Active || d[1].Active {
		t.Errorf("devices %+v", d)
	}
	if u := licenses[1].Users; len(u) != 1 || u[0] != "ana@example.com" {
		t.Errorf("users %v, want lower-cased", u)
	}
	if b := p.Blacklist; len(b) != 1 || b[0].Product != "" {
		t.Errorf("blacklist %+v", b)
	}
}

// TestParseListsInAnyOrder checks that licenses listed before their
// products, which the parser cannot plan as it meets them, plan the same.
func TestParseListsInAnyOrder(t *testing.T) {
	const products = `"products": [{"short_code": "cad", "features": [{"code": "render", "max_consumption": 5}]}]`
	const licenses = `"licenses": [{"id": 3, "product": "cad", "license_key": "K", "features": [{"code": "render", "id": 4}],
		"devices": [{"hardware_id": "h"}]}, {"product": "cad", "license_key": "L"}]`
	const blacklist = `"blacklist": [{"hardware_id": "bad", "product": "cad"}]`
	want, err := Parse("seed.json", []byte("{"+products+","+licenses+","+blacklist+"}"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse("seed.json", []byte("{"+blacklist+","+licenses+","+products+"}"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Products, want.Products) || !reflect.DeepEqual(got.Blacklist, want.Blacklist) ||
		!reflect.DeepEqual(planned(t, got), planned(t, want)) {
		t.Errorf("licenses before products: plan %+v, want %+v", got, want)
	}
	if l, f := got.MaxIDs(); l != 3 || f != 4 {
		t.Errorf("MaxIDs = %d, %d; want 3, 4", l, f)
	}
	_, err = Parse("seed.json", []byte(`{"licenses": [{"product": "cad", "license_key": "K"}, {"product": "cam"}], `+products+"}"))
	if err == nil || !strings.Contains(err.Error(), `licenses[1]: unknown product "cam"`) {
		t.Errorf("err = %v, want licenses[1] named", err)
	}
}

// planned returns the licenses p.Apply writes, in order.
func planned(t *testing.T, p *Plan) []*License {
	t.Helper()
	var r recorder
	if err := p.Apply(&r); err != nil {
		t.Fatal(err)
	}
	return r.licenses
}

// recorder is a Writer that keeps the licenses.
type recorder struct{ licenses []*License }

func (r *recorder) Product(*Product) (int64, error) { return 1, nil }

func (r *recorder) License(l *License, _ int64) error {
	r.licenses = append(r.licenses, l)
	return nil
}

func (r *recorder) BlacklistEntry(BlacklistEntry, int64) error { return nil }
