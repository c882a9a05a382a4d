// Package logs writes and reads container logs in Docker's json-file format.
//
// A log is a live file (conventionally <container>/container-json.log) plus
// rotated files beside it: path.1 (newest) … path.N-1 (oldest), each
// optionally gzipped as path.K.gz. Every line of every file is one record:
//
//	{"log":"hello\n","stream":"stdout","time":"2024-01-01T00:00:00.123456789Z"}
//
// encoded byte for byte as moby's daemon/logger/jsonfilelog/jsonlog does, so
// tools that read Docker's logs read ours.
//
// One process (the container's shim) owns a log's Writer; any number of
// processes may Read it at the same time, following it across rotations.
package logs

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/errdefs"
)

// Defaults of rotation: the same 10 MB × 3 that issue 4 turns on for every
// container (Docker's json-file driver leaves rotation off by default).
const (
	DefaultMaxSize = 10 * 1024 * 1024
	DefaultMaxFile = 3
)

// maxChunk is the size at which Docker's copier cuts a line without a
// newline into partial records (daemon/logger/copier.go, bufSize).
const maxChunk = 16 * 1024

// Options say when and how a Writer rotates.
type Options struct {
	// MaxSize is the size in bytes past which the live file is rotated
	// before the next write; 0 means DefaultMaxSize, -1 never rotates.
	MaxSize int64
	// MaxFile is how many files the log keeps in all, the live one
	// included; 0 means DefaultMaxFile.
	MaxFile int
	// Compress gzips rotated files (path.K.gz), as Docker's compress=true.
	Compress bool
}

func (o Options) withDefaults() Options {
	if o.MaxSize == 0 {
		o.MaxSize = DefaultMaxSize
	}
	if o.MaxFile == 0 {
		o.MaxFile = DefaultMaxFile
	}
	return o
}

// Entry is one record of a log.
type Entry struct {
	// Stream is "stdout" or "stderr".
	Stream string
	// Line is the logged bytes, with their trailing "\n" unless the record
	// is a partial one (a chunk of a longer line, or a last line cut short).
	Line []byte
	// Time is when the shim read the bytes, in UTC.
	Time time.Time
}

// sizeRE is go-units' RAMInBytes syntax, which docker uses for max-size:
// binary multiples, case-insensitive, optional "i" and "b".
var sizeRE = regexp.MustCompile(`^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$`)

// parseSize parses a size as docker's units.RAMInBytes does.
func parseSize(s string) (int64, error) {
	m := sizeRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("invalid size: '%s'", s)
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size: '%s'", s)
	}
	mult := map[string]float64{"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}[strings.ToLower(m[2])]
	return int64(n * mult), nil
}

// ParseOptions reads --log-opt values of the json-file driver: max-size
// (docker's units: 10m, 1g, 512k; -1 for no rotation), max-file and
// compress. Errors are errdefs.ErrInvalidArgument, worded as Docker's.
func ParseOptions(opt map[string]string) (Options, error) {
	var o Options
	for k, v := range opt {
		switch k {
		case "max-size":
			if v == "-1" {
				o.MaxSize = -1
				continue
			}
			n, err := parseSize(v)
			if err != nil {
				return Options{}, fmt.Errorf("invalid value for log option max-size: %v: %w", err, errdefs.ErrInvalidArgument)
			}
			if n <= 0 {
				return Options{}, fmt.Errorf("max-size must be a positive number: %w", errdefs.ErrInvalidArgument)
			}
			o.MaxSize = n
		case "max-file":
			n, err := strconv.Atoi(v)
			if err != nil {
				return Options{}, fmt.Errorf("invalid value for log option max-file: %s: %w", v, errdefs.ErrInvalidArgument)
			}
			if n < 1 {
				return Options{}, fmt.Errorf("max-file cannot be less than 1: %w", errdefs.ErrInvalidArgument)
			}
			o.MaxFile = n
		case "compress":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return Options{}, fmt.Errorf("error reading compress log option: %v: %w", err, errdefs.ErrInvalidArgument)
			}
			o.Compress = b
		default:
			return Options{}, fmt.Errorf("unknown log opt '%s' for json-file log driver: %w", k, errdefs.ErrInvalidArgument)
		}
	}
	o = o.withDefaults()
	if o.Compress && o.MaxFile < 2 {
		return Options{}, fmt.Errorf("compress cannot be true when max-file is less than 2: %w", errdefs.ErrInvalidArgument)
	}
	return o, nil
}
