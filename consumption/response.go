package consumption

import "github.com/edgelicense/caddy-license-api/internal/jsonjs"

// AppendFeatureConsumptionJSON appends the 200 body of add_feature_consumption
// for o, with the fields in the order LicenseSpring sends them. The bytes are
// written by hand rather than through encoding/json so that they are, by
// construction, what JavaScript's JSON.stringify(JSON.parse(body)) gives back:
// the SDK verifies the response signature over that re-serialisation.
func AppendFeatureConsumptionJSON(dst []byte, companyID int64, o *FeatureOutcome) []byte {
	f := &o.Feature
	dst = append(dst, `{"id":`...)
	dst = jsonjs.AppendInt(dst, f.ID)
	dst = append(dst, `,"license_id":`...)
	dst = jsonjs.AppendInt(dst, f.LicenseID)
	dst = append(dst, `,"company":{"id":`...)
	dst = jsonjs.AppendInt(dst, companyID)
	dst = append(dst, `},"total_consumptions":`...)
	dst = jsonjs.AppendInt(dst, o.Total)
	dst = append(dst, `,"max_consumptions":`...)
	dst = jsonjs.AppendInt(dst, f.MaxConsumption)
	dst = append(dst, `,"allow_negative_consumptions":`...)
	dst = jsonjs.AppendBool(dst, f.AllowNegative)
	dst = append(dst, `,"allow_unlimited_consumptions":`...)
	dst = jsonjs.AppendBool(dst, f.AllowUnlimited)
	dst = append(dst, `,"allow_overages":`...)
	dst = jsonjs.AppendBool(dst, f.AllowOverages)
	dst = append(dst, `,"max_overages":`...)
	dst = jsonjs.AppendInt(dst, f.MaxOverages)
	dst = append(dst, `,"reset_consumption":`...)
	dst = jsonjs.AppendBool(dst, f.ResetConsumption)
	dst = append(dst, `,"consumption_period":`...)
	dst = appendPeriod(dst, f.Period)
	dst = append(dst, `,"is_floating":`...)
	dst = jsonjs.AppendBool(dst, f.IsFloating)
	dst = append(dst, `,"is_floating_cloud":`...)
	dst = jsonjs.AppendBool(dst, f.IsFloatingCloud)
	return append(dst, '}')
}

func appendPeriod(dst []byte, p Period) []byte {
	if p == NoPeriod {
		return append(dst, "null"...)
	}
	return jsonjs.AppendString(dst, string(p))
}

// AppendErrorJSON appends the error body {"status":...,"code":...,"message":...}.
func AppendErrorJSON(dst []byte, status int, code, message string) []byte {
	dst = append(dst, `{"status":`...)
	dst = jsonjs.AppendInt(dst, int64(status))
	dst = append(dst, `,"code":`...)
	dst = jsonjs.AppendString(dst, code)
	dst = append(dst, `,"message":`...)
	dst = jsonjs.AppendString(dst, message)
	return append(dst, '}')
}
