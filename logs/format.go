package logs

import (
	"encoding/json"
	"errors"
	"time"
	"unicode/utf8"
)

// appendRecord appends one json-file record and its newline to buf, exactly
// as moby's jsonlog.JSONLogs.MarshalJSONBuf and jsonfilelog do it.
func appendRecord(buf []byte, stream string, log []byte, t time.Time) ([]byte, error) {
	t = t.UTC()
	if y := t.Year(); y < 0 || y >= 10000 {
		return buf, errors.New("time.MarshalJSON: year outside of range [0,9999]")
	}
	buf = append(buf, '{')
	first := true
	if len(log) != 0 {
		first = false
		buf = append(buf, `"log":`...)
		buf = appendString(buf, log)
	}
	if stream != "" {
		if !first {
			buf = append(buf, ',')
		}
		first = false
		buf = append(buf, `"stream":`...)
		buf = appendString(buf, []byte(stream))
	}
	if !first {
		buf = append(buf, ',')
	}
	buf = append(buf, `"time":"`...)
	buf = t.AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, '"', '}', '\n')
	return buf, nil
}

// appendString quotes s as moby's ffjsonWriteJSONBytesAsString does: \" \\
// \n \r escaped by name; every other byte below 0x20 and < > & as \u00XX
// (so a tab is \u0009); invalid UTF-8 as \ufffd; U+2028 and U+2029 escaped.
func appendString(buf, s []byte) []byte {
	const hex = "0123456789abcdef"
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if 0x20 <= b && b != '\\' && b != '"' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch b {
			case '\\', '"':
				buf = append(buf, '\\', b)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRune(s[i:])
		if c == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hex[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}

// record is a decoded json-file line.
type record struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// decodeRecord parses one line (without its newline). It reports false for
// anything that is not a record: garbage, a torn line, a record missing its
// stream or time.
func decodeRecord(line []byte) (Entry, bool) {
	var r record
	if err := json.Unmarshal(line, &r); err != nil || r.Stream == "" || r.Time.IsZero() {
		return Entry{}, false
	}
	return Entry{Stream: r.Stream, Line: []byte(r.Log), Time: r.Time}, true
}
