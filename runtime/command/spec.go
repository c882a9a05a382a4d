package command

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/runtime"
	"github.com/spf13/cobra"
)

func specCmd(_ *globals) *cobra.Command {
	var bundle string
	var rootless bool
	cmd := &cobra.Command{
		Use:   "spec",
		Short: "create a new specification file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := filepath.Join(bundle, "config.json")
			if _, err := os.Stat(path); err == nil {
				return fmt.Errorf("file %s exists: remove it first", path)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			s := runtime.DefaultSpec(rootless, uint32(os.Geteuid()), uint32(os.Getegid()))
			data, err := json.MarshalIndent(s, "", "\t")
			if err != nil {
				return err
			}
			return os.WriteFile(path, append(data, '\n'), 0o666)
		},
	}
	cmd.Flags().StringVarP(&bundle, "bundle", "b", "", "path to the root of the bundle directory")
	cmd.Flags().BoolVar(&rootless, "rootless", false, "generate a configuration for a rootless container")
	return cmd
}

func featuresCmd(_ *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "features",
		Short: "show the enabled features",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return printJSON(runtime.Features())
		},
	}
}
