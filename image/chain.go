package image

import (
	"github.com/opencontainers/go-digest"
)

// ChainIDs returns the chain ID of each prefix of a layer stack, given the
// layers' diff IDs (the digests of their uncompressed tars), bottom first:
//
//	ChainID(L0)    = DiffID(L0)
//	ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + DiffID(Ln))
//
// The chain ID names the snapshot holding those layers applied in order,
// so images that share a base share its snapshots.
func ChainIDs(diffIDs []digest.Digest) []digest.Digest {
	out := make([]digest.Digest, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		out[i] = digest.FromString(out[i-1].String() + " " + d.String())
	}
	return out
}
