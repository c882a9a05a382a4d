package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// fixedSentinel is a tree at a path known in advance, so that seeds can aim
// absolute symlinks and hardlinks at it.
const fixedSentinel = "/tmp/berth-fuzz-sentinel"

var entTypes = []byte{tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeFifo, tar.TypeChar, tar.TypeReg, tar.TypeSymlink}

// structured decodes fuzz bytes into tar entries: [type][len]name[len]link
// repeated, so that mutations produce valid tars with hostile names rather
// than tars that fail their header checksum.
func structured(t *testing.T, b []byte) []byte {
	var ents []ent
	next := func() string {
		if len(b) == 0 {
			return ""
		}
		n := int(b[0]) % 40
		b = b[1:]
		n = min(n, len(b))
		s := string(b[:n])
		b = b[n:]
		return s
	}
	for len(b) > 0 && len(ents) < 32 {
		typ := entTypes[b[0]%byte(len(entTypes))]
		b = b[1:]
		e := ent{typ: typ, name: next(), link: next(), mode: 0o755}
		if typ == tar.TypeReg {
			e.body = "data"
		}
		ents = append(ents, e)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		hdr := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Size: int64(len(e.body))}
		if tw.WriteHeader(hdr) != nil {
			continue
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	return buf.Bytes()
}

func encode(ents ...ent) []byte {
	var b []byte
	for _, e := range ents {
		i := bytes.IndexByte(entTypes, e.typ)
		b = append(b, byte(i), byte(len(e.name)))
		b = append(b, e.name...)
		b = append(b, byte(len(e.link)))
		b = append(b, e.link...)
	}
	return b
}

func FuzzApply(f *testing.F) {
	if os.Geteuid() != 0 {
		f.Skip("test requires root")
	}
	// Fuzz workers are separate processes sharing this tree: create it
	// once, never recreate it.
	if _, err := os.Stat(filepath.Join(fixedSentinel, "outside", "secret")); err != nil {
		os.MkdirAll(fixedSentinel, 0o755)
		tmp, err := os.MkdirTemp(fixedSentinel, "new-")
		if err != nil {
			f.Fatal(err)
		}
		sandbox(f, tmp)
		os.Rename(filepath.Join(tmp, "outside"), filepath.Join(fixedSentinel, "outside"))
		os.RemoveAll(tmp)
	}
	out := filepath.Join(fixedSentinel, "outside")
	seeds := [][]ent{
		{file("../outside/secret", "x")},
		{symlink("evil", out), file("evil/secret", "x")},
		{symlink("evil", "../outside"), file("evil/dir/f", "x")},
		{symlink("a", "b"), symlink("b", "../outside"), file("a/secret", "x")},
		{hardlink("h", out+"/secret")},
		{symlink("s", out+"/secret"), hardlink("h", "s"), file("h", "x")},
		{dir("d/"), file("d/x", "x"), file("d", "x"), whiteout("d", "x"), opaque("d")},
		{symlink("s", out), whiteout("s", "secret"), opaque("s/dir")},
	}
	for _, s := range seeds {
		f.Add(append([]byte{0}, encode(s...)...))
		f.Add(append([]byte{1}, encode(s...)...))
		f.Add(append([]byte{2}, mktar(f, s...)...))
		f.Add(append([]byte{3}, mktar(f, s...)...))
	}
	want := dump(f, filepath.Join(fixedSentinel, "outside"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		mode, raw := Whiteouts(data[0]&1), data[0]&2 != 0
		layer := data[1:]
		if !raw {
			layer = structured(t, layer)
		}
		base := t.TempDir()
		dst, outside := sandbox(t, base)
		before := dump(t, outside)
		Apply(context.Background(), dst, bytes.NewReader(layer), ApplyOptions{Whiteouts: mode})
		if after := dump(t, outside); after != before {
			t.Fatalf("relative sentinel changed:\n%s\n---\n%s", before, after)
		}
		if got := dump(t, filepath.Join(fixedSentinel, "outside")); got != want {
			t.Fatalf("fixed sentinel changed:\n%s\n---\n%s", want, got)
		}
		if entries, _ := os.ReadDir(base); len(entries) != 2 {
			t.Fatalf("entries appeared next to dst: %v", entries)
		}
	})
}
