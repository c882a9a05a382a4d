package engine

import (
	"net/netip"

	"github.com/berth-dev/berth/spec"
	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
)

// defaultShmSize is the /dev/shm size a container gets when it asks for
// none (spec's default, Docker's 64 MiB).
const defaultShmSize = 64 << 20

// inspectConfigs are a container's Config and HostConfig as docker's
// inspect shows them: copies of the record with the settings the daemon
// fills in at create time (IPC and cgroup namespace modes, /dev/shm size,
// runtime, masked and read-only paths) made explicit, unset options null
// where docker's CLI sends null (no --memory-swappiness, no
// --pids-limit) and empty lists where it sends empty ones, so that tools
// reading the JSON see docker's shape.
func inspectConfigs(c *Container) (*container.Config, *container.HostConfig) {
	cfg := *c.Config
	if len(cfg.Volumes) == 0 {
		cfg.Volumes = nil
	}
	hc := *c.HostConfig
	if hc.IpcMode == "" {
		hc.IpcMode = container.IPCModePrivate
	}
	if hc.CgroupnsMode == "" {
		hc.CgroupnsMode = container.CgroupnsModePrivate // berth always makes one
	}
	if hc.ShmSize == 0 && (hc.IpcMode.IsPrivate() || hc.IpcMode.IsShareable()) {
		hc.ShmSize = defaultShmSize
	}
	if hc.Runtime == "" {
		hc.Runtime = "runc" // the built-in runtime answers to docker's default name
	}
	if !hc.Privileged {
		if hc.MaskedPaths == nil {
			hc.MaskedPaths = spec.MaskedPaths()
		}
		if hc.ReadonlyPaths == nil {
			hc.ReadonlyPaths = spec.ReadonlyPaths()
		}
	}
	if hc.MemorySwappiness != nil && *hc.MemorySwappiness == -1 {
		hc.MemorySwappiness = nil
	}
	if hc.PidsLimit != nil && *hc.PidsLimit == 0 {
		hc.PidsLimit = nil
	}
	if hc.BlkioWeightDevice == nil {
		hc.BlkioWeightDevice = []*blkiodev.WeightDevice{}
	}
	for _, l := range []*[]*blkiodev.ThrottleDevice{&hc.BlkioDeviceReadBps, &hc.BlkioDeviceWriteBps, &hc.BlkioDeviceReadIOps, &hc.BlkioDeviceWriteIOps} {
		if *l == nil {
			*l = []*blkiodev.ThrottleDevice{}
		}
	}
	if hc.DNS == nil {
		hc.DNS = []netip.Addr{}
	}
	return &cfg, &hc
}
