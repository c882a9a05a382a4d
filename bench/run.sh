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

(cd "$repo" && go test -c -o "$tmp/bench.test" ./bench)
# Berth is built once, here, so that every round times the same binary even
# if the work tree changes meanwhile. A failed build is reported once, and
# the rounds skip berth.
berth_version=$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)
if ! make -s -C "$repo" berth BIN="$tmp" >"$tmp/build.txt" 2>&1; then
	echo "$0: berth not built, skipped:" >&2
	head -20 "$tmp/build.txt" >&2 || true
fi
export BERTH_BENCH_BERTH=$tmp/berth-runtime
# As under go test: the package directory as working directory, and the go
# command that built the binary first on PATH (TestMain builds berth).
goroot=$(go env GOROOT)
export PATH="$goroot/bin:$PATH"
echo "bench.test -test.bench '$pattern' -test.benchtime $benchtime, $count interleaved rounds" >&2
for ((i = 0; i < count; i++)); do
	status=0
	(cd "$here" && BERTH_BENCH_ROTATE=$i "$tmp/bench.test" -test.run '^$' -test.bench "$pattern" \
		-test.count 1 -test.benchtime "$benchtime" -test.timeout 30m -test.v) \
		</dev/null >"$tmp/round.txt" 2>&1 || status=$?
	cat "$tmp/round.txt" >>"$raw"
	# Progress, skips and failures to stderr; the table alone to stdout.
	grep -E '^(Benchmark.*ns/op|--- |    )' "$tmp/round.txt" | awk -v r="$((i + 1))" '{ print "round " r ": " $0 }' >&2 || true
	if [[ $status -ne 0 ]]; then
		echo "$0: round $((i + 1)) failed (exit $status); its output:" >&2
		tail -40 "$tmp/round.txt" >&2
		exit "$status"
	fi
done

echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(grep -m1 '^cpu:' "$raw" | cut -d' ' -f2-), $(nproc) CPUs, kernel $(uname -r); berth $berth_version"
# Result lines: BenchmarkRuntimeRun/<runtime>-<GOMAXPROCS>  <N>  <ns> ns/op;
# each round's output starts with its own "goos:" line.
awk '
function sort(a, k,    i, j, t) {
	for (i = 2; i <= k; i++) {
		t = a[i]
		for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]
		a[j + 1] = t
	}
}
function median(a, k) {
	sort(a, k)
	return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
}
function ratio(name, ref) {
	return (ref in med) ? sprintf("%.2fx", med[name] / med[ref]) : "-"
}
# paired(a, b): the median over rounds of a/b, from samples taken minutes
# apart at most, so less moved by slow drift than the ratio of medians.
function paired(x, y,    r, k, a) {
	k = 0
	for (r = 1; r <= rounds; r++)
		if ((x, r) in byround && (y, r) in byround) a[++k] = byround[x, r] / byround[y, r]
	return k ? sprintf("%.2fx", median(a, k)) : "-"
}
/^goos:/ { rounds++ }
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
