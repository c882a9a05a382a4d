// Package conformance holds berth's OCI runtime conformance harness: run.sh
// builds the validation programs of github.com/opencontainers/runtime-tools
// (pinned by tools.go in this module's go.mod) and runs them against a
// runtime; compare.sh compares berth with runc and crun. It is a module of
// its own so that the old runtime-spec and selinux versions runtime-tools
// v0.9.0 needs never reach berth's main module. See README.md.
package conformance
