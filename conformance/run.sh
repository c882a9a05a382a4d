#!/usr/bin/env bash
# run.sh RUNTIME [OUTDIR]
#
# Runs every validation program of the OCI runtime-tools suite (pinned in
# this directory's go.mod) against RUNTIME, an OCI runtime with runc's
# command line, and prints a summary table.
#
#   RUNTIME  a command name on PATH or a path (made absolute here)
#   OUTDIR   where <program>.tap, <program>.stderr, summary.tsv and
#            tests.tsv (program, test, ok/not_ok/skip/diag) go;
#            default results/<basename of RUNTIME> beside this script
#
# Environment:
#   CONFORMANCE_CACHE    where the built programs are kept (default .cache/
#                        beside this script); they are rebuilt only when
#                        go.mod, go.sum or the Go version change
#   CONFORMANCE_TIMEOUT  seconds each program may run (default 60)
#   CONFORMANCE_ONLY     space-separated program names to run (default all)
#
# The exit status is 0 whenever the suite could be built and run, whatever
# the runtime passed: read the table, or summary.tsv, for that.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [[ $# -lt 1 || $# -gt 2 ]]; then
	echo "usage: $0 RUNTIME [OUTDIR]" >&2
	exit 2
fi
if [[ $(id -u) -ne 0 ]]; then
	echo "$0: must run as root (the runtimes create containers)" >&2
	exit 2
fi

runtime_arg=$1
if [[ $runtime_arg == */* ]]; then
	runtime=$(cd "$(dirname "$runtime_arg")" && pwd)/$(basename "$runtime_arg")
else
	runtime=$(command -v "$runtime_arg" || true)
fi
if [[ -z $runtime || ! -x $runtime ]]; then
	echo "$0: runtime $runtime_arg not found or not executable" >&2
	exit 2
fi
outdir=${2:-$here/results/$(basename "$runtime")}
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)

cache=${CONFORMANCE_CACHE:-$here/.cache}
timeout_s=${CONFORMANCE_TIMEOUT:-60}
tools_mod=github.com/opencontainers/runtime-tools

# --- build (once) ---------------------------------------------------------

build() {
	local stamp want
	want=$(cat "$here/go.mod" "$here/go.sum" <(go version) | sha256sum | cut -d' ' -f1)
	stamp=$cache/stamp
	if [[ -f $stamp && $(cat "$stamp") == "$want" && -x $cache/work/runtimetest ]]; then
		return 0
	fi
	echo "building runtimetest and the validation programs into $cache ..." >&2
	rm -rf "$cache"
	mkdir -p "$cache/bin" "$cache/work"
	local pkgs
	# Every validation/<name> package but the shared util is one program.
	pkgs=$(cd "$here" && go list "$tools_mod/validation/..." | grep -v '/validation/util$')
	# shellcheck disable=SC2086
	(cd "$here" && go build -o "$cache/bin/" $pkgs)
	(cd "$here" && go build -o "$cache/work/runtimetest" "$tools_mod/cmd/runtimetest")
	local moddir arch
	moddir=$(cd "$here" && go list -m -f '{{.Dir}}' "$tools_mod")
	arch=$(go env GOARCH)
	install -m 0644 "$moddir/rootfs-$arch.tar.gz" "$cache/work/rootfs-$arch.tar.gz"
	echo "$want" >"$stamp"
}
build

arch=$(go env GOARCH)
tarball=$cache/work/rootfs-$arch.tar.gz
# The programs untar this tarball into a fresh bundle for every container;
# check once that it is whole and extracts, so a broken one is not reported
# as a runtime failure.
scratch=$(mktemp -d /tmp/berth-conformance.XXXXXX)
tar -xzf "$tarball" -C "$scratch"
if [[ ! -x $scratch/bin/sh && ! -L $scratch/bin/sh ]]; then
	echo "$0: $tarball has no /bin/sh" >&2
	exit 1
fi
rm -rf --one-file-system "$scratch"

# --- containers ------------------------------------------------------------

# cleanup_containers DIR: delete the containers of the runtime whose bundle
# is under DIR, which a program left behind (one that timed out, or failed
# between create and delete). Containers of anybody else, in the same
# state directory, are left alone.
cleanup_containers() {
	local dir=$1 id bundle
	for id in $("$runtime" list -q 2>/dev/null || true); do
		bundle=$("$runtime" state "$id" 2>/dev/null |
			sed -n 's/.*"bundle": *"\([^"]*\)".*/\1/p' | head -1 || true)
		if [[ $bundle != "$dir"/* ]]; then
			continue
		fi
		"$runtime" kill "$id" KILL >/dev/null 2>&1 || true
		"$runtime" delete -f "$id" >/dev/null 2>&1 || true
	done
}

# remove_work DIR: unmount whatever is mounted under DIR, then remove it.
# A container with rootfsPropagation "shared" (linux_rootfs_propagation)
# propagates its mounts of the bundle back into the host's namespace, and
# they outlive the container.
remove_work() {
	local dir=$1 m tries=0
	while :; do
		mapfile -t mounts < <(awk -v p="$dir/" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
		if [[ ${#mounts[@]} -eq 0 || $tries -ge 5 ]]; then
			break
		fi
		for m in "${mounts[@]}"; do
			umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
		done
		tries=$((tries + 1))
	done
	rm -rf --one-file-system "$dir" 2>/dev/null || true
	if [[ -e $dir ]]; then
		echo "$0: could not remove $dir" >&2
	fi
}

work=""
cleanup() {
	if [[ -n $work ]]; then
		cleanup_containers "$work"
		remove_work "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- run -------------------------------------------------------------------

if [[ -n ${CONFORMANCE_ONLY:-} ]]; then
	programs=$CONFORMANCE_ONLY
else
	programs=$(ls "$cache/bin")
fi

summary=$outdir/summary.tsv
tests=$outdir/tests.tsv
printf 'program\tok\tnot_ok\tskip\tplan\tdiag\tstatus\n' >"$summary"
: >"$tests"

for name in $programs; do
	bin=$cache/bin/$name
	if [[ ! -x $bin ]]; then
		echo "$0: no validation program $name" >&2
		exit 2
	fi
	# A fresh work directory per program: the programs need runtimetest and
	# the tarball in their working directory and leave bundles in TMPDIR.
	work=$(mktemp -d /tmp/berth-conformance.XXXXXX)
	# Copies, not links: the programs copy runtimetest into each bundle
	# and would copy a symlink as a symlink.
	cp "$cache/work/runtimetest" "$tarball" "$work/"
	mkdir "$work/tmp"
	# As open as /tmp itself, so that only the suite's own 0700 bundles
	# stand in the way of a container in a user namespace.
	chmod 0755 "$work"
	chmod 1777 "$work/tmp"
	status=0
	(cd "$work" && RUNTIME=$runtime TMPDIR=$work/tmp \
		timeout --kill-after=10 "$timeout_s" "$bin" \
		</dev/null >"$outdir/$name.tap" 2>"$outdir/$name.stderr") || status=$?
	case $status in
	124 | 137) status_text=timeout ;;
	*) status_text=$status ;;
	esac
	records=$(awk -v program="$name" -f "$here/tap.awk" "$outdir/$name.tap")
	plan=$(awk '/^[0-9]+\.\.[0-9]+/ { split($1, p, "\\.\\."); n += p[2] } END { print n + 0 }' "$outdir/$name.tap")
	read -r ok notok skip diag < <(printf '%s\n' "$records" | awk -F'\t' '
		$3 == "ok" { ok++ } $3 == "not_ok" { notok++ } $3 == "skip" { skip++ } $3 == "diag" { diag++ }
		END { printf "%d %d %d %d\n", ok, notok, skip, diag }')
	printf '%s\t%d\t%d\t%d\t%d\t%d\t%s\n' "$name" "$ok" "$notok" "$skip" "$plan" "$diag" "$status_text" >>"$summary"
	# Some programs report only through their exit status (the *_fail ones
	# pass when the runtime refuses a bad config) or through a diagnostic
	# outside any test: one more record per program covers both.
	if [[ $status_text == 0 && $diag -eq 0 ]]; then clean=ok; else clean=not_ok; fi
	{
		if [[ -n $records ]]; then printf '%s\n' "$records"; fi
		printf '%s\t%s\t%s\n' "$name" "[program exits 0, no error diagnostic]" "$clean"
	} >>"$tests"
	cleanup_containers "$work"
	remove_work "$work"
	work=""
done

# --- report ----------------------------------------------------------------

echo "# $(basename "$runtime") ($runtime): OCI runtime-tools $(cd "$here" && go list -m -f '{{.Version}}' "$tools_mod"), TAP in $outdir"
awk -F'\t' '
	NR == 1 { printf "%-34s %5s %6s %5s %5s %4s  %s\n", "program", "ok", "not-ok", "skip", "plan", "diag", "status"; next }
	{
		printf "%-34s %5d %6d %5d %5d %4d  %s\n", $1, $2, $3, $4, $5, $6, $7
		ok += $2; notok += $3; skip += $4; plan += $5; diag += $6
		if ($7 != "0") bad++
		if ($7 == "timeout") to++
	}
	END {
		printf "%-34s %5d %6d %5d %5d %4d  %d non-zero exit(s), %d timeout(s)\n", "TOTAL", ok, notok, skip, plan, diag, bad, to
	}' "$summary"
