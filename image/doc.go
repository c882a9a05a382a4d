// Package image is berth's model of an OCI or Docker image over its blobs:
// manifests and indexes parsed and checked, the manifest for a platform
// chosen from an index, the config, and the chain IDs that name the
// snapshots an image unpacks into.
//
// Everything here is a pure function of bytes and descriptors: fetching
// blobs (package registry), storing them (package content) and unpacking
// layers (packages archive and snapshot) happen elsewhere.
package image
