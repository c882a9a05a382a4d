// Package bench holds berth's benchmarks against its peers, each timing
// the same work done by berth and by the peers in one run so that the
// figures compare: container start-up by the OCI runtime against runc and
// crun (run.sh), a pull into an empty store against podman and skopeo +
// umoci (pull.sh), and whole containers through the CLIs against podman
// and docker (containers.sh). It has no code of its own outside its tests.
// See README.md for how to read the figures and why they are measured the
// way they are.
package bench
