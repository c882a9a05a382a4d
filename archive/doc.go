// Package archive reads and writes layer tar streams: it decompresses them,
// applies them to a directory safely, and turns an overlay upper directory
// back into a layer.
//
// Whiteouts are handled here, at the archive boundary, and nowhere else
// (containerd does the same). An OCI layer deletes a path with an empty
// ".wh.<name>" entry and hides everything lower layers put in a directory
// with ".wh..wh..opq". Apply converts them for the directory it writes to:
//
//	tar entry          OverlayWhiteouts (dst is an     NaiveWhiteouts (dst is a full
//	                   overlay upper dir)              copy of the lower layers)
//	.wh.<name>         char device 0/0 named <name>    remove <name>
//	<d>/.wh..wh..opq   xattr trusted.overlay.opaque=y  remove what lower layers put
//	                   on <d>                          in <d>; keep this layer's
//
// WriteDiff does the reverse for an overlay upper directory.
//
// # Safety
//
// A layer is untrusted input and Apply runs as root. No entry may create,
// change or follow anything outside dst:
//
//   - Names are cleaned; a leading "/" is dropped (the path is taken
//     relative to dst, as GNU tar does) and a name that climbs out of dst
//     with ".." is refused with errdefs.ErrInvalidArgument.
//   - Every parent directory is resolved with openat2(2) and
//     RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS, so symlinks, including ones an
//     earlier entry of the same tar planted, resolve as if dst were "/".
//     Kernels without openat2 fall back to filepath-securejoin, which
//     resolves the same way but can race with concurrent renames in dst.
//   - The entry itself is created with *at(2) calls on its parent's file
//     descriptor, never following a final symlink: an existing entry of the
//     same name is removed first, and files are created O_EXCL|O_NOFOLLOW.
//   - Hardlink targets resolve inside dst like any other path and must exist.
//   - trusted.overlay.* and user.overlay.* xattrs in the tar are ignored:
//     they would let a layer forge whiteouts, opaque dirs or redirects.
//   - Character and block device entries are skipped and counted in
//     Stats.SkippedDevices. Docker creates them; we do not, because a device
//     node in an image grants whoever runs it access to host hardware nobody
//     asked for, and containers get their /dev from the runtime anyway.
//     Whiteout devices are made by Apply itself, never taken from the tar.
//   - Sparse entries (GNU or PAX) are refused: their holes cost nothing in
//     the tar but would be written out as zeros, so a few bytes could fill
//     the disk. Image tools do not produce them.
//   - Setuid, setgid and sticky bits are kept: images need them (su, ping).
package archive
