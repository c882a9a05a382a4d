package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/content"
	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/internal/testenv"
	"github.com/berth-dev/berth/meta"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// hostileProxy stands between Pull and the registry fixture, on
// 127.0.0.1, and lies as its fields say. Blob GETs are answered from the
// registry's bytes (fetched whole), with Content-Length unless chunked;
// everything else passes through unless manifest is set.
type hostileProxy struct {
	upstream string
	rp       *httputil.ReverseProxy
	// manifest, if set, answers every manifest request (HEAD and GET).
	manifest func(w http.ResponseWriter, r *http.Request)
	// alias maps a digest asked for to the digest fetched upstream.
	alias map[string]string
	// blob, if set, may rewrite a blob's bytes (dgst is the digest asked
	// for) or answer itself (handled true).
	blob func(w http.ResponseWriter, dgst string, data []byte) (out []byte, handled bool)
	// chunked sends blobs without Content-Length.
	chunked bool
}

func startHostile(t *testing.T, reg *testenv.Registry, p *hostileProxy) string {
	t.Helper()
	u, err := url.Parse(reg.URL(""))
	if err != nil {
		t.Fatal(err)
	}
	p.upstream = reg.URL("")
	p.rp = httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func (p *hostileProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.Contains(r.URL.Path, "/manifests/") && p.manifest != nil:
		p.manifest(w, r)
	case strings.Contains(r.URL.Path, "/blobs/") && r.Method == http.MethodGet:
		dgst := path.Base(r.URL.Path)
		src := dgst
		if a, ok := p.alias[dgst]; ok {
			src = a
		}
		resp, err := http.Get(p.upstream + path.Dir(r.URL.Path) + "/" + src)
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
		if p.blob != nil {
			var handled bool
			if data, handled = p.blob(w, dgst, data); handled {
				return
			}
		}
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.Header().Set("Docker-Content-Digest", dgst)
		if p.chunked {
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
		} else {
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		}
		w.Write(data)
	default:
		p.rp.ServeHTTP(w, r)
	}
}

// serveManifest answers a manifest request with data, under the tag and
// under data's digest.
func serveManifest(w http.ResponseWriter, r *http.Request, mediaType string, data []byte) {
	d := digest.FromBytes(data)
	if id := path.Base(r.URL.Path); id != "v1" && id != d.String() {
		http.Error(w, `{"errors":[{"code":"MANIFEST_UNKNOWN"}]}`, http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", mediaType)
	w.Header().Set("Docker-Content-Digest", d.String())
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	if r.Method == http.MethodGet {
		w.Write(data)
	}
}

// rewriteLayer returns the proxy's manifest handler serving img's
// manifest with layer i's descriptor changed by edit.
func rewriteLayer(t *testing.T, img v1.Image, i int, edit func(layer map[string]any)) func(http.ResponseWriter, *http.Request) {
	t.Helper()
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	mt, err := img.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	edit(m["layers"].([]any)[i].(map[string]any))
	lied, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return func(w http.ResponseWriter, r *http.Request) { serveManifest(w, r, string(mt), lied) }
}

// bigManifest answers with a 50 MiB "manifest"; declared says whether
// HEAD gives its digest (so that the client knows the size up front) or
// only a length (so that it must GET and count).
func bigManifest(declared bool) func(http.ResponseWriter, *http.Request) {
	data := append([]byte(`{"schemaVersion":2,"pad":"`), bytes.Repeat([]byte("A"), 50<<20)...)
	data = append(data, `"}`...)
	d := digest.FromBytes(data)
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		if declared {
			w.Header().Set("Docker-Content-Digest", d.String())
		}
		if r.Method == http.MethodGet {
			w.Write(data)
		}
	}
}

// hostileCase is one lie and what Pull must say about it.
type hostileCase struct {
	name string
	// setup makes the proxy lie; layers are the image's layer digests.
	setup func(t *testing.T, img v1.Image, layers []string) *hostileProxy
	// want is a phrase the error must hold ("a|b": one of them), and
	// class its errdefs class; an empty want means the pull must succeed.
	want  string
	class func(error) bool
}

func hostileCases() []hostileCase {
	return []hostileCase{{
		// The gzip header's MTIME: the layer still unpacks to its diff
		// ID, so only the blob digest shows the change.
		name: "flipped-byte-gzip-header",
		setup: func(t *testing.T, img v1.Image, layers []string) *hostileProxy {
			return &hostileProxy{blob: flipAt(layers[1], func(n int) int { return 4 })}
		},
		want: "digest", class: errdefs.IsFailedPrecondition,
	}, {
		name: "flipped-byte-mid-layer",
		setup: func(t *testing.T, img v1.Image, layers []string) *hostileProxy {
			return &hostileProxy{blob: flipAt(layers[0], func(n int) int { return n / 2 })}
		},
		// Streamed, the layer may fail to unpack before its digest is known.
		want: "digest|unpack layer", class: func(err error) bool {
			return errdefs.IsFailedPrecondition(err) || errdefs.IsInvalidArgument(err)
		},
	}, {
		name: "truncated-layer",
		setup: func(t *testing.T, img v1.Image, layers []string) *hostileProxy {
			return &hostileProxy{blob: func(w http.ResponseWriter, dgst string, data []byte) ([]byte, bool) {
				if dgst != layers[0] {
					return data, false
				}
				w.Header().Set("Content-Length", strconv.Itoa(len(data)))
				w.WriteHeader(http.StatusOK)
				w.Write(data[:len(data)/2])
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler) // close the connection mid-body
			}}
		},
		want: "stream ended", class: errdefs.IsFailedPrecondition,
	}, {
		name: "size-lie-larger",
		setup: func(t *testing.T, img v1.Image, layers []string) *hostileProxy {
			return &hostileProxy{manifest: rewriteLayer(t, img, 2, func(l map[string]any) { l["size"] = l["size"].(float64) + 100 })}
		},
		want: "descriptor says", class: errdefs.IsFailedPrecondition,
	}, {
		// Without Content-Length the lie shows only as the bytes arrive.
		name: "size-lie-smaller-chunked",
		setup: func(t *testing.T, img v1.Image, layers []string) *hostileProxy {
			return &hostileProxy{chunked: true, manifest: rewriteLayer(t, img, 2, func(l map[string]any) { l["size"] = l["size"].(float64) - 10 })}
		},
		want: "more than the", class: errdefs.IsFailedPrecondition,
	}, {
		name: "size-lie-larger-chunked",
		setup: func(t *testing.T, img v1.Image, layers []string) *hostileProxy {
			return &hostileProxy{chunked: true, manifest: rewriteLayer(t, img, 0, func(l map[string]any) { l["size"] = l["size"].(float64) + 10 })}
		},
		want: "bytes, want", class: errdefs.IsFailedPrecondition,
	}, {
		// The registry serves layer 1's bytes under a digest they do not have.
		name: "digest-lie",
		setup: func(t *testing.T, img v1.Image, layers []string) *hostileProxy {
			fake := digest.FromString("not the layer").String()
			return &hostileProxy{
				alias:    map[string]string{fake: layers[1]},
				manifest: rewriteLayer(t, img, 1, func(l map[string]any) { l["digest"] = fake }),
			}
		},
		want: "digest", class: errdefs.IsFailedPrecondition,
	}, {
		name: "manifest-50MiB-undeclared",
		setup: func(t *testing.T, img v1.Image, layers []string) *hostileProxy {
			return &hostileProxy{manifest: bigManifest(false)}
		},
		want: "larger than 4194304", class: errdefs.IsFailedPrecondition,
	}, {
		name: "manifest-50MiB-declared",
		setup: func(t *testing.T, img v1.Image, layers []string) *hostileProxy {
			return &hostileProxy{manifest: bigManifest(true)}
		},
		want: "4194304", class: errdefs.IsInvalidArgument,
	}, {
		name: "500-twice-then-honest",
		setup: func(t *testing.T, img v1.Image, layers []string) *hostileProxy {
			var n atomic.Int32
			return &hostileProxy{blob: func(w http.ResponseWriter, dgst string, data []byte) ([]byte, bool) {
				if n.Add(1) <= 2 {
					http.Error(w, "boom", http.StatusInternalServerError)
					return nil, true
				}
				return data, false
			}}
		},
	}}
}

// flipAt returns a blob hook that flips the byte at(len) of blob dgst.
func flipAt(dgst string, at func(n int) int) func(http.ResponseWriter, string, []byte) ([]byte, bool) {
	return func(w http.ResponseWriter, d string, data []byte) ([]byte, bool) {
		if d == dgst {
			data = slices.Clone(data)
			data[at(len(data))] ^= 0x01
		}
		return data, false
	}
}

// TestPullHostile pulls MultiLayerImage through a registry proxy that
// lies (corrupt, truncated or oversized answers, descriptors that lie
// about sizes and digests) and checks that the pull fails saying what is
// wrong and leaves nothing behind — no image record, no lease, no unpack
// snapshot, nothing outside its root and runroot — and that the next pull
// of the same name from the honest registry succeeds with the right files.
// A registry that fails twice with 500 and then behaves is pulled from.
func TestPullHostile(t *testing.T) {
	testenv.RequiresRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	img := testenv.MultiLayerImage(t)
	testenv.PushImage(t, reg, "multi:v1", img)
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	var layers []string
	for _, l := range m.Layers {
		layers = append(layers, l.Digest.String())
	}
	for _, c := range hostileCases() {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			sandbox := t.TempDir()
			root, run, tmp := filepath.Join(sandbox, "root"), filepath.Join(sandbox, "run"), filepath.Join(sandbox, "tmp")
			if err := os.Mkdir(tmp, 0o700); err != nil {
				t.Fatal(err)
			}
			t.Setenv("TMPDIR", tmp) // temporary files land here, and are seen
			e, err := engine.New(engine.Config{Root: root, RunRoot: run})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			host := startHostile(t, reg, c.setup(t, img, layers))
			pctx, cancel := context.WithTimeout(ctx, time.Minute)
			res, err := e.Pull(pctx, host+"/multi:v1", engine.PullOptions{})
			cancel()
			if c.want == "" {
				if err != nil {
					t.Fatalf("Pull through the proxy: %v", err)
				}
				checkMultiLayer(t, e, res, "")
				return
			}
			if err == nil {
				t.Fatal("Pull of a lying registry succeeded")
			}
			t.Logf("Pull: %v", err)
			if !slices.ContainsFunc(strings.Split(c.want, "|"), func(w string) bool { return strings.Contains(err.Error(), w) }) || !c.class(err) {
				t.Errorf("Pull error %q: want %q, of the expected errdefs class", err, c.want)
			}
			checkNothingLeft(t, sandbox, root)
			res, err = e.Pull(ctx, reg.Host+"/multi:v1", engine.PullOptions{})
			if err != nil {
				t.Fatalf("honest Pull after the lie: %v", err)
			}
			checkMultiLayer(t, e, res, "")
			defer engine.SetGCGrace(0)() // no pull runs now
			if _, err := e.GC(ctx); err != nil {
				t.Fatal(err)
			}
			checkStore(t, e, root)
		})
	}
}

// checkNothingLeft checks what a failed pull leaves in root: no image
// record, no lease, no "extract-" snapshot; and that the sandbox holds
// only root, runroot and an empty TMPDIR.
func checkNothingLeft(t *testing.T, sandbox, root string) {
	t.Helper()
	ctx := context.Background()
	db, err := meta.Open(filepath.Join(root, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := db.ListImages(ctx)
	if err != nil || len(recs) != 0 {
		t.Errorf("image records after a failed pull: %v %v", recs, err)
	}
	ls, err := db.Leases(ctx)
	if err != nil || len(ls) != 0 {
		t.Errorf("leases after a failed pull: %v %v", ls, err)
	}
	db.Close()
	checkNoExtract(t, root)
	ents, err := os.ReadDir(sandbox)
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range ents {
		if n := ent.Name(); n != "root" && n != "run" && n != "tmp" {
			t.Errorf("%s appeared beside the root", n)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(sandbox, "tmp")); len(ents) != 0 {
		t.Errorf("files left in TMPDIR: %v", ents)
	}
}

// TestGCLeaseDiesWithProcess checks that a pull lease protects its blobs
// while the process it names lives, and that GC drops it, and takes the
// blobs, once that process is gone or its pid names a process started at
// another time; a lease without an owner lasts until it expires.
func TestGCLeaseDiesWithProcess(t *testing.T) {
	testenv.RequiresRoot(t)
	ctx := context.Background()
	root := t.TempDir()
	e, err := engine.New(engine.Config{Root: root, RunRoot: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	defer engine.SetGCGrace(0)()
	cs, err := content.Open(filepath.Join(root, "content"))
	if err != nil {
		t.Fatal(err)
	}
	blob := func(s string) digest.Digest {
		d := digest.FromString(s)
		if err := content.WriteBlob(ctx, cs, d.String(), strings.NewReader(s), ocispec.Descriptor{Digest: d, Size: int64(len(s))}); err != nil {
			t.Fatal(err)
		}
		return d
	}
	child := exec.Command("sleep", "600")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Process.Kill()
	start := func(pid int) string {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
		return f[19]
	}
	self := os.Getpid()
	childLease := fmt.Sprintf("pull-%d-%s-aa", child.Process.Pid, start(child.Process.Pid))
	reused := fmt.Sprintf("pull-%d-1-cc", self)
	leases := map[string]digest.Digest{
		childLease: blob("child's"),
		fmt.Sprintf("pull-%d-%s-bb", self, start(self)): blob("mine"),
		reused:           blob("pid reused"),
		"pull-ownerless": blob("ownerless"),
	}
	db, err := meta.Open(filepath.Join(root, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	for id, d := range leases {
		if err := db.PutLease(ctx, id, []digest.Digest{d}, time.Now().Add(24*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	gc := func(wantGone ...string) {
		t.Helper()
		rep, err := e.GC(ctx)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(rep.Leases)
		slices.Sort(wantGone)
		if !slices.Equal(rep.Leases, wantGone) {
			t.Errorf("GC dropped leases %v, want %v", rep.Leases, wantGone)
		}
		var blobs []digest.Digest
		for _, id := range wantGone {
			blobs = append(blobs, leases[id])
		}
		slices.Sort(blobs)
		slices.Sort(rep.Blobs)
		if !slices.Equal(rep.Blobs, blobs) {
			t.Errorf("GC took blobs %v, want %v", rep.Blobs, blobs)
		}
	}
	gc(reused)
	child.Process.Kill()
	child.Wait()
	gc(childLease)
}
