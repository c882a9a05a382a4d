#!/usr/bin/env bash
# demo.sh — berth's main job, offline: make a busybox image from Debian's
# busybox-static, import it and run containers from it, as docker would.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x bin/berth ] || make berth
busybox=/bin/busybox
if ! [ -x "$busybox" ]; then
	echo "demo: install busybox-static first (apt-get install busybox-static)" >&2
	exit 1
fi
work=$(mktemp -d /tmp/berth-demo.XXXXXX)
berth() { bin/berth --root "$work/root" --runroot "$work/run" "$@"; }
cleanup() {
	berth rm -f demo-web >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/tmp"
cp "$busybox" "$work/rootfs/bin/busybox"
for applet in $("$busybox" --list); do
	[ "$applet" = busybox ] || ln -sf busybox "$work/rootfs/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$work/rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$work/rootfs/etc/group"
tar -C "$work/rootfs" -cf "$work/busybox.tar" .

set -x
berth import "$work/busybox.tar" busybox
berth run --rm busybox sh -c 'echo hello from a berth container; id; hostname; ls /'
berth run -d --name demo-web busybox sh -c 'while :; do echo tick; sleep 1; done'
sleep 1.5
berth exec demo-web ps
berth logs demo-web
berth ps
berth rm -f demo-web
