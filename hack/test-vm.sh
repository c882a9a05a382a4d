#!/usr/bin/env bash
# test-vm.sh — run the tests that need cgroup v2 inside the VM of
# ../shared/vm (cgroup2 as the only hierarchy, Debian's stock kernel).
# Skips, loudly, when the VM scripts or qemu are not there.
#
# The VM emulates its CPU (TCG), so a container start costs seconds there:
# the runtime's tests run a chosen set that covers every v2 code path
# (freezer, cgroup.kill, BPF device filter, CLONE_INTO_CGROUP, stats,
# update, cgroupns mount), not the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# The VM scripts live in the team's shared directory: beside the checkout,
# or at /work/shared for a clone made elsewhere.
vm=${BERTH_VM_DIR:-}
if [ -z "$vm" ]; then
	for d in "$(cd .. && pwd)/shared/vm" /work/shared/vm; do
		if [ -x "$d/go-vm-exec" ]; then vm=$d; break; fi
	done
fi
if ! [ -x "${vm:-/nonexistent}/go-vm-exec" ] || ! command -v qemu-system-x86_64 >/dev/null; then
	echo "test-vm: SKIP: no VM scripts at $vm or no qemu-system-x86_64" >&2
	exit 0
fi
repo=$(pwd)
[ -x bin/berth ] || make berth
export VM_TIMEOUT=${VM_TIMEOUT:-1500} VM_HOST_USR=1 VM_SHARES="$repo" BERTH_BIN="$repo/bin/berth"
export VM_PASSENV="BERTH_BIN"
echo "test-vm: runtime/cgroup (cgroup v2)"
go test -count=1 -timeout 1400s -exec "$vm/go-vm-exec" ./runtime/cgroup/
v2tests='^(TestRunExitStatus|TestLifecycle|TestKillSignals|TestIsolationCgroupLimits|TestIsolationDevices|TestIsolationNamespaces|TestIsolationExec|TestEventsStats|TestUpdate|TestBadBundles)$'
echo "test-vm: runtime (cgroup v2): $v2tests"
go test -count=1 -timeout 1400s -exec "$vm/go-vm-exec" -run "$v2tests" ./runtime/
# What the engine reads through package oci on cgroup v2: stats, live
# updates and OOM kills (memory.events), for berth's runtime, runc,
# berth-runtime and crun (which runs here: cgroup v2 only).
echo "test-vm: oci (cgroup v2): TestLifecycle TestOOM"
go test -count=1 -timeout 1400s -exec "$vm/go-vm-exec" -run '^(TestLifecycle|TestOOM)$' ./oci/
