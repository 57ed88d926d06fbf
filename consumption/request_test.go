package consumption

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/edgelicense/caddy-license-api/apierror"
)

func TestDecodeFeatureConsumption(t *testing.T) {
	tests := []struct {
		body      string
		wantCode  string
		wantField string // must appear in the message
	}{
		{`not json`, CodeInvalidJSON, ""},
		{`{"hardware_id":"h"`, CodeInvalidJSON, ""},
		{`[1,2]`, CodeInvalidJSON, "object"},
		{`"text"`, CodeInvalidJSON, "object"},
		{`{}`, CodeMissingField, "hardware_id"},
		{`{"hardware_id":"","product":"p","feature":"f"}`, CodeMissingField, "hardware_id"},
		{`{"hardware_id":"h","feature":"f"}`, CodeMissingField, "product"},
		{`{"hardware_id":"h","product":"p"}`, CodeMissingField, "feature"},
		{`{"hardware_id":1,"product":"p","feature":"f"}`, CodeInvalidField, "hardware_id"},
		{`{"hardware_id":"h","product":["p"],"feature":"f"}`, CodeInvalidField, "product"},
		{`{"hardware_id":"h","product":"p","feature":"f","consumptions":"1"}`, CodeInvalidField, "consumptions"},
		{`{"hardware_id":"h","product":"p","feature":"f","consumptions":1.5}`, CodeInvalidField, "consumptions"},
		{`{"hardware_id":"h","product":"p","feature":"f","consumptions":1e300}`, CodeInvalidField, "consumptions"},
		{`{"hardware_id":"h","product":"p","feature":"f","consumptions":9007199254740992}`, CodeInvalidField, "consumptions"},
		{`{"hardware_id":"h","product":"p","feature":"f","license_id":"7"}`, CodeInvalidField, "license_id"},
		{`{"hardware_id":"h","product":"p","feature":"f","event":"consumption_add"}`, CodeInvalidField, "event"},
		{`{"hardware_id":"h","product":"p","feature":"f","event":[1]}`, CodeInvalidField, "event"},
		{`{"hardware_id":"h","product":"p","feature":"f","event":["other"]}`, CodeInvalidField, "event"},
		{`{"hardware_id":"h","product":"p","feature":"f","event":["consumption_add","offline_floating_consumptions_sync"]}`, CodeInvalidField, "event"},
		{`{"hardware_id":"h\u0000","product":"p","feature":"f"}`, CodeInvalidField, "hardware_id"},
		{`{"hardware_id":"h","product":"p","feature":"f\u0000x"}`, CodeInvalidField, "feature"},
		{`{"hardware_id":"h","product":"p","feature":"f","license_key":"\u0000"}`, CodeInvalidField, "license_key"},
	}
	for _, tt := range tests {
		_, err := DecodeFeatureConsumption([]byte(tt.body))
		var e *apierror.Error
		if !errors.As(err, &e) {
			t.Errorf("%s: err = %v, want an *apierror.Error", tt.body, err)
			continue
		}
		if e.Code != tt.wantCode || !strings.Contains(e.Message, tt.wantField) || e.Status != 400 {
			t.Errorf("%s: got %d %s %q, want %s naming %q", tt.body, e.Status, e.Code, e.Message, tt.wantCode, tt.wantField)
		}
	}
}

func TestDecodeFeatureConsumptionValid(t *testing.T) {
	r, err := DecodeFeatureConsumption([]byte(`{"hardware_id":"h","product":"p","feature":"f","license_key":"K",
		"license_id":7,"consumptions":-3,"event":["offline_floating_consumptions_sync"],"sdk_ver":"1.4.17","extra":{"ignored":true}}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.Amount() != -3 || *r.LicenseID != 7 || r.LicenseKey != "K" || r.EventLabel() != EventOfflineSync {
		t.Errorf("decoded %+v", r)
	}
	r, err = DecodeFeatureConsumption([]byte(`{"hardware_id":"h","product":"p","feature":"f","username":"u"}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.Amount() != 1 || r.EventLabel() != EventConsumptionAdd || r.LicenseID != nil {
		t.Errorf("defaults: amount %d, event %q, license_id %v", r.Amount(), r.EventLabel(), r.LicenseID)
	}
}

func TestParseLicenseQuery(t *testing.T) {
	tests := []struct {
		query     string
		wantCode  string
		wantField string
	}{
		{"hardware_id=h&product=p&license_key=K&license_id=7&include_expired_features=true", "", ""},
		{"product=p&license_key=K", CodeMissingField, "hardware_id"},
		{"hardware_id=h&license_key=K", CodeMissingField, "product"},
		{"hardware_id=h&product=p&license_id=x", CodeInvalidField, "license_id"},
		{"hardware_id=h&product=p&include_expired_features=maybe", CodeInvalidField, "include_expired_features"},
		{"hardware_id=h%00&product=p", CodeInvalidField, "hardware_id"},
		{"hardware_id=h&product=p&username=%ff%fe", CodeInvalidField, "username"},
	}
	for _, tt := range tests {
		q, err := url.ParseQuery(tt.query)
		if err != nil {
			t.Fatal(err)
		}
		r, err := ParseLicenseQuery(q)
		if tt.wantCode == "" {
			if err != nil || r.LicenseID == nil || *r.LicenseID != 7 || !r.IncludeExpiredFeatures || r.LicenseKey != "K" {
				t.Errorf("%s: %+v %v", tt.query, r, err)
			}
			continue
		}
		var e *apierror.Error
		if !errors.As(err, &e) || e.Code != tt.wantCode || !strings.Contains(e.Message, tt.wantField) {
			t.Errorf("%s: err %v, want %s naming %s", tt.query, err, tt.wantCode, tt.wantField)
		}
	}
}
