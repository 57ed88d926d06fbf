package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/edgelicense/caddy-license-api/auth"
	"github.com/edgelicense/caddy-license-api/consumption"
	"github.com/edgelicense/caddy-license-api/signing"
)

// syncFails is a Recorder whose consumptions are decided but then fail to
// become durable, as when the disk's flush fails.
type syncFails struct{ consumption.Recorder }

func (r syncFails) ConsumeFeature(ctx context.Context, c consumption.FeatureConsumption) (consumption.FeatureOutcome, consumption.Durable, error) {
	out, _, err := r.Recorder.ConsumeFeature(ctx, c)
	return out, func() error { return errors.New("disk on fire") }, err
}

// TestConsumptionAnsweredOnceDurable checks that the handler acknowledges a
// consumption only when the store has made it durable: one decided but
// then lost is answered as the store's failure, not with its outcome.
func TestConsumptionAnsweredOnceDurable(t *testing.T) {
	for _, tt := range []struct {
		name     string
		failSync bool
		status   int
		code     string
	}{
		{"durable", false, http.StatusOK, ""},
		{"sync fails", true, http.StatusServiceUnavailable, "service_unavailable"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := benchHandler(t, signing.ECDSAP256, 1)
			if tt.failSync {
				svc := *h.state.service
				svc.Recorder = syncFails{svc.Recorder}
				h.state.service = &svc
			}
			date := time.Now().UTC().Format(http.TimeFormat)
			req := httptest.NewRequest(http.MethodPost, "/api/v4/add_feature_consumption",
				bytes.NewReader([]byte(`{"product":"p","feature":"f","hardware_id":"hw","license_key":"K-0","consumptions":1}`)))
			req.Header.Set("Date", date)
			req.Header.Set("Authorization", auth.Header("k", "s", date))
			rec := httptest.NewRecorder()
			if err := h.ServeHTTP(rec, req, nopNext{}); err != nil {
				t.Fatal(err)
			}
			var body struct {
				Code  string `json:"code"`
				Total *int64 `json:"total_consumptions"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("%d %s: %v", rec.Code, rec.Body, err)
			}
			if rec.Code != tt.status || body.Code != tt.code {
				t.Errorf("answered %d %s; want %d with code %q", rec.Code, rec.Body, tt.status, tt.code)
			}
			if tt.failSync && body.Total != nil {
				t.Errorf("the answer to a lost consumption carries its total: %s", rec.Body)
			}
			if err := signing.Verify(h.signer.PublicKeyPEM(), rec.Body.Bytes(), rec.Header().Get("LicenseSignature")); err != nil {
				t.Errorf("signature of %s: %v", rec.Body, err)
			}
		})
	}
}
