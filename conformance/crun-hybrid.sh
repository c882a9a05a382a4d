#!/usr/bin/env bash
# crun-hybrid.sh: crun for a host with the cgroup v1 "hybrid" layout.
#
# crun 1.8 refuses to run where a cgroup2 hierarchy is mounted at
# /sys/fs/cgroup/unified beside the v1 controllers ("cgroups in hybrid mode
# not supported, drop all controllers from cgroupv2"). This wrapper runs
# crun in a private mount namespace of its own with that mount removed, so
# crun sees a pure v1 layout. Its state directory (/run/crun) is still the
# host's, so create, start, state, kill and delete made through separate
# calls of the wrapper find the same containers. On a host without the
# hybrid mount it runs crun as it is.
set -euo pipefail
crun=${CRUN:-crun}
if mountpoint -q /sys/fs/cgroup/unified 2>/dev/null; then
	# shellcheck disable=SC2016 # $0 and $@ are the inner sh's
	exec unshare --mount --propagation private \
		sh -c 'umount /sys/fs/cgroup/unified && exec "$0" "$@"' "$crun" "$@"
fi
exec "$crun" "$@"
