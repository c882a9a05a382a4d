package engine

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testenv"
	"github.com/berth-dev/berth/snapshot"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// bigLayerImage is an image whose first layer holds files of random (so
// incompressible) bytes: half its blob unpacks to many of them.
func bigLayerImage(t *testing.T) (v1.Image, string) {
	t.Helper()
	var entries []testenv.TarEntry
	for i := range 40 {
		b := make([]byte, 32<<10)
		rand.Read(b)
		entries = append(entries, testenv.TarEntry{Name: fmt.Sprintf("f%02d", i), Body: string(b)})
	}
	l0 := testenv.Layer(t, testenv.Gzip, entries...)
	l1 := testenv.Layer(t, testenv.Gzip, testenv.TarEntry{Name: "top", Body: "top\n"})
	img, err := mutate.AppendLayers(empty.Image, l0, l1)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	d, err := l0.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return img, d.String()
}

// stallingProxy forwards to the registry at upstream, except that the
// blob whose path ends in blob gets half sent, then whatever hold does:
// return to send the rest, or panic(http.ErrAbortHandler) to cut it.
func stallingProxy(t *testing.T, upstream, blob string, hold func()) *httptest.Server {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+blob) {
			rp.ServeHTTP(w, r)
			return
		}
		resp, err := http.Get(upstream + r.URL.Path)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			http.Error(w, fmt.Sprint(resp.Status, err), http.StatusBadGateway)
			return
		}
		for _, h := range []string{"Content-Type", "Docker-Content-Digest"} {
			w.Header().Set(h, resp.Header.Get(h))
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(http.StatusOK)
		w.Write(data[:len(data)/2])
		w.(http.Flusher).Flush()
		hold()
		w.Write(data[len(data)/2:])
	}))
	t.Cleanup(srv.Close)
	return srv
}

func newTestEngine(t *testing.T) *Engine {
	t.Helper()
	testenv.RequiresRoot(t)
	e, err := New(Config{Root: t.TempDir(), RunRoot: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// extracting returns the number of entries in the upper dir of an active
// "extract-…" snapshot, if there is one.
func extracting(ctx context.Context, t *testing.T, s snapshot.Snapshotter) (int, bool) {
	var n int
	found := false
	s.Walk(ctx, func(info snapshot.Info) error {
		if info.Kind != snapshot.KindActive || !strings.HasPrefix(info.Key, "extract-") {
			return nil
		}
		found = true
		if dir, err := s.UpperDir(ctx, info.Key); err == nil {
			ents, _ := os.ReadDir(dir)
			n = max(n, len(ents))
		}
		return nil
	})
	return n, found
}

// TestPullStreamsLayer proves the first layer unpacks as it downloads:
// the registry holds back the second half of its blob until files of it
// are in the snapshot. An unpacker that waited for the whole blob would
// never see them, and the test fails at its timeout.
func TestPullStreamsLayer(t *testing.T) {
	ctx := context.Background()
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	img, blob := bigLayerImage(t)
	testenv.PushImage(t, reg, "stream:v1", img)
	e := newTestEngine(t)
	seen := 0
	pullWhileStalled(t, e, reg, blob, "stream:v1", func() bool {
		seen, _ = extracting(ctx, t, e.snapshots)
		return seen > 0
	}, func() string {
		return "no files in an extract- snapshot while the first layer was half sent: not streaming"
	})
	t.Logf("%d files unpacked from the first half of the layer", seen)
}

// pullWhileStalled pulls repo from reg through a proxy that holds back the
// second half of blob until ready reports true (polled every 10 ms, for at
// most 20 s; if it never does, the test fails with why(), the pull
// released). Then the pull must succeed and leave no extract- snapshot.
func pullWhileStalled(t *testing.T, e *Engine, reg *testenv.Registry, blob, repo string, ready func() bool, why func() string) {
	t.Helper()
	ctx := context.Background()
	release := make(chan struct{})
	proxy := stallingProxy(t, reg.URL(""), blob, func() { <-release })
	host := strings.TrimPrefix(proxy.URL, "http://")
	done := make(chan error, 1)
	go func() {
		_, err := e.Pull(ctx, host+"/"+repo, PullOptions{})
		done <- err
	}()
	deadline := time.After(20 * time.Second)
	for !ready() {
		select {
		case err := <-done:
			close(release)
			t.Fatalf("pull ended before its first layer was released: %v", err)
		case <-deadline:
			close(release)
			<-done
			t.Fatal(why())
		case <-time.After(10 * time.Millisecond):
		}
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Pull: %v", err)
	}
	if _, found := extracting(ctx, t, e.snapshots); found {
		t.Error("an extract- snapshot is left after the pull")
	}
}

// TestPullStreamCutResumes cuts the streamed layer mid-way: the pull fails,
// no extract- snapshot is left, the ingest keeps what arrived, and the
// next pull resumes it and succeeds.
func TestPullStreamCutResumes(t *testing.T) {
	ctx := context.Background()
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	img, blob := bigLayerImage(t)
	testenv.PushImage(t, reg, "stream:v1", img)
	e := newTestEngine(t)

	var cut atomic.Bool
	cut.Store(true)
	proxy := stallingProxy(t, reg.URL(""), blob, func() {
		if cut.Load() {
			panic(http.ErrAbortHandler)
		}
	})
	host := strings.TrimPrefix(proxy.URL, "http://")
	if _, err := e.Pull(ctx, host+"/stream:v1", PullOptions{}); err == nil {
		t.Fatal("pull of a cut layer succeeded")
	} else {
		t.Logf("cut pull: %v", err)
	}
	if _, found := extracting(ctx, t, e.snapshots); found {
		t.Error("an extract- snapshot is left after the failed pull")
	}
	ings, err := e.content.Ingests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	resumable := false
	for _, st := range ings {
		if st.Ref == blob && st.Offset > 0 {
			resumable = true
		}
	}
	if !resumable {
		t.Errorf("no partial ingest of %s kept: %+v", blob, ings)
	}
	cut.Store(false)
	var mu sync.Mutex
	var events []string
	res, err := e.Pull(ctx, host+"/stream:v1", PullOptions{Progress: func(p Progress) {
		mu.Lock()
		defer mu.Unlock()
		if p.Current == 0 {
			events = append(events, p.Status)
		}
	}})
	if err != nil {
		t.Fatalf("second pull: %v", err)
	}
	if !strings.Contains(strings.Join(events, ","), "Pull complete") || len(res.Image.Layers) != 2 {
		t.Errorf("second pull: events %v", events)
	}
	if _, found := extracting(ctx, t, e.snapshots); found {
		t.Error("an extract- snapshot is left after the pull")
	}
}
