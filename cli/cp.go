package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/berth-dev/berth/engine"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"
)

// docker cp is a client of the engine's archive calls: the container side
// is the engine's (StatPath, ArchivePath, ExtractToDir), the local side
// and the decisions about names are docker/cli's and go-archive's, and
// are here.

type cpOptions struct {
	followLink, copyUIDGID, quiet bool
}

func cpCmd(g *globals) *cobra.Command {
	var o cpOptions
	cmd := &cobra.Command{
		Use:   "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
		Short: "Copy files/folders between a container and the local filesystem",
		Long: `Copy files/folders between a container and the local filesystem

Use '-' as the source to read a tar archive from stdin
and extract it to a directory destination in a container.
Use '-' as the destination to stream a tar archive of a
container source to stdout.`,
		Args: exactArgs(2),
		RunE: withEngine(g, func(cmd *cobra.Command, e *engine.Engine, args []string) error {
			if args[0] == "" {
				return usageError{"source can not be empty"}
			}
			if args[1] == "" {
				return usageError{"destination can not be empty"}
			}
			if !cmd.Flags().Changed("quiet") {
				// As docker: no summary unless a terminal is watching.
				o.quiet = !isTTY(cmd.OutOrStdout())
			}
			srcCtr, srcPath := splitCpArg(args[0])
			dstCtr, dstPath := splitCpArg(args[1])
			switch {
			case srcCtr != "" && dstCtr != "":
				return usageError{"copying between containers is not supported"}
			case srcCtr != "":
				return copyFromContainer(cmd, e, srcCtr, srcPath, dstPath, o)
			case dstCtr != "":
				return copyToContainer(cmd, e, dstCtr, srcPath, dstPath, o)
			}
			return usageError{"must specify at least one container source"}
		}),
	}
	f := cmd.Flags()
	f.BoolVarP(&o.followLink, "follow-link", "L", false, "Always follow symlinks in SRC_PATH")
	f.BoolVarP(&o.copyUIDGID, "archive", "a", false, "Archive mode (copy all uid/gid information)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Suppress progress output during copy. Progress output is automatically suppressed if no terminal is attached")
	return cmd
}

// splitCpArg splits CONTAINER:PATH; a local path with a ":" must start
// with "/" or "." (docker's rule).
func splitCpArg(arg string) (ctr, p string) {
	if filepath.IsAbs(arg) {
		return "", arg
	}
	ctr, p, ok := strings.Cut(arg, ":")
	if !ok || strings.HasPrefix(ctr, ".") {
		return "", arg
	}
	return ctr, p
}

// local marks an error docker's client makes itself: printed without
// "Error response from daemon:".
func local(err error) error {
	if err == nil {
		return nil
	}
	var ue usageError
	if errors.As(err, &ue) {
		return err
	}
	return usageError{err.Error()}
}

// counter counts the bytes that pass.
type counter struct{ n atomic.Int64 }

func (c *counter) Write(p []byte) (int, error) {
	c.n.Add(int64(len(p)))
	return len(p), nil
}

// copySummary is docker's closing line.
func copySummary(content, transferred int64, dest string) string {
	if content != transferred {
		return fmt.Sprintf("Successfully copied %s (transferred %s) to %s\n",
			units.HumanSizeWithPrecision(float64(content), 3), units.HumanSizeWithPrecision(float64(transferred), 3), dest)
	}
	return fmt.Sprintf("Successfully copied %s to %s\n", units.HumanSizeWithPrecision(float64(content), 3), dest)
}

func copyFromContainer(cmd *cobra.Command, e *engine.Engine, ctr, srcPath, dstPath string, o cpOptions) error {
	ctx := cmd.Context()
	if dstPath != "-" {
		p, err := resolveLocalPath(dstPath)
		if err != nil {
			return local(err)
		}
		dstPath = p
		if err := validateOutputPath(dstPath); err != nil {
			return local(err)
		}
	}
	var rebaseName string
	if o.followLink {
		st, err := e.StatPath(ctx, ctr, srcPath)
		if err == nil && st.Mode&fs.ModeSymlink != 0 {
			target := st.LinkTarget
			if !filepath.IsAbs(target) {
				parent, _ := splitPathDirEntry(srcPath)
				target = filepath.Join(parent, target)
			}
			srcPath, rebaseName = getRebaseName(srcPath, target)
		}
	}
	if dstPath == "-" {
		return e.ArchivePath(ctx, ctr, srcPath, func(container.PathStat) (io.Writer, string, error) {
			return cmd.OutOrStdout(), rebaseName, nil
		})
	}
	var (
		copied  counter
		stat    container.PathStat
		pw      *io.PipeWriter
		extract = make(chan error, 1)
	)
	err := e.ArchivePath(ctx, ctr, srcPath, func(st container.PathStat) (io.Writer, string, error) {
		stat = st
		src := copyInfo{path: srcPath, exists: true, isDir: st.Mode.IsDir(), rebaseName: rebaseName}
		dst, err := copyInfoDestinationPath(dstPath)
		if err != nil {
			return nil, "", local(err)
		}
		dir, name, err := prepareArchiveCopy(src, dst)
		if err != nil {
			return nil, "", local(err)
		}
		if name == "" {
			name = rebaseName
		}
		var pr *io.PipeReader
		pr, pw = io.Pipe()
		go func() {
			err := engine.ExtractLocal(ctx, pr, dir)
			pr.CloseWithError(err)
			extract <- err
		}()
		return io.MultiWriter(pw, &copied), name, nil
	})
	if pw != nil {
		pw.CloseWithError(err)
		if xerr := <-extract; xerr != nil && (err == nil || errors.Is(err, io.ErrClosedPipe)) {
			err = local(xerr)
		}
	}
	if pw == nil && err != nil {
		return err
	}
	if !o.quiet {
		reported := copied.n.Load()
		if !stat.Mode.IsDir() {
			reported = stat.Size
		}
		fmt.Fprint(cmd.ErrOrStderr(), copySummary(reported, copied.n.Load(), dstPath))
	}
	return err
}

func copyToContainer(cmd *cobra.Command, e *engine.Engine, ctr, srcPath, dstPath string, o cpOptions) error {
	ctx := cmd.Context()
	if srcPath != "-" {
		p, err := resolveLocalPath(srcPath)
		if err != nil {
			return local(err)
		}
		srcPath = p
	}
	dst := copyInfo{path: dstPath}
	if st, err := e.StatPath(ctx, ctr, dstPath); err == nil {
		if st.Mode&fs.ModeSymlink != 0 {
			target := st.LinkTarget
			if !filepath.IsAbs(target) {
				parent, _ := splitPathDirEntry(dstPath)
				target = filepath.Join(parent, target)
			}
			dst.path = target
			st, err = e.StatPath(ctx, ctr, target)
		}
		if err == nil {
			if err := validateOutputPathFileMode(st.Mode); err != nil {
				return usageError{fmt.Sprintf(`destination "%s:%s" must be a directory or a regular file: %v`, ctr, dstPath, err)}
			}
			dst.exists, dst.isDir = true, st.Mode.IsDir()
		}
	}
	opts := engine.ExtractOptions{CopyUIDGID: o.copyUIDGID}
	if srcPath == "-" {
		if !dst.isDir {
			return usageError{fmt.Sprintf(`destination "%s:%s" must be a directory`, ctr, dstPath)}
		}
		err := e.ExtractToDir(ctx, ctr, dst.path, cmd.InOrStdin(), opts)
		if !o.quiet {
			// docker counts nothing read from stdin.
			fmt.Fprint(cmd.ErrOrStderr(), copySummary(0, 0, ctr+":"+dst.path))
		}
		return err
	}
	src, err := copyInfoSourcePath(srcPath, o.followLink)
	if err != nil {
		return local(err)
	}
	contentSize, sizeErr := localContentSize(src.path)
	dir, name, err := prepareArchiveCopy(src, dst)
	if err != nil {
		return local(err)
	}
	if name == "" {
		_, name = splitPathDirEntry(src.path)
		if src.rebaseName != "" {
			name = src.rebaseName
		}
	}
	pr, pw := io.Pipe()
	var copied counter
	go func() { pw.CloseWithError(engine.ArchiveLocal(ctx, io.MultiWriter(pw, &copied), src.path, name)) }()
	err = e.ExtractToDir(ctx, ctr, dir, pr, opts)
	pr.CloseWithError(errors.New("copy ended"))
	if !o.quiet {
		reported := copied.n.Load()
		if sizeErr == nil {
			reported = contentSize
		}
		fmt.Fprint(cmd.ErrOrStderr(), copySummary(reported, copied.n.Load(), ctr+":"+dst.path))
	}
	return err
}

// localContentSize is the size of the regular files at p.
func localContentSize(p string) (int64, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return -1, err
	}
	if !fi.IsDir() {
		if fi.Mode().IsRegular() {
			return fi.Size(), nil
		}
		return 0, nil
	}
	var total int64
	err = filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			total += info.Size()
		}
		return nil
	})
	return total, err
}

// validateOutputPath is docker's check of a local destination.
func validateOutputPath(p string) error {
	dir := filepath.Dir(filepath.Clean(p))
	if dir != "" && dir != "." {
		if _, err := os.Stat(dir); os.IsNotExist(err) {
			return fmt.Errorf("invalid output path: directory %q does not exist", dir)
		}
	}
	if fi, err := os.Stat(p); !os.IsNotExist(err) {
		if err != nil {
			return err
		}
		if fi.Mode().IsDir() || fi.Mode().IsRegular() {
			return nil
		}
		if err := validateOutputPathFileMode(fi.Mode()); err != nil {
			return fmt.Errorf("invalid output path: %q must be a directory or a regular file: %w", p, err)
		}
	}
	return nil
}

func validateOutputPathFileMode(m fs.FileMode) error {
	switch {
	case m&fs.ModeDevice != 0:
		return errors.New("got a device")
	case m&fs.ModeIrregular != 0:
		return errors.New("got an irregular file")
	}
	return nil
}

// copyInfo is go-archive's CopyInfo: one end of a copy.
type copyInfo struct {
	path       string
	exists     bool
	isDir      bool
	rebaseName string
}

func hasTrailingSeparator(p string) bool { return strings.HasSuffix(p, "/") }
func specifiesCurrentDir(p string) bool  { return filepath.Base(p) == "." }
func assertsDirectory(p string) bool     { return hasTrailingSeparator(p) || specifiesCurrentDir(p) }

// preserveTrailingDotOrSeparator puts back the "/" or "/." that cleaning
// took from original.
func preserveTrailingDotOrSeparator(cleaned, original string) string {
	if !specifiesCurrentDir(cleaned) && specifiesCurrentDir(original) {
		if !hasTrailingSeparator(cleaned) {
			cleaned += "/"
		}
		cleaned += "."
	}
	if !hasTrailingSeparator(cleaned) && hasTrailingSeparator(original) {
		cleaned += "/"
	}
	return cleaned
}

func resolveLocalPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	return preserveTrailingDotOrSeparator(abs, p), nil
}

// splitPathDirEntry splits p into its directory and base, keeping a
// final ".".
func splitPathDirEntry(p string) (dir, base string) {
	clean := filepath.Clean(p)
	if specifiesCurrentDir(p) {
		clean += "/."
	}
	return filepath.Dir(clean), filepath.Base(clean)
}

// getRebaseName completes a resolved link target with p's trailing "/"
// or "/." and returns the name the copy must keep when resolving changed
// the last element.
func getRebaseName(p, resolved string) (string, string) {
	if specifiesCurrentDir(p) && !specifiesCurrentDir(resolved) {
		resolved += "/."
	}
	if hasTrailingSeparator(p) && !hasTrailingSeparator(resolved) {
		resolved += "/"
	}
	if filepath.Base(p) != filepath.Base(resolved) {
		return resolved, filepath.Base(p)
	}
	return resolved, ""
}

// copyInfoSourcePath resolves a local source: links in its directory,
// and the whole path with followLink. It must exist.
func copyInfoSourcePath(p string, followLink bool) (copyInfo, error) {
	var resolved, rebase string
	if followLink {
		r, err := filepath.EvalSymlinks(p)
		if err != nil {
			return copyInfo{}, err
		}
		resolved, rebase = getRebaseName(p, r)
	} else {
		dir, base := filepath.Split(p)
		rdir, err := filepath.EvalSymlinks(dir)
		if err != nil {
			return copyInfo{}, err
		}
		resolved = rdir + "/" + base
		if hasTrailingSeparator(p) && filepath.Base(p) != filepath.Base(resolved) {
			rebase = filepath.Base(p)
		}
	}
	st, err := os.Lstat(resolved)
	if err != nil {
		return copyInfo{}, err
	}
	return copyInfo{path: resolved, exists: true, isDir: st.IsDir(), rebaseName: rebase}, nil
}

// copyInfoDestinationPath resolves a local destination, following links
// (ten at most); it need not exist, but its parent must be a directory.
func copyInfoDestinationPath(p string) (copyInfo, error) {
	original := p
	st, err := os.Lstat(p)
	if err == nil && st.Mode()&fs.ModeSymlink == 0 {
		return copyInfo{path: p, exists: true, isDir: st.IsDir()}, nil
	}
	for n := 0; err == nil && st.Mode()&fs.ModeSymlink != 0; n++ {
		if n > 10 {
			return copyInfo{}, errors.New("too many symlinks in " + original)
		}
		target, err := os.Readlink(p)
		if err != nil {
			return copyInfo{}, err
		}
		if !filepath.IsAbs(target) {
			parent, _ := splitPathDirEntry(p)
			target = filepath.Join(parent, target)
		}
		p = target
		st, err = os.Lstat(p)
	}
	if err != nil {
		if !os.IsNotExist(err) {
			return copyInfo{}, err
		}
		parent, _ := splitPathDirEntry(p)
		pst, err := os.Stat(parent)
		if err != nil {
			return copyInfo{}, err
		}
		if !pst.IsDir() {
			return copyInfo{}, errors.New("not a directory")
		}
		return copyInfo{path: p}, nil
	}
	return copyInfo{path: p, exists: true, isDir: st.IsDir()}, nil
}

// prepareArchiveCopy is go-archive's PrepareArchiveCopy: the directory to
// unpack into and the name the copy's top entry takes there ("" to keep
// its own).
func prepareArchiveCopy(src, dst copyInfo) (dir, name string, err error) {
	dstDir, dstBase := splitPathDirEntry(dst.path)
	switch {
	case dst.exists && dst.isDir:
		// Into the directory, under the source's own name.
		return dst.path, "", nil
	case dst.exists && src.isDir:
		return "", "", errors.New("cannot copy directory")
	case dst.exists, src.isDir:
		// Over the file, or as a new directory: named as the destination.
		return dstDir, dstBase, nil
	case assertsDirectory(dst.path):
		return "", "", errors.New("no such directory")
	}
	return dstDir, dstBase, nil
}
