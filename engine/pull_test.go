package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/internal/testenv"
	"github.com/berth-dev/berth/meta"
	"github.com/berth-dev/berth/mount"
)

func newEngine(t *testing.T, driver string) (*engine.Engine, string) {
	t.Helper()
	testenv.RequiresRoot(t)
	root := t.TempDir()
	e, err := engine.New(engine.Config{Root: root, RunRoot: t.TempDir(), StorageDriver: driver})
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e, root
}

// rootfs mounts a read-only view of the image's top layer and returns the
// files it holds, unmounting at the end of the test.
func viewFiles(t *testing.T, e *engine.Engine, res engine.PullResult, paths []string) map[string]string {
	t.Helper()
	ctx := context.Background()
	key := "view-" + strings.ReplaceAll(t.Name(), "/", "-")
	mounts, err := e.ViewImage(ctx, key, res.Image)
	defer e.RemoveView(ctx, key)
	if err != nil {
		t.Fatalf("view: %v", err)
	}
	got := map[string]string{}
	err = mount.WithTempMount(ctx, mounts, func(root string) error {
		for _, p := range paths {
			data, err := os.ReadFile(filepath.Join(root, p))
			if err == nil {
				got[p] = string(data)
			} else if _, lerr := os.Lstat(filepath.Join(root, p)); lerr == nil {
				got[p] = "<exists>"
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("mount view: %v", err)
	}
	return got
}

// checkMultiLayer fails t unless res's root filesystem is what
// testenv.MultiLayerImage unpacks to: its files there, the paths its
// whiteouts delete gone. when prefixes the messages.
func checkMultiLayer(t *testing.T, e *engine.Engine, res engine.PullResult, when string) {
	t.Helper()
	files, absent := testenv.MultiLayerWant()
	paths := append([]string{}, absent...)
	for p := range files {
		paths = append(paths, p)
	}
	got := viewFiles(t, e, res, paths)
	for p, want := range files {
		if got[p] != want {
			t.Errorf("%s%s = %q, want %q", when, p, got[p], want)
		}
	}
	for _, p := range absent {
		if _, ok := got[p]; ok {
			t.Errorf("%s%s exists, want it deleted by a whiteout", when, p)
		}
	}
}

func TestPull(t *testing.T) {
	for _, driver := range []string{"overlay", "vfs"} {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
			testenv.PushImage(t, reg, "multi:v1", testenv.MultiLayerImage(t))
			e, root := newEngine(t, driver)
			var mu sync.Mutex // progress comes from several goroutines
			var events []string
			res, err := e.Pull(ctx, reg.Host+"/multi:v1", engine.PullOptions{Progress: func(p engine.Progress) {
				mu.Lock()
				events = append(events, p.Status)
				mu.Unlock()
			}})
			if err != nil {
				t.Fatalf("Pull: %v", err)
			}
			if !res.Downloaded || !strings.Contains(strings.Join(events, ","), "Pull complete") {
				t.Errorf("first pull: downloaded %v, events %v", res.Downloaded, events)
			}
			db, err := meta.Open(filepath.Join(root, "meta.db"))
			if err != nil {
				t.Fatal(err)
			}
			rec, err := db.GetImage(ctx, reg.Host+"/multi:v1")
			db.Close()
			if err != nil || rec.Config != res.Image.ID() || rec.Target.Digest != res.Image.Target.Digest {
				t.Fatalf("image record %+v, %v; want config %s", rec, err, res.Image.ID())
			}
			checkMultiLayer(t, e, res, "")
			// Again: nothing to download.
			res2, err := e.Pull(ctx, reg.Host+"/multi:v1", engine.PullOptions{})
			if err != nil || res2.Downloaded {
				t.Errorf("second pull: downloaded %v, %v", res2.Downloaded, err)
			}
		})
	}
}

func TestPullPlatformIndex(t *testing.T) {
	ctx := context.Background()
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	testenv.PushIndex(t, reg, "multiarch:1", testenv.MultiPlatformIndex(t))
	e, _ := newEngine(t, "overlay")
	res, err := e.Pull(ctx, reg.Host+"/multiarch:1", engine.PullOptions{})
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	got := viewFiles(t, e, res, []string{"bin/busybox", "hello"})
	if _, ok := got["bin/busybox"]; !ok {
		t.Errorf("this machine's image lacks bin/busybox: %v", got)
	}
	if _, ok := got["hello"]; ok {
		t.Errorf("got the other platform's image: %v", got)
	}
}

func TestPullMissing(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	e, _ := newEngine(t, "overlay")
	if _, err := e.Pull(context.Background(), reg.Host+"/nosuch:1", engine.PullOptions{}); err == nil {
		t.Fatal("pull of a missing image succeeded")
	}
}
