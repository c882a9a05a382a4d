//go:build tools

// Package tools pins the module's dependencies before code uses them.
package tools

import (
	_ "github.com/cilium/ebpf"
	_ "github.com/containerd/console"
	_ "github.com/cyphar/filepath-securejoin"
	_ "github.com/distribution/reference"
	_ "github.com/google/go-containerregistry/pkg/v1/remote"
	_ "github.com/klauspost/compress/zstd"
	_ "github.com/moby/sys/capability"
	_ "github.com/opencontainers/go-digest"
	_ "github.com/opencontainers/image-spec/specs-go/v1"
	_ "github.com/opencontainers/runtime-spec/specs-go"
	_ "github.com/spf13/cobra"
	_ "go.etcd.io/bbolt"
	_ "golang.org/x/net/bpf"
	_ "golang.org/x/sys/unix"
)
