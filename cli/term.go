package cli

import (
	"os"

	"github.com/containerd/console"
)

// rawTerminal puts f, when it is a terminal, in raw mode for a container's
// tty and returns how to restore it.
func rawTerminal(f *os.File) (restore func()) {
	c, err := console.ConsoleFromFile(f)
	if err != nil {
		return func() {}
	}
	if err := c.SetRaw(); err != nil {
		return func() {}
	}
	return func() { c.Reset() }
}
