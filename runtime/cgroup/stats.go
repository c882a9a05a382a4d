package cgroup

// Stats is a snapshot of a cgroup's counters. Its JSON encoding has the
// shape of the "data" object of `runc events --stats` (runc types/events.go),
// which containerd's go-runc decodes, so the field tags must not change.
// Sections a controller does not provide stay zero.
type Stats struct {
	CPU     CPU                `json:"cpu"`     // cpu, cpuacct (v1) / cpu.stat (v2)
	Memory  Memory             `json:"memory"`  // memory
	Pids    Pids               `json:"pids"`    // pids
	Blkio   Blkio              `json:"blkio"`   // blkio (v1) / io (v2)
	Hugetlb map[string]Hugetlb `json:"hugetlb"` // by page size, e.g. "2MB"
}

// CPU holds CPU time and throttling counters.
type CPU struct {
	Usage      CPUUsage   `json:"usage,omitempty"`      // CPU time used
	Throttling Throttling `json:"throttling,omitempty"` // CFS bandwidth throttling
}

// CPUUsage is CPU time in nanoseconds. Per-CPU figures exist on v1 only.
type CPUUsage struct {
	Total        uint64   `json:"total,omitempty"`         // user + kernel
	Percpu       []uint64 `json:"percpu,omitempty"`        // total, per CPU (v1)
	PercpuKernel []uint64 `json:"percpu_kernel,omitempty"` // kernel, per CPU (v1)
	PercpuUser   []uint64 `json:"percpu_user,omitempty"`   // user, per CPU (v1)
	Kernel       uint64   `json:"kernel"`                  // in kernel mode
	User         uint64   `json:"user"`                    // in user mode
}

// Throttling counts CFS bandwidth periods and the time spent throttled
// (nanoseconds).
type Throttling struct {
	Periods          uint64 `json:"periods,omitempty"`          // periods elapsed
	ThrottledPeriods uint64 `json:"throttledPeriods,omitempty"` // periods with throttling
	ThrottledTime    uint64 `json:"throttledTime,omitempty"`    // time throttled
}

// Memory holds memory counters in bytes. Raw is memory.stat as the kernel
// prints it. As runc does, Swap on v2 reports memory+swap so that it means
// what v1's memsw counters mean.
type Memory struct {
	Cache     uint64            `json:"cache,omitempty"`     // page cache ("cache" v1, "file" v2)
	Usage     MemoryEntry       `json:"usage,omitempty"`     // memory
	Swap      MemoryEntry       `json:"swap,omitempty"`      // memory+swap
	Kernel    MemoryEntry       `json:"kernel,omitempty"`    // kernel memory (v1)
	KernelTCP MemoryEntry       `json:"kernelTCP,omitempty"` // kernel TCP buffers (v1)
	Raw       map[string]uint64 `json:"raw,omitempty"`       // memory.stat
}

// MemoryEntry is one memory counter: current usage, its peak, its limit
// (math.MaxUint64 or v1's page-rounded maximum when unlimited) and how often
// the limit was hit.
type MemoryEntry struct {
	Limit   uint64 `json:"limit"`           // bytes allowed
	Usage   uint64 `json:"usage,omitempty"` // bytes used now
	Max     uint64 `json:"max,omitempty"`   // peak usage
	Failcnt uint64 `json:"failcnt"`         // times the limit was hit
}

// Pids is the number of tasks and the pids limit (0: no limit).
type Pids struct {
	Current uint64 `json:"current,omitempty"` // tasks now
	Limit   uint64 `json:"limit,omitempty"`   // pids.max; 0 when "max"
}

// Blkio holds block I/O counters per device and operation, recursively
// over sub-cgroups. v2 fills only the first two; v1 without CFQ or BFQ
// (the throttling layer's counters) too.
type Blkio struct {
	IoServiceBytesRecursive []BlkioEntry `json:"ioServiceBytesRecursive,omitempty"`
	IoServicedRecursive     []BlkioEntry `json:"ioServicedRecursive,omitempty"`
	IoQueuedRecursive       []BlkioEntry `json:"ioQueueRecursive,omitempty"`
	IoServiceTimeRecursive  []BlkioEntry `json:"ioServiceTimeRecursive,omitempty"`
	IoWaitTimeRecursive     []BlkioEntry `json:"ioWaitTimeRecursive,omitempty"`
	IoMergedRecursive       []BlkioEntry `json:"ioMergedRecursive,omitempty"`
	IoTimeRecursive         []BlkioEntry `json:"ioTimeRecursive,omitempty"`
	SectorsRecursive        []BlkioEntry `json:"sectorsRecursive,omitempty"`
}

// BlkioEntry is one counter of one device: Op is "Read", "Write", "Sync",
// "Async", "Discard" or "Total" (v1), or "Read", "Write", "Discard" (v2).
type BlkioEntry struct {
	Major uint64 `json:"major,omitempty"` // device major number
	Minor uint64 `json:"minor,omitempty"` // device minor number
	Op    string `json:"op,omitempty"`    // operation
	Value uint64 `json:"value,omitempty"` // bytes, operations or time
}

// Hugetlb is the usage of one huge page size, keyed by size ("2MB").
type Hugetlb struct {
	Usage   uint64 `json:"usage,omitempty"` // bytes of huge pages used
	Max     uint64 `json:"max,omitempty"`   // peak usage (v1)
	Failcnt uint64 `json:"failcnt"`         // allocations refused
}
