package consumption

import (
	"errors"
	"testing"
	"time"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestPeriodStart(t *testing.T) {
	tests := []struct {
		period Period
		at     string
		want   string
	}{
		{Daily, "2026-03-10T00:00:00Z", "2026-03-10T00:00:00Z"},
		{Daily, "2026-03-09T23:59:59.999Z", "2026-03-09T00:00:00Z"},
		{Daily, "2026-03-10T05:00:00+06:00", "2026-03-09T00:00:00Z"}, // 23:00 UTC the day before
		{Weekly, "2026-11-23T00:00:00Z", "2026-11-23T00:00:00Z"},     // a Monday
		{Weekly, "2026-11-22T23:59:59Z", "2026-11-16T00:00:00Z"},     // Sunday belongs to the week before
		{Weekly, "2026-11-29T12:00:00Z", "2026-11-23T00:00:00Z"},
		{Weekly, "2027-01-01T00:00:00Z", "2026-12-28T00:00:00Z"}, // a week spanning the new year
		{Monthly, "2026-03-01T00:00:00Z", "2026-03-01T00:00:00Z"},
		{Monthly, "2026-02-28T23:59:59Z", "2026-02-01T00:00:00Z"},
		{Monthly, "2024-02-29T10:00:00Z", "2024-02-01T00:00:00Z"},
		{Annually, "2027-01-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{Annually, "2026-12-31T23:59:59Z", "2026-01-01T00:00:00Z"},
		{NoPeriod, "2026-12-31T23:59:59Z", "0001-01-01T00:00:00Z"},
	}
	for _, tt := range tests {
		got := tt.period.Start(utc(tt.at))
		if !got.Equal(utc(tt.want)) {
			t.Errorf("%q.Start(%s) = %s, want %s", tt.period, tt.at, got.Format(time.RFC3339), tt.want)
		}
	}
}

func TestParsePeriod(t *testing.T) {
	for _, s := range []string{"", "daily", "weekly", "monthly", "annually"} {
		if p, err := ParsePeriod(s); err != nil || string(p) != s {
			t.Errorf("ParsePeriod(%q) = %q, %v", s, p, err)
		}
	}
	for _, s := range []string{"yearly", "Daily", "hourly"} {
		if _, err := ParsePeriod(s); err == nil {
			t.Errorf("ParsePeriod(%q) accepted an unknown period", s)
		}
	}
}

func TestApply(t *testing.T) {
	limited := Settings{MaxConsumption: 10}
	overages := Settings{MaxConsumption: 10, AllowOverages: true, MaxOverages: 5}
	unlimited := Settings{MaxConsumption: 10, AllowUnlimited: true, AllowOverages: true, MaxOverages: 1}
	negative := Settings{MaxConsumption: 10, AllowNegative: true}
	now := utc("2026-11-27T12:00:00Z")
	tests := []struct {
		name        string
		s           Settings
		total, n    int64
		wantTotal   int64
		wantApplied int64
		wantErr     error
	}{
		{"within limit", limited, 3, 4, 7, 4, nil},
		{"exactly to limit", limited, 9, 1, 10, 1, nil},
		{"one past limit", limited, 10, 1, 10, 0, ErrFeatureNotEnoughConsumptions},
		{"large request past limit", limited, 0, 11, 0, 0, ErrFeatureNotEnoughConsumptions},
		{"zero is accepted", limited, 10, 0, 10, 0, nil},
		{"overages extend the limit", overages, 10, 5, 15, 5, nil},
		{"past overages", overages, 15, 1, 15, 0, ErrFeatureNotEnoughConsumptions},
		{"unlimited wins over overages", unlimited, 1000, 1000, 2000, 1000, nil},
		{"unlimited stops at the safe integer", unlimited, MaxSafeInteger - 1, 2, MaxSafeInteger - 1, 0, ErrFeatureNotEnoughConsumptions},
		{"unlimited reaches the safe integer", unlimited, MaxSafeInteger - 1, 1, MaxSafeInteger, 1, nil},
		{"negative refused", limited, 5, -1, 5, 0, ErrNegativeConsumptionsNotAllowed},
		{"negative allowed", negative, 5, -2, 3, -2, nil},
		{"negative stops at zero", negative, 3, -5, 0, -3, nil},
		{"negative from zero", negative, 0, -1, 0, 0, nil},
		{"negative allowed above the limit", Settings{MaxConsumption: 1, AllowNegative: true}, 5, -1, 4, -1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next, applied, err := Apply(tt.s, Counter{Total: tt.total}, tt.n, now)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if next.Total != tt.total {
					t.Errorf("a refused consumption changed the counter to %d", next.Total)
				}
				return
			}
			if next.Total != tt.wantTotal || applied != tt.wantApplied {
				t.Errorf("total, applied = %d, %d; want %d, %d", next.Total, applied, tt.wantTotal, tt.wantApplied)
			}
		})
	}
}

// TestApplyResetBoundaries consumes just before and exactly at each period's
// boundary: the counter is full before it and empty (then 1) at it.
func TestApplyResetBoundaries(t *testing.T) {
	tests := []struct {
		period   Period
		before   string
		boundary string
	}{
		{Daily, "2026-11-27T23:59:59.999Z", "2026-11-28T00:00:00Z"},
		{Weekly, "2026-11-29T23:59:59.999Z", "2026-11-30T00:00:00Z"},
		{Monthly, "2026-11-30T23:59:59.999Z", "2026-12-01T00:00:00Z"},
		{Annually, "2026-12-31T23:59:59.999Z", "2027-01-01T00:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(string(tt.period), func(t *testing.T) {
			s := Settings{MaxConsumption: 2, ResetConsumption: true, Period: tt.period}
			before, boundary := utc(tt.before), utc(tt.boundary)
			c := Counter{}
			var err error
			for range 2 {
				if c, _, err = Apply(s, c, 1, before); err != nil {
					t.Fatalf("filling the counter: %v", err)
				}
			}
			if _, _, err := Apply(s, c, 1, before); !errors.Is(err, ErrFeatureNotEnoughConsumptions) {
				t.Fatalf("before the boundary: err = %v, want feature_not_enough_consumptions", err)
			}
			if got := s.Current(c, boundary); got != 0 {
				t.Errorf("Current at the boundary = %d, want 0", got)
			}
			next, applied, err := Apply(s, c, 1, boundary)
			if err != nil {
				t.Fatalf("at the boundary: %v", err)
			}
			if next.Total != 1 || applied != 1 || next.PeriodStart != boundary.Unix() {
				t.Errorf("at the boundary: %+v applied %d, want total 1 in the period starting %d", next, applied, boundary.Unix())
			}
		})
	}
}

// TestApplyResetNeedsFlag checks that a period without reset_consumption, or
// reset_consumption without a period, never resets.
func TestApplyResetNeedsFlag(t *testing.T) {
	now := utc("2026-11-27T12:00:00Z")
	for _, s := range []Settings{
		{MaxConsumption: 1, Period: Daily},
		{MaxConsumption: 1, ResetConsumption: true},
	} {
		if _, _, err := Apply(s, Counter{Total: 1, PeriodStart: 1}, 1, now); !errors.Is(err, ErrFeatureNotEnoughConsumptions) {
			t.Errorf("%+v: err = %v, want the old total to count", s, err)
		}
	}
}
