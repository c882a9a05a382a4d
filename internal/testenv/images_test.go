package testenv

import (
	"archive/tar"
	"fmt"
	"io"
	"runtime"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestImageCompressions(t *testing.T) {
	tests := []struct {
		opts     []ImageOption
		layer    types.MediaType
		manifest types.MediaType
	}{
		{nil, types.DockerLayer, types.DockerManifestSchema2},
		{[]ImageOption{WithOCIMediaTypes()}, types.OCILayer, types.OCIManifestSchema1},
		{[]ImageOption{WithLayerCompression(Zstd)}, types.OCILayerZStd, types.OCIManifestSchema1},
		{[]ImageOption{WithLayerCompression(Uncompressed)}, types.OCIUncompressedLayer, types.OCIManifestSchema1},
	}
	for _, tt := range tests {
		t.Run(string(tt.layer), func(t *testing.T) {
			for name, img := range map[string]v1.Image{
				"busybox":    BusyboxImage(t, tt.opts...),
				"multilayer": MultiLayerImage(t, tt.opts...),
			} {
				if err := checkImage(img); err != nil {
					t.Errorf("%s: %v", name, err)
				}
				m, err := img.Manifest()
				if err != nil {
					t.Fatal(err)
				}
				if m.MediaType != tt.manifest {
					t.Errorf("%s: manifest media type %s, want %s", name, m.MediaType, tt.manifest)
				}
				for _, l := range m.Layers {
					if l.MediaType != tt.layer {
						t.Errorf("%s: layer media type %s, want %s", name, l.MediaType, tt.layer)
					}
				}
			}
		})
	}
}

func TestBusyboxImage(t *testing.T) {
	img := BusyboxImage(t)
	files := extract(t, img)
	if h, ok := files["bin/busybox"]; !ok || h.Mode&0o111 == 0 {
		t.Errorf("bin/busybox missing or not executable: %+v", h)
	}
	if h := files["bin/sh"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "busybox" {
		t.Errorf("bin/sh = %+v, want a symlink to busybox", h)
	}
	if files["etc/passwd"] == nil {
		t.Errorf("etc/passwd missing")
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH || len(cf.Config.Cmd) == 0 {
		t.Errorf("config = %s/%s cmd %v", cf.OS, cf.Architecture, cf.Config.Cmd)
	}
	// Same input, same digest: tests may compare digests across builds.
	d1, _ := img.Digest()
	d2, _ := BusyboxImage(t).Digest()
	if d1 != d2 {
		t.Errorf("BusyboxImage digests differ between builds: %s, %s", d1, d2)
	}
}

func TestMultiLayerImage(t *testing.T) {
	img := MultiLayerImage(t)
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) < 3 {
		t.Fatalf("%d layers, want at least 3", len(layers))
	}
	// ggcr's Extract applies whiteouts and opaque directories: what it
	// yields is what an unpacker must produce.
	files := extract(t, img)
	want, absent := MultiLayerWant()
	for p, body := range want {
		h := files[p]
		if h == nil {
			t.Errorf("%s missing after flattening", p)
			continue
		}
		if h.Typeflag == tar.TypeReg && h.Size != int64(len(body)) {
			t.Errorf("%s has %d bytes, want %q", p, h.Size, body)
		}
	}
	for _, p := range absent {
		if files[p] != nil {
			t.Errorf("%s present after flattening, want it deleted", p)
		}
	}
}

func TestMultiPlatformIndex(t *testing.T) {
	for _, opts := range [][]ImageOption{nil, {WithOCIMediaTypes()}} {
		idx := MultiPlatformIndex(t, opts...)
		im, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		if len(im.Manifests) != 2 {
			t.Fatalf("%d manifests, want 2", len(im.Manifests))
		}
		configs := map[v1.Hash]bool{}
		for _, d := range im.Manifests {
			if d.Platform == nil || d.Platform.OS != "linux" {
				t.Errorf("entry %s has platform %+v", d.Digest, d.Platform)
				continue
			}
			img, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			cn, _ := img.ConfigName()
			configs[cn] = true
			cf, _ := img.ConfigFile()
			if cf.Architecture != d.Platform.Architecture {
				t.Errorf("entry for %s has a config for %s", d.Platform.Architecture, cf.Architecture)
			}
		}
		if len(configs) != 2 {
			t.Errorf("index entries share a config")
		}
	}
}

func extract(t *testing.T, img v1.Image) map[string]*tar.Header {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	files := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatalf("flattening: %v", err)
		}
		files[h.Name] = h
	}
}

// checkImage checks what ggcr's validate.Image would (it needs go-cmp,
// which go.mod does not list): every layer's bytes hash to its digest and
// diffID, and the config lists the diffIDs in order.
func checkImage(img v1.Image) error {
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	if len(cf.RootFS.DiffIDs) != len(layers) {
		return fmt.Errorf("config has %d diffIDs for %d layers", len(cf.RootFS.DiffIDs), len(layers))
	}
	for i, l := range layers {
		for _, c := range []struct {
			open func() (io.ReadCloser, error)
			want func() (v1.Hash, error)
		}{{l.Compressed, l.Digest}, {l.Uncompressed, l.DiffID}} {
			rc, err := c.open()
			if err != nil {
				return err
			}
			got, _, err := v1.SHA256(rc)
			rc.Close()
			if err != nil {
				return err
			}
			if want, _ := c.want(); got != want {
				return fmt.Errorf("layer %d hashes to %s, want %s", i, got, want)
			}
		}
		if d, _ := l.DiffID(); cf.RootFS.DiffIDs[i] != d {
			return fmt.Errorf("config diffID %d is %s, layer's is %s", i, cf.RootFS.DiffIDs[i], d)
		}
	}
	return nil
}
