#!/usr/bin/env bash
# pull.sh: time the pull of a multi-layer Debian image from a registry on
# 127.0.0.1 into an empty store by berth, podman and skopeo copy + umoci raw
# unpack (BenchmarkPull), and print each one's median with its ratio to
# podman and to skopeo+umoci, the median CPU time (user + system) of one
# pull, and the median time of the sync(1) run after it (write-back left
# behind, not in the timed part).
#
# The image is built once and served by bench/mkdebian.sh (cached under
# /var/cache/berth-bench; the first run takes a minute or two and reaches
# Debian's mirror); the registry is stopped at the end unless it was
# already running.
#
# The samples are interleaved as in run.sh: the test binary is built once
# and run COUNT times with -test.count=1, each run timing every puller once
# (after one untimed, checked pull of its own), in an order rotated from one
# run to the next (BERTH_BENCH_ROTATE).
#
# Environment:
#   COUNT      rounds (default 5)
#   BENCHTIME  -benchtime of one sample (default 1x: one timed pull)
#   BENCH      -bench pattern (default ^BenchmarkPull$; e.g.
#              'Pull/(podman|berth)$')
#   BENCH_OUT  keep the raw benchmark output in this file (benchstat reads it)
#   CACHE, PORT, MIRROR   passed to mkdebian.sh
#
# Berth is built once from the work tree (make -s berth BIN=<tmp>) and passed
# to every round as BERTH_BENCH_BERTH. Runs as root. Exits non-zero if the
# benchmark fails.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

if [[ $(id -u) -ne 0 ]]; then
	echo "$0: must run as root (the pullers mount overlays)" >&2
	exit 2
fi

count=${COUNT:-5}
benchtime=${BENCHTIME:-1x}
pattern=${BENCH:-^BenchmarkPull\$}
cache=${CACHE:-/var/cache/berth-bench}
port=${PORT:-5123}

tmp=$(mktemp -d /tmp/berth-bench.XXXXXX)
started=
if ! curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null; then started=1; fi
cleanup() {
	rm -rf "$tmp"
	if [[ -n $started ]]; then "$here/mkdebian.sh" stop; fi
}
trap cleanup EXIT
raw=${BENCH_OUT:-$tmp/raw.txt}
: >"$raw"

image=$("$here/mkdebian.sh")
export BERTH_BENCH_PULL_IMAGE=$image
# The image's size: compressed from the manifest, unpacked from the cached
# layer files (the sum of the layer tars' sizes).
sizes=$(curl -fsS -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
	"http://127.0.0.1:$port/v2/debian/manifests/bench" |
	python3 -c 'import json,sys; m=json.load(sys.stdin); print(len(m["layers"]), sum(l["size"] for l in m["layers"]))')
unpacked=0
for f in "$cache"/layer*.tar.gz; do unpacked=$((unpacked + $(zcat "$f" | wc -c))); done
read -r nlayers compressed <<<"$sizes"
bench_build
echo "$image: $nlayers layers, $compressed bytes compressed, $unpacked bytes of layer tars" >&2
bench_rounds 60m
# Result lines: BenchmarkPull/<puller>-<GOMAXPROCS>  <N>  <ns> ns/op  <cpu>
# cpu-ns/op  <sync> sync-ns/op; each round's output starts with its own
# "goos:" line.
awk "$bench_awk"'
function metric(name, unit,    f) {
	for (f = 5; f < NF; f += 2)
		if ($(f + 1) == unit) return $f + 0
	return -1
}
$1 ~ /^BenchmarkPull\// && $4 == "ns/op" {
	name = $1
	sub(/^BenchmarkPull\//, "", name)
	sub(/-[0-9]+$/, "", name)
	if (!(name in n)) order[++np] = name
	v[name, ++n[name]] = $3 + 0
	byround[name, rounds] = $3 + 0
	c = metric(name, "cpu-ns/op"); if (c >= 0) cpu[name, ++ncpu[name]] = c
	s = metric(name, "sync-ns/op"); if (s >= 0) syn[name, ++nsyn[name]] = s
}
END {
	if (np == 0) { print "no benchmark results" > "/dev/stderr"; exit 1 }
	for (i = 1; i <= np; i++) {
		r = order[i]
		delete a
		for (j = 1; j <= n[r]; j++) a[j] = v[r, j]
		med[r] = median(a, n[r])
		lo[r] = a[1]; hi[r] = a[n[r]]
		delete a
		for (j = 1; j <= ncpu[r]; j++) a[j] = cpu[r, j]
		cmed[r] = ncpu[r] ? median(a, ncpu[r]) : 0
		delete a
		for (j = 1; j <= nsyn[r]; j++) a[j] = syn[r, j]
		smed[r] = nsyn[r] ? median(a, nsyn[r]) : 0
	}
	printf "%-13s %7s %9s %7s %7s %9s %9s %7s %9s %8s\n", "puller", "samples", "median s", "min s", "max s", "vs podman", "vs sk+um", "cpu s", "cpu/podman", "sync ms"
	for (i = 1; i <= np; i++) {
		r = order[i]
		printf "%-13s %7d %9.2f %7.2f %7.2f %9s %9s %7.2f %9s %8.1f\n", r, n[r], med[r] / 1e9, lo[r] / 1e9, hi[r] / 1e9, ratio(r, "podman"), ratio(r, "skopeo+umoci"), cmed[r] / 1e9, (cmed["podman"] > 0 ? sprintf("%.2fx", cmed[r] / cmed["podman"]) : "-"), smed[r] / 1e6
	}
	line = ""
	for (i = 1; i <= np; i++)
		for (j = 1; j <= np; j++)
			if (order[j] == "podman" && order[i] != "podman" || order[j] == "skopeo+umoci" && order[i] == "berth")
				line = line sprintf("  %s/%s %s", order[i], order[j], paired(order[i], order[j]))
	if (line != "") print "median of per-round ratios:" line
}' "$raw"

if command -v benchstat >/dev/null; then
	echo
	benchstat "$raw"
fi
