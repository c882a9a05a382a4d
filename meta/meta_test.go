package meta_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/meta"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const helperEnv = "BERTH_META_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		if err := helper(mode, os.Getenv("DB"), os.Getenv("ARG")); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func helper(mode, path, arg string) error {
	ctx := context.Background()
	switch mode {
	case "put":
		// As the CLI does: open, one short transaction, close.
		for i := range 50 {
			db, err := meta.Open(path)
			if err != nil {
				return err
			}
			err = db.PutImage(ctx, image(fmt.Sprintf("localhost:5000/p%s/img:%d", arg, i), "m"+arg+strconv.Itoa(i)))
			if err1 := db.Close(); err == nil {
				err = err1
			}
			if err != nil {
				return err
			}
		}
		return nil
	case "hold":
		db, err := meta.Open(path)
		if err != nil {
			return err
		}
		fmt.Println("locked")
		d, _ := time.ParseDuration(arg)
		time.Sleep(d)
		return db.Close()
	}
	return fmt.Errorf("unknown mode %q", mode)
}

func image(name, manifest string) meta.Image {
	return meta.Image{
		Name:   name,
		Target: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString(manifest), Size: int64(len(manifest))},
		Config: digest.FromString("config of " + manifest),
	}
}

func openDB(t *testing.T) *meta.DB {
	t.Helper()
	db, err := meta.Open(filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestImages(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	img := image("docker.io/library/busybox:latest", "bb")
	img.Platform = &ocispec.Platform{OS: "linux", Architecture: "amd64"}
	img.Labels = map[string]string{"a": "b"}
	img.Target.Annotations = map[string]string{"org.opencontainers.image.ref.name": "latest"}
	if err := db.PutImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetImage(ctx, img.Name)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != img.Name || got.Target.Digest != img.Target.Digest || got.Target.Size != img.Target.Size ||
		got.Target.MediaType != img.Target.MediaType || got.Target.Annotations["org.opencontainers.image.ref.name"] != "latest" ||
		got.Config != img.Config || got.Platform == nil || got.Platform.Architecture != "amd64" ||
		got.Labels["a"] != "b" || got.Created.IsZero() || got.Updated.IsZero() {
		t.Errorf("GetImage = %+v, want %+v", got, img)
	}
	created := got.Created

	// A second name for the same manifest, and a third for another.
	if err := db.PutImage(ctx, image("docker.io/library/busybox:1", "bb")); err != nil {
		t.Fatal(err)
	}
	if err := db.PutImage(ctx, image("localhost:5000/x:1", "x")); err != nil {
		t.Fatal(err)
	}
	names := func(imgs []meta.Image, err error) string {
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, i := range imgs {
			s = append(s, i.Name)
		}
		return strings.Join(s, ",")
	}
	if got := names(db.ImagesByTarget(ctx, img.Target.Digest)); got != "docker.io/library/busybox:1,docker.io/library/busybox:latest" {
		t.Errorf("ImagesByTarget(bb) = %s", got)
	}
	if got := names(db.ListImages(ctx)); got != "docker.io/library/busybox:1,docker.io/library/busybox:latest,localhost:5000/x:1" {
		t.Errorf("ListImages = %s", got)
	}

	// Retag latest to another manifest: the index follows, Created stays.
	time.Sleep(time.Millisecond)
	if err := db.PutImage(ctx, image("docker.io/library/busybox:latest", "x")); err != nil {
		t.Fatal(err)
	}
	if got := names(db.ImagesByTarget(ctx, img.Target.Digest)); got != "docker.io/library/busybox:1" {
		t.Errorf("ImagesByTarget(bb) after retag = %s", got)
	}
	if got := names(db.ImagesByTarget(ctx, digest.FromString("x"))); got != "docker.io/library/busybox:latest,localhost:5000/x:1" {
		t.Errorf("ImagesByTarget(x) after retag = %s", got)
	}
	if got, _ := db.GetImage(ctx, img.Name); !got.Created.Equal(created) || !got.Updated.After(created) {
		t.Errorf("after replace Created = %v (want %v), Updated = %v", got.Created, created, got.Updated)
	}

	if err := db.DeleteImage(ctx, "docker.io/library/busybox:1"); err != nil {
		t.Fatal(err)
	}
	if imgs, err := db.ImagesByTarget(ctx, img.Target.Digest); err != nil || len(imgs) != 0 {
		t.Errorf("ImagesByTarget after delete = %v, %v", imgs, err)
	}
	for name, err := range map[string]error{
		"GetImage":    func() error { _, err := db.GetImage(ctx, "docker.io/library/busybox:1"); return err }(),
		"DeleteImage": db.DeleteImage(ctx, "docker.io/library/busybox:1"),
	} {
		if !errdefs.IsNotFound(err) {
			t.Errorf("%s of a deleted image: %v, want ErrNotFound", name, err)
		}
	}
	for _, bad := range []meta.Image{{}, {Name: "x"}, {Name: "x", Target: ocispec.Descriptor{Digest: "sha256:short"}}} {
		if err := db.PutImage(ctx, bad); !errdefs.IsInvalidArgument(err) {
			t.Errorf("PutImage(%+v): %v, want ErrInvalidArgument", bad, err)
		}
	}
}

func TestUpdateIsAtomic(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	boom := errors.New("boom")
	err := db.Update(ctx, func(tx *meta.Tx) error {
		if err := tx.PutImage(image("a:1", "a")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v", err)
	}
	if _, err := db.GetImage(ctx, "a:1"); !errdefs.IsNotFound(err) {
		t.Errorf("image from a failed Update is visible: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := db.PutImage(cctx, image("a:1", "a")); !errors.Is(err, context.Canceled) {
		t.Errorf("PutImage with a cancelled ctx: %v", err)
	}
}

func TestLeases(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	res := []digest.Digest{digest.FromString("a"), digest.FromString("b")}
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	if err := db.PutLease(ctx, "pull-1", res, exp); err != nil {
		t.Fatal(err)
	}
	if err := db.PutLease(ctx, "pull-2", res[:1], time.Time{}); err != nil {
		t.Fatal(err)
	}
	ls, err := db.Leases(ctx)
	if err != nil || len(ls) != 2 {
		t.Fatalf("Leases = %+v, %v", ls, err)
	}
	if ls[0].ID != "pull-1" || len(ls[0].Resources) != 2 || !ls[0].Expires.Equal(exp) || ls[0].Created.IsZero() {
		t.Errorf("lease 1 = %+v", ls[0])
	}
	if !ls[1].Expires.IsZero() || ls[1].Expired(time.Now().Add(1000*time.Hour)) {
		t.Errorf("lease 2 should never expire: %+v", ls[1])
	}
	if ls[0].Expired(time.Now()) || !ls[0].Expired(exp.Add(time.Second)) {
		t.Errorf("lease 1 Expired is wrong")
	}
	// Replacing keeps Created and replaces the resources.
	if err := db.PutLease(ctx, "pull-1", res[1:], exp); err != nil {
		t.Fatal(err)
	}
	ls, _ = db.Leases(ctx)
	if len(ls[0].Resources) != 1 || ls[0].Resources[0] != res[1] {
		t.Errorf("replaced lease = %+v", ls[0])
	}
	if err := db.DeleteLease(ctx, "pull-1"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteLease(ctx, "pull-1"); !errdefs.IsNotFound(err) {
		t.Errorf("DeleteLease twice: %v, want ErrNotFound", err)
	}
	if err := db.PutLease(ctx, "bad", []digest.Digest{"nope"}, time.Time{}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("PutLease with a bad digest: %v", err)
	}
}

func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "meta.db")
	db, err := meta.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	db.PutImage(ctx, image("a:1", "a"))
	db.Close()
	db, err = meta.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.GetImage(ctx, "a:1"); err != nil {
		t.Errorf("image after reopen: %v", err)
	}
}

func helperCmd(mode, path, arg string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "DB="+path, "ARG="+arg)
	cmd.Stderr = os.Stderr
	return cmd
}

func TestManyProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	start := time.Now()
	var cmds []*exec.Cmd
	for p := range 5 {
		cmd := helperCmd("put", path, strconv.Itoa(p))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("process %d: %v", i, err)
		}
	}
	t.Logf("5 processes x 50 open/put/close: %v", time.Since(start))
	db, err := meta.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	imgs, err := db.ListImages(context.Background())
	if err != nil || len(imgs) != 250 {
		t.Fatalf("ListImages: %d images, %v; want 250", len(imgs), err)
	}
}

func TestLockTimeout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	cmd := helperCmd("hold", path, "3s")
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "locked\n" {
		t.Fatalf("helper said %q", line)
	}
	start := time.Now()
	_, err := meta.Open(path, meta.WithTimeout(300*time.Millisecond))
	if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open while another process holds it: %v; want ErrUnavailable naming %s", err, path)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 2*time.Second {
		t.Errorf("Open gave up after %v, want about 300ms", d)
	}
	// The default timeout outwaits the holder.
	db, err := meta.Open(path)
	if err != nil {
		t.Fatalf("Open with the default timeout: %v", err)
	}
	db.Close()
}

func TestCorrupt(t *testing.T) {
	garbage := make([]byte, 64<<10)
	rand.Read(garbage)
	valid := func() []byte {
		path := filepath.Join(t.TempDir(), "meta.db")
		db, err := meta.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 200 {
			db.PutImage(context.Background(), image(fmt.Sprintf("x:%d", i), strconv.Itoa(i)))
		}
		db.Close()
		b, _ := os.ReadFile(path)
		return b
	}()
	scrambled := append([]byte(nil), valid...)
	rand.Read(scrambled[16<<10:]) // keep the meta pages, ruin the data pages
	tests := []struct {
		name string
		data []byte
	}{
		{"garbage", garbage},
		{"text", []byte("this is not a database\n")},
		{"truncated", valid[:5000]},
		{"scrambled pages", scrambled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "meta.db")
			os.WriteFile(path, tt.data, 0o600)
			db, err := meta.Open(path, meta.WithTimeout(time.Second))
			if err == nil {
				// bbolt may accept the meta pages; then reading must fail cleanly.
				_, err = db.ListImages(context.Background())
				db.Close()
			}
			if err == nil {
				t.Fatal("no error from a corrupt database")
			}
			if !errdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %v: want ErrFailedPrecondition naming %s", err, path)
			}
		})
	}
}
