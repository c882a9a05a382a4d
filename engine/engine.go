// Package engine is berth's one orchestrator. It turns a request — pull
// this image, run that container — into work for the subsystems: the
// registry client, the content store, the snapshotter, the metadata
// database and, later, the runtime and the shim. It is the only package
// that coordinates several of them; it makes no system calls itself.
//
// berth has no daemon: every CLI process builds an Engine over the same
// on-disk state, and the stores below it are safe to share (flocked
// ingests, a bbolt file opened briefly per operation, snapshots committed
// by rename).
//
// Layout under Root (default /var/lib/berth):
//
//	content/          blobs by digest (package content)
//	snapshots/<driver>/  layer and container snapshots (package snapshot)
//	meta.db           image records and leases (package meta)
package engine

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/content"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/meta"
	"github.com/berth-dev/berth/mount"
	"github.com/berth-dev/berth/registry"
	"github.com/berth-dev/berth/snapshot"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Defaults for Config.
const (
	DefaultRoot    = "/var/lib/berth"
	DefaultRunRoot = "/run/berth"
)

// Config is what an Engine is built from.
type Config struct {
	Root          string // persistent state
	RunRoot       string // state that dies with the machine
	StorageDriver string // "overlay" (default) or "vfs"
	Platform      *ocispec.Platform
	Registry      []registry.Option // e.g. certificates, insecure hosts, a docker config
	Log           *slog.Logger
	// Exe is the berth binary that runs as the containers' shims; empty
	// means $BERTH_EXE, else this program.
	Exe string
}

// Engine carries out berth's operations on one state root.
type Engine struct {
	root, runRoot string
	driver        string
	content       *content.Store
	snapshots     snapshot.Snapshotter
	registry      *registry.Client
	metaPath      string
	platform      ocispec.Platform
	log           *slog.Logger
	exe           string
}

// New opens the stores under cfg.Root, creating them on first use.
func New(cfg Config) (*Engine, error) {
	if cfg.Root == "" {
		cfg.Root = DefaultRoot
	}
	if cfg.RunRoot == "" {
		cfg.RunRoot = DefaultRunRoot
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	e := &Engine{root: cfg.Root, runRoot: cfg.RunRoot, driver: cfg.StorageDriver, log: cfg.Log}
	if e.driver == "" {
		e.driver = "overlay"
	}
	e.platform = image.DefaultPlatform()
	e.exe = cmp.Or(cfg.Exe, os.Getenv("BERTH_EXE"))
	if e.exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find the berth binary: %w", err)
		}
		e.exe = exe
	}
	if cfg.Platform != nil {
		e.platform = image.Normalize(*cfg.Platform)
	}
	for _, d := range []string{cfg.Root, cfg.RunRoot} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	var err error
	if e.content, err = content.Open(filepath.Join(cfg.Root, "content")); err != nil {
		return nil, err
	}
	snapRoot := filepath.Join(cfg.Root, "snapshots", e.driver)
	switch e.driver {
	case "overlay":
		e.snapshots, err = snapshot.NewOverlay(snapRoot)
	case "vfs":
		e.snapshots, err = snapshot.NewNaive(snapRoot)
	default:
		return nil, fmt.Errorf("unknown storage driver %q (overlay or vfs): %w", e.driver, errdefs.ErrInvalidArgument)
	}
	if err != nil {
		return nil, fmt.Errorf("storage driver %s: %w", e.driver, err)
	}
	e.registry = registry.New(cfg.Registry...)
	e.metaPath = filepath.Join(cfg.Root, "meta.db")
	return e, nil
}

// Close releases the stores.
func (e *Engine) Close() error { return e.snapshots.Close() }

// withMeta runs fn on the metadata database, opened for just that long:
// bbolt's lock is exclusive, and other berth processes are waiting.
func (e *Engine) withMeta(ctx context.Context, fn func(db *meta.DB) error) error {
	db, err := meta.Open(e.metaPath)
	if err != nil {
		return err
	}
	defer db.Close()
	return fn(db)
}

// ViewImage makes a read-only snapshot key of img's root filesystem and
// returns its mounts; RemoveView drops it.
func (e *Engine) ViewImage(ctx context.Context, key string, img image.Image) ([]mount.Mount, error) {
	if len(img.ChainIDs) == 0 {
		return nil, fmt.Errorf("image %s has no layers: %w", img.ID(), errdefs.ErrInvalidArgument)
	}
	return e.snapshots.View(ctx, key, img.ChainIDs[len(img.ChainIDs)-1].String())
}

// RemoveView drops a snapshot made by ViewImage.
func (e *Engine) RemoveView(ctx context.Context, key string) error {
	return e.snapshots.Remove(ctx, key)
}
