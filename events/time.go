package events

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Layouts of ParseTime's date forms without a zone, read in now's zone.
const (
	rfc3339Local     = "2006-01-02T15:04:05"
	rfc3339NanoLocal = "2006-01-02T15:04:05.999999999"
	dateWithZone     = "2006-01-02Z07:00"
	dateLocal        = "2006-01-02"
)

// ParseTime reads a --since or --until value as Docker does
// (timetypes.GetTimestamp, then the daemon's parse):
//
//	""                           the zero time (no bound)
//	"10m", "1h30m", "-5s"        a Go duration before now, to the second
//	"2024-05-01T10:11:12.5Z", "2024-05-01T10:11:12+02:00"
//	"2024-05-01T10:11", "2024-05-01T10", "2024-05-01"
//	                             RFC 3339, the time or its seconds optional,
//	                             in now's zone when it names none
//	"1714558272", "1714558272.123"  Unix seconds, with a fraction
//
// Anything else is errdefs.ErrInvalidArgument.
func ParseTime(value string, now time.Time) (time.Time, error) {
	if value == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(value); value != "0" && err == nil {
		return time.Unix(now.Add(-d).Unix(), 0), nil
	}
	// A "Z", "z", "+" or a third "-" names a zone.
	local := !(strings.ContainsAny(value, "zZ+") || strings.Count(value, "-") == 3)
	var layout string
	switch {
	case strings.Contains(value, "."):
		layout = time.RFC3339Nano
		if local {
			layout = rfc3339NanoLocal
		}
	case strings.Contains(value, "T"):
		colons := strings.Count(value, ":")
		if !local && !strings.ContainsAny(value, "zZ") && colons > 0 {
			colons-- // the zone offset's colon
		}
		switch {
		case colons == 0 && local:
			layout = "2006-01-02T15"
		case colons == 0:
			layout = "2006-01-02T15Z07:00"
		case colons == 1 && local:
			layout = "2006-01-02T15:04"
		case colons == 1:
			layout = "2006-01-02T15:04Z07:00"
		case local:
			layout = rfc3339Local
		default:
			layout = time.RFC3339
		}
	case local:
		layout = dateLocal
	default:
		layout = dateWithZone
	}
	var t time.Time
	var err error
	if local {
		t, err = time.ParseInLocation(layout, value, time.FixedZone(now.Zone()))
	} else {
		t, err = time.Parse(layout, value)
	}
	if err == nil {
		return t, nil
	}
	if strings.Contains(value, "-") {
		// A date that is wrong, not a Unix time.
		return time.Time{}, invalidError{err.Error()}
	}
	sec, nsec, ok := parseUnix(value)
	if !ok {
		return time.Time{}, invalidError{fmt.Sprintf("failed to parse value as time or duration: %q", value)}
	}
	return time.Unix(sec, nsec), nil
}

// parseUnix reads "seconds[.fraction]".
func parseUnix(value string) (sec, nsec int64, ok bool) {
	s, frac, hasFrac := strings.Cut(value, ".")
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	if !hasFrac {
		return sec, 0, true
	}
	if frac == "" || strings.Trim(frac, "0123456789") != "" {
		return 0, 0, false
	}
	frac = (frac + "000000000")[:9] // to nanoseconds; finer digits dropped
	nsec, err = strconv.ParseInt(frac, 10, 64)
	return sec, nsec, err == nil
}
