package testenv

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
)

// Compression is how an image builder compresses its layers.
type Compression string

// The layer compressions berth must pull.
const (
	Gzip         Compression = "gzip" // the default; Docker v2 schema 2 media types
	Zstd         Compression = "zstd" // OCI media types (Docker's have no zstd layer)
	Uncompressed Compression = "none" // OCI media types, application/vnd.oci.image.layer.v1.tar
)

// ImageOption changes how the image builders make an image.
type ImageOption func(*imageOptions)

type imageOptions struct {
	compression Compression
	oci         bool
}

// WithLayerCompression makes every layer with c. Zstd and Uncompressed
// imply OCI media types.
func WithLayerCompression(c Compression) ImageOption {
	return func(o *imageOptions) { o.compression = c }
}

// WithOCIMediaTypes makes OCI manifests, configs and indexes instead of
// Docker v2 schema 2 ones.
func WithOCIMediaTypes() ImageOption {
	return func(o *imageOptions) { o.oci = true }
}

func buildOptions(opts []ImageOption) imageOptions {
	o := imageOptions{compression: Gzip}
	for _, opt := range opts {
		opt(&o)
	}
	if o.compression != Gzip {
		o.oci = true
	}
	return o
}

// fixedTime makes the builders' output, and so their digests, the same
// on every run with the same options and busybox.
func fixedTime() time.Time { return time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC) }

// TarEntry is one entry of a layer made by Layer.
type TarEntry struct {
	Name     string // relative path, e.g. "etc/passwd" or "etc/" for a directory
	Typeflag byte   // tar.TypeReg (default), TypeDir, TypeSymlink, TypeLink
	Body     string // contents of a regular file
	Linkname string // target of a symlink or hard link
	Mode     int64  // permission bits; 0644 for files and 0755 for directories if zero
}

// Layer builds a layer from entries, compressed as c.
func Layer(t testing.TB, c Compression, entries ...TarEntry) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{
			Name: e.Name, Typeflag: e.Typeflag, Linkname: e.Linkname, Mode: e.Mode,
			ModTime: fixedTime(), Format: tar.FormatPAX,
		}
		if hdr.Typeflag == 0 {
			hdr.Typeflag = tar.TypeReg
		}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
			if hdr.Typeflag == tar.TypeDir {
				hdr.Mode = 0o755
			}
		}
		if hdr.Typeflag == tar.TypeReg {
			hdr.Size = int64(len(e.Body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("tar header %s: %v", e.Name, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			io.WriteString(tw, e.Body)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := newStaticLayer(buf.Bytes(), c)
	if err != nil {
		t.Fatalf("compressing layer: %v", err)
	}
	return l
}

// BusyboxRootfs returns the entries of a busybox-static root filesystem:
// /bin/busybox, a symlink per applet, /etc/passwd and /etc/group, and the
// directories a container expects.
func BusyboxRootfs(t testing.TB) []TarEntry {
	t.Helper()
	RequiresBusybox(t)
	data, err := os.ReadFile(BusyboxPath)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	var es []TarEntry
	for _, d := range []string{"bin", "dev", "etc", "proc", "sys", "root", "var", "run"} {
		es = append(es, TarEntry{Name: d + "/", Typeflag: tar.TypeDir})
	}
	es = append(es,
		TarEntry{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777},
		TarEntry{Name: "bin/busybox", Body: string(data), Mode: 0o755},
	)
	for _, applet := range strings.Fields(string(out)) {
		if applet != "busybox" {
			es = append(es, TarEntry{Name: "bin/" + applet, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777})
		}
	}
	return append(es,
		TarEntry{Name: "etc/passwd", Body: "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"},
		TarEntry{Name: "etc/group", Body: "root:x:0:\nnogroup:x:65534:\n"},
	)
}

// BusyboxImage returns a one-layer image of busybox-static whose config
// runs sh, for this machine's architecture.
func BusyboxImage(t testing.TB, opts ...ImageOption) v1.Image {
	t.Helper()
	o := buildOptions(opts)
	return buildImage(t, o, runtime.GOARCH, Layer(t, o.compression, BusyboxRootfs(t)...))
}

// MultiLayerImage returns a busybox image of four layers that exercise
// every change a layer can make; MultiLayerWant says what its unpacked
// rootfs holds.
//
//	1 busybox rootfs
//	2 etc/motd "v1", data/{a,b}, opq/{x,y,sub/w}
//	3 data/c added, etc/motd changed to "v2", data/b deleted (data/.wh.b)
//	4 opq made opaque (opq/.wh..wh..opq) holding only opq/z and a hard
//	  link opq/z-link to it
func MultiLayerImage(t testing.TB, opts ...ImageOption) v1.Image {
	t.Helper()
	o := buildOptions(opts)
	c := o.compression
	dir := func(n string) TarEntry { return TarEntry{Name: n, Typeflag: tar.TypeDir} }
	return buildImage(t, o, runtime.GOARCH,
		Layer(t, c, BusyboxRootfs(t)...),
		Layer(t, c, dir("etc/"), TarEntry{Name: "etc/motd", Body: "v1\n"},
			dir("data/"), TarEntry{Name: "data/a", Body: "a\n"}, TarEntry{Name: "data/b", Body: "b\n"},
			dir("opq/"), TarEntry{Name: "opq/x", Body: "x\n"}, TarEntry{Name: "opq/y", Body: "y\n"},
			dir("opq/sub/"), TarEntry{Name: "opq/sub/w", Body: "w\n"}),
		Layer(t, c, dir("data/"), TarEntry{Name: "data/c", Body: "c\n"},
			dir("etc/"), TarEntry{Name: "etc/motd", Body: "v2\n"},
			TarEntry{Name: "data/.wh.b"}),
		Layer(t, c, dir("opq/"), TarEntry{Name: "opq/.wh..wh..opq"},
			TarEntry{Name: "opq/z", Body: "z\n"},
			TarEntry{Name: "opq/z-link", Typeflag: tar.TypeLink, Linkname: "opq/z"}),
	)
}

// MultiLayerWant returns what MultiLayerImage's rootfs holds once
// unpacked, besides busybox: files with their contents, and paths that
// must not exist.
func MultiLayerWant() (files map[string]string, absent []string) {
	return map[string]string{
			"etc/motd":   "v2\n",
			"data/a":     "a\n",
			"data/c":     "c\n",
			"opq/z":      "z\n",
			"opq/z-link": "z\n",
		}, []string{
			"data/b", "data/.wh.b", "opq/x", "opq/y", "opq/sub", "opq/.wh..wh..opq",
		}
}

// MultiPlatformIndex returns an index with a linux/amd64 and a
// linux/arm64/v8 image whose configs differ. The entry for this machine's
// architecture is BusyboxImage; the other holds one small file (/hello)
// and cannot run.
func MultiPlatformIndex(t testing.TB, opts ...ImageOption) v1.ImageIndex {
	t.Helper()
	o := buildOptions(opts)
	var idx v1.ImageIndex = empty.Index
	if o.oci {
		idx = mutate.IndexMediaType(idx, types.OCIImageIndex)
	} else {
		idx = mutate.IndexMediaType(idx, types.DockerManifestList)
	}
	for _, p := range []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64", Variant: "v8"}} {
		var img v1.Image
		if p.Architecture == runtime.GOARCH {
			img = buildImage(t, o, p.Architecture, Layer(t, o.compression, BusyboxRootfs(t)...))
		} else {
			img = buildImage(t, o, p.Architecture, Layer(t, o.compression,
				TarEntry{Name: "hello", Body: "hello from " + p.Architecture + "\n"}))
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &p},
		})
	}
	return idx
}

func buildImage(t testing.TB, o imageOptions, arch string, layers ...v1.Layer) v1.Image {
	t.Helper()
	img := empty.Image
	if o.oci {
		img = mutate.MediaType(img, types.OCIManifestSchema1)
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	}
	adds := make([]mutate.Addendum, len(layers))
	for i, l := range layers {
		if sl, ok := l.(*staticLayer); ok && o.oci && sl.mediaType == types.DockerLayer {
			cp := *sl
			cp.mediaType = types.OCILayer
			l = &cp
		}
		adds[i] = mutate.Addendum{Layer: l, History: v1.History{
			Created: v1.Time{Time: fixedTime()}, CreatedBy: fmt.Sprintf("berth testenv layer %d", i+1),
		}}
	}
	img, err := mutate.Append(img, adds...)
	if err != nil {
		t.Fatalf("appending layers: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	if arch == "arm64" {
		cf.Variant = "v8"
	}
	cf.Created = v1.Time{Time: fixedTime()}
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cf.Config.Cmd = []string{"sh"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatalf("setting config: %v", err)
	}
	return img
}

// PushImage pushes img to reg as repo ("name" or "name:tag"; the tag
// defaults to latest) with reg's credentials and CA, and returns the
// manifest's digest.
func PushImage(t testing.TB, reg *Registry, repo string, img v1.Image) digest.Digest {
	t.Helper()
	ref := pushRef(t, reg, repo)
	if err := remote.Write(ref, img, reg.remoteOptions(t)...); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return digest.Digest(d.String())
}

// PushIndex pushes idx and every image in it to reg as repo, and returns
// the index's digest.
func PushIndex(t testing.TB, reg *Registry, repo string, idx v1.ImageIndex) digest.Digest {
	t.Helper()
	ref := pushRef(t, reg, repo)
	if err := remote.WriteIndex(ref, idx, reg.remoteOptions(t)...); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return digest.Digest(d.String())
}

func pushRef(t testing.TB, reg *Registry, repo string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(reg.Host + "/" + repo)
	if err != nil {
		t.Fatalf("parsing %q: %v", repo, err)
	}
	return ref
}

func (r *Registry) remoteOptions(t testing.TB) []remote.Option {
	return []remote.Option{
		remote.WithAuth(r.Authenticator()),
		remote.WithTransport(r.Transport()),
		remote.WithContext(registryContext(t)),
	}
}

// staticLayer is a layer held in memory. ggcr's tarball layers cannot be
// uncompressed, and holding the bytes keeps digests stable.
type staticLayer struct {
	compressed, uncompressed []byte
	digest, diffID           v1.Hash
	mediaType                types.MediaType
}

var _ v1.Layer = (*staticLayer)(nil)

func newStaticLayer(tarball []byte, c Compression) (*staticLayer, error) {
	l := &staticLayer{uncompressed: tarball}
	switch c {
	case Gzip:
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		zw.Write(tarball)
		if err := zw.Close(); err != nil {
			return nil, err
		}
		l.compressed, l.mediaType = buf.Bytes(), types.DockerLayer
	case Zstd:
		enc, err := zstd.NewWriter(nil)
		if err != nil {
			return nil, err
		}
		l.compressed, l.mediaType = enc.EncodeAll(tarball, nil), types.OCILayerZStd
		enc.Close()
	case Uncompressed:
		l.compressed, l.mediaType = tarball, types.OCIUncompressedLayer
	default:
		return nil, fmt.Errorf("unknown compression %q", c)
	}
	var err error
	if l.digest, _, err = v1.SHA256(bytes.NewReader(l.compressed)); err != nil {
		return nil, err
	}
	if l.diffID, _, err = v1.SHA256(bytes.NewReader(tarball)); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *staticLayer) Digest() (v1.Hash, error) { return l.digest, nil }
func (l *staticLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }
func (l *staticLayer) Size() (int64, error)     { return int64(len(l.compressed)), nil }
func (l *staticLayer) MediaType() (types.MediaType, error) {
	return l.mediaType, nil
}
func (l *staticLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.compressed)), nil
}
func (l *staticLayer) Uncompressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.uncompressed)), nil
}
