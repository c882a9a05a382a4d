// Package volume keeps Docker-style named volumes: a directory per volume
// under the store's dir, created and removed by name.
//
// Layout, as Docker's local driver lays it out:
//
//	<dir>/<name>/_data         the data a container sees (a mount point when
//	                           the volume has type/device options)
//	<dir>/<name>/volume.json   the volume's record (written once, atomically)
//	<dir>/<name>/lock          flocked while mounts are counted or the volume
//	                           is removed
//	<dir>/<name>/mounts.json   who holds the volume's mount (Mount's refs)
//	<dir>/.tmp-*               a volume being created, renamed to <name> when whole
//	<dir>/.trash-*             a removed volume on its way out
//
// berth has no daemon, so a volume is created by building it under a
// temporary name and renaming it into place: two processes creating the
// same name at once both end up with the one that won the rename.
// Removal renames the volume away first, so a half-removed volume is never
// listed. Which containers use a volume is the engine's to know; the store
// only records who holds the mount of a volume it has to mount.
package volume

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/errdefs"
)

// Names and values shared with Docker.
const (
	// DefaultDriver is the only driver berth has: a directory on the host.
	DefaultDriver = "local"
	// AnonymousLabel marks a volume created without a name (Docker's
	// com.docker.volume.anonymous, set with an empty value).
	AnonymousLabel = "com.docker.volume.anonymous"
	// LocalScope is the Scope of every local volume.
	LocalScope = "local"

	dataDir   = "_data"
	metaFile  = "volume.json"
	lockFile  = "lock"
	refsFile  = "mounts.json"
	tmpPrefix = ".tmp-"
	rmPrefix  = ".trash-"
)

// namePattern is Docker's RestrictedNamePattern: a name is a path
// component, so it can never climb out of the store.
var namePattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// Volume is one volume as `docker volume inspect` shows it.
type Volume struct {
	CreatedAt  time.Time
	Driver     string
	Labels     map[string]string
	Mountpoint string // <dir>/<name>/_data
	Name       string
	Options    map[string]string
	Scope      string
	// Anonymous says the volume was created without a name (it also
	// carries AnonymousLabel, which is what Docker's filters look at).
	Anonymous bool
}

// apiVolume is Docker's JSON shape of a volume (moby api/types/volume).
type apiVolume struct {
	CreatedAt  string `json:"CreatedAt,omitempty"`
	Driver     string
	Labels     map[string]string
	Mountpoint string
	Name       string
	Options    map[string]string
	Scope      string
}

// MarshalJSON renders v as Docker does: CreatedAt in RFC 3339 to the
// second, in local time.
func (v Volume) MarshalJSON() ([]byte, error) {
	a := apiVolume{Driver: v.Driver, Labels: v.Labels, Mountpoint: v.Mountpoint, Name: v.Name, Options: v.Options, Scope: v.Scope}
	if !v.CreatedAt.IsZero() {
		a.CreatedAt = v.CreatedAt.Local().Format(time.RFC3339)
	}
	return json.Marshal(a)
}

// UnmarshalJSON reads Docker's JSON shape of a volume.
func (v *Volume) UnmarshalJSON(b []byte) error {
	var a apiVolume
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	*v = Volume{Driver: a.Driver, Labels: a.Labels, Mountpoint: a.Mountpoint, Name: a.Name, Options: a.Options, Scope: a.Scope}
	if a.CreatedAt != "" {
		t, err := time.Parse(time.RFC3339, a.CreatedAt)
		if err != nil {
			return fmt.Errorf("volume %s: CreatedAt: %w", a.Name, err)
		}
		v.CreatedAt = t
	}
	_, v.Anonymous = a.Labels[AnonymousLabel]
	return nil
}

// record is volume.json.
type record struct {
	Name      string            `json:"name"`
	Driver    string            `json:"driver"`
	Labels    map[string]string `json:"labels"`
	Options   map[string]string `json:"options"`
	CreatedAt time.Time         `json:"createdAt"`
	Anonymous bool              `json:"anonymous,omitempty"`
}

// CreateOptions are what `docker volume create` takes besides the name.
type CreateOptions struct {
	Driver  string            // "" or "local"
	Labels  map[string]string // kept as given: nil shows as null, empty as {}
	Options map[string]string // the local driver's type, device and o
}

// Store keeps the volumes under one directory.
type Store struct {
	dir string
}

// New opens the store in dir (<root>/volumes), creating it on first use.
func New(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o701); err != nil {
		return nil, fmt.Errorf("volume store %s: %w", dir, err)
	}
	return &Store{dir: dir}, nil
}

// Dir is the directory the store keeps its volumes in.
func (s *Store) Dir() string { return s.dir }

// classed is an error whose message is exactly Docker's, classified by an
// errdefs sentinel that does not show in the message.
type classed struct {
	msg   string
	class error
}

func (e *classed) Error() string { return e.msg }
func (e *classed) Unwrap() error { return e.class }

func errorf(class error, format string, args ...any) error {
	return &classed{msg: fmt.Sprintf(format, args...), class: class}
}

func noSuchVolume(name string) error {
	return errorf(errdefs.ErrNotFound, "get %s: no such volume", name)
}

// ValidName checks name as Docker's local driver does, in its words.
func ValidName(name string) error {
	if len(name) == 1 {
		return errorf(errdefs.ErrInvalidArgument, "volume name is too short, names should be at least two alphanumeric characters")
	}
	if !namePattern.MatchString(name) {
		return errorf(errdefs.ErrInvalidArgument, "%q includes invalid characters for a local volume name, only %q are allowed. If you intended to pass a host directory, use absolute path", name, "[a-zA-Z0-9][a-zA-Z0-9_.-]")
	}
	return nil
}

// validOptions checks the local driver's options as Docker does: only
// type, device and o (size needs filesystem quotas, which berth has not),
// and type and device come together, o only with both.
func validOptions(opts map[string]string) error {
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch k {
		case "type", "device", "o":
		case "size":
			return errorf(errdefs.ErrInvalidArgument, "quota size requested but no quota support")
		default:
			return errorf(errdefs.ErrInvalidArgument, "invalid option: %q", k)
		}
	}
	required := map[string][]string{"device": {"type"}, "o": {"device", "type"}, "type": {"device"}}
	for _, k := range keys {
		for _, r := range required[k] {
			if _, ok := opts[r]; !ok {
				return errorf(errdefs.ErrInvalidArgument, "missing required option: %q", r)
			}
		}
	}
	return nil
}

// wrapOp puts Docker's "<op> <name>: " in front of a classed error,
// keeping its class, and wraps any other error with the same context.
func wrapOp(op, name string, err error) error {
	var c *classed
	if errors.As(err, &c) {
		return &classed{msg: op + " " + name + ": " + c.msg, class: c.class}
	}
	return fmt.Errorf("%s %s: %w", op, name, err)
}

// randomName is a 64-hex name as Docker gives anonymous volumes.
func randomName() string {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// Create makes a volume. An empty name makes an anonymous volume with a
// random 64-hex name and AnonymousLabel. A name that exists already
// returns the existing volume unchanged, as Docker does.
func (s *Store) Create(ctx context.Context, name string, o CreateOptions) (Volume, error) {
	if err := ctx.Err(); err != nil {
		return Volume{}, err
	}
	anonymous := name == ""
	if anonymous {
		name = randomName()
		labels := make(map[string]string, len(o.Labels)+1)
		for k, v := range o.Labels {
			labels[k] = v
		}
		labels[AnonymousLabel] = ""
		o.Labels = labels
	}
	if o.Driver != "" && o.Driver != DefaultDriver {
		return Volume{}, errorf(errdefs.ErrNotFound, "create %s: error looking up volume plugin %s: plugin %q not found", name, o.Driver, o.Driver)
	}
	if err := ValidName(name); err != nil {
		return Volume{}, wrapOp("create", name, err)
	}
	if err := validOptions(o.Options); err != nil {
		return Volume{}, wrapOp("create", name, err)
	}
	if v, err := s.Get(ctx, name); err == nil {
		return v, nil
	} else if !errdefs.IsNotFound(err) {
		return Volume{}, err
	}
	rec := record{Name: name, Driver: DefaultDriver, Labels: o.Labels, Options: o.Options, CreatedAt: time.Now(), Anonymous: anonymous}
	if err := s.build(name, rec); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return s.Get(ctx, name) // another process won the rename
		}
		return Volume{}, wrapOp("create", name, err)
	}
	return s.volume(rec), nil
}

// build makes the volume's directory under a temporary name and renames
// it into place; the rename fails with fs.ErrExist if name was taken.
func (s *Store) build(name string, rec record) (err error) {
	tmp, err := os.MkdirTemp(s.dir, tmpPrefix)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o701); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(tmp, dataDir), 0o755); err != nil {
		return err
	}
	// Mkdir applies the umask; a volume's root is 0755 as Docker's.
	if err := os.Chmod(filepath.Join(tmp, dataDir), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, lockFile), nil, 0o600); err != nil {
		return err
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(tmp, metaFile), data); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, name)); err != nil {
		var le *os.LinkError
		if errors.As(err, &le) && (errors.Is(le.Err, fs.ErrExist) || errors.Is(le.Err, syscall.ENOTEMPTY)) {
			return fs.ErrExist
		}
		return err
	}
	return syncDir(s.dir)
}

// volume is rec as a Volume of this store.
func (s *Store) volume(rec record) Volume {
	return Volume{
		CreatedAt: rec.CreatedAt, Driver: rec.Driver, Labels: rec.Labels, Options: rec.Options,
		Mountpoint: filepath.Join(s.dir, rec.Name, dataDir), Name: rec.Name, Scope: LocalScope, Anonymous: rec.Anonymous,
	}
}

// Get returns the volume called name.
func (s *Store) Get(ctx context.Context, name string) (Volume, error) {
	if err := ctx.Err(); err != nil {
		return Volume{}, err
	}
	if ValidName(name) != nil {
		return Volume{}, noSuchVolume(name) // never a path: "../x" names nothing
	}
	data, err := os.ReadFile(filepath.Join(s.dir, name, metaFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Volume{}, noSuchVolume(name)
	}
	if err != nil {
		return Volume{}, fmt.Errorf("get %s: %w", name, err)
	}
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil {
		return Volume{}, fmt.Errorf("get %s: %s: %v: %w", name, metaFile, err, errdefs.ErrFailedPrecondition)
	}
	rec.Name = name
	if rec.Driver == "" {
		rec.Driver = DefaultDriver
	}
	return s.volume(rec), nil
}

// List returns every volume, sorted by name. It also finishes removals
// that a killed process left behind.
func (s *Store) List(ctx context.Context) ([]Volume, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	var out []Volume
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n := e.Name()
		switch {
		case strings.HasPrefix(n, rmPrefix):
			os.RemoveAll(filepath.Join(s.dir, n)) // unmounted before it was renamed
			continue
		case strings.HasPrefix(n, tmpPrefix):
			s.dropStaleTemp(n)
			continue
		case !e.IsDir() || ValidName(n) != nil:
			continue
		}
		v, err := s.Get(ctx, n)
		if errdefs.IsNotFound(err) {
			continue // removed meanwhile, or not a volume
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b Volume) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// dropStaleTemp removes a creation a killed process left behind: a
// temporary directory nobody has touched for an hour (a live Create takes
// milliseconds).
func (s *Store) dropStaleTemp(n string) {
	p := filepath.Join(s.dir, n)
	if fi, err := os.Lstat(p); err == nil && time.Since(fi.ModTime()) > time.Hour {
		os.RemoveAll(p)
	}
}

// Remove deletes the volume and its data. It refuses while the volume is
// mounted for someone (a Mount without its Unmount); whether a container
// still names the volume is the engine's to check.
func (s *Store) Remove(ctx context.Context, name string) error {
	v, err := s.Get(ctx, name)
	if err != nil {
		return err
	}
	lk, err := s.lock(name)
	if err != nil {
		return err
	}
	defer lk.unlock()
	refs, err := s.readRefs(name)
	if err != nil {
		return wrapOp("remove", name, err)
	}
	mounted, err := isMountPoint(v.Mountpoint)
	if err != nil {
		return wrapOp("remove", name, err)
	}
	if len(refs) > 0 && mounted { // refs without the mount died with it
		return errorf(errdefs.ErrConflict, "remove %s: volume has active mounts", name)
	}
	// Nothing may stay mounted on _data: removing the tree would delete
	// the mounted filesystem's files (a bind-mounted host directory's).
	if err := unmountData(v.Mountpoint); err != nil {
		return wrapOp("remove", name, err)
	}
	trash := filepath.Join(s.dir, rmPrefix+randomName()[:16])
	if err := os.Rename(filepath.Join(s.dir, name), trash); err != nil {
		return wrapOp("remove", name, err)
	}
	if err := syncDir(s.dir); err != nil {
		return wrapOp("remove", name, err)
	}
	if err := os.RemoveAll(trash); err != nil {
		return wrapOp("remove", name, err)
	}
	return nil
}

// writeFile writes data to path atomically: a temporary file in the same
// directory, fsynced, renamed over path.
func writeFile(path string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Chmod(0o600); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
