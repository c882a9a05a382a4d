package cli

import (
	"context"

	"github.com/berth-dev/berth/engine"
	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// updateCmd is `update [OPTIONS] CONTAINER...`: new resource limits and
// restart policy, for the record and, when running, the live container.
// It prints each container as given, as docker does.
func updateCmd(g *globals) *cobra.Command {
	var (
		cpus                            nanoCPUs
		cpuShares, cpuPeriod, cpuQuota  int64
		pidsLimit                       int64
		cpusetCpus, restart             string
		memory, memoryReservation, swap memBytes
	)
	swap.swap = true
	cmd := &cobra.Command{
		Use:   "update [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Update configuration of one or more containers",
		Args:  minArgs(1),
		RunE: withEngine(g, func(cmd *cobra.Command, e *engine.Engine, args []string) error {
			changed := 0
			cmd.LocalFlags().VisitAll(func(f *pflag.Flag) {
				if f.Changed {
					changed++
				}
			})
			if changed == 0 {
				return usageError{"you must provide one or more flags when using this command"}
			}
			var req engine.UpdateRequest
			if restart != "" {
				p, err := parseRestartPolicy(restart)
				if err != nil {
					return usageError{err.Error()}
				}
				req.RestartPolicy = p
			}
			req.Resources = container.Resources{
				NanoCPUs:          int64(cpus),
				CPUShares:         cpuShares,
				CPUPeriod:         cpuPeriod,
				CPUQuota:          cpuQuota,
				CpusetCpus:        cpusetCpus,
				Memory:            memory.n,
				MemoryReservation: memoryReservation.n,
				MemorySwap:        swap.n,
			}
			if pidsLimit != 0 {
				req.Resources.PidsLimit = &pidsLimit
			}
			return eachContainer(cmd, args, true, func(ctx context.Context, ref string) error {
				return e.Update(ctx, ref, req)
			})
		}),
	}
	f := cmd.Flags()
	f.Var(&cpus, "cpus", "Number of CPUs")
	f.Int64VarP(&cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	f.Int64Var(&cpuPeriod, "cpu-period", 0, "Limit CPU CFS (Completely Fair Scheduler) period")
	f.Int64Var(&cpuQuota, "cpu-quota", 0, "Limit CPU CFS (Completely Fair Scheduler) quota")
	f.StringVar(&cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	f.VarP(&memory, "memory", "m", "Memory limit")
	f.Var(&memoryReservation, "memory-reservation", "Memory soft limit")
	f.Var(&swap, "memory-swap", "Swap limit equal to memory plus swap: -1 to enable unlimited swap")
	f.Int64Var(&pidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")
	f.StringVar(&restart, "restart", "", "Restart policy to apply when a container exits")
	return cmd
}
