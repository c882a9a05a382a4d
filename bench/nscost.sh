#!/usr/bin/env bash
# nscost.sh: what running in a private mount namespace without the cgroup v1
# hybrid layout's /sys/fs/cgroup/unified costs runc and crun, against the
# per-call crun wrapper. It backs the choice README.md explains: time every
# runtime in one such namespace rather than wrap crun alone.
#
# Interleaves ROUNDS (default 40) runs of each way, all through nsenter so
# that they pay the same entry cost, and prints each way's median in ms.
# Runs as root on a hybrid host; cleans up its bundle, state and namespaces.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
wrapper=$here/../conformance/crun-hybrid.sh
rounds=${ROUNDS:-40}

if [[ $(id -u) -ne 0 ]]; then
	echo "$0: must run as root" >&2
	exit 2
fi
if ! mountpoint -q /sys/fs/cgroup/unified; then
	echo "$0: no /sys/fs/cgroup/unified: not a cgroup v1 hybrid host, nothing to measure" >&2
	exit 2
fi
for c in runc crun busybox unshare nsenter; do
	command -v "$c" >/dev/null || { echo "$0: $c not found" >&2; exit 2; }
done

tmp=$(mktemp -d /tmp/berth-nscost.XXXXXX)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	for rt in runc crun; do
		for id in $("$rt" --root "$tmp/state-$rt" list -q 2>/dev/null || true); do
			"$rt" --root "$tmp/state-$rt" delete -f "$id" >/dev/null 2>&1 || true
		done
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

# A busybox bundle running /bin/true: runc's default spec, no terminal.
bundle=$tmp/bundle
mkdir -p "$bundle/rootfs/bin" "$bundle/rootfs/proc" "$bundle/rootfs/dev" "$bundle/rootfs/sys"
cp "$(command -v busybox)" "$bundle/rootfs/bin/busybox"
ln -s busybox "$bundle/rootfs/bin/true"
(cd "$bundle" && runc spec)
sed -i -e 's/"terminal": true/"terminal": false/' -e 's/"sh"$/"\/bin\/true"/' "$bundle/config.json"
grep -q '"/bin/true"' "$bundle/config.json" || { echo "$0: could not edit config.json" >&2; exit 1; }

# Two long-lived processes hold the namespaces: the host's, and a private
# one without the cgroup2 mount.
sleep 3600 &
host=$!
pids+=("$host")
unshare --mount --propagation private sh -c 'umount /sys/fs/cgroup/unified && exec sleep 3600' &
priv=$!
pids+=("$priv")
for _ in $(seq 50); do
	if ! nsenter -t "$priv" -m mountpoint -q /sys/fs/cgroup/unified; then break; fi
	sleep 0.1
done

ways=(runc-host runc-private crun-private crun-wrapper wrapper-alone)
declare -A cmd=(
	[runc-host]="nsenter -t $host -m runc --root $tmp/state-runc run --bundle $bundle"
	[runc-private]="nsenter -t $priv -m runc --root $tmp/state-runc run --bundle $bundle"
	[crun-private]="nsenter -t $priv -m crun --root $tmp/state-crun run --bundle $bundle"
	[crun-wrapper]="nsenter -t $host -m $wrapper --root $tmp/state-crun run --bundle $bundle"
	[wrapper-alone]="nsenter -t $host -m unshare --mount --propagation private sh -c 'umount /sys/fs/cgroup/unified && exec true' --"
)
n=0
for ((r = 0; r < rounds; r++)); do
	for ((k = 0; k < ${#ways[@]}; k++)); do
		way=${ways[(k + r) % ${#ways[@]}]}
		n=$((n + 1))
		t0=$(date +%s%N)
		eval "${cmd[$way]}" "nscost$n" >/dev/null
		t1=$(date +%s%N)
		echo "$way $(((t1 - t0) / 1000))"
	done
done >"$tmp/times"

echo "$rounds interleaved runs of each, $(date -u '+%Y-%m-%d %H:%M UTC')"
printf '%-14s %10s\n' way "median ms"
for way in "${ways[@]}"; do
	awk -v w="$way" '$1 == w { print $2 }' "$tmp/times" | sort -n |
		awk -v w="$way" '{ a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%-14s %10.1f\n", w, m / 1000 }'
done
