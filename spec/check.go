package spec

import (
	"os"
	"path"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Check reports what Generate would refuse in req, without building a
// spec: the working directory, capabilities, resource limits, sysctls,
// the network and devices. Docker's daemon checks these settings when it
// creates a container, so that a container it would never start is not
// made at all. Users and groups are not checked: Docker looks them up
// when the container starts.
func Check(req Request) error {
	if req.WorkingDir != "" && !path.IsAbs(req.WorkingDir) {
		return invalid("the working directory '%s' is invalid, it needs to be an absolute path", req.WorkingDir)
	}
	if _, err := capabilities(req.CapAdd, req.CapDrop, req.Privileged); err != nil {
		return err
	}
	if err := resources(&specs.LinuxResources{}, req); err != nil {
		return err
	}
	if _, err := sysctls(req.Sysctls, req.Network == "host"); err != nil {
		return err
	}
	if _, err := namespaces(req.Network); err != nil {
		return err
	}
	if req.Privileged {
		return nil // every host device: nothing the user named to check
	}
	return devices(&specs.Linux{Resources: &specs.LinuxResources{}}, req)
}

// cpusetAvailable checks that every CPU of a valid --cpuset-cpus list is
// one the host's root cpuset holds, as moby's IsCpusetCpusAvailable does.
// When the host's list cannot be read, any CPU passes.
func cpusetAvailable(list string) error {
	var have string
	for _, f := range []string{
		"/sys/fs/cgroup/cpuset/cpuset.cpus",    // cgroup v1
		"/sys/fs/cgroup/cpuset.cpus.effective", // cgroup v2
		"/sys/devices/system/cpu/online",       // neither
	} {
		if b, err := os.ReadFile(f); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			have = strings.TrimSpace(string(b))
			break
		}
	}
	if have == "" {
		return nil
	}
	avail := cpuSet(have)
	for c := range cpuSet(list) {
		if !avail[c] {
			return invalid("Requested CPUs are not available - requested %s, available: %s", list, have)
		}
	}
	return nil
}

// cpuSet expands a list of CPUs and ranges ("0-2,4") that validCpuset
// accepted.
func cpuSet(list string) map[uint64]bool {
	set := map[uint64]bool{}
	for part := range strings.SplitSeq(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseUint(lo, 10, 16)
		if err != nil {
			continue
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 16); err != nil {
				continue
			}
		}
		for c := a; c <= b; c++ {
			set[c] = true
		}
	}
	return set
}
