// Command mkimage turns directories into the layers of an image and pushes
// it to a registry over plain HTTP: bench/mkdebian.sh builds BenchmarkPull's
// Debian image with it.
//
//	mkimage -o DIR REF ROOTFS UPPER...   write DIR/layerN.tar.gz, push REF
//
// ROOTFS is a plain root file system (the first layer); each UPPER is the
// upper directory of an overlay mount over the ones before it, whose
// whiteouts (0/0 character devices, opaque directories) become OCI
// whiteouts. Layers already in DIR are reused, not rewritten.
package main

import (
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"

	"github.com/berth-dev/berth/archive"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	out := flag.String("o", ".", "directory for the layer files")
	flag.Parse()
	if flag.NArg() < 2 {
		log.Fatal("usage: mkimage -o DIR REF ROOTFS [UPPER...]")
	}
	ref, err := name.ParseReference(flag.Arg(0), name.Insecure)
	if err != nil {
		log.Fatal(err)
	}
	var layers []v1.Layer
	for i, dir := range flag.Args()[1:] {
		path := filepath.Join(*out, fmt.Sprintf("layer%d.tar.gz", i+1))
		if _, err := os.Stat(path); err != nil {
			if err := writeLayer(path, dir); err != nil {
				log.Fatal(err)
			}
		}
		l, err := tarball.LayerFromFile(path)
		if err != nil {
			log.Fatal(err)
		}
		layers = append(layers, l)
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		log.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		log.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cf.Config.Cmd = []string{"bash"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		log.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithContext(context.Background())); err != nil {
		log.Fatal(err)
	}
	d, _ := img.Digest()
	fmt.Printf("%s@%s\n", ref, d)
}

// writeLayer writes dir as a gzip-compressed OCI layer tar to path.
func writeLayer(path, dir string) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	zw, _ := gzip.NewWriterLevel(f, gzip.DefaultCompression)
	if err := archive.WriteDiff(context.Background(), zw, dir); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", dir, err)
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
