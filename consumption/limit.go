package consumption

import (
	"fmt"
	"time"
)

// MaxSafeInteger is the largest integer JavaScript represents exactly
// (2^53 - 1). Counters and amounts stay within it because the SDKs parse
// every number as a double.
const MaxSafeInteger = 1<<53 - 1

// Period is a consumption reset period.
type Period string

// The reset periods LicenseSpring documents; NoPeriod never resets.
const (
	NoPeriod Period = ""
	Daily    Period = "daily"
	Weekly   Period = "weekly"
	Monthly  Period = "monthly"
	Annually Period = "annually"
)

// ParsePeriod validates a period's wire spelling; "" is NoPeriod.
func ParsePeriod(s string) (Period, error) {
	switch p := Period(s); p {
	case NoPeriod, Daily, Weekly, Monthly, Annually:
		return p, nil
	}
	return NoPeriod, fmt.Errorf("unknown consumption period %q (want daily, weekly, monthly or annually)", s)
}

// Start returns the beginning of the period that contains t, at the fixed UTC
// calendar boundaries LicenseSpring uses (not relative to activation):
// midnight, Monday midnight, the 1st of the month, 1 January. NoPeriod
// returns the zero time.
func (p Period) Start(t time.Time) time.Time {
	t = t.UTC()
	y, m, d := t.Date()
	switch p {
	case Daily:
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	case Weekly:
		// Go's weeks start on Sunday (0); LicenseSpring's on Monday.
		back := (int(t.Weekday()) + 6) % 7
		return time.Date(y, m, d-back, 0, 0, 0, 0, time.UTC)
	case Monthly:
		return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
	case Annually:
		return time.Date(y, time.January, 1, 0, 0, 0, 0, time.UTC)
	}
	return time.Time{}
}

// Counter is the stored state of a consumption counter.
type Counter struct {
	Total int64
	// PeriodStart is the Unix time (seconds) of the start of the reset period
	// that Total was counted in; 0 for counters that never reset.
	PeriodStart int64
}

// resets reports whether the counter has a reset period in force.
func (s *Settings) resets() bool {
	return s.ResetConsumption && s.Period != NoPeriod
}

// Current returns the counter's total as of now: 0 once its reset period has
// passed, even though the stored row is only rewritten at the next
// consumption.
func (s *Settings) Current(c Counter, now time.Time) int64 {
	if s.resets() && c.PeriodStart < s.Period.Start(now).Unix() {
		return 0
	}
	return c.Total
}

// Limit returns the largest total the counter may reach, and false when it is
// unlimited. Unlimited wins over overages.
func (s *Settings) Limit() (int64, bool) {
	if s.AllowUnlimited {
		return 0, false
	}
	if s.AllowOverages {
		return s.MaxConsumption + s.MaxOverages, true
	}
	return s.MaxConsumption, true
}

// Apply decides a consumption of n against counter c at now. It returns the
// counter to store and the amount actually applied, which differs from n only
// when a negative consumption would take the total below 0 (the total stops at
// 0). Stores call Apply inside the atomic step that holds the counter, so the
// decision and the write can never be interleaved with another consumption.
func Apply(s Settings, c Counter, n int64, now time.Time) (next Counter, applied int64, err error) {
	if n < 0 && !s.AllowNegative {
		return c, 0, ErrNegativeConsumptionsNotAllowed
	}
	current := s.Current(c, now)
	next.PeriodStart = c.PeriodStart
	if s.resets() {
		next.PeriodStart = s.Period.Start(now).Unix()
	}
	total := current + n // both within ±MaxSafeInteger, so no int64 overflow
	if n > 0 {
		if limit, limited := s.Limit(); limited && total > limit {
			return c, 0, ErrFeatureNotEnoughConsumptions
		}
		if total > MaxSafeInteger {
			return c, 0, ErrFeatureNotEnoughConsumptions
		}
	}
	if total < 0 {
		total = 0
	}
	next.Total = total
	return next, total - current, nil
}

// ApplyLicense is Apply for a consumption license's own counter, which
// reports running out as license_not_enough_consumptions.
func ApplyLicense(s Settings, c Counter, n int64, now time.Time) (Counter, int64, error) {
	next, applied, err := Apply(s, c, n, now)
	if err == ErrFeatureNotEnoughConsumptions {
		err = ErrLicenseNotEnoughConsumptions
	}
	return next, applied, err
}

// ActivationAllowed reports whether a license with active devices already
// bound may bind one more.
func (l *License) ActivationAllowed(active int64) error {
	if l.AllowUnlimitedActivations || active < l.MaxActivations {
		return nil
	}
	return ErrLicenseActivatedMaxTimes
}
