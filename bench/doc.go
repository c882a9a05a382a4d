// Package bench holds berth's benchmarks against its peers: the same work
// done by berth's OCI runtime and by runc and crun, timed in one process so
// that the figures compare. It has no code of its own outside its tests;
// run.sh runs the benchmarks and prints each runtime's median and its ratio
// to the others. See README.md for how to read the figures and why they are
// measured the way they are.
package bench
