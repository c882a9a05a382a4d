package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// usageError is a mistake in how a command was called. It prints as
// docker prints one: the problem, where to read more, and the usage line,
// with no "Error response from daemon:" in front.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// usagef is docker's message for a command called with the wrong
// arguments (docker/cli's cli.RequiresMinArgs and friends): "berth:
// 'berth start' requires at least 1 argument", the usage line and where
// to read more.
func usagef(cmd *cobra.Command, format string, args ...any) error {
	see := "Run"
	if format == "requires at least %s" {
		see = "See" // docker's RequiresMinArgs says "See"; the others "Run"
	}
	return usageError{fmt.Sprintf("%s: '%s' %s\n\nUsage:  %s\n\n%s '%s --help' for more information",
		cmd.Root().Name(), cmd.CommandPath(), fmt.Sprintf(format, args...), useLine(cmd), see, cmd.CommandPath())}
}

// useLine is the command's usage as docker prints it: its full path and
// the Use text after the name, without cobra's " [flags]".
func useLine(cmd *cobra.Command) string {
	_, rest, _ := strings.Cut(cmd.Use, " ")
	return strings.TrimSpace(cmd.CommandPath() + " " + rest)
}

func plural(n int) string {
	if n == 1 {
		return "1 argument"
	}
	return fmt.Sprintf("%d arguments", n)
}

// Argument checks in docker's words.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef(cmd, "requires %s", plural(n))
		}
		return nil
	}
}

func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usagef(cmd, "requires at least %s", plural(n))
		}
		return nil
	}
}

func maxArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			return usagef(cmd, "requires at most %s", plural(n))
		}
		return nil
	}
}

func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < lo || len(args) > hi {
			return usagef(cmd, "requires at least %d and at most %s", lo, plural(hi))
		}
		return nil
	}
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef(cmd, "accepts no arguments")
	}
	return nil
}

// flagError turns cobra's flag errors into docker's (cli.FlagErrorFunc):
// the problem, the usage line and where to read more; they exit 125.
func flagError(cmd *cobra.Command, err error) error {
	return statusError{code: 125, err: usageError{fmt.Sprintf("%s\n\nUsage:  %s\n\nRun '%s --help' for more information",
		err, useLine(cmd), cmd.CommandPath())}}
}
