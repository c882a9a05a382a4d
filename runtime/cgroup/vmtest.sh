#!/bin/sh
# vmtest.sh - run this package's tests inside the cgroup-v2 VM of
# /work/shared/vm (run-in-vm.sh), so that the v2 code paths run on a real
# unified-hierarchy kernel. Needs qemu-system-x86 and root.
set -e
cd "$(dirname "$0")/../.."
CGO_ENABLED=0 VM_TIMEOUT=600 go test -exec /work/shared/vm/go-vm-exec -timeout 500s ./runtime/cgroup/ "$@"
