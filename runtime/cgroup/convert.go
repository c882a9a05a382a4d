package cgroup

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/errdefs"
)

// sharesToWeight converts v1 cpu.shares (2..262144) to v2 cpu.weight
// (1..10000) with the linear map runc and crun use:
// weight = 1 + ((shares-2)*9999)/262142. Zero means "not set" and stays 0;
// values outside the v1 range are clamped to it first.
func sharesToWeight(shares uint64) uint64 {
	if shares == 0 {
		return 0
	}
	shares = min(max(shares, 2), 262144)
	return 1 + ((shares-2)*9999)/262142
}

// blkioToIOWeight converts a v1 blkio weight (10..1000) to v2 io.weight
// (1..10000) as runc does: 1 + (weight-10)*9999/990. Zero stays 0.
func blkioToIOWeight(w uint16) uint64 {
	if w == 0 {
		return 0
	}
	v := min(max(uint64(w), 10), 1000)
	return 1 + (v-10)*9999/990
}

// swapToV2 converts the OCI memory.swap value (memory+swap, as v1's
// memory.memsw.limit_in_bytes) into a value for v2 memory.swap.max (swap
// alone), as runc does. -1 means unlimited and 0 means unset.
func swapToV2(swap, memory int64) (int64, error) {
	switch {
	case memory == -1 && swap == 0:
		// Memory unlimited and swap unset: unlimit both, as v1 would.
		return -1, nil
	case swap == -1 || swap == 0:
		return swap, nil
	case memory == 0 || memory == -1:
		return 0, invalidf("memory swap limit %d needs a memory limit", swap)
	case memory < 0:
		return 0, invalidf("invalid memory limit %d", memory)
	case swap < memory:
		return 0, invalidf("memory+swap limit %d is below the memory limit %d", swap, memory)
	}
	return swap - memory, nil
}

// limitString renders an OCI limit for a v2 ".max"-style file: -1 (and any
// negative) is "max".
func limitString(v int64) string {
	if v < 0 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}

// hugePageSizes returns the kernel's huge page sizes in the names cgroup
// files use ("2MB", "1GB", "64KB").
func hugePageSizes() ([]string, error) {
	entries, err := os.ReadDir("/sys/kernel/mm/hugepages")
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("list huge page sizes: %w", err)
	}
	var sizes []string
	for _, e := range entries {
		s, ok := strings.CutPrefix(e.Name(), "hugepages-")
		if !ok {
			continue
		}
		s, ok = strings.CutSuffix(s, "kB")
		if !ok {
			continue
		}
		kb, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			continue
		}
		sizes = append(sizes, pageSizeName(kb*1024))
	}
	return sizes, nil
}

// pageSizeName renders a size in bytes as the kernel's hugetlb file names do.
func pageSizeName(b uint64) string {
	units := []string{"B", "KB", "MB", "GB", "TB", "PB"}
	i := 0
	for b >= 1024 && b%1024 == 0 && i < len(units)-1 {
		b /= 1024
		i++
	}
	return strconv.FormatUint(b, 10) + units[i]
}

// checkPageSize fails unless size is one the kernel offers.
func checkPageSize(size string, sizes []string) error {
	for _, s := range sizes {
		if s == size {
			return nil
		}
	}
	return invalidf("huge page size %q not offered by the kernel (have %s)", size, strings.Join(sizes, ", "))
}

// deviceString renders one device cgroup rule as v1's devices.allow and
// devices.deny take it: "c 1:3 rwm", with "*" for a wildcard number.
func deviceString(typ string, major, minor *int64, access string) string {
	num := func(p *int64) string {
		if p == nil || *p < 0 {
			return "*"
		}
		return strconv.FormatInt(*p, 10)
	}
	return typ + " " + num(major) + ":" + num(minor) + " " + access
}

// notImplemented returns an error classified as errdefs.ErrNotImplemented.
func notImplemented(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), errdefs.ErrNotImplemented)
}

// checkUnifiedKey refuses keys of linux.resources.unified that could name a
// file outside the cgroup directory.
func checkUnifiedKey(k string) error {
	if k == "" || strings.Contains(k, "/") || strings.Contains(k, "..") || filepath.Base(k) != k {
		return invalidf("unified resource key %q", k)
	}
	return nil
}
