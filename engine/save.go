package engine

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/berth-dev/berth/archive"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/ref"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Save formats.
const (
	// SaveDocker is docker 25+'s archive: an OCI image layout (oci-layout,
	// index.json, blobs/sha256/…) whose layers are the uncompressed tars
	// named by diff ID, plus the legacy manifest.json and repositories
	// that older docker load, podman load and skopeo read.
	SaveDocker = "docker"
	// SaveOCI is a plain OCI image layout holding the images' manifests,
	// configs and layer blobs as stored (compressed), digests unchanged.
	SaveOCI = "oci"
)

// Annotations of index.json entries naming an image.
const (
	annotationImageName = "io.containerd.image.name"
	annotationRefName   = ocispec.AnnotationRefName
)

// dockerManifest is one entry of a docker-archive's manifest.json.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// saved is one image going into an archive, with the names it is saved
// under (full references).
type saved struct {
	img   image.Image
	names []string
}

// Save writes the images names refer to (names or IDs, as FindImage takes
// them) to w as a tar archive in format (SaveDocker when empty).
func (e *Engine) Save(ctx context.Context, w io.Writer, names []string, format string) error {
	if format == "" {
		format = SaveDocker
	}
	if format != SaveDocker && format != SaveOCI {
		return fmt.Errorf("unknown save format %q (docker or oci): %w", format, errdefs.ErrInvalidArgument)
	}
	var imgs []*saved
	byID := map[digest.Digest]*saved{}
	for _, n := range names {
		rec, err := e.FindImage(ctx, n)
		if err != nil {
			return err
		}
		s := byID[rec.Config]
		if s == nil {
			img, err := e.ResolveImage(ctx, rec)
			if err != nil {
				return err
			}
			s = &saved{img: img}
			byID[rec.Config] = s
			imgs = append(imgs, s)
		}
		// A name, not an ID prefix: save the image under it.
		if r, err := ref.Parse(n); err == nil && r.String() == rec.Name {
			s.names = append(s.names, rec.Name)
		}
	}
	tw := tar.NewWriter(w)
	a := &archiveWriter{tw: tw, written: map[string]bool{}}
	var err error
	if format == SaveOCI {
		err = e.saveOCI(ctx, a, imgs)
	} else {
		err = e.saveDocker(ctx, a, imgs)
	}
	if err != nil {
		return err
	}
	return tw.Close()
}

// saveOCI writes an OCI layout of the stored blobs.
func (e *Engine) saveOCI(ctx context.Context, a *archiveWriter, imgs []*saved) error {
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	idx.SchemaVersion = 2
	for _, s := range imgs {
		for _, d := range append([]ocispec.Descriptor{s.img.Manifest, s.img.Config}, s.img.Layers...) {
			if err := e.copyBlob(ctx, a, d); err != nil {
				return err
			}
		}
		idx.Manifests = append(idx.Manifests, indexEntries(s.img.Manifest, s.names)...)
	}
	return a.layoutFiles(idx)
}

// indexEntries is one index.json entry per name, or one without a name.
func indexEntries(m ocispec.Descriptor, names []string) []ocispec.Descriptor {
	m = ocispec.Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size}
	if m.MediaType == "" {
		m.MediaType = ocispec.MediaTypeImageManifest
	}
	if len(names) == 0 {
		return []ocispec.Descriptor{m}
	}
	var out []ocispec.Descriptor
	for _, n := range names {
		d := m
		d.Annotations = map[string]string{annotationImageName: n, annotationRefName: ref.MustParse(n).Tag()}
		out = append(out, d)
	}
	return out
}

// saveDocker writes docker 25+'s archive: layers decompressed, a manifest
// of them, index.json and manifest.json.
func (e *Engine) saveDocker(ctx context.Context, a *archiveWriter, imgs []*saved) error {
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	idx.SchemaVersion = 2
	manifests := []dockerManifest{}
	repos := map[string]map[string]string{}
	for _, s := range imgs {
		m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: ocispec.Descriptor{
			MediaType: ocispec.MediaTypeImageConfig, Digest: s.img.Config.Digest, Size: s.img.Config.Size,
		}, Layers: []ocispec.Descriptor{}}
		m.SchemaVersion = 2
		dm := dockerManifest{Config: blobPath(s.img.Config.Digest), RepoTags: []string{}}
		if err := e.copyBlob(ctx, a, s.img.Config); err != nil {
			return err
		}
		for i, l := range s.img.Layers {
			diffID := s.img.ConfigFile.RootFS.DiffIDs[i]
			size, err := e.writeUncompressed(ctx, a, l, diffID)
			if err != nil {
				return err
			}
			m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: diffID, Size: size})
			dm.Layers = append(dm.Layers, blobPath(diffID))
		}
		data, err := json.Marshal(m)
		if err != nil {
			return err
		}
		md := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(data), Size: int64(len(data))}
		if err := a.file(blobPath(md.Digest), data); err != nil {
			return err
		}
		idx.Manifests = append(idx.Manifests, indexEntries(md, s.names)...)
		for _, n := range s.names {
			r := ref.MustParse(n)
			dm.RepoTags = append(dm.RepoTags, r.Familiar())
			if len(s.img.ChainIDs) > 0 {
				if repos[r.FamiliarName()] == nil {
					repos[r.FamiliarName()] = map[string]string{}
				}
				repos[r.FamiliarName()][r.Tag()] = m.Layers[len(m.Layers)-1].Digest.Encoded()
			}
		}
		manifests = append(manifests, dm)
	}
	if err := a.json("manifest.json", manifests); err != nil {
		return err
	}
	if len(repos) > 0 {
		if err := a.json("repositories", repos); err != nil {
			return err
		}
	}
	return a.layoutFiles(idx)
}

// writeUncompressed writes layer l decompressed as blobs/sha256/<diffID>,
// checking that it hashes to diffID, and returns its size. The tar header
// needs the size first, so a compressed layer goes through a temporary
// file.
func (e *Engine) writeUncompressed(ctx context.Context, a *archiveWriter, l ocispec.Descriptor, diffID digest.Digest) (int64, error) {
	name := blobPath(diffID)
	if c, _ := image.LayerCompression(l.MediaType); c == image.Uncompressed && l.Digest == diffID {
		if err := e.copyBlob(ctx, a, l); err != nil {
			return 0, err
		}
		return l.Size, nil
	}
	blob, err := e.content.Open(ctx, l.Digest)
	if err != nil {
		return 0, err
	}
	defer blob.Close()
	plain, _, err := archive.DecompressStream(blob)
	if err != nil {
		return 0, fmt.Errorf("layer %s: %w", short(l.Digest), err)
	}
	defer plain.Close()
	tmp, err := os.CreateTemp(e.root, "save-")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	v := diffID.Algorithm().Digester()
	size, err := io.Copy(io.MultiWriter(tmp, v.Hash()), readerCtx(ctx, plain))
	if err != nil {
		return 0, fmt.Errorf("decompress layer %s: %w", short(l.Digest), err)
	}
	if v.Digest() != diffID {
		return 0, fmt.Errorf("layer %s decompresses to %s, not its diff ID %s: %w", short(l.Digest), v.Digest(), diffID, errdefs.ErrFailedPrecondition)
	}
	if a.written[name] {
		return size, nil
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	return size, a.stream(name, size, tmp)
}

// copyBlob writes a stored blob as blobs/<alg>/<hex>.
func (e *Engine) copyBlob(ctx context.Context, a *archiveWriter, d ocispec.Descriptor) error {
	name := blobPath(d.Digest)
	if a.written[name] {
		return nil
	}
	info, err := e.content.Info(ctx, d.Digest)
	if err != nil {
		return fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	rc, err := e.content.Open(ctx, d.Digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	return a.stream(name, info.Size, readerCtx(ctx, rc))
}

func blobPath(d digest.Digest) string {
	return "blobs/" + d.Algorithm().String() + "/" + d.Encoded()
}

// archiveWriter writes the entries of a saved archive, each name once.
type archiveWriter struct {
	tw      *tar.Writer
	written map[string]bool
	dirs    bool
}

func (a *archiveWriter) header(name string, size int64) error {
	if !a.dirs {
		a.dirs = true
		for _, d := range []string{"blobs/", "blobs/sha256/"} {
			if err := a.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: time.Unix(0, 0)}); err != nil {
				return err
			}
		}
	}
	a.written[name] = true
	return a.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o444, ModTime: time.Unix(0, 0)})
}

func (a *archiveWriter) stream(name string, size int64, r io.Reader) error {
	if err := a.header(name, size); err != nil {
		return err
	}
	if _, err := io.CopyN(a.tw, r, size); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

func (a *archiveWriter) file(name string, data []byte) error {
	if a.written[name] {
		return nil
	}
	if err := a.header(name, int64(len(data))); err != nil {
		return err
	}
	_, err := a.tw.Write(data)
	return err
}

func (a *archiveWriter) json(name string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return a.file(name, data)
}

// layoutFiles writes index.json and oci-layout.
func (a *archiveWriter) layoutFiles(idx ocispec.Index) error {
	if err := a.json("index.json", idx); err != nil {
		return err
	}
	return a.json(ocispec.ImageLayoutFile, ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
}

// readerCtx stops a copy when ctx is done.
func readerCtx(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
