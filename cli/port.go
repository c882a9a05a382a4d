package cli

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/berth-dev/berth/engine"
	"github.com/moby/moby/api/types/network"
	"github.com/spf13/cobra"
)

// portCmd is `port CONTAINER [PRIVATE_PORT[/PROTO]]`: the container's
// published ports, "80/tcp -> 0.0.0.0:8080".
//
// These are the bindings recorded at create (-p): bridge networking, which
// would make them active and pick the ports left to the host, is not there
// yet, so a binding without a host port is not shown, and one without an
// address shows 0.0.0.0 as docker shows it.
func portCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List port mappings or a specific mapping for the container",
		Args:  rangeArgs(1, 2),
		RunE: withEngine(g, func(cmd *cobra.Command, e *engine.Engine, args []string) error {
			info, err := e.Info(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			bindings := info.HostConfig.PortBindings
			var out []string
			if len(args) > 1 {
				port, err := network.ParsePort(args[1])
				if err != nil {
					return usageError{err.Error()}
				}
				for _, b := range bindings[port] {
					if hp, ok := hostAddr(b); ok {
						out = append(out, hp)
					}
				}
				if len(out) == 0 {
					return usageError{fmt.Sprintf("no public port '%s' published for %s", args[1], args[0])}
				}
			} else {
				for port, bs := range bindings {
					for _, b := range bs {
						if hp, ok := hostAddr(b); ok {
							out = append(out, port.String()+" -> "+hp)
						}
					}
				}
			}
			slices.SortFunc(out, naturalCompare)
			if len(out) > 0 {
				fmt.Fprintln(cmd.OutOrStdout(), strings.Join(out, "\n"))
			}
			return nil
		}),
	}
}

// hostAddr is a binding's host side, "0.0.0.0:8080" or "[::1]:8080".
func hostAddr(b network.PortBinding) (string, bool) {
	if b.HostPort == "" {
		return "", false
	}
	ip := "0.0.0.0"
	if b.HostIP.IsValid() {
		ip = b.HostIP.String()
	}
	return net.JoinHostPort(ip, b.HostPort), true
}
