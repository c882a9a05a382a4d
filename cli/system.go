package cli

import (
	"fmt"
	"strings"

	"github.com/berth-dev/berth/engine"
	"github.com/spf13/cobra"
)

// systemCmd is `system`: commands about berth itself rather than one
// container or image.
func systemCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "system", Short: "Manage berth"}
	cmd.AddCommand(bootCmd(g))
	return cmd
}

// bootCmd is `system boot`: what dockerd does when it starts, for a berth
// that has no daemon. Run once after the machine starts (the systemd unit
// in contrib/systemd), it starts the containers whose restart policy asks
// for it and prints their names; a --rm container that was running is
// removed. A container that cannot start is reported and the others
// still start; the status is then 1.
func bootCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "boot",
		Short: "Start the containers whose restart policy brings them back after a reboot",
		Args:  noArgs,
		RunE: withEngine(g, func(cmd *cobra.Command, e *engine.Engine, args []string) error {
			var failed []string
			err := e.Boot(cmd.Context(), func(r engine.BootResult) {
				switch {
				case r.Err != nil:
					fmt.Fprintf(cmd.ErrOrStderr(), "Error response from daemon: %s: %v\n", r.Name, r.Err)
					failed = append(failed, r.Name)
				case !r.Removed:
					fmt.Fprintln(cmd.OutOrStdout(), r.Name)
				}
			})
			if err != nil {
				return err
			}
			if len(failed) > 0 {
				return usageError{fmt.Sprintf("Error: failed to start containers: %s", strings.Join(failed, ", "))}
			}
			return nil
		}),
	}
}
