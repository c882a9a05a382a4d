#!/usr/bin/env bash
# mkdebian.sh: build BenchmarkPull's Debian image once, serve it from a local
# registry, and print its reference.
#
#   bench/mkdebian.sh        build (first time only), start the registry if it
#                            is not running, print 127.0.0.1:PORT/debian:bench
#   bench/mkdebian.sh stop   stop the registry this script started
#
# The image has 5 layers, each built in an overlay over the ones before it:
#   1. debootstrap --variant=minbase bookworm
#   2. apt-get install python3-minimal
#   3. apt-get install perl
#   4. apt-get install curl ca-certificates
#   5. /usr/share/doc and /usr/share/man emptied (whiteouts), /etc/bench-image
# Each layer is the overlay's upper directory written as an OCI layer tar
# (bench/internal/mkimage, with berth's archive.WriteDiff), gzip-compressed,
# and pushed with go-containerregistry. Everything is kept under CACHE: the
# layer directories, the layer files and the registry's storage, so a
# second run only starts the registry (and pushes again if its storage was
# removed).
#
# Environment:
#   CACHE   cache directory (default /var/cache/berth-bench)
#   PORT    registry port on 127.0.0.1 (default 5123)
#   MIRROR  Debian mirror (default http://deb.debian.org/debian)
#
# Runs as root (debootstrap, chroot, overlay mounts). Needs debootstrap
# (apt-get install debootstrap) and Debian's docker-registry.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=${CACHE:-/var/cache/berth-bench}
port=${PORT:-5123}
mirror=${MIRROR:-http://deb.debian.org/debian}
ref=127.0.0.1:$port/debian:bench
pidfile=$cache/registry.pid

log() { echo "mkdebian: $*" >&2; }

if [[ $(id -u) -ne 0 ]]; then
	log "must run as root"
	exit 2
fi

running() {
	[[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null &&
		curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/"
}

if [[ ${1:-} == stop ]]; then
	if [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
		kill "$(cat "$pidfile")"
	fi
	rm -f "$pidfile"
	exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/lock"
flock 9

# --- the layers -------------------------------------------------------------

layers=$cache/layers
mkdir -p "$layers"

if [[ ! -f $layers/1.done ]]; then
	command -v debootstrap >/dev/null || apt-get install -y debootstrap >&2
	log "layer 1: debootstrap minbase bookworm"
	rm -rf "$layers/1"
	debootstrap --variant=minbase bookworm "$layers/1" "$mirror" >&2
	rm -rf "$layers/1"/var/cache/apt/archives/*.deb "$layers/1"/var/lib/apt/lists/*
	touch "$layers/1.done"
fi

merged=$cache/merged
work=$cache/work
cleanup_mounts() {
	for m in "$merged/dev" "$merged/proc" "$merged"; do
		mountpoint -q "$m" && umount "$m"
	done
	return 0
}
trap cleanup_mounts EXIT

# step N SCRIPT: run SCRIPT in a chroot of an overlay whose upper directory
# is layer N, over layers N-1 .. 1.
step() {
	local n=$1 script=$2 lower="" i
	[[ -f $layers/$n.done ]] && return 0
	log "layer $n: $script"
	for ((i = n - 1; i >= 1; i--)); do lower+="${lower:+:}$layers/$i"; done
	rm -rf "$layers/$n" "$work"
	mkdir -p "$layers/$n" "$work" "$merged"
	mount -t overlay overlay -o "lowerdir=$lower,upperdir=$layers/$n,workdir=$work" "$merged"
	mount -t proc proc "$merged/proc"
	mount --bind /dev "$merged/dev"
	cp /etc/resolv.conf "$merged/etc/resolv.conf.bench"
	chroot "$merged" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
		sh -ec "mv /etc/resolv.conf /etc/resolv.conf.orig 2>/dev/null || true
			cp /etc/resolv.conf.bench /etc/resolv.conf
			$script
			rm -f /etc/resolv.conf /etc/resolv.conf.bench
			mv /etc/resolv.conf.orig /etc/resolv.conf 2>/dev/null || true
			rm -rf /var/cache/apt/archives/*.deb /var/cache/apt/*.bin /var/lib/apt/lists/* /var/log/apt /var/log/dpkg.log /tmp/*" >&2
	cleanup_mounts
	rm -rf "$work"
	touch "$layers/$n.done"
}

apt="apt-get update -q && apt-get install -y -q --no-install-recommends"
step 2 "$apt python3-minimal"
step 3 "$apt perl"
step 4 "$apt curl ca-certificates"
step 5 "rm -rf /usr/share/doc/* /usr/share/man/*; echo 'berth BenchmarkPull image' >/etc/bench-image"

# --- the registry -----------------------------------------------------------

if ! running; then
	rm -f "$pidfile"
	mkdir -p "$cache/registry"
	cat >"$cache/registry.yml" <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $cache/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YML
	docker-registry serve "$cache/registry.yml" >>"$cache/registry.log" 2>&1 9>&- </dev/null &
	echo $! >"$pidfile"
	for ((i = 0; i < 100; i++)); do
		curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null && break
		sleep 0.1
	done
	running || { log "registry did not start; see $cache/registry.log"; exit 1; }
fi

accept='application/vnd.docker.distribution.manifest.v2+json'
if ! curl -fsS -o /dev/null -I -H "Accept: $accept" "http://127.0.0.1:$port/v2/debian/manifests/bench"; then
	log "pushing $ref"
	(cd "$repo" && go run ./bench/internal/mkimage -o "$cache" "$ref" \
		"$layers/1" "$layers/2" "$layers/3" "$layers/4" "$layers/5") >&2
fi
echo "$ref"
