package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/archive"
	"github.com/berth-dev/berth/content"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/meta"
	"github.com/berth-dev/berth/ref"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// maxArchiveEntries bounds how many entries a loaded archive may hold.
const maxArchiveEntries = 1 << 16

// LoadResult is what a load stored.
type LoadResult struct {
	// Names are the full references recorded, in archive order.
	Names []string
	// Unnamed are the IDs of images the archive gave no name.
	Unnamed []digest.Digest
}

// loaded is one image a load is about to record.
type loaded struct {
	target   ocispec.Descriptor
	img      image.Image
	platform *ocispec.Platform
	names    []string
}

// Load reads a tar archive from r — docker save's (legacy manifest.json
// layout or docker 25+'s OCI layout with manifest.json) or an OCI image
// layout — stores every blob verified against its digest, unpacks the
// layers into snapshots and records the images' names last, all in one
// transaction: a hostile or truncated archive leaves no image.
func (e *Engine) Load(ctx context.Context, r io.Reader) (LoadResult, error) {
	dir, err := os.MkdirTemp(e.root, "load-")
	if err != nil {
		return LoadResult{}, err
	}
	defer os.RemoveAll(dir)
	a, err := spool(ctx, r, dir)
	if err != nil {
		return LoadResult{}, fmt.Errorf("reading archive: %w", err)
	}
	var imgs []loaded
	switch {
	case a.has("index.json"):
		imgs, err = e.loadOCI(ctx, a)
	case a.has("manifest.json"):
		imgs, err = e.loadDocker(ctx, a)
	default:
		err = fmt.Errorf("unrecognized image format: the archive has neither manifest.json nor index.json: %w", errdefs.ErrInvalidArgument)
	}
	if err != nil {
		return LoadResult{}, err
	}
	var res LoadResult
	for _, l := range imgs {
		for i := range l.img.Layers {
			if e.hasSnapshot(ctx, l.img.ChainIDs[i]) {
				continue
			}
			if err := e.unpackLayer(ctx, l.img, i); err != nil {
				return LoadResult{}, err
			}
		}
	}
	err = e.withMeta(ctx, func(db *meta.DB) error {
		return db.Update(ctx, func(tx *meta.Tx) error {
			for _, l := range imgs {
				names := l.names
				if len(names) == 0 {
					// No name: the image is recorded under its ID, dangling.
					names = []string{l.img.ID().String()}
					res.Unnamed = append(res.Unnamed, l.img.ID())
				} else {
					res.Names = append(res.Names, names...)
				}
				for _, n := range names {
					if err := tx.PutImage(meta.Image{Name: n, Target: l.target, Config: l.img.ID(), Platform: l.platform}); err != nil {
						return err
					}
				}
			}
			return nil
		})
	})
	return res, err
}

// loadOCI stores the images an OCI layout's index.json lists, for the
// engine's platform. docker 25+'s manifest.json, when present, adds the
// names it gives.
func (e *Engine) loadOCI(ctx context.Context, a *spooled) ([]loaded, error) {
	data, err := a.read("index.json", image.MaxManifestSize)
	if err != nil {
		return nil, err
	}
	idx, err := image.ParseIndex(data)
	if err != nil {
		return nil, fmt.Errorf("index.json: %w", err)
	}
	tags := map[string][]string{} // config path → RepoTags
	if a.has("manifest.json") {
		var dms []dockerManifest
		if data, err := a.read("manifest.json", image.MaxManifestSize); err == nil && json.Unmarshal(data, &dms) == nil {
			for _, dm := range dms {
				tags[path.Clean(dm.Config)] = append(tags[path.Clean(dm.Config)], dm.RepoTags...)
			}
		}
	}
	var out []loaded
	byTarget := map[digest.Digest]int{}
	for _, d := range idx.Manifests {
		i, ok := byTarget[d.Digest]
		if !ok {
			l := loaded{target: d}
			if l.target.MediaType == "" {
				if l.target.MediaType, err = a.mediaType(d); err != nil {
					return nil, err
				}
			}
			if err := e.storeTree(ctx, a, l.target, 0); err != nil {
				return nil, err
			}
			if l.img, err = image.Resolve(ctx, e.content, l.target, e.platform); err != nil {
				return nil, err
			}
			if image.IsIndex(l.target.MediaType) {
				p := e.platform
				l.platform = &p
			}
			for _, t := range tags[blobPath(l.img.Config.Digest)] {
				l.names = appendName(l.names, t)
			}
			i = len(out)
			byTarget[d.Digest] = i
			out = append(out, l)
		}
		if n := d.Annotations[annotationImageName]; n != "" {
			out[i].names = appendName(out[i].names, n)
		} else if n := d.Annotations[annotationRefName]; strings.ContainsAny(n, ":/") {
			out[i].names = appendName(out[i].names, n)
		}
	}
	return out, nil
}

// appendName adds the normalized form of n to names unless it is there or
// is not a reference.
func appendName(names []string, n string) []string {
	r, err := ref.Parse(n)
	if err != nil || r.IsDigested() {
		return names
	}
	for _, have := range names {
		if have == r.String() {
			return names
		}
	}
	return append(names, r.String())
}

// storeTree stores the manifest or index d and everything it refers to
// from the archive. Of an index, only the manifest for the engine's
// platform must be there; other platforms are stored when present.
func (e *Engine) storeTree(ctx context.Context, a *spooled, d ocispec.Descriptor, depth int) error {
	if depth == 4 {
		return fmt.Errorf("indexes nested too deep: %w", errdefs.ErrInvalidArgument)
	}
	data, err := a.blob(d, image.MaxManifestSize)
	if err != nil {
		return err
	}
	if image.IsIndex(d.MediaType) {
		idx, err := image.ParseIndex(data)
		if err != nil {
			return err
		}
		want, err := image.Select(idx, e.platform)
		if err != nil {
			return err
		}
		for _, c := range idx.Manifests {
			if c.Digest != want.Digest && !a.hasBlob(c.Digest) {
				continue
			}
			if err := e.storeTree(ctx, a, c, depth+1); err != nil && c.Digest == want.Digest {
				return err
			}
		}
	} else {
		m, err := image.ParseManifest(data)
		if err != nil {
			return err
		}
		if _, err := a.blob(m.Config, image.MaxConfigSize); err != nil {
			return err
		}
		if err := e.storeBlob(ctx, a, m.Config); err != nil {
			return err
		}
		for _, l := range m.Layers {
			if err := e.storeBlob(ctx, a, l); err != nil {
				return err
			}
		}
	}
	return e.storeBlob(ctx, a, d)
}

// loadDocker stores the images of a legacy docker-archive: each
// manifest.json entry's config and layer tars become a new OCI manifest.
func (e *Engine) loadDocker(ctx context.Context, a *spooled) ([]loaded, error) {
	data, err := a.read("manifest.json", image.MaxManifestSize)
	if err != nil {
		return nil, err
	}
	var dms []dockerManifest
	if err := json.Unmarshal(data, &dms); err != nil {
		return nil, fmt.Errorf("manifest.json: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	var out []loaded
	for _, dm := range dms {
		cfgData, err := a.read(dm.Config, image.MaxConfigSize)
		if err != nil {
			return nil, err
		}
		cfg := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfgData), Size: int64(len(cfgData))}
		m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg}
		m.SchemaVersion = 2
		for _, p := range dm.Layers {
			f, err := a.entry(p)
			if err != nil {
				return nil, err
			}
			mt := ocispec.MediaTypeImageLayer
			switch f.compression {
			case archive.Gzip:
				mt = ocispec.MediaTypeImageLayerGzip
			case archive.Zstd:
				mt = ocispec.MediaTypeImageLayerZstd
			}
			l := ocispec.Descriptor{MediaType: mt, Digest: f.digest, Size: f.size}
			if err := e.storeFile(ctx, f, l); err != nil {
				return nil, err
			}
			m.Layers = append(m.Layers, l)
		}
		if err := content.WriteBlob(ctx, e.content, cfg.Digest.String(), bytes.NewReader(cfgData), cfg); err != nil {
			return nil, err
		}
		mdata, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		md := ocispec.Descriptor{MediaType: m.MediaType, Digest: digest.FromBytes(mdata), Size: int64(len(mdata))}
		if err := content.WriteBlob(ctx, e.content, md.Digest.String(), bytes.NewReader(mdata), md); err != nil {
			return nil, err
		}
		l := loaded{target: md}
		if l.img, err = image.Resolve(ctx, e.content, md, e.platform); err != nil {
			return nil, err
		}
		for _, t := range dm.RepoTags {
			l.names = appendName(l.names, t)
		}
		out = append(out, l)
	}
	return out, nil
}

// storeBlob stores the archive's blob for d, verified by the store.
func (e *Engine) storeBlob(ctx context.Context, a *spooled, d ocispec.Descriptor) error {
	f, err := a.entry(blobPath(d.Digest))
	if err != nil {
		return fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	return e.storeFile(ctx, f, d)
}

func (e *Engine) storeFile(ctx context.Context, f spoolEntry, d ocispec.Descriptor) error {
	if f.digest != d.Digest || f.size != d.Size {
		return fmt.Errorf("blob %s: the archive holds %d bytes hashing to %s, the descriptor says %d bytes: %w",
			d.Digest, f.size, f.digest, d.Size, errdefs.ErrFailedPrecondition)
	}
	fh, err := os.Open(f.path)
	if err != nil {
		return err
	}
	defer fh.Close()
	return content.WriteBlob(ctx, e.content, "load-"+d.Digest.String(), fh, d)
}

// spooled is an archive read into a temporary directory: each regular
// file hashed, each symlink resolved within the archive.
type spooled struct {
	files map[string]spoolEntry
	links map[string]string
}

type spoolEntry struct {
	path        string
	size        int64
	digest      digest.Digest
	compression archive.Compression
}

// spool reads the tar r into dir, refusing names that leave the archive
// and entries other than files, directories and symlinks.
func spool(ctx context.Context, r io.Reader, dir string) (*spooled, error) {
	a := &spooled{files: map[string]spoolEntry{}, links: map[string]string{}}
	tr := tar.NewReader(r)
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if n == 0 {
				return nil, fmt.Errorf("empty archive: %w", errdefs.ErrInvalidArgument)
			}
			return a, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument)
		}
		if n == maxArchiveEntries {
			return nil, fmt.Errorf("more than %d entries: %w", maxArchiveEntries, errdefs.ErrInvalidArgument)
		}
		name, err := archiveName(hdr.Name)
		if err != nil {
			return nil, err
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
		case tar.TypeSymlink:
			target := hdr.Linkname
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(name), target)
			}
			if target, err = archiveName(target); err != nil {
				return nil, fmt.Errorf("symlink %s: %w", name, err)
			}
			a.links[name] = target
		case tar.TypeReg:
			p := filepath.Join(dir, strconv.Itoa(n))
			f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return nil, err
			}
			h := digest.SHA256.Digester()
			head := &headBuffer{}
			size, err := io.Copy(io.MultiWriter(f, h.Hash(), head), readerCtx(ctx, tr))
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			a.files[name] = spoolEntry{path: p, size: size, digest: h.Digest(), compression: archive.DetectCompression(head.b)}
		default:
			return nil, fmt.Errorf("%s: entry of type %q not allowed in an image archive: %w", name, hdr.Typeflag, errdefs.ErrInvalidArgument)
		}
	}
}

// archiveName cleans a name inside an archive, refusing absolute names
// and names that climb out with "..".
func archiveName(n string) (string, error) {
	if path.IsAbs(n) {
		return "", fmt.Errorf("absolute path %q in archive: %w", n, errdefs.ErrInvalidArgument)
	}
	c := path.Clean(n)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("path %q leaves the archive: %w", n, errdefs.ErrInvalidArgument)
	}
	return c, nil
}

// headBuffer keeps the first bytes written to it, for sniffing.
type headBuffer struct{ b []byte }

func (h *headBuffer) Write(p []byte) (int, error) {
	if rest := 16 - len(h.b); rest > 0 {
		h.b = append(h.b, p[:min(rest, len(p))]...)
	}
	return len(p), nil
}

func (a *spooled) entry(name string) (spoolEntry, error) {
	n, err := archiveName(name)
	if err != nil {
		return spoolEntry{}, err
	}
	for hops := 0; hops < 8; hops++ {
		if f, ok := a.files[n]; ok {
			return f, nil
		}
		t, ok := a.links[n]
		if !ok {
			break
		}
		n = t
	}
	return spoolEntry{}, fmt.Errorf("%s missing from the archive: %w", name, errdefs.ErrNotFound)
}

func (a *spooled) has(name string) bool { _, err := a.entry(name); return err == nil }

func (a *spooled) hasBlob(d digest.Digest) bool { return a.has(blobPath(d)) }

// read returns the file name of at most max bytes.
func (a *spooled) read(name string, max int64) ([]byte, error) {
	f, err := a.entry(name)
	if err != nil {
		return nil, err
	}
	if f.size > max {
		return nil, fmt.Errorf("%s is %d bytes, more than %d: %w", name, f.size, max, errdefs.ErrInvalidArgument)
	}
	return os.ReadFile(f.path)
}

// blob returns the blob d of at most max bytes, checked against d.
func (a *spooled) blob(d ocispec.Descriptor, max int64) ([]byte, error) {
	if err := d.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("digest %q: %v: %w", d.Digest, err, errdefs.ErrInvalidArgument)
	}
	f, err := a.entry(blobPath(d.Digest))
	if err != nil {
		return nil, err
	}
	if f.digest != d.Digest || f.size != d.Size {
		return nil, fmt.Errorf("blob %s: the archive holds %d bytes hashing to %s, the descriptor says %d bytes: %w",
			d.Digest, f.size, f.digest, d.Size, errdefs.ErrFailedPrecondition)
	}
	return a.read(blobPath(d.Digest), max)
}

// mediaType reads the media type of a manifest or index the index.json
// entry d does not name.
func (a *spooled) mediaType(d ocispec.Descriptor) (string, error) {
	data, err := a.blob(d, image.MaxManifestSize)
	if err != nil {
		return "", err
	}
	return image.MediaTypeOf(data)
}
