package engine

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
	"strings"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"
)

// Container is the engine's record of one container: what `create` was
// asked, in Docker's API types, and where its parts live. It is written
// once at create (and by rename and update); the running state is the
// shim's (shim.State, in the same directory).
type Container struct {
	ID      string
	Name    string // without Docker's leading "/"
	Created time.Time
	// Path and Args are the command the container runs (entrypoint + cmd).
	Path string
	Args []string
	// Image is the image ID (the config digest); Config.Image is the name
	// the user gave.
	Image      string
	Config     *container.Config
	HostConfig *container.HostConfig
	// Mounts are the container's volumes, binds and tmpfs, resolved at
	// create (volume names made for anonymous ones).
	Mounts []container.MountPoint
	Driver string
	// Snapshot is the key of the container's writable snapshot.
	Snapshot string
	// Platform is the image's OS ("linux").
	Platform string
}

// Container directory layout, under Root/containers/<id>:
//
//	config.json      the Container record (atomic)
//	state.json       shim.State: the running state (atomic)
//	<id>-json.log    the json-file log, rotated to .1, .2
//	hostname, hosts, resolv.conf   bind-mounted into the container
//
// and under RunRoot/containers/<id>: the OCI bundle (config.json, rootfs/,
// shim.json) and the shim's socket. RunRoot/locks/<id> serializes
// operations on one container; Root/names/<name> is a symlink to the ID
// that owns the name.
const (
	recordFile = "config.json"
	stateFile  = "state.json"
	// creatingFile marks a container that Create has not finished: it
	// does not exist yet, and if its creator died, ps sweeps it away.
	creatingFile = "creating"
	// removingFile marks a container that rm has begun to remove (State
	// "removing"): an empty file, cheaper to make and delete than a new
	// state.json.
	removingFile = "removing"
)

func (e *Engine) containersDir() string         { return filepath.Join(e.root, "containers") }
func (e *Engine) containerDir(id string) string { return filepath.Join(e.root, "containers", id) }
func (e *Engine) bundleDir(id string) string    { return filepath.Join(e.runRoot, "containers", id) }
func (e *Engine) namesDir() string              { return filepath.Join(e.root, "names") }
func (e *Engine) runtimeRoot() string           { return filepath.Join(e.runRoot, "runtime") }
func (e *Engine) shimSocket(id string) string   { return filepath.Join(e.bundleDir(id), "shim.sock") }
func (e *Engine) logPath(id string) string {
	return filepath.Join(e.containerDir(id), id+"-json.log")
}

// newID returns a random 64-hex container ID that is not all digits
// (Docker avoids those: they would parse as numbers).
func newID() string {
	for {
		var b [32]byte
		rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		if strings.Trim(id[:12], "0123456789") != "" {
			return id
		}
	}
}

// validID is the shape of the IDs newID makes.
var validID = regexp.MustCompile(`^[0-9a-f]{64}$`)

var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// checkName validates a container name as Docker does.
func checkName(name string) (string, error) {
	if !validName.MatchString(name) {
		return "", errorf(errdefs.ErrInvalidArgument, "Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	return strings.TrimPrefix(name, "/"), nil
}

// writeJSON writes v to path atomically: a temporary file, fsync, rename.
func writeJSON(path string, v any) error { return writeJSONFile(path, v, true) }

// writeRunJSON writes v to path atomically but without fsync: for files
// under the run root (the bundle), which a crash of the machine takes
// with it anyway and which a start writes afresh.
func writeRunJSON(path string, v any) error { return writeJSONFile(path, v, false) }

func writeJSONFile(path string, v any, durable bool) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if durable {
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			return err
		}
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// saveContainer writes c's record.
func (e *Engine) saveContainer(c *Container) error {
	if err := writeJSON(filepath.Join(e.containerDir(c.ID), recordFile), c); err != nil {
		return fmt.Errorf("write container %s: %w", c.ID, err)
	}
	return nil
}

// complete says whether container id exists: its record is written and
// its create finished.
func (e *Engine) complete(id string) bool {
	if _, err := os.Lstat(filepath.Join(e.containerDir(id), creatingFile)); !errors.Is(err, fs.ErrNotExist) {
		return false
	}
	_, err := os.Lstat(filepath.Join(e.containerDir(id), recordFile))
	return err == nil
}

// loadContainer reads the record of the container with this full ID.
func (e *Engine) loadContainer(id string) (*Container, error) {
	if _, err := os.Lstat(filepath.Join(e.containerDir(id), creatingFile)); !errors.Is(err, fs.ErrNotExist) {
		return nil, errorf(errdefs.ErrNotFound, "No such container: %s", id)
	}
	return e.readRecord(id)
}

// readRecord reads the record of container id, complete or not.
func (e *Engine) readRecord(id string) (*Container, error) {
	b, err := os.ReadFile(filepath.Join(e.containerDir(id), recordFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errorf(errdefs.ErrNotFound, "No such container: %s", id)
	}
	if err != nil {
		return nil, err
	}
	var c Container
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("container %s: corrupt record: %v", id, err)
	}
	if c.Config == nil {
		c.Config = &container.Config{}
	}
	if c.HostConfig == nil {
		c.HostConfig = &container.HostConfig{}
	}
	return &c, nil
}

// containerIDs lists the IDs of all containers. On the way it sweeps
// away what creates and rms that were killed left.
func (e *Engine) containerIDs() ([]string, error) {
	ents, err := os.ReadDir(e.containersDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(ents))
	for _, ent := range ents {
		if !ent.IsDir() || len(ent.Name()) != 64 {
			continue
		}
		if !e.complete(ent.Name()) {
			e.sweep(ent.Name()) // unless being created or removed
			continue
		}
		ids = append(ids, ent.Name())
	}
	e.sweepLocks()
	return ids, nil
}

// eachContainer calls fn with every readable container record. A
// record that cannot be read (being created or removed, corrupt) is
// skipped: it is no container yet, or no more.
func (e *Engine) eachContainer(ctx context.Context, fn func(*Container)) error {
	ids, err := e.containerIDs()
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		c, err := e.loadContainer(id)
		if err != nil {
			continue
		}
		fn(c)
	}
	return nil
}

// nameOwner returns the ID that holds name, or "".
func (e *Engine) nameOwner(name string) string {
	id, err := os.Readlink(filepath.Join(e.namesDir(), name))
	if err != nil {
		return ""
	}
	if !e.complete(id) {
		return "" // being created, or left by a create or rm that was killed
	}
	return id
}

// Lookup finds a container by full ID, name or unique ID prefix, as
// Docker does, and returns its record.
func (e *Engine) Lookup(ctx context.Context, ref string) (*Container, error) {
	if ref == "" {
		return nil, errorf(errdefs.ErrNotFound, "No such container: ")
	}
	if len(ref) == 64 {
		if c, err := e.loadContainer(ref); err == nil {
			return c, nil
		}
	}
	if id := e.nameOwner(strings.TrimPrefix(ref, "/")); id != "" {
		return e.loadContainer(id)
	}
	if strings.Trim(ref, "0123456789abcdef") == "" {
		ids, err := e.containerIDs()
		if err != nil {
			return nil, err
		}
		var found []string
		for _, id := range ids {
			if strings.HasPrefix(id, ref) {
				found = append(found, id)
			}
		}
		if len(found) > 1 {
			return nil, errorf(errdefs.ErrInvalidArgument, "multiple IDs found with provided prefix: %s", ref)
		}
		if len(found) == 1 {
			return e.loadContainer(found[0])
		}
	}
	return nil, errorf(errdefs.ErrNotFound, "No such container: %s", ref)
}

// lockFile holds an exclusive flock; Unlock releases it.
type lockFile struct{ f *os.File }

func (l lockFile) Unlock() { l.f.Close() }

func (e *Engine) lockPath(name string) string { return filepath.Join(e.runRoot, "locks", name) }

// lock takes an exclusive flock on RunRoot/locks/name, waiting for ctx.
func (e *Engine) lock(ctx context.Context, name string) (lockFile, error) {
	for delay := time.Millisecond; ; delay = min(delay*2, 50*time.Millisecond) {
		l, ok, err := e.tryLock(name)
		if err != nil || ok {
			return l, err
		}
		select {
		case <-ctx.Done():
			return lockFile{}, ctx.Err()
		case <-time.After(delay):
		}
	}
}

// tryLock takes the lock name if nobody holds it; ok is false if someone
// does. A lock file may be unlinked by its holder (rm removes a removed
// container's): a lock taken on a file no longer at the path is let go
// and taken again on the new one.
func (e *Engine) tryLock(name string) (l lockFile, ok bool, err error) {
	path := e.lockPath(name)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return lockFile{}, false, err
	}
	for range 100 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return lockFile{}, false, err
		}
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return lockFile{}, false, nil
		}
		if err != nil {
			f.Close()
			return lockFile{}, false, fmt.Errorf("lock %s: %w", name, err)
		}
		var held, now unix.Stat_t
		if unix.Fstat(int(f.Fd()), &held) == nil && unix.Stat(path, &now) == nil && held.Dev == now.Dev && held.Ino == now.Ino {
			return lockFile{f}, true, nil
		}
		f.Close() // unlinked meanwhile
	}
	return lockFile{}, false, fmt.Errorf("lock %s: its file keeps being replaced: %w", name, errdefs.ErrUnavailable)
}

// busy reports whether a process holds the lock of container id: a
// create or rm is under way. The lock of a process that died is free.
func (e *Engine) busy(id string) bool {
	f, err := os.OpenFile(e.lockPath(id), os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	return errors.Is(unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB), unix.EWOULDBLOCK)
}

// sweepLocks removes the lock files of containers that are gone, but
// those held: what a create or rm killed before or after its directory
// existed left.
func (e *Engine) sweepLocks() {
	ents, _ := os.ReadDir(filepath.Join(e.runRoot, "locks"))
	for _, ent := range ents {
		id := ent.Name()
		if len(id) != 64 {
			continue
		}
		if _, err := os.Lstat(e.containerDir(id)); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		l, ok, err := e.tryLock(id)
		if err != nil || !ok {
			continue
		}
		if _, err := os.Lstat(e.containerDir(id)); errors.Is(err, fs.ErrNotExist) {
			os.Remove(e.lockPath(id))
		}
		l.Unlock()
	}
}

// sweep removes container id when it is not complete and nobody holds
// its lock: what a create killed before it finished, or an rm killed
// after it removed the record, left. Its names and lock go too.
func (e *Engine) sweep(id string) {
	l, ok, err := e.tryLock(id)
	if err != nil || !ok {
		return
	}
	defer l.Unlock()
	if e.complete(id) {
		return
	}
	if c, err := e.readRecord(id); err == nil {
		if err := e.removeParts(context.Background(), c); err != nil {
			return
		}
	}
	os.RemoveAll(e.bundleDir(id))
	if err := os.RemoveAll(e.containerDir(id)); err != nil {
		return
	}
	if nl, err := e.lock(context.Background(), "names"); err == nil {
		ents, _ := os.ReadDir(e.namesDir())
		for _, ent := range ents {
			e.releaseName(ent.Name(), id)
		}
		nl.Unlock()
	}
	os.Remove(e.lockPath(id))
}

// nameHolder returns the ID that holds name: its owner, or a container
// still being created (its lock held, its create not finished).
func (e *Engine) nameHolder(name string) string {
	if id := e.nameOwner(name); id != "" {
		return id
	}
	if id, err := os.Readlink(filepath.Join(e.namesDir(), name)); err == nil && e.busy(id) {
		return id
	}
	return ""
}

// reserveName binds name to id under the names lock. A name left by a
// dead create or rm (a link to no record that nobody is writing) is taken
// over.
func (e *Engine) reserveName(ctx context.Context, name, id string) error {
	l, err := e.lock(ctx, "names")
	if err != nil {
		return err
	}
	defer l.Unlock()
	if owner := e.nameHolder(name); owner != "" && owner != id {
		return errorf(errdefs.ErrConflict, "Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.", name, owner)
	}
	if err := os.MkdirAll(e.namesDir(), 0o700); err != nil {
		return err
	}
	link := filepath.Join(e.namesDir(), name)
	os.Remove(link)
	return os.Symlink(id, link)
}

// releaseName drops name if id still holds it.
func (e *Engine) releaseName(name, id string) {
	link := filepath.Join(e.namesDir(), name)
	if owner, err := os.Readlink(link); err == nil && owner == id {
		os.Remove(link)
	}
}

// randomName returns a free Docker-style name: adjective_noun.
func (e *Engine) randomName() string {
	for i := 0; ; i++ {
		var b [2]byte
		rand.Read(b[:])
		name := adjectives[int(b[0])%len(adjectives)] + "_" + nouns[int(b[1])%len(nouns)]
		if i > 10 {
			name += fmt.Sprint(i)
		}
		if e.nameHolder(name) == "" {
			return name
		}
	}
}

var adjectives = []string{
	"admiring", "agitated", "amazing", "angry", "awesome", "blissful", "bold", "brave", "busy", "charming",
	"clever", "cool", "crazy", "dazzling", "determined", "eager", "ecstatic", "elastic", "elated", "epic",
	"festive", "focused", "friendly", "funny", "gallant", "gifted", "goofy", "happy", "hopeful", "jolly",
	"keen", "kind", "laughing", "lucid", "modest", "nervous", "nice", "nifty", "optimistic", "peaceful",
	"pensive", "quirky", "relaxed", "serene", "sharp", "silly", "stoic", "sweet", "tender", "vibrant",
	"wizardly", "youthful", "zealous", "zen",
}

var nouns = []string{
	"babbage", "bardeen", "bell", "bohr", "cerf", "curie", "darwin", "dijkstra", "einstein", "euler",
	"faraday", "fermi", "feynman", "galileo", "gauss", "goodall", "hopper", "hypatia", "kepler", "knuth",
	"lamarr", "lovelace", "maxwell", "meitner", "mendel", "newton", "noether", "pascal", "planck", "ritchie",
	"shannon", "thompson", "torvalds", "turing", "wozniak", "yalow",
}

// errorf is an error that reads as Docker words it and is of class (an
// errdefs error) for errors.Is.
func errorf(class error, format string, args ...any) error {
	return &classified{msg: fmt.Sprintf(format, args...), class: class}
}
