#!/usr/bin/env bash
# test-vm.sh — run the tests that need cgroup v2 inside the VM of
# ../shared/vm (cgroup2 as the only hierarchy). Skips, loudly, when the VM
# scripts or qemu are not there.
set -euo pipefail
cd "$(dirname "$0")/.."
vm=${BERTH_VM_DIR:-$(cd .. && pwd)/shared/vm}
if ! [ -x "$vm/go-vm-exec" ] || ! command -v qemu-system-x86_64 >/dev/null; then
	echo "test-vm: SKIP: no VM scripts at $vm or no qemu-system-x86_64" >&2
	exit 0
fi
export VM_TIMEOUT=${VM_TIMEOUT:-900} VM_HOST_USR=1
# Package by package: each test binary boots its own VM.
for pkg in ./runtime/cgroup/ ./runtime/; do
	echo "test-vm: $pkg (cgroup v2)"
	go test -count=1 -timeout 800s -exec "$vm/go-vm-exec" "$pkg"
done
