#!/usr/bin/env bash
# compare.sh [RUNTIME [OUTDIR]]
#
# Runs the OCI runtime-tools validation suite (run.sh) against runc, crun
# and RUNTIME (default: bin/berth-runtime at the top of the repository),
# then writes OUTDIR/compare.md: a per-program table of the three, and every
# test that runc or crun passes but RUNTIME does not.
#
#   OUTDIR  default results/compare beside this script; the TAP of each
#           runtime goes to OUTDIR/runc, OUTDIR/crun and OUTDIR/under-test
#
# crun runs through crun-hybrid.sh, which hides the cgroup v1 hybrid
# layout's cgroup2 mount crun refuses. runc or crun missing from the
# machine is left out of the reference with a warning.
#
# With CONFORMANCE_REUSE=1, runc's and crun's results already in OUTDIR are
# used again instead of re-running them (they do not change while berth
# does): only RUNTIME runs.
#
# Exits 0 once the comparison is written, whatever RUNTIME passed; exits 1
# when CONFORMANCE_STRICT=1 and RUNTIME fails a test runc or crun passes.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

if [[ $# -gt 2 ]]; then
	echo "usage: $0 [RUNTIME [OUTDIR]]" >&2
	exit 2
fi
third=${1:-$repo/bin/berth-runtime}
outdir=${2:-$here/results/compare}
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
third_name=$(basename "$third")
case $third_name in
runc | crun) third_name="$third_name(under-test)" ;;
esac

refs=()
if command -v runc >/dev/null; then
	refs+=(runc)
else
	echo "$0: runc is not installed: left out" >&2
fi
if command -v crun >/dev/null; then
	refs+=(crun)
else
	echo "$0: crun is not installed: left out" >&2
fi
if [[ ${#refs[@]} -eq 0 ]]; then
	echo "$0: neither runc nor crun is installed: nothing to compare with" >&2
	exit 2
fi

for ref in "${refs[@]}"; do
	if [[ ${CONFORMANCE_REUSE:-0} == 1 && -s $outdir/$ref/summary.tsv && -s $outdir/$ref/tests.tsv ]]; then
		echo "reusing $ref's results in $outdir/$ref (CONFORMANCE_REUSE=1)"
		continue
	fi
	case $ref in
	runc) "$here/run.sh" runc "$outdir/runc" ;;
	crun) "$here/run.sh" "$here/crun-hybrid.sh" "$outdir/crun" ;;
	esac
	echo
done
"$here/run.sh" "$third" "$outdir/under-test"
echo

version() {
	case $1 in
	runc | crun) "$1" --version 2>/dev/null | head -1 || true ;;
	*) "$third" --version 2>/dev/null | head -1 || echo "(no --version)" ;;
	esac
}

md=$outdir/compare.md
{
	echo "# OCI runtime-tools conformance: $third_name vs ${refs[*]}"
	echo
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), host: $(uname -r), $(nproc) CPUs"
	for ref in "${refs[@]}"; do
		echo "- $ref: $(version "$ref")"
	done
	echo "- $third_name: \`$third\`: $(version third)"
	echo "- suite: github.com/opencontainers/runtime-tools $(cd "$here" && go list -m -f '{{.Version}}' github.com/opencontainers/runtime-tools)"
	echo
} >"$md"

# One awk reads every runtime's tests.tsv and summary.tsv; ARGV order is
# the column order, the last one is the runtime under test.
files=()
labels=()
for ref in "${refs[@]}"; do
	files+=("$outdir/$ref/summary.tsv" "$outdir/$ref/tests.tsv")
	labels+=("$ref")
done
files+=("$outdir/under-test/summary.tsv" "$outdir/under-test/tests.tsv")
labels+=("$third_name")

awk -F'\t' -v labels="${labels[*]}" -v md="$md" '
function esc(s) { gsub(/\|/, "\\|", s); return s }
function cell(r) { return r == "" ? "missing" : (r == "not_ok" ? "**not ok**" : r) }
BEGIN {
	n = split(labels, label, " ")
	under = n
	for (i = 1; i < ARGC; i++) {
		rtof[ARGV[i]] = int((i + 1) / 2)
		summaryfile[ARGV[i]] = (i % 2 == 1)
	}
}
FNR == 1 { rt = rtof[FILENAME] }
# summary.tsv: program ok not_ok skip plan diag status
summaryfile[FILENAME] {
	if (FNR == 1) next
	if (!($1 in prog_seen)) { prog_seen[$1] = 1; progs[++nprogs] = $1 }
	sum[rt, $1] = $2 "/" $3 "/" $4 (($6 > 0) ? " +" $6 "d" : "") " (" $7 ")"
	next
}
# tests.tsv: program test result
{
	key = $1 SUBSEP $2
	if (!(key in test_seen)) { test_seen[key] = 1; tests[++ntests] = key }
	if ($3 != "diag") res[rt, key] = $3
}
END {
	# Reference tests: passed by at least one of runc and crun.
	for (i = 1; i <= ntests; i++) {
		k = tests[i]
		split(k, kp, SUBSEP)
		ref = 0
		for (r = 1; r < under; r++) if (res[r, k] == "ok") ref = 1
		if (!ref) continue
		nref++; pref[kp[1]]++
		if (res[under, k] == "ok") { npass++; ppass[kp[1]]++ }
		else fails[++nfail] = k
	}
	for (i = 1; i <= ntests; i++) {
		k = tests[i]
		if (res[under, k] != "ok") continue
		other = 0
		for (r = 1; r < under; r++) if (res[r, k] == "ok") other = 1
		if (!other) nextra++
	}

	printf "## Totals\n\n" >> md
	printf "%s passes %d of the %d tests that %s pass%s (%d fail, are skipped or missing).", label[under], npass, nref, (under > 2 ? "runc or crun" : label[1]), (under > 2 ? "" : "es"), nfail >> md
	printf " It passes %d test(s) that none of the reference runtimes passes.\n\n", nextra >> md
	printf "%s: %d/%d reference tests pass\n", label[under], npass, nref

	printf "## Per program\n\nCells are ok/not-ok/skip, +Nd for N error diagnostics outside any test, and the exit status (or timeout). \"ref\" counts the tests, plus the program-exit pseudo-test, that runc or crun passes; \"%s on ref\" how many of those %s passes.\n\n", label[under], label[under] >> md
	hdr = "| program |"; sep = "| --- |"
	for (r = 1; r <= n; r++) { hdr = hdr " " label[r] " |"; sep = sep " --- |" }
	hdr = hdr " ref | " label[under] " on ref |"; sep = sep " ---: | ---: |"
	print hdr >> md; print sep >> md
	printf "%-34s", "program" 
	for (r = 1; r <= n; r++) printf " %-26s", label[r]
	printf " %5s %6s\n", "ref", "passed"
	for (p = 1; p <= nprogs; p++) {
		name = progs[p]
		line = "| " name " |"
		printf "%-34s", name
		for (r = 1; r <= n; r++) {
			c = ((r, name) in sum) ? sum[r, name] : "not run"
			line = line " " c " |"
			printf " %-26s", c
		}
		mark = (pref[name] + 0 > ppass[name] + 0) ? " **" (pref[name] - ppass[name]) " short**" : ""
		line = line " " pref[name] + 0 " | " ppass[name] + 0 mark " |"
		printf " %5d %6d%s\n", pref[name], ppass[name], (mark != "" ? "  <-" : "")
		print line >> md
	}

	printf "\n## Tests %s fails that runc or crun passes\n\n", label[under] >> md
	if (nfail == 0) {
		printf "None.\n" >> md
	} else {
		hdr = "| program | test |"; sep = "| --- | --- |"
		for (r = 1; r <= n; r++) { hdr = hdr " " label[r] " |"; sep = sep " --- |" }
		print hdr >> md; print sep >> md
		for (i = 1; i <= nfail; i++) {
			k = fails[i]
			split(k, kp, SUBSEP)
			line = "| " kp[1] " | " esc(kp[2]) " |"
			for (r = 1; r <= n; r++) line = line " " cell(res[r, k]) " |"
			print line >> md
		}
	}
	if (nfail > 0) exit 3
}' "${files[@]}" && rc=0 || rc=$?

if [[ $rc -ne 0 && $rc -ne 3 ]]; then
	echo "$0: comparing failed (awk exit $rc)" >&2
	exit 1
fi
echo
echo "comparison written to $md"
if [[ $rc -eq 3 && ${CONFORMANCE_STRICT:-0} == 1 ]]; then
	exit 1
fi
