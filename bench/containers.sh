#!/usr/bin/env bash
# containers.sh: time whole containers through the CLIs of berth, podman and
# docker (BenchmarkContainers): `run --rm busybox true` with each engine's
# default network and with --network none, 50 `run -d busybox sleep 600` in
# a row (then one `rm -f` of all 50, timed apart), and the memory of each
# engine's per-container monitor (berth's shim, conmon,
# containerd-shim-runc-v2). Prints each engine's median per measure, the
# medians of the per-round ratios berth/peer, and the monitors' memory.
#
# Everything runs in a network namespace of its own (made here with
# unshare; only its loopback is up): podman's and docker's default networks
# add a bridge, veth pairs and firewall rules, which stay out of the
# host's namespace. Each round is one run of the test binary, which sets up
# fresh stores for all three (berth and podman: private roots; docker: a
# dockerd of its own with private data and exec roots and socket, stopped
# at the end of the round) and imports the same busybox tar into each.
#
# The samples are interleaved as in run.sh: the test binary is built once
# and run COUNT times with -test.count=1, each run timing every engine once
# per measure, in an order rotated from one run to the next
# (BERTH_BENCH_ROTATE).
#
# Environment:
#   COUNT      rounds (default 5)
#   BENCHTIME  -benchtime of one sample (default 3s; a detached sample is
#              always one iteration of 50 containers)
#   BENCH      -bench pattern (default ^BenchmarkContainers$; e.g.
#              'Containers/run/' for the run --rm measures only, or
#              'Containers/.*/(berth|docker)$')
#   DETACHED   containers per detached sample (default 50)
#   BENCH_OUT  keep the raw benchmark output in this file
#
# Needs root, busybox-static, podman, runc and Debian's docker.io (dockerd
# and /usr/bin/docker); an engine that is missing is skipped. Exits
# non-zero if the benchmark fails.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

if [[ $(id -u) -ne 0 ]]; then
	echo "$0: must run as root (the engines create containers)" >&2
	exit 2
fi

# Into a private network namespace, once (BERTH_BENCH_NETNS marks it).
if [[ ${BERTH_BENCH_NETNS:-} != 1 ]]; then
	exec unshare --net -- env BERTH_BENCH_NETNS=1 "$here/containers.sh" "$@"
fi
ip link set lo up

count=${COUNT:-5}
benchtime=${BENCHTIME:-3s}
pattern=${BENCH:-^BenchmarkContainers\$}
export BERTH_BENCH_DETACHED=${DETACHED:-50}

tmp=$(mktemp -d /tmp/berth-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
raw=${BENCH_OUT:-$tmp/raw.txt}
: >"$raw"

bench_build
echo "podman $(podman --version 2>/dev/null | awk '{print $3}'), docker $(/usr/bin/docker --version 2>/dev/null | awk '{print $3}' | tr -d ,), runc $(runc --version 2>/dev/null | awk 'NR==1{print $3}'), conmon $(conmon --version 2>/dev/null | awk 'NR==1{print $3}')"
bench_rounds 90m
# Result lines: BenchmarkContainers/<measure>/<engine>-<GOMAXPROCS>  <N>
# <ns> ns/op  [<value> <unit>]...; each round's output starts with its own
# "goos:" line.
awk -v detached="$BERTH_BENCH_DETACHED" "$bench_awk"'
function metric(unit,    f) {
	for (f = 5; f < NF; f += 2)
		if ($(f + 1) == unit) return $f + 0
	return -1
}
# pairedmin(x, y, z): the median over rounds of x / min(y, z), the ratio to
# the faster peer of each round.
function pairedmin(x, y, z,    r, k, a, m) {
	k = 0
	for (r = 1; r <= rounds; r++)
		if ((x, r) in byround && (y, r) in byround && (z, r) in byround) {
			m = byround[y, r] < byround[z, r] ? byround[y, r] : byround[z, r]
			a[++k] = byround[x, r] / m
		}
	return k ? sprintf("%.3fx", median(a, k)) : "-"
}
function collect(name, unit,    v) {
	v = metric(unit)
	if (v >= 0) { mv[name, unit, ++mn[name, unit]] = v }
}
function mmed(name, unit,    a, j) {
	if (!((name, unit) in mn)) return -1
	for (j = 1; j <= mn[name, unit]; j++) a[j] = mv[name, unit, j]
	return median(a, mn[name, unit])
}
$1 ~ /^BenchmarkContainers\// && $4 == "ns/op" {
	name = $1
	sub(/^BenchmarkContainers\//, "", name)
	sub(/-[0-9]+$/, "", name)
	if (!(name in n)) order[++nn] = name
	v[name, ++n[name]] = $3 + 0
	byround[name, rounds] = $3 + 0
	c = metric("cpu-ns/op")
	if (c >= 0) { byround["cpu:" name, rounds] = c; collect(name, "cpu-ns/op") }
	collect(name, "rm-ns/op"); collect(name, "rss-kB"); collect(name, "anon-kB")
	collect(name, "pss-kB"); collect(name, "daemon-rss-kB")
}
END {
	if (nn == 0) { print "no benchmark results" > "/dev/stderr"; exit 1 }
	for (i = 1; i <= nn; i++) {
		r = order[i]
		delete a
		for (j = 1; j <= n[r]; j++) a[j] = v[r, j]
		med[r] = median(a, n[r])
		lo[r] = a[1]; hi[r] = a[n[r]]
	}
	printf "%-18s %7s %10s %10s %10s %9s %9s %8s %8s\n", "measure/engine", "samples", "median ms", "min ms", "max ms", "vs podman", "vs docker", "cpu ms", "rm ms"
	for (i = 1; i <= nn; i++) {
		r = order[i]
		split(r, p, "/")
		rmm = mmed(r, "rm-ns/op")
		cm = mmed(r, "cpu-ns/op")
		printf "%-18s %7d %10.1f %10.1f %10.1f %9s %9s %8s %8s\n", r, n[r], med[r] / 1e6, lo[r] / 1e6, hi[r] / 1e6,
			ratio(r, p[1] "/podman"), ratio(r, p[1] "/docker"), (cm >= 0 ? sprintf("%.1f", cm / 1e6) : "-"), (rmm >= 0 ? sprintf("%.0f", rmm / 1e6) : "-")
	}
	print "(cpu: user + system time of all the engine'"'"'s processes but the containers'"'"' own, daemons included, per sample: see README.md)"
	print "(detached: one sample is " detached " containers started in a row; per container: the median divided by " detached ")"
	print "median of per-round ratios (goal: berth <= 0.12x the faster peer):"
	split("run run-none detached", ms, " ")
	for (i = 1; i <= 3; i++) {
		m = ms[i]
		if (!((m "/berth") in n)) continue
		printf "  %-9s berth/podman %s  berth/docker %s  berth/faster %s;  cpu: berth/podman %s  berth/docker %s\n", m, paired(m "/berth", m "/podman"),
			paired(m "/berth", m "/docker"), pairedmin(m "/berth", m "/podman", m "/docker"),
			paired("cpu:" m "/berth", "cpu:" m "/podman"), paired("cpu:" m "/berth", "cpu:" m "/docker")
	}
	if (("run/berth" in n) && ("run-none/podman" in n))
		printf "  berth run (isolated netns) vs peers run --network none: berth/podman %s  berth/docker %s  berth/faster %s\n",
			paired("run/berth", "run-none/podman"), paired("run/berth", "run-none/docker"),
			pairedmin("run/berth", "run-none/podman", "run-none/docker")
	hdr = 0
	for (i = 1; i <= nn; i++) {
		r = order[i]
		if (mmed(r, "rss-kB") < 0) continue
		if (!hdr++) {
			print ""
			printf "%-18s %12s %12s %12s %16s\n", "monitor memory", "VmRSS kB", "RssAnon kB", "Pss kB", "daemons RSS kB"
		}
		d = mmed(r, "daemon-rss-kB")
		printf "%-18s %12.0f %12.0f %12.0f %16s\n", r, mmed(r, "rss-kB"), mmed(r, "anon-kB"), mmed(r, "pss-kB"), (d >= 0 ? sprintf("%.0f", d) : "-")
	}
	if (hdr) print "(medians over rounds of the per-round median over the " detached " monitors; daemons: dockerd + containerd)"
}' "$raw"
