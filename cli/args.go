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

func usagef(cmd *cobra.Command, format string, args ...any) error {
	return usageError{fmt.Sprintf("%q %s\nSee '%s --help'.\n\nUsage:  %s\n\n%s",
		cmd.CommandPath(), fmt.Sprintf(format, args...), cmd.CommandPath(), useLine(cmd), cmd.Short)}
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
			return usagef(cmd, "requires exactly %s.", plural(n))
		}
		return nil
	}
}

func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usagef(cmd, "requires at least %s.", plural(n))
		}
		return nil
	}
}

func maxArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			return usagef(cmd, "accepts at most %s.", plural(n))
		}
		return nil
	}
}

func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < lo || len(args) > hi {
			return usagef(cmd, "requires at least %s and at most %s.", plural(lo), plural(hi))
		}
		return nil
	}
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef(cmd, "accepts no arguments.")
	}
	return nil
}

// flagError turns cobra's flag errors into docker's ("unknown flag: --x
// See 'docker pull --help'."), which exit 125.
func flagError(cmd *cobra.Command, err error) error {
	return statusError{code: 125, err: usageError{fmt.Sprintf("%s\nSee '%s --help'.", err, cmd.CommandPath())}}
}
