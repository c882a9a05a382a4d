//go:build tools

// Package tools pins the module's dependencies before code uses them.
package tools

import (
	_ "github.com/cilium/ebpf"
	_ "github.com/containerd/console"
	_ "github.com/cyphar/filepath-securejoin"
	_ "github.com/moby/sys/capability"
	_ "github.com/opencontainers/runtime-spec/specs-go"
	_ "github.com/spf13/cobra"
	_ "golang.org/x/net/bpf"
	_ "golang.org/x/sys/unix"
)
