package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// BerthBinary returns the berth binary tests run: $BERTH_BIN when set
// (the cgroup v2 VM passes one), else a fresh `make berth` of this module
// into dir, with the flags users get.
func BerthBinary(dir string) (string, error) {
	if bin := os.Getenv("BERTH_BIN"); bin != "" {
		return bin, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	out, err := exec.Command("make", "-s", "-C", root, "berth", "BIN="+dir).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build berth: %v\n%s", err, out)
	}
	return filepath.Join(dir, "berth"), nil
}

// moduleRoot is the directory of the go.mod above the working directory
// (a test runs in its package's directory).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// CgroupLeftovers lists (on stderr) and reports the cgroups matching
// pattern (relative to a hierarchy, e.g. "berth/t1234-*") that outlived a
// test binary's tests: each test must delete what it made.
func CgroupLeftovers(pattern string) bool {
	found, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", pattern))
	more, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", pattern))
	found = append(found, more...)
	for _, d := range found {
		fmt.Fprintln(os.Stderr, "left behind:", d)
	}
	return len(found) > 0
}
