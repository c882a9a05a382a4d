package registry_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/internal/testenv"
	"github.com/berth-dev/berth/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// dockerConfig writes a config.json with auths for reg (base64 "auth", as
// docker login writes it) and returns its directory.
func dockerConfig(t *testing.T, reg *testenv.Registry, user, password string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := map[string]any{"auths": map[string]any{}}
	if user != "" {
		cfg["auths"] = map[string]any{reg.Host: map[string]string{
			"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password)),
		}}
	}
	writeJSON(t, filepath.Join(dir, "config.json"), cfg)
	return dir
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func blob(t *testing.T, open func() (io.ReadCloser, error)) []byte {
	t.Helper()
	rc, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func descOf(mediaType string, data []byte) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
}

type blobData struct {
	desc ocispec.Descriptor
	data []byte
}

// pushed is an image as the client pushed it.
type pushed struct {
	manifest ocispec.Descriptor
	blobs    []blobData // config and layers
	raw      []byte
}

// push uploads img's layers, config and manifest with c, as berth push will.
func push(t *testing.T, c *registry.Client, ref string, img v1.Image, mountFrom ...string) pushed {
	t.Helper()
	ctx := t.Context()
	p := pushed{}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		mt, _ := l.MediaType()
		data := blob(t, l.Compressed)
		p.blobs = append(p.blobs, blobData{descOf(string(mt), data), data})
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	m, _ := img.Manifest()
	p.blobs = append(p.blobs, blobData{descOf(string(m.Config.MediaType), cfg), cfg})
	for _, b := range p.blobs {
		d, data := b.desc, b.data
		if err := c.PushBlob(ctx, ref, d, bytes.NewReader(data), mountFrom...); err != nil {
			t.Fatalf("PushBlob(%s, %s): %v", ref, d.Digest, err)
		}
	}
	if p.raw, err = img.RawManifest(); err != nil {
		t.Fatal(err)
	}
	mt, _ := img.MediaType()
	p.manifest = descOf(string(mt), p.raw)
	if err := c.PushManifest(ctx, ref, p.manifest, p.raw); err != nil {
		t.Fatalf("PushManifest(%s): %v", ref, err)
	}
	return p
}

// pull resolves ref and fetches everything p pushed, checking the bytes.
func pull(t *testing.T, c *registry.Client, ref string, p pushed) {
	t.Helper()
	ctx := t.Context()
	got, err := c.Resolve(ctx, ref)
	if err != nil {
		t.Fatalf("Resolve(%s): %v", ref, err)
	}
	if got.Digest != p.manifest.Digest || got.Size != p.manifest.Size || got.MediaType != p.manifest.MediaType {
		t.Errorf("Resolve(%s) = %+v, want %+v", ref, got, p.manifest)
	}
	raw, err := c.FetchManifest(ctx, ref, got)
	if err != nil {
		t.Fatalf("FetchManifest(%s): %v", ref, err)
	}
	if !bytes.Equal(raw, p.raw) {
		t.Errorf("FetchManifest(%s) differs from what was pushed", ref)
	}
	for _, b := range p.blobs {
		d, want := b.desc, b.data
		rc, err := c.Fetch(ctx, ref, d)
		if err != nil {
			t.Fatalf("Fetch(%s, %s): %v", ref, d.Digest, err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("reading %s: %v", d.Digest, err)
		}
		if !bytes.Equal(data, want) {
			t.Errorf("Fetch(%s, %s): bytes differ", ref, d.Digest)
		}
		if ok, err := c.Exists(ctx, ref, d); err != nil || !ok {
			t.Errorf("Exists(%s, %s) = %v, %v; want true", ref, d.Digest, ok, err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	img := testenv.MultiLayerImage(t)
	zimg := testenv.BusyboxImage(t, testenv.WithLayerCompression(testenv.Zstd))
	for _, tls := range []bool{false, true} {
		for _, auth := range []testenv.RegistryAuth{testenv.AuthNone, testenv.AuthBasic, testenv.AuthToken} {
			t.Run(map[bool]string{false: "http", true: "https"}[tls]+"/"+auth.String(), func(t *testing.T) {
				t.Parallel()
				reg := testenv.StartRegistry(t, testenv.RegistryOptions{TLS: tls, Auth: auth})
				c := registry.New(registry.WithDockerConfig(dockerConfig(t, reg, reg.Username, reg.Password)),
					registry.WithCertsDir(reg.CertsDir))
				ref := reg.Host + "/berth/multi:v1"
				p := push(t, c, ref, img)
				pull(t, c, ref, p)
				pull(t, c, reg.Host+"/berth/multi@"+p.manifest.Digest.String(), p)
				zref := reg.Host + "/berth/zstd:1"
				pull(t, c, zref, push(t, c, zref, zimg))

				// What ggcr pushes, the client pulls.
				d := testenv.PushImage(t, reg, "ggcr/busybox:1", testenv.BusyboxImage(t))
				got, err := c.Resolve(t.Context(), reg.Host+"/ggcr/busybox:1")
				if err != nil || got.Digest != d {
					t.Errorf("Resolve(ggcr-pushed) = %v, %v; want %s", got.Digest, err, d)
				}
				idx := testenv.PushIndex(t, reg, "ggcr/index:1", testenv.MultiPlatformIndex(t))
				got, err = c.Resolve(t.Context(), reg.Host+"/ggcr/index:1")
				if err != nil || got.Digest != idx || got.MediaType != registry.MediaTypeDockerManifestList {
					t.Errorf("Resolve(index) = %+v, %v; want %s list", got, err, idx)
				}

				if auth == testenv.AuthNone {
					return
				}
				for name, dir := range map[string]string{
					"anonymous":      dockerConfig(t, reg, "", ""),
					"wrong password": dockerConfig(t, reg, reg.Username, "wrong"),
				} {
					bad := registry.New(registry.WithDockerConfig(dir), registry.WithCertsDir(reg.CertsDir))
					_, err := bad.Resolve(t.Context(), ref)
					if !errors.Is(err, registry.ErrUnauthorized) || !strings.Contains(err.Error(), "pull access denied for") {
						t.Errorf("%s: Resolve = %v, want pull access denied (ErrUnauthorized)", name, err)
					}
					for _, b := range p.blobs {
						err := bad.PushBlob(t.Context(), reg.Host+"/berth/other", b.desc, bytes.NewReader(b.data))
						if !errors.Is(err, registry.ErrUnauthorized) || !errdefs.IsFailedPrecondition(err) {
							t.Errorf("%s: PushBlob = %v, want ErrUnauthorized", name, err)
						}
						break
					}
				}
			})
		}
	}
}

func TestErrors(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	c := registry.New(registry.WithDockerConfig(t.TempDir()))
	ctx := t.Context()
	p := push(t, c, reg.Host+"/berth/img:1", testenv.BusyboxImage(t))

	_, err := c.Resolve(ctx, reg.Host+"/berth/img:nope")
	if !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "manifest unknown") {
		t.Errorf("Resolve(unknown tag) = %v, want not found / manifest unknown", err)
	}
	missing := descOf("application/octet-stream", []byte("not there"))
	if _, err := c.Fetch(ctx, reg.Host+"/berth/img", missing); !errdefs.IsNotFound(err) {
		t.Errorf("Fetch(missing blob) = %v, want not found", err)
	}
	if ok, err := c.Exists(ctx, reg.Host+"/berth/img", missing); ok || err != nil {
		t.Errorf("Exists(missing blob) = %v, %v; want false, nil", ok, err)
	}
	for _, ref := range []string{"UPPER/case", reg.Host + "/a//b", ""} {
		if _, err := c.Resolve(ctx, ref); !errdefs.IsInvalidArgument(err) {
			t.Errorf("Resolve(%q) = %v, want invalid argument", ref, err)
		}
	}
	// A manifest that does not match its descriptor is refused before it
	// is sent.
	bad := p.manifest
	bad.Size++
	if err := c.PushManifest(ctx, reg.Host+"/berth/img:2", bad, p.raw); !errdefs.IsInvalidArgument(err) {
		t.Errorf("PushManifest(wrong size) = %v, want invalid argument", err)
	}
	// A reader that ends early or holds more is refused, and nothing is stored.
	data := []byte("twelve bytes")
	d := descOf("application/octet-stream", data)
	for _, r := range []io.Reader{bytes.NewReader(data[:5]), bytes.NewReader(append(data, '!'))} {
		if err := c.PushBlob(ctx, reg.Host+"/berth/img", d, r); !errdefs.IsInvalidArgument(err) {
			t.Errorf("PushBlob(wrong length) = %v, want invalid argument", err)
		}
	}
	if ok, _ := c.Exists(ctx, reg.Host+"/berth/img", d); ok {
		t.Errorf("a refused blob is in the registry")
	}
}
