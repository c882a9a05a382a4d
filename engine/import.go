package engine

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/berth-dev/berth/archive"
	"github.com/berth-dev/berth/content"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/meta"
	"github.com/berth-dev/berth/ref"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ImportOptions tune Import.
type ImportOptions struct {
	// Name is the reference to record the image under; empty leaves it
	// dangling (recorded under its ID).
	Name string
	// Changes are Dockerfile instructions applied to the config: CMD,
	// ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR.
	Changes []string
	// Message is the history comment; default "Imported from <Source>".
	Message string
	Source  string
}

// Import makes a one-layer image of the root filesystem tarball r (plain,
// gzip or zstd), as docker import does: the layer is stored gzipped, the
// config carries the changes, and the image is unpacked and recorded.
// It returns the image ID.
func (e *Engine) Import(ctx context.Context, r io.Reader, o ImportOptions) (digest.Digest, error) {
	var name string
	if o.Name != "" {
		rf, err := ref.Parse(o.Name)
		if err != nil {
			return "", err
		}
		if rf.IsDigested() {
			return "", fmt.Errorf("refusing to create a tag with a digest reference: %w", errdefs.ErrInvalidArgument)
		}
		name = rf.String()
	}
	var cfg ocispec.ImageConfig
	for _, c := range o.Changes {
		if err := applyChange(&cfg, c); err != nil {
			return "", err
		}
	}
	plain, _, err := archive.DecompressStream(r)
	if err != nil {
		return "", fmt.Errorf("reading the tarball: %w", err)
	}
	defer plain.Close()
	tmp, err := os.CreateTemp(e.root, "import-")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	blobHash, diffHash := digest.SHA256.Digester(), digest.SHA256.Digester()
	zw, err := archive.CompressStream(io.MultiWriter(tmp, blobHash.Hash()), archive.Gzip)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(io.MultiWriter(zw, diffHash.Hash()), readerCtx(ctx, plain)); err != nil {
		return "", fmt.Errorf("reading the tarball: %w", err)
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	size, err := tmp.Seek(0, io.SeekCurrent)
	if err != nil {
		return "", err
	}
	layer := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: blobHash.Digest(), Size: size}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	if err := content.WriteBlob(ctx, e.content, "import-"+layer.Digest.String(), tmp, layer); err != nil {
		return "", err
	}
	now := time.Now().UTC()
	msg := o.Message
	if msg == "" {
		msg = "Imported from " + o.Source
	}
	config := ocispec.Image{
		Created:  &now,
		Platform: ocispec.Platform{Architecture: e.platform.Architecture, OS: e.platform.OS, Variant: e.platform.Variant},
		Config:   cfg,
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffHash.Digest()}},
		History:  []ocispec.History{{Created: &now, Comment: msg}},
	}
	cdesc, err := e.putJSON(ctx, ocispec.MediaTypeImageConfig, config)
	if err != nil {
		return "", err
	}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cdesc, Layers: []ocispec.Descriptor{layer}}
	m.SchemaVersion = 2
	mdesc, err := e.putJSON(ctx, ocispec.MediaTypeImageManifest, m)
	if err != nil {
		return "", err
	}
	img, err := image.Resolve(ctx, e.content, mdesc, e.platform)
	if err != nil {
		return "", err
	}
	if !e.hasSnapshot(ctx, img.ChainIDs[0]) {
		if err := e.unpackLayer(ctx, img, 0); err != nil {
			return "", err
		}
	}
	if name == "" {
		name = img.ID().String()
	}
	err = e.withMeta(ctx, func(db *meta.DB) error {
		return db.PutImage(ctx, meta.Image{Name: name, Target: mdesc, Config: img.ID()})
	})
	if err == nil {
		e.Event(ctx, "image", "import", img.ID().String(), map[string]string{"name": familiar(cmp.Or(name, img.ID().String()))})
	}
	return img.ID(), err
}

// putJSON stores v as a blob of media type mt.
func (e *Engine) putJSON(ctx context.Context, mt string, v any) (ocispec.Descriptor, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(data), Size: int64(len(data))}
	return d, content.WriteBlob(ctx, e.content, d.Digest.String(), bytes.NewReader(data), d)
}

// applyChange applies one Dockerfile instruction, as docker import -c
// takes them, to cfg.
func applyChange(cfg *ocispec.ImageConfig, change string) error {
	instr, rest, _ := strings.Cut(strings.TrimSpace(change), " ")
	rest = strings.TrimSpace(rest)
	invalid := func(format string, a ...any) error {
		return fmt.Errorf("dockerfile parse error: "+instr+" "+format+": %w", append(a, errdefs.ErrInvalidArgument)...)
	}
	switch strings.ToUpper(instr) {
	case "CMD":
		cfg.Cmd = commandForm(rest)
	case "ENTRYPOINT":
		cfg.Entrypoint = commandForm(rest)
	case "ENV":
		pairs, err := keyValues(rest, true)
		if err != nil {
			return invalid("%v", err)
		}
		for _, kv := range pairs {
			cfg.Env = setEnv(cfg.Env, kv[0], kv[1])
		}
	case "LABEL":
		pairs, err := keyValues(rest, false)
		if err != nil {
			return invalid("%v", err)
		}
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, kv := range pairs {
			cfg.Labels[kv[0]] = kv[1]
		}
	case "EXPOSE":
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range strings.Fields(rest) {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			cfg.ExposedPorts[p] = struct{}{}
		}
	case "VOLUME":
		var vols []string
		if json.Unmarshal([]byte(rest), &vols) != nil {
			vols = strings.Fields(rest)
		}
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range vols {
			cfg.Volumes[v] = struct{}{}
		}
	case "WORKDIR":
		cfg.WorkingDir = rest
	case "USER":
		cfg.User = rest
	case "STOPSIGNAL":
		cfg.StopSignal = rest
	default:
		return fmt.Errorf("%s is not a valid change command: %w", instr, errdefs.ErrInvalidArgument)
	}
	return nil
}

// commandForm is CMD's or ENTRYPOINT's argument: a JSON array (exec
// form) or a string run by /bin/sh -c (shell form).
func commandForm(s string) []string {
	var args []string
	if strings.HasPrefix(s, "[") && json.Unmarshal([]byte(s), &args) == nil {
		return args
	}
	return []string{"/bin/sh", "-c", s}
}

// keyValues splits "k=v k2='v 2'" into pairs; with legacy, "k v w" (one
// key, the rest its value) is accepted too, as ENV allows.
func keyValues(s string, legacy bool) ([][2]string, error) {
	words, err := shellWords(s)
	if err != nil {
		return nil, err
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("requires at least one argument")
	}
	if legacy && !strings.Contains(words[0], "=") {
		k, v, _ := strings.Cut(s, " ")
		return [][2]string{{k, strings.TrimSpace(v)}}, nil
	}
	var out [][2]string
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not of the form key=value", w)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// shellWords splits s on blanks, honouring quotes and backslashes.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	in, quote, esc := false, rune(0), false
	for _, c := range s {
		switch {
		case esc:
			cur.WriteRune(c)
			esc, in = false, true
		case c == '\\' && quote != '\'':
			esc = true
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteRune(c)
			}
		case c == '"' || c == '\'':
			quote, in = c, true
		case c == ' ' || c == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(c)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unmatched quote in %q", s)
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

// setEnv sets k=v in env, replacing an earlier k.
func setEnv(env []string, k, v string) []string {
	for i, kv := range env {
		if strings.HasPrefix(kv, k+"=") {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}
