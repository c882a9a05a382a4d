// Berth is a container engine. Its first argument picks a role; this file
// is the only place that knows them all.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/cli"
	_ "github.com/berth-dev/berth/initproc" // docker-init (--init): all in C, before the Go runtime starts
	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/runtime/command"
	_ "github.com/berth-dev/berth/runtime/nsexec" // joins namespaces before the Go runtime starts
	"github.com/berth-dev/berth/shim"
)

func main() {
	// Called as berth-runtime (a link to this binary), berth is the
	// runc-compatible runtime, so other engines can use it unchanged.
	// (Called as docker-init, bind-mounted into a container run with
	// --init, it never gets here: package initproc.)
	if filepath.Base(os.Args[0]) == "berth-runtime" {
		os.Exit(command.Main(context.Background(), os.Args[1:]))
	}
	role := ""
	if len(os.Args) > 1 {
		role = os.Args[1]
	}
	switch role {
	case "init":
		runtime.Init() // the container side of the runtime; never returns
	case "runtime":
		os.Exit(command.Main(context.Background(), os.Args[2:]))
	case "shim":
		os.Exit(shim.Main(context.Background(), os.Args[2:]))
	case "version", "--version":
		fmt.Println("berth version 0.1.0")
	default:
		os.Exit(cli.Main(context.Background(), os.Args[1:])) // the docker-compatible CLI
	}
}
