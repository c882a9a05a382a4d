#!/usr/bin/env bash
# demo.sh — berth's main job, offline: make an OCI bundle from Debian's
# busybox-static and run it with berth's runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x bin/berth ] || make berth
busybox=/bin/busybox
if ! [ -x "$busybox" ]; then
	echo "demo: install busybox-static first (apt-get install busybox-static)" >&2
	exit 1
fi
bundle=$(mktemp -d /tmp/berth-demo.XXXXXX)
trap 'rm -rf "$bundle"' EXIT
mkdir -p "$bundle/rootfs/bin"
cp "$busybox" "$bundle/rootfs/bin/busybox"
for applet in $("$busybox" --list); do
	[ "$applet" = busybox ] || ln -sf busybox "$bundle/rootfs/bin/$applet"
done
bin/berth runtime spec --bundle "$bundle"
# Not a terminal here: run `sh -c` with plain stdio.
sed -i 's/"terminal": true/"terminal": false/; s/"sh"$/"sh", "-c", "echo hello from a berth container; id; hostname; ls \/"/' "$bundle/config.json"
exec bin/berth runtime --root /run/berth-demo run --bundle "$bundle" "demo-$$"
