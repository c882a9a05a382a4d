package command

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
)

// parseBytes reads "512", "64k", "10m", "1g" (powers of 1024); -1 is unlimited.
func parseBytes(s string) (int64, error) {
	if s == "-1" {
		return -1, nil
	}
	mult := int64(1)
	t := strings.ToLower(strings.TrimSuffix(strings.ToLower(s), "b"))
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'k':
			mult, t = 1<<10, t[:n-1]
		case 'm':
			mult, t = 1<<20, t[:n-1]
		case 'g':
			mult, t = 1<<30, t[:n-1]
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	return v * mult, nil
}

func updateCmd(g *globals) *cobra.Command {
	var resources string
	var sizes = map[string]*string{}
	var nums = map[string]*string{}
	cmd := &cobra.Command{
		Use:   "update [flags] <container-id>",
		Short: "update container resource constraints",
		Args:  exactArgs(1, "container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.runtime()
			if err != nil {
				return err
			}
			spec, err := r.Spec(args[0])
			if err != nil {
				return err
			}
			res := &specs.LinuxResources{}
			if spec.Linux.Resources != nil {
				*res = *spec.Linux.Resources
			}
			if resources != "" {
				var data []byte
				if resources == "-" {
					data, err = readAll(os.Stdin)
				} else {
					data, err = os.ReadFile(resources)
				}
				if err != nil {
					return fmt.Errorf("read resources: %w", err)
				}
				res = &specs.LinuxResources{}
				if err := json.Unmarshal(data, res); err != nil {
					return fmt.Errorf("parse resources: %w", err)
				}
			}
			if err := applyUpdateFlags(cmd, res, sizes, nums); err != nil {
				return err
			}
			return r.Update(args[0], res)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&resources, "resources", "r", "", "path to the file containing the resources to update or '-' to read from the standard input")
	for _, n := range []string{"memory", "memory-reservation", "memory-swap", "kernel-memory", "kernel-memory-tcp"} {
		sizes[n] = f.String(n, "", "memory limit (in bytes, or with a k/m/g suffix)")
	}
	for _, n := range []string{"blkio-weight", "cpu-period", "cpu-quota", "cpu-share", "cpu-rt-period", "cpu-rt-runtime", "pids-limit"} {
		nums[n] = f.String(n, "", "")
	}
	f.String("cpuset-cpus", "", "CPU(s) to use")
	f.String("cpuset-mems", "", "memory node(s) to use")
	f.String("l3-cache-schema", "", "accepted for runc compatibility (intelRdt is not supported)")
	f.String("mem-bw-schema", "", "accepted for runc compatibility (intelRdt is not supported)")
	return cmd
}

func applyUpdateFlags(cmd *cobra.Command, res *specs.LinuxResources, sizes, nums map[string]*string) error {
	f := cmd.Flags()
	mem := func() *specs.LinuxMemory {
		if res.Memory == nil {
			res.Memory = &specs.LinuxMemory{}
		}
		return res.Memory
	}
	cpu := func() *specs.LinuxCPU {
		if res.CPU == nil {
			res.CPU = &specs.LinuxCPU{}
		}
		return res.CPU
	}
	for name, v := range sizes {
		if !f.Changed(name) {
			continue
		}
		n, err := parseBytes(*v)
		if err != nil {
			return fmt.Errorf("--%s: %w", name, err)
		}
		switch name {
		case "memory":
			mem().Limit = &n
		case "memory-reservation":
			mem().Reservation = &n
		case "memory-swap":
			mem().Swap = &n
		case "kernel-memory":
			mem().Kernel = &n
		case "kernel-memory-tcp":
			mem().KernelTCP = &n
		}
	}
	for name, v := range nums {
		if !f.Changed(name) {
			continue
		}
		n, err := strconv.ParseInt(*v, 10, 64)
		if err != nil {
			return fmt.Errorf("--%s: invalid value %q", name, *v)
		}
		u := uint64(n)
		switch name {
		case "blkio-weight":
			w := uint16(n)
			if res.BlockIO == nil {
				res.BlockIO = &specs.LinuxBlockIO{}
			}
			res.BlockIO.Weight = &w
		case "cpu-period":
			cpu().Period = &u
		case "cpu-quota":
			cpu().Quota = &n
		case "cpu-share":
			cpu().Shares = &u
		case "cpu-rt-period":
			cpu().RealtimePeriod = &u
		case "cpu-rt-runtime":
			cpu().RealtimeRuntime = &n
		case "pids-limit":
			res.Pids = &specs.LinuxPids{Limit: &n}
		}
	}
	if f.Changed("cpuset-cpus") {
		cpu().Cpus, _ = f.GetString("cpuset-cpus")
	}
	if f.Changed("cpuset-mems") {
		cpu().Mems, _ = f.GetString("cpuset-mems")
	}
	return nil
}
