package events

import (
	"testing"
	"time"

	"github.com/berth-dev/berth/errdefs"
)

func TestParseTime(t *testing.T) {
	zone := time.FixedZone("X", 2*3600) // now's zone is the one zoneless values mean
	now := time.Date(2024, 5, 1, 10, 11, 12, 987654321, zone)
	for _, tt := range []struct {
		in   string
		want time.Time
	}{
		{"", time.Time{}},
		{"10m", time.Date(2024, 5, 1, 10, 1, 12, 0, zone)}, // to the second, as docker
		{"1h30m", time.Date(2024, 5, 1, 8, 41, 12, 0, zone)},
		{"-5s", time.Date(2024, 5, 1, 10, 11, 17, 0, zone)},
		{"1714558272", time.Unix(1714558272, 0)},
		{"1714558272.5", time.Unix(1714558272, 500000000)},
		{"1714558272.000000001", time.Unix(1714558272, 1)},
		{"1714558272.1234567891", time.Unix(1714558272, 123456789)},
		{"0", time.Unix(0, 0)},
		{"2024-05-01T10:11:12Z", time.Date(2024, 5, 1, 10, 11, 12, 0, time.UTC)},
		{"2024-05-01T10:11:12.123456789Z", time.Date(2024, 5, 1, 10, 11, 12, 123456789, time.UTC)},
		{"2024-05-01T10:11:12+05:00", time.Date(2024, 5, 1, 5, 11, 12, 0, time.UTC)},
		{"2024-05-01T10:11:12.5-01:00", time.Date(2024, 5, 1, 11, 11, 12, 500000000, time.UTC)},
		{"2024-05-01T10:11+05:00", time.Date(2024, 5, 1, 5, 11, 0, 0, time.UTC)},
		{"2024-05-01T10Z", time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)},
		{"2024-05-01T10:11:12", time.Date(2024, 5, 1, 10, 11, 12, 0, zone)},
		{"2024-05-01T10:11:12.25", time.Date(2024, 5, 1, 10, 11, 12, 250000000, zone)},
		{"2024-05-01T10:11", time.Date(2024, 5, 1, 10, 11, 0, 0, zone)},
		{"2024-05-01T10", time.Date(2024, 5, 1, 10, 0, 0, 0, zone)},
		{"2024-05-01", time.Date(2024, 5, 1, 0, 0, 0, 0, zone)},
		{"2024-05-01Z", time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)},
		{"2024-05-01+03:00", time.Date(2024, 4, 30, 21, 0, 0, 0, time.UTC)},
	} {
		got, err := ParseTime(tt.in, now)
		if err != nil {
			t.Errorf("ParseTime(%q): %v", tt.in, err)
			continue
		}
		if !got.Equal(tt.want) {
			t.Errorf("ParseTime(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
	for _, tt := range []struct{ in, msg string }{
		{"yesterday", `failed to parse value as time or duration: "yesterday"`},
		{"1.5x", `failed to parse value as time or duration: "1.5x"`},
		{"12.", `failed to parse value as time or duration: "12."`},
		{"2024-13-01", `parsing time "2024-13-01": month out of range`},
		{"2024-05-01T25:00:00", `parsing time "2024-05-01T25:00:00": hour out of range`},
	} {
		_, err := ParseTime(tt.in, now)
		if err == nil || err.Error() != tt.msg || !errdefs.IsInvalidArgument(err) {
			t.Errorf("ParseTime(%q) = %v, want %q (invalid argument)", tt.in, err, tt.msg)
		}
	}
}
