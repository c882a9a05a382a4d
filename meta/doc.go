// Package meta is berth's metadata database: image records by name and by
// target digest, and leases that protect content while it is being used,
// in one bbolt file (<root>/meta.db).
//
// # Why bbolt and not SQLite
//
// berth is daemonless: every CLI call opens the database itself, and many may
// run at once. SQLite would allow concurrent readers, but it needs cgo (or a
// large pure-Go translation) in a binary that is built static, and buys a
// query language for a handful of key lookups. bbolt is pure Go, already the
// store of containerd and of docker's image and network state, has
// crash-safe copy-on-write transactions with fsync on commit, and its
// nested buckets fit the records here exactly.
//
// Its cost is that the file is locked with an exclusive flock(2) for as long
// as a process has it open. So the rules are:
//
//   - every process opens the database with a timeout (Open, default 10s)
//     and a process that cannot have the lock in time gets a clear
//     errdefs.ErrUnavailable naming the file;
//   - transactions are short, and the database is closed as soon as the
//     command's metadata work is done;
//   - blobs are written to the content store outside transactions; a lease
//     taken before the download protects them until an image record
//     refers to them.
//
// # Schema
//
// Drawn as containerd's core/metadata/buckets.go draws its own. Change this
// drawing, and the version, whenever the layout changes, and add a migration
// to Open.
//
//	v1                                      bucket: schema major version
//	├── version : uint64 big-endian         minor version, currently 1
//	├── images                              bucket
//	│   └── <name> : JSON imageRecord       name is a full normalized reference,
//	│                                       "docker.io/library/busybox:latest"
//	├── targets                             bucket: index of images by target
//	│   └── <target digest>                 bucket
//	│       └── <name> : ""                 one key per image naming this target
//	└── leases                              bucket
//	    └── <lease id>                      bucket
//	        ├── createdat : RFC 3339 time
//	        ├── expires   : RFC 3339 time   absent: never expires
//	        └── content                     bucket
//	            └── <digest> : ""           a blob the lease protects
//
// images and targets change together in one transaction; targets is never
// written on its own.
package meta
