package consumption

import (
	"strings"
	"time"

	"github.com/edgelicense/caddy-license-api/internal/jsonjs"
)

// The license and feature objects of activate_license, check_license and
// check_license_feature. Fields are those of the SDK's response types that
// a client reads; features LicenseSpring's cloud has and this server does
// not (floating, borrowing, grace and maintenance periods, air gap) are sent
// with their "off" values so clients take the plain path.

// SignatureV1Message is what the v1 license_signature signs:
// lowercase(hardware_id + "#" + id + "#" + validity), validity being the ISO
// 8601 UTC time with milliseconds, or empty for a license that never
// expires.
func (v *LicenseView) SignatureV1Message() []byte {
	var b strings.Builder
	b.WriteString(v.HardwareID)
	b.WriteByte('#')
	b.WriteString(v.SignatureID)
	b.WriteByte('#')
	if !v.License.ValidityPeriod.IsZero() {
		b.WriteString(v.License.ValidityPeriod.UTC().Format("2006-01-02T15:04:05.000Z"))
	}
	return []byte(strings.ToLower(b.String()))
}

// AppendLicenseJSON appends the license object of v, with the activation
// fields when activation is true, and the v1 signature.
func AppendLicenseJSON(dst []byte, v *LicenseView, companyID int64, activation bool, signatureV1 string) []byte {
	l := &v.License
	dst = append(dst, `{"id":`...)
	dst = jsonjs.AppendInt(dst, l.ID)
	dst = append(dst, `,"license_key":`...)
	dst = appendOptString(dst, l.Key)
	dst = append(dst, `,"license_type":`...)
	dst = jsonjs.AppendString(dst, string(l.Type))
	dst = append(dst, `,"is_trial":`...)
	dst = jsonjs.AppendBool(dst, l.IsTrial)
	dst = append(dst, `,"license_active":`...)
	dst = jsonjs.AppendBool(dst, l.Active)
	dst = append(dst, `,"license_enabled":`...)
	dst = jsonjs.AppendBool(dst, l.Enabled)
	dst = append(dst, `,"is_expired":`...)
	dst = jsonjs.AppendBool(dst, l.Expired(v.Now))
	dst = append(dst, `,"validity_period":`...)
	dst = appendOptTime(dst, l.ValidityPeriod)
	dst = append(dst, `,"start_date":null,"max_activations":`...)
	dst = jsonjs.AppendInt(dst, l.MaxActivations)
	dst = append(dst, `,"allow_unlimited_activations":`...)
	dst = jsonjs.AppendBool(dst, l.AllowUnlimitedActivations)
	dst = append(dst, `,"times_activated":`...)
	dst = jsonjs.AppendInt(dst, v.Status.TimesActivated)
	dst = append(dst, `,"transfer_count":0,"allow_grace_period":false,"grace_period":0,`+
		`"allow_offline_activation":false,"is_air_gapped":false,"is_hardware_key_auth":false,"prevent_vm":false,`+
		`"is_floating":false,"is_floating_cloud":false,"floating_timeout":null,"can_borrow":false,"max_borrow_time":0,`+
		`"is_borrowed":false,"borrowed_until":null,"enable_maintenance_period":false,"maintenance_period":null`...)
	dst = appendCounterFields(dst, &l.Consumption, "max_consumptions", l.Consumption.Current(v.Status.Counter, v.Now))
	dst = append(dst, `,"customer":`...)
	dst = append(dst, orEmptyObject(l.Customer)...)
	dst = append(dst, `,"metadata":`...)
	dst = append(dst, orEmptyObject(l.Metadata)...)
	dst = append(dst, `,"custom_fields":[],"company":{"id":`...)
	dst = jsonjs.AppendInt(dst, companyID)
	dst = append(dst, `},"product_details":{"product_id":`...)
	dst = jsonjs.AppendInt(dst, v.Product.ID)
	dst = append(dst, `,"product_name":`...)
	dst = jsonjs.AppendString(dst, v.Product.Name)
	dst = append(dst, `,"short_code":`...)
	dst = jsonjs.AppendString(dst, v.Product.ShortCode)
	dst = append(dst, `,"authorization_method":`...)
	dst = jsonjs.AppendString(dst, v.Product.AuthMethod.String())
	dst = append(dst, `,"metadata":{}},"product_features":[`...)
	first := true
	for i := range v.Status.Features {
		f := &v.Status.Features[i]
		if f.Expired(v.Now) && !v.IncludeExpiredFeatures {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendFeature(dst, f, v.Now, false)
	}
	dst = append(dst, ']')
	if v.Product.AuthMethod == UserBased {
		// The SDKs name a user-based license by user.email in later calls.
		dst = append(dst, `,"user":{"email":`...)
		dst = jsonjs.AppendString(dst, v.UserEmail)
		dst = append(dst, `,"first_name":"","last_name":"","is_active":true}`...)
	}
	if activation {
		dst = append(dst, `,"active":true,"device_id":`...)
		dst = jsonjs.AppendInt(dst, v.Status.DeviceID)
		dst = append(dst, `,"hardware_id":`...)
		dst = jsonjs.AppendString(dst, v.HardwareID)
	}
	dst = append(dst, `,"license_signature":`...)
	dst = jsonjs.AppendString(dst, signatureV1)
	return append(dst, '}')
}

// AppendFeatureJSON appends the check_license_feature object of f.
func AppendFeatureJSON(dst []byte, f *FeatureState, now time.Time) []byte {
	return appendFeature(dst, f, now, true)
}

func appendFeature(dst []byte, f *FeatureState, now time.Time, withLicense bool) []byte {
	dst = append(dst, `{"id":`...)
	dst = jsonjs.AppendInt(dst, f.ID)
	if withLicense {
		dst = append(dst, `,"license_id":`...)
		dst = jsonjs.AppendInt(dst, f.LicenseID)
	}
	dst = append(dst, `,"code":`...)
	dst = jsonjs.AppendString(dst, f.Code)
	dst = append(dst, `,"name":`...)
	dst = jsonjs.AppendString(dst, f.Name)
	dst = append(dst, `,"feature_type":`...)
	dst = jsonjs.AppendString(dst, string(f.Type))
	dst = append(dst, `,"expiry_date":`...)
	dst = appendOptTime(dst, f.ExpiryDate)
	dst = append(dst, `,"metadata":{},"is_floating":`...)
	dst = jsonjs.AppendBool(dst, f.IsFloating)
	dst = append(dst, `,"is_floating_cloud":`...)
	dst = jsonjs.AppendBool(dst, f.IsFloatingCloud)
	dst = appendCounterFields(dst, &f.Settings, "max_consumption", f.Current(f.Counter, now))
	return append(dst, '}')
}

// appendCounterFields appends a counter's settings and total. Licenses say
// max_consumptions and features max_consumption, as LicenseSpring does.
func appendCounterFields(dst []byte, s *Settings, maxName string, total int64) []byte {
	dst = append(dst, `,"`...)
	dst = append(dst, maxName...)
	dst = append(dst, `":`...)
	dst = jsonjs.AppendInt(dst, s.MaxConsumption)
	dst = append(dst, `,"total_consumptions":`...)
	dst = jsonjs.AppendInt(dst, total)
	dst = append(dst, `,"allow_unlimited_consumptions":`...)
	dst = jsonjs.AppendBool(dst, s.AllowUnlimited)
	dst = append(dst, `,"allow_overages":`...)
	dst = jsonjs.AppendBool(dst, s.AllowOverages)
	dst = append(dst, `,"max_overages":`...)
	dst = jsonjs.AppendInt(dst, s.MaxOverages)
	dst = append(dst, `,"allow_negative_consumptions":`...)
	dst = jsonjs.AppendBool(dst, s.AllowNegative)
	dst = append(dst, `,"reset_consumption":`...)
	dst = jsonjs.AppendBool(dst, s.ResetConsumption)
	dst = append(dst, `,"consumption_period":`...)
	return appendPeriod(dst, s.Period)
}

// AppendLicenseConsumptionJSON appends the 200 body of add_consumption.
func AppendLicenseConsumptionJSON(dst []byte, companyID int64, o *LicenseOutcome) []byte {
	s := &o.Settings
	dst = append(dst, `{"id":`...)
	dst = jsonjs.AppendInt(dst, o.LicenseID)
	dst = append(dst, `,"max_consumptions":`...)
	dst = jsonjs.AppendInt(dst, s.MaxConsumption)
	dst = append(dst, `,"allow_unlimited_consumptions":`...)
	dst = jsonjs.AppendBool(dst, s.AllowUnlimited)
	dst = append(dst, `,"allow_negative_consumptions":`...)
	dst = jsonjs.AppendBool(dst, s.AllowNegative)
	dst = append(dst, `,"allow_overages":`...)
	dst = jsonjs.AppendBool(dst, s.AllowOverages)
	dst = append(dst, `,"max_overages":`...)
	dst = jsonjs.AppendInt(dst, s.MaxOverages)
	dst = append(dst, `,"reset_consumption":`...)
	dst = jsonjs.AppendBool(dst, s.ResetConsumption)
	dst = append(dst, `,"consumption_period":`...)
	dst = appendPeriod(dst, s.Period)
	dst = append(dst, `,"total_consumptions":`...)
	dst = jsonjs.AppendInt(dst, o.Total)
	dst = append(dst, `,"company":{"id":`...)
	dst = jsonjs.AppendInt(dst, companyID)
	return append(dst, `}}`...)
}

func appendOptString(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, "null"...)
	}
	return jsonjs.AppendString(dst, s)
}

func appendOptTime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(dst, "null"...)
	}
	return jsonjs.AppendTime(dst, t)
}

func orEmptyObject(canonical string) string {
	if canonical == "" {
		return "{}"
	}
	return canonical
}
