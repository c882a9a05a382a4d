package volume

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"
)

// Size is the space the volume's data takes as Docker counts it for
// `system df` and prune: the sizes of everything but directories, a file
// with several hard links counted once. Symbolic links are not followed.
func (s *Store) Size(ctx context.Context, name string) (int64, error) {
	v, err := s.Get(ctx, name)
	if err != nil {
		return 0, err
	}
	return dirSize(ctx, v.Mountpoint)
}

func dirSize(ctx context.Context, dir string) (int64, error) {
	seen := map[[2]uint64]bool{}
	var size int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed while we walked
		}
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			key := [2]uint64{st.Dev, st.Ino}
			if seen[key] {
				return nil
			}
			seen[key] = true
		}
		size += fi.Size()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("size of %s: %w", dir, err)
	}
	return size, nil
}
