# lib.sh — what run.sh and pull.sh share; sourced, not run. The caller sets
# here, repo, tmp, raw, pattern, benchtime and count.

# bench_build builds the test binary and, once, berth (so that every round
# times the same binary even if the work tree changes meanwhile; a failed
# build is reported once and the rounds skip berth), and sets
# berth_version.
bench_build() {
	(cd "$repo" && go test -c -o "$tmp/bench.test" ./bench)
	berth_version=$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)
	if ! make -s -C "$repo" berth BIN="$tmp" >"$tmp/build.txt" 2>&1; then
		echo "$0: berth not built, skipped:" >&2
		head -20 "$tmp/build.txt" >&2 || true
	fi
	export BERTH_BENCH_BERTH=$tmp/berth-runtime
	# As under go test: the package directory as working directory, and the
	# go command that built the binary first on PATH (TestMain builds berth).
	local goroot
	goroot=$(go env GOROOT)
	export PATH="$goroot/bin:$PATH"
}

# bench_rounds TIMEOUT runs the count interleaved rounds, each with the
# order of the subjects rotated (BERTH_BENCH_ROTATE), appending the output
# to $raw; progress goes to stderr. A failed round ends the script.
bench_rounds() {
	local timeout=$1 i status
	echo "bench.test -test.bench '$pattern' -test.benchtime $benchtime, $count interleaved rounds" >&2
	for ((i = 0; i < count; i++)); do
		status=0
		(cd "$here" && BERTH_BENCH_ROTATE=$i "$tmp/bench.test" -test.run '^$' -test.bench "$pattern" \
			-test.count 1 -test.benchtime "$benchtime" -test.timeout "$timeout" -test.v) \
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
}

# bench_awk holds the awk functions both tables use: median, ratio of
# medians, and paired(a, b), the median over rounds of a/b — from samples
# taken minutes apart at most, so less moved by slow drift than the ratio
# of medians. Rounds are counted by the "goos:" line each starts with.
bench_awk='
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
function paired(x, y,    r, k, a) {
	k = 0
	for (r = 1; r <= rounds; r++)
		if ((x, r) in byround && (y, r) in byround) a[++k] = byround[x, r] / byround[y, r]
	return k ? sprintf("%.2fx", median(a, k)) : "-"
}
/^goos:/ { rounds++ }
'
