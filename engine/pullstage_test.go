package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testenv"
)

// TestPullStagesLayersInParallel proves that with overlay a layer unpacks
// while the layer beneath it is still unpacking: the registry holds back
// the second half of the first layer until files of the second layer are
// in its staging directory. A pull that unpacked the layers one after the
// other would never get there, and the test fails at its timeout.
func TestPullStagesLayersInParallel(t *testing.T) {
	ctx := context.Background()
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	img, blob := bigLayerImage(t)
	testenv.PushImage(t, reg, "stage:v1", img)
	e := newTestEngine(t)
	if e.driver != "overlay" {
		t.Skipf("driver %s: layers unpack one after the other", e.driver)
	}

	release := make(chan struct{})
	proxy := stallingProxy(t, reg.URL(""), blob, func() { <-release })
	host := strings.TrimPrefix(proxy.URL, "http://")
	done := make(chan error, 1)
	go func() {
		_, err := e.Pull(ctx, host+"/stage:v1", PullOptions{})
		done <- err
	}()
	pattern := filepath.Join(e.stagingRoot(), "pull-*", "layer-1", "*")
	deadline := time.After(20 * time.Second)
	// Both at once: files of layer 2 staged, and files of layer 1 (whose
	// second half is held back) in its snapshot.
	var staged []string
	streamed := 0
	for len(staged) == 0 || streamed == 0 {
		select {
		case err := <-done:
			close(release)
			t.Fatalf("pull ended before its first layer was released: %v", err)
		case <-deadline:
			close(release)
			<-done
			t.Fatalf("while layer 1 was half sent: %d files of layer 2 staged, %d of layer 1 in its snapshot: layers do not unpack in parallel", len(staged), streamed)
		case <-time.After(10 * time.Millisecond):
			staged, _ = filepath.Glob(pattern)
			streamed, _ = extracting(ctx, t, e.snapshots)
		}
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Pull: %v", err)
	}
	t.Logf("staged %v while layer 1 was half sent (%d files of it in its snapshot)", staged, streamed)
	if _, found := extracting(ctx, t, e.snapshots); found {
		t.Error("an extract- snapshot is left after the pull")
	}
	if ents, _ := os.ReadDir(e.stagingRoot()); len(ents) != 0 {
		t.Errorf("staging directories left after the pull: %v", ents)
	}
	// The second layer came through its staging directory intact: it is
	// the top lower dir of a view of the image.
	res, err := e.Pull(ctx, host+"/stage:v1", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ms, err := e.ViewImage(ctx, "check", res.Image)
	if err != nil {
		t.Fatal(err)
	}
	defer e.RemoveView(ctx, "check")
	var lower string
	for _, o := range ms[0].Options {
		if v, ok := strings.CutPrefix(o, "lowerdir="); ok {
			lower, _, _ = strings.Cut(v, ":")
		}
	}
	if b, err := os.ReadFile(filepath.Join(lower, "top")); err != nil || string(b) != "top\n" {
		t.Errorf("layer 2's snapshot (%s): top = %q, %v", lower, b, err)
	}
}
