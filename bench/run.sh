#!/usr/bin/env bash
# run.sh: time container start-up of berth, runc and crun (BenchmarkRuntimeRun)
# and print each runtime's median with its ratio to crun and to runc.
#
# Environment:
#   COUNT      samples per runtime (go test -count; default 10). The
#              sub-benchmarks alternate within each count, so slow drift in
#              the machine's load reaches every runtime alike.
#   BENCHTIME  go test -benchtime of one sample (default 1s)
#   BENCH      -bench pattern (default ^BenchmarkRuntimeRun$; e.g.
#              'RuntimeRun/(runc|crun)$' to leave berth out)
#   BENCH_OUT  keep go test's raw output in this file (benchstat reads it)
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

echo "go test -run '^\$' -bench '$pattern' -count $count -benchtime $benchtime ./bench" >&2
status=0
(cd "$repo" && go test -run '^$' -bench "$pattern" -count "$count" -benchtime "$benchtime" \
	-timeout 60m -v ./bench) </dev/null >"$raw" 2>&1 || status=$?
# The progress and the skips go to stderr; the table alone to stdout.
grep -E '^(Benchmark|goos|goarch|cpu|pkg|ok|FAIL|PASS|---|    )' "$raw" |
	grep -vE '^BenchmarkRuntimeRun(/[a-z]+)?$' | awk '!seen[$0]++' >&2 || true
if [[ $status -ne 0 ]]; then
	echo "$0: go test failed (exit $status); its output:" >&2
	tail -40 "$raw" >&2
	exit "$status"
fi

echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(grep -m1 '^cpu:' "$raw" | cut -d' ' -f2-), $(nproc) CPUs, kernel $(uname -r)"
# Result lines: BenchmarkRuntimeRun/<runtime>-<GOMAXPROCS>  <N>  <ns> ns/op
awk '
$1 ~ /^BenchmarkRuntimeRun\// && $4 == "ns/op" {
	name = $1
	sub(/^BenchmarkRuntimeRun\//, "", name)
	sub(/-[0-9]+$/, "", name)
	if (!(name in n)) order[++nrt] = name
	v[name, ++n[name]] = $3
}
function median(name,    i, j, t, k, a) {
	k = n[name]
	for (i = 1; i <= k; i++) a[i] = v[name, i] + 0
	for (i = 2; i <= k; i++) {
		t = a[i]
		for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]
		a[j + 1] = t
	}
	lo[name] = a[1]; hi[name] = a[k]
	return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
}
function ratio(name, ref) {
	return (ref in med) ? sprintf("%.2fx", med[name] / med[ref]) : "-"
}
END {
	if (nrt == 0) { print "no benchmark results" > "/dev/stderr"; exit 1 }
	for (i = 1; i <= nrt; i++) med[order[i]] = median(order[i])
	printf "%-8s %7s %10s %10s %10s %9s %9s\n", "runtime", "samples", "median ms", "min ms", "max ms", "vs crun", "vs runc"
	for (i = 1; i <= nrt; i++) {
		r = order[i]
		printf "%-8s %7d %10.2f %10.2f %10.2f %9s %9s\n", r, n[r], med[r] / 1e6, lo[r] / 1e6, hi[r] / 1e6, ratio(r, "crun"), ratio(r, "runc")
	}
}' "$raw"

if command -v benchstat >/dev/null && [[ -n ${BENCH_OUT:-} ]]; then
	echo
	benchstat "$raw"
fi
