package cgroup

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"golang.org/x/sys/unix"
)

// invalidf returns an error classified as errdefs.ErrInvalidArgument.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), errdefs.ErrInvalidArgument)
}

// writeFile writes data to the cgroup file dir/name with a single write(2),
// as cgroupfs expects. Errors name the file and wrap the errno.
func writeFile(dir, name, data string) error {
	p := filepath.Join(dir, name)
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	defer unix.Close(fd)
	for {
		_, err = unix.Write(fd, []byte(data))
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// readFile returns the contents of dir/name with trailing white space
// removed.
func readFile(dir, name string) (string, error) {
	p := filepath.Join(dir, name)
	b, err := os.ReadFile(p)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return strings.TrimRight(string(b), " \n"), nil
}

// exists reports whether dir/name exists.
func exists(dir, name string) bool {
	_, err := os.Stat(filepath.Join(dir, name))
	return err == nil
}

// parseValue parses a cgroup number; "max" is math.MaxUint64 and negative
// values (v1 prints -1 for "unlimited" in a few files) are 0.
func parseValue(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	if s == "max" {
		return math.MaxUint64, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		if i, ierr := strconv.ParseInt(s, 10, 64); ierr == nil && i < 0 {
			return 0, nil
		}
		return 0, fmt.Errorf("parse %q: %w", s, err)
	}
	return v, nil
}

// readUint reads a file holding one number.
func readUint(dir, name string) (uint64, error) {
	s, err := readFile(dir, name)
	if err != nil {
		return 0, err
	}
	v, err := parseValue(s)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", filepath.Join(dir, name), err)
	}
	return v, nil
}

// readKeyed reads a flat keyed file ("key value" per line, as memory.stat,
// cpu.stat, memory.events). Lines that do not parse are skipped.
func readKeyed(dir, name string) (map[string]uint64, error) {
	s, err := readFile(dir, name)
	if err != nil {
		return nil, err
	}
	m := map[string]uint64{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		if n, err := parseValue(v); err == nil {
			m[k] = n
		}
	}
	return m, nil
}

// readPids reads cgroup.procs of dir and of every cgroup below it.
func readPids(dir string) ([]int, error) {
	var pids []int
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != dir {
				return nil // a sub-cgroup removed meanwhile
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		s, err := readFile(p, "cgroup.procs")
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != dir {
				return nil
			}
			return err
		}
		for _, f := range strings.Fields(s) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				return fmt.Errorf("read %s: bad pid %q", filepath.Join(p, "cgroup.procs"), f)
			}
			pids = append(pids, pid)
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("cgroup %s: %w", dir, errdefs.ErrNotFound)
	}
	return pids, err
}

// writePid writes pid to dir/cgroup.procs. A write can fail with EINVAL
// while the process is in the middle of fork; retry a few times as runc does.
func writePid(dir string, pid int) error {
	var err error
	for i := 0; i < 5; i++ {
		err = writeFile(dir, "cgroup.procs", strconv.Itoa(pid))
		if !errors.Is(err, unix.EINVAL) {
			return err
		}
		time.Sleep(time.Millisecond * time.Duration(1<<i))
	}
	return err
}

// removeTree removes the cgroup dir and every cgroup below it, deepest
// first. Cgroup directories can only be removed with rmdir; their files go
// with them. EBUSY (processes still exiting) is retried for about two seconds.
// A missing dir is not an error.
func removeTree(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove cgroup %s: %w", dir, err)
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := removeTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	// A cgroup is busy for a moment after its last process was reaped:
	// start retrying soon, back off to 200ms.
	delay := 500 * time.Microsecond
	for i := 0; ; i++ {
		err := unix.Rmdir(dir)
		if err == nil || err == unix.ENOENT {
			return nil
		}
		if (err != unix.EBUSY && err != unix.EAGAIN && err != unix.EINTR) || i == 16 {
			return fmt.Errorf("remove cgroup %s: %w", dir, err)
		}
		time.Sleep(delay)
		if delay < 200*time.Millisecond {
			delay *= 2
		}
	}
}

// signalPids sends sig to every pid; processes gone meanwhile are skipped.
func signalPids(pids []int, sig unix.Signal) error {
	var errs []error
	for _, pid := range pids {
		if err := unix.Kill(pid, sig); err != nil && err != unix.ESRCH {
			errs = append(errs, fmt.Errorf("kill %d: %w", pid, err))
		}
	}
	return errors.Join(errs...)
}

// waitFor polls cond every few milliseconds until it reports true, fails, or
// timeout passes.
func waitFor(timeout time.Duration, cond func() (bool, error)) (bool, error) {
	deadline := time.Now().Add(timeout)
	delay := time.Millisecond
	for {
		ok, err := cond()
		if ok || err != nil {
			return ok, err
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		time.Sleep(delay)
		if delay < 50*time.Millisecond {
			delay *= 2
		}
	}
}
