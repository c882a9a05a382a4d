package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/shim"
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// UpdateRequest is what `docker update` changes. A zero field of
// Resources leaves the setting as it is (PidsLimit: nil); of the
// resources only memory, CPU and pids limits are taken.
type UpdateRequest struct {
	Resources container.Resources
	// RestartPolicy with a Name replaces the container's.
	RestartPolicy container.RestartPolicy
}

// minMemory is the smallest memory limit Docker allows.
const minMemory = 6 << 20

// Update changes a container's resource limits and restart policy as
// `docker update` does: the record first (so the change outlives the
// process: Start makes the spec from it), then, when the container runs,
// its cgroup through the OCI runtime and its bundle's config.json, from
// which the shim re-creates the process on a policy restart. A running
// shim keeps the restart policy it was launched with until the container
// is next started: it reads its shim.json only at launch. If the live
// change fails the record is restored.
func (e *Engine) Update(ctx context.Context, ref string, req UpdateRequest) error {
	if err := verifyUpdate(req); err != nil {
		return err
	}
	c, err := e.Lookup(ctx, ref)
	if err != nil {
		return err
	}
	l, err := e.lock(ctx, c.ID)
	if err != nil {
		return err
	}
	defer l.Unlock()
	if c, err = e.loadContainer(c.ID); err != nil {
		return err
	}
	st, err := e.state(c)
	if err != nil {
		return err
	}
	if st.Status == "removing" || st.Status == "dead" {
		return cannotUpdate(c.ID, errorf(errdefs.ErrConflict, "container is marked for removal and cannot be \"update\""))
	}
	before := *c.HostConfig
	hc := *c.HostConfig
	if err := mergeUpdate(&hc, req); err != nil {
		return cannotUpdate(c.ID, err)
	}
	c.HostConfig = &hc
	if err := e.saveContainer(c); err != nil {
		return cannotUpdate(c.ID, err)
	}
	if st.Status == "running" || st.Status == "paused" || st.Status == "restarting" {
		if err := e.updateLive(ctx, c, st.Status != "restarting"); err != nil {
			c.HostConfig = &before
			if rerr := e.saveContainer(c); rerr != nil {
				e.log.WarnContext(ctx, "restore container record", "id", c.ID, "err", rerr)
			}
			return cannotUpdate(c.ID, err)
		}
	}
	e.containerEvent(ctx, c, "update", nil)
	return nil
}

func cannotUpdate(id string, err error) error {
	return fmt.Errorf("Cannot update container %s: %w", id, err)
}

// verifyUpdate checks the request alone, as moby's
// verifyPlatformContainerResources does for an update.
func verifyUpdate(req UpdateRequest) error {
	r := req.Resources
	invalid := func(format string, args ...any) error {
		return errorf(errdefs.ErrInvalidArgument, format, args...)
	}
	switch {
	case r.Memory != 0 && r.Memory < minMemory:
		return invalid("Minimum memory limit allowed is 6MB")
	case r.Memory > 0 && r.MemorySwap > 0 && r.MemorySwap < r.Memory:
		return invalid("Minimum memoryswap limit should be larger than memory limit, see usage")
	case r.MemoryReservation != 0 && r.MemoryReservation < minMemory:
		return invalid("Minimum memory reservation allowed is 6MB")
	case r.Memory > 0 && r.MemoryReservation > 0 && r.Memory < r.MemoryReservation:
		return invalid("Minimum memory limit can not be less than memory reservation limit, see usage")
	case r.NanoCPUs > 0 && r.CPUPeriod > 0:
		return invalid("Conflicting options: Nano CPUs and CPU Period cannot both be set")
	case r.NanoCPUs > 0 && r.CPUQuota > 0:
		return invalid("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
	case r.NanoCPUs < 0 || r.NanoCPUs > int64(runtime.NumCPU())*1e9:
		return invalid("range of CPUs is from 0.01 to %[1]d.00, as there are only %[1]d CPUs available", runtime.NumCPU())
	case r.CPUPeriod != 0 && (r.CPUPeriod < 1000 || r.CPUPeriod > 1000000):
		return invalid("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
	case r.CPUQuota > 0 && r.CPUQuota < 1000:
		return invalid("CPU cfs quota can not be less than 1ms (i.e. 1000)")
	case r.CPUShares < 0:
		return invalid("invalid CPU shares: %d", r.CPUShares)
	}
	if r.CpusetCpus != "" {
		cpus, ok := parseCPUSet(r.CpusetCpus)
		if !ok {
			return invalid("Invalid value %[1]s for cpuset cpus: invalid format: %[1]s", r.CpusetCpus)
		}
		if n := runtime.NumCPU(); len(cpus) > 0 && cpus[len(cpus)-1] >= n {
			return invalid("Requested CPUs are not available - requested %s, available: %s", r.CpusetCpus, cpuRange(n))
		}
	}
	if p := req.RestartPolicy; p.Name != "" {
		if err := container.ValidateRestartPolicy(p); err != nil {
			return invalid("%s", err.Error())
		}
	}
	return nil
}

// parseCPUSet reads a cpuset list ("0-2,4") into its CPUs, in order.
func parseCPUSet(s string) ([]int, bool) {
	var out []int
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, false
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, false
			}
		}
		for i := a; i <= b && i < 1<<16; i++ {
			out = append(out, i)
		}
	}
	slices.Sort(out)
	return out, true
}

func cpuRange(n int) string {
	if n == 1 {
		return "0"
	}
	return fmt.Sprintf("0-%d", n-1)
}

// mergeUpdate applies the request to hc as moby's UpdateContainer does,
// then refuses a result that would keep the container from starting.
func mergeUpdate(hc *container.HostConfig, req UpdateRequest) error {
	r, cur := req.Resources, &hc.Resources
	conflict := func(msg string) error { return errorf(errdefs.ErrInvalidArgument, "%s", msg) }
	switch {
	case r.NanoCPUs > 0 && cur.CPUPeriod > 0:
		return conflict("Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set")
	case r.NanoCPUs > 0 && cur.CPUQuota > 0:
		return conflict("Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set")
	case r.CPUPeriod > 0 && cur.NanoCPUs > 0:
		return conflict("Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set")
	case r.CPUQuota > 0 && cur.NanoCPUs > 0:
		return conflict("Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set")
	}
	if r.CPUShares != 0 {
		cur.CPUShares = r.CPUShares
	}
	if r.NanoCPUs != 0 {
		cur.NanoCPUs = r.NanoCPUs
	}
	if r.CPUPeriod != 0 {
		cur.CPUPeriod = r.CPUPeriod
	}
	if r.CPUQuota != 0 {
		cur.CPUQuota = r.CPUQuota
	}
	if r.CpusetCpus != "" {
		cur.CpusetCpus = r.CpusetCpus
	}
	if r.Memory != 0 {
		// Docker records a swap limit of twice the memory when none was
		// given; the record here keeps 0 for that (the spec doubles it).
		swap := cur.MemorySwap
		if swap == 0 && cur.Memory > 0 {
			swap = 2 * cur.Memory
		}
		if r.Memory > swap && r.MemorySwap == 0 {
			return conflict("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time")
		}
		cur.MemorySwap = swap
		cur.Memory = r.Memory
	}
	if r.MemorySwap != 0 {
		cur.MemorySwap = r.MemorySwap
	}
	if r.MemoryReservation != 0 {
		cur.MemoryReservation = r.MemoryReservation
	}
	if r.PidsLimit != nil {
		n := *r.PidsLimit
		cur.PidsLimit = &n
	}
	if p := req.RestartPolicy; p.Name != "" {
		if hc.AutoRemove && !p.IsNone() {
			return conflict("Restart policy cannot be updated because AutoRemove is enabled for the container")
		}
		hc.RestartPolicy = p
	}
	// Docker lets these through to fail in the runtime or at the next
	// start; here they fail now.
	switch {
	case cur.Memory == 0 && cur.MemorySwap == -1:
		cur.MemorySwap = 0 // unlimited either way; the spec wants no swap without memory
	case cur.Memory == 0 && cur.MemorySwap > 0:
		return conflict("You should always set the Memory limit when using Memoryswap limit, see usage")
	case cur.MemorySwap > 0 && cur.MemorySwap < cur.Memory:
		return conflict("Minimum memoryswap limit should be larger than memory limit, see usage")
	case cur.Memory > 0 && cur.MemoryReservation > cur.Memory:
		return conflict("Minimum memory limit can not be less than memory reservation limit, see usage")
	}
	return nil
}

// updateLive carries the record's limits into the running container:
// its cgroup (when apply: not while it is restarting), its bundle's
// config.json (the shim's restarts re-create from it) and shim.json.
func (e *Engine) updateLive(ctx context.Context, c *Container, apply bool) error {
	bundle := e.bundleDir(c.ID)
	var s specs.Spec
	if err := readJSON(filepath.Join(bundle, "config.json"), &s); err != nil {
		return err
	}
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	if s.Linux.Resources == nil {
		s.Linux.Resources = &specs.LinuxResources{}
	}
	setResources(s.Linux.Resources, c.HostConfig.Resources)
	if apply {
		rt, err := e.ociRuntime(c.HostConfig.Runtime)
		if err != nil {
			return err
		}
		if err := rt.Update(ctx, c.ID, s.Linux.Resources); err != nil {
			return err
		}
	}
	if err := writeRunJSON(filepath.Join(bundle, "config.json"), &s); err != nil {
		return err
	}
	var cfg shim.Config
	if err := readJSON(filepath.Join(bundle, "shim.json"), &cfg); err != nil {
		return nil // no shim config: nothing to keep in step
	}
	p := c.HostConfig.RestartPolicy
	cfg.Restart = shim.RestartPolicy{Name: string(p.Name), MaxRetries: p.MaximumRetryCount}
	return writeRunJSON(filepath.Join(bundle, "shim.json"), &cfg)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// setResources sets the memory, CPU and pids limits of r from the
// record's resources, as package spec makes them at start.
func setResources(r *specs.LinuxResources, hc container.Resources) {
	if hc.Memory > 0 || hc.MemoryReservation > 0 {
		if r.Memory == nil {
			r.Memory = &specs.LinuxMemory{}
		}
	}
	if hc.Memory > 0 {
		limit, swap := hc.Memory, hc.MemorySwap
		if swap == 0 {
			swap = 2 * limit
		}
		r.Memory.Limit, r.Memory.Swap = &limit, &swap
	}
	if hc.MemoryReservation > 0 {
		res := hc.MemoryReservation
		r.Memory.Reservation = &res
	}
	if hc.NanoCPUs > 0 || hc.CPUPeriod > 0 || hc.CPUQuota != 0 || hc.CPUShares > 0 || hc.CpusetCpus != "" {
		if r.CPU == nil {
			r.CPU = &specs.LinuxCPU{}
		}
	}
	switch {
	case hc.NanoCPUs > 0:
		const period = 100000 // µs, as Docker's --cpus
		p, q := uint64(period), hc.NanoCPUs*period/1e9
		r.CPU.Period, r.CPU.Quota = &p, &q
	case hc.CPUPeriod > 0 || hc.CPUQuota != 0:
		if hc.CPUPeriod > 0 {
			p := uint64(hc.CPUPeriod)
			r.CPU.Period = &p
		}
		if hc.CPUQuota != 0 {
			q := hc.CPUQuota
			r.CPU.Quota = &q
		}
	}
	if hc.CPUShares > 0 {
		shares := uint64(min(max(hc.CPUShares, 2), 262144))
		r.CPU.Shares = &shares
	}
	if hc.CpusetCpus != "" {
		r.CPU.Cpus = hc.CpusetCpus
	}
	if hc.PidsLimit != nil && *hc.PidsLimit != 0 {
		n := *hc.PidsLimit
		r.Pids = &specs.LinuxPids{Limit: &n}
	}
}
