#!/usr/bin/env bash
# run.sh: time container start-up of berth, runc and crun (BenchmarkRuntimeRun)
# and print each runtime's median with its ratio to crun and to runc, and
# the median CPU time (user + system) of one run.
#
# The samples are interleaved: the test binary is built once and run COUNT
# times with -test.count=1, each run timing every runtime once, in an order
# rotated from one run to the next (BERTH_BENCH_ROTATE). Slow drift in the
# machine's load thus reaches every runtime alike, which `go test -count`
# would not do: it runs each sub-benchmark COUNT times in a row.
#
# Environment:
#   COUNT      samples per runtime (default 10)
#   BENCHTIME  -benchtime of one sample (default 1s)
#   BENCH      -bench pattern (default ^BenchmarkRuntimeRun$; e.g.
#              'RuntimeRun/(runc|crun)$' to leave berth out)
#   BENCH_OUT  keep the raw benchmark output in this file (benchstat reads it)
#
# Berth is built once from the work tree (./cmd/berth) into a temporary
# directory and passed to every round as BERTH_BENCH_BERTH, so that all
# rounds time the same binary; the table's heading names its commit.
#
# Runs as root (the runtimes create containers). Exits non-zero if the
# benchmark fails.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

if [[ $(id -u) -ne 0 ]]; then
	echo "$0: must run as root (the runtimes create containers)" >&2
	exit 2
fi

count=${COUNT:-10}
benchtime=${BENCHTIME:-1s}
pattern=${BENCH:-^BenchmarkRuntimeRun\$}

tmp=$(mktemp -d /tmp/berth-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
raw=${BENCH_OUT:-$tmp/raw.txt}
: >"$raw"

bench_build
bench_rounds 30m
# Result lines: BenchmarkRuntimeRun/<runtime>-<GOMAXPROCS>  <N>  <ns> ns/op;
# each round's output starts with its own "goos:" line.
awk "$bench_awk"'
$1 ~ /^BenchmarkRuntimeRun\// && $4 == "ns/op" {
	name = $1
	sub(/^BenchmarkRuntimeRun\//, "", name)
	sub(/-[0-9]+$/, "", name)
	if (!(name in n)) order[++nrt] = name
	v[name, ++n[name]] = $3 + 0
	byround[name, rounds] = $3 + 0
	for (f = 5; f < NF; f += 2)
		if ($(f + 1) == "cpu-ns/op") cpu[name, ++ncpu[name]] = $f + 0
}
END {
	if (nrt == 0) { print "no benchmark results" > "/dev/stderr"; exit 1 }
	for (i = 1; i <= nrt; i++) {
		r = order[i]
		delete a
		for (j = 1; j <= n[r]; j++) a[j] = v[r, j]
		med[r] = median(a, n[r])
		lo[r] = a[1]; hi[r] = a[n[r]]
		delete a
		for (j = 1; j <= ncpu[r]; j++) a[j] = cpu[r, j]
		cmed[r] = ncpu[r] ? median(a, ncpu[r]) : 0
	}
	printf "%-8s %7s %10s %10s %10s %9s %9s %8s %9s\n", "runtime", "samples", "median ms", "min ms", "max ms", "vs crun", "vs runc", "cpu ms", "cpu/crun"
	for (i = 1; i <= nrt; i++) {
		r = order[i]
		printf "%-8s %7d %10.2f %10.2f %10.2f %9s %9s %8.2f %9s\n", r, n[r], med[r] / 1e6, lo[r] / 1e6, hi[r] / 1e6, ratio(r, "crun"), ratio(r, "runc"), cmed[r] / 1e6, (cmed["crun"] > 0 ? sprintf("%.2fx", cmed[r] / cmed["crun"]) : "-")
	}
	line = ""
	for (i = 1; i <= nrt; i++)
		for (j = 1; j <= nrt; j++)
			if (order[j] == "crun" && order[i] != "crun" || order[j] == "runc" && order[i] != "runc" && order[i] != "crun")
				line = line sprintf("  %s/%s %s", order[i], order[j], paired(order[i], order[j]))
	if (line != "") print "median of per-round ratios:" line
}' "$raw"

if command -v benchstat >/dev/null; then
	echo
	benchstat "$raw"
fi
