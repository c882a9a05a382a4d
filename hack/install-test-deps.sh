#!/usr/bin/env bash
# install-test-deps.sh — what berth's tests need, from Debian's packages.
# busybox-static: the container rootfs; runc and crun: peers for the
# benchmark and conformance runs; podman and containerd: engines that must
# drive berth-runtime as they drive runc (interop tests); qemu: the cgroup
# v2 VM; iproute2, procps, util-linux: network namespaces, ps, unshare;
# docker-registry, skopeo, umoci, apache2-utils (htpasswd): the registry the
# image tests push to and pull from, and the tools they check interop with.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
	busybox-static runc crun podman containerd qemu-system-x86 iproute2 procps util-linux file \
	docker-registry skopeo umoci apache2-utils ca-certificates make gcc libc6-dev >/dev/null
