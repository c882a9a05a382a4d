package cli

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/containerd/console"
)

// tarItem is what a test looks at in a tar: type, owner, body.
type tarItem struct {
	typ      byte
	uid, gid int
	body     string
	link     string
}

// untarMap lists a tar stream by entry name.
func untarMap(t *testing.T, data string) map[string]tarItem {
	t.Helper()
	out := map[string]tarItem{}
	tr := tar.NewReader(strings.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("read tar: %v (%d bytes)", err, len(data))
		}
		b, _ := io.ReadAll(tr)
		out[hdr.Name] = tarItem{typ: hdr.Typeflag, uid: hdr.Uid, gid: hdr.Gid, body: string(b), link: hdr.Linkname}
	}
}

// cpCat reads a file of a container, running or not, through cp.
func (h *host) cpCat(ctr, p string) string {
	h.t.Helper()
	es := untarMap(h.t, h.ok("cp", ctr+":"+p, "-"))
	e, ok := es[filepath.Base(p)]
	if !ok {
		h.t.Fatalf("cp %s:%s -: no entry %s in %v", ctr, p, filepath.Base(p), es)
	}
	return e.body
}

// mustFail runs berth, wants a failure, and returns stderr.
func (h *host) mustFail(args ...string) string {
	h.t.Helper()
	out, errs, code := h.run("", args...)
	if code == 0 {
		h.t.Fatalf("berth %s succeeded: %s", strings.Join(args, " "), out)
	}
	return errs
}

func getFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func putFile(t *testing.T, p, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCpFromContainer(t *testing.T) {
	h := newHost(t)
	h.ok("run", "-d", "--name", "up", "busybox", "sh", "-c", "mkdir -p /d/sub && echo one > /d/one && echo two > /d/sub/two && exec sleep 1000")
	h.ok("run", "--name", "down", "busybox", "sh", "-c", "mkdir -p /d/sub && echo one > /d/one && echo two > /d/sub/two")
	waitFor(t, func() bool { _, _, code := h.run("", "exec", "up", "test", "-f", "/d/sub/two"); return code == 0 })
	for _, ctr := range []string{"up", "down"} {
		t.Run(ctr, func(t *testing.T) {
			dst := t.TempDir()
			// A file into an existing directory keeps its name.
			h.ok("cp", ctr+":/etc/passwd", dst)
			if got := getFile(t, filepath.Join(dst, "passwd")); !strings.HasPrefix(got, "root:x:0:0") {
				t.Fatalf("passwd: %q", got)
			}
			// A file to a new name takes it.
			h.ok("cp", ctr+":/d/one", filepath.Join(dst, "renamed"))
			if got := getFile(t, filepath.Join(dst, "renamed")); got != "one\n" {
				t.Fatalf("renamed: %q", got)
			}
			// A directory to a new name is created with that name...
			h.ok("cp", ctr+":/d", filepath.Join(dst, "newd"))
			if got := getFile(t, filepath.Join(dst, "newd/sub/two")); got != "two\n" {
				t.Fatalf("newd/sub/two: %q", got)
			}
			// ...into an existing directory it goes below it...
			h.ok("cp", ctr+":/d", filepath.Join(dst, "newd"))
			if got := getFile(t, filepath.Join(dst, "newd/d/one")); got != "one\n" {
				t.Fatalf("newd/d/one: %q", got)
			}
			// ...and with "/." its contents go into it.
			os.Mkdir(filepath.Join(dst, "contents"), 0o755)
			h.ok("cp", ctr+":/d/.", filepath.Join(dst, "contents"))
			if got := getFile(t, filepath.Join(dst, "contents/sub/two")); got != "two\n" {
				t.Fatalf("contents/sub/two: %q", got)
			}
			// "-" streams a tar named after the source.
			es := untarMap(t, h.ok("cp", ctr+":/d", "-"))
			if es["d/sub/two"].body != "two\n" || es["d/"].typ != tar.TypeDir {
				t.Fatalf("tar of /d: %v", es)
			}
			// The files Docker bind-mounts are seen as the container sees them.
			if got := h.cpCat(ctr, "/etc/hostname"); got != h.inspect(ctr)["Config"].(map[string]any)["Hostname"].(string)+"\n" {
				t.Fatalf("/etc/hostname: %q", got)
			}
		})
	}
	dst := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"cp", "up:/nope", dst}, "Error response from daemon: Could not find the file /nope in container up\n"},
		{[]string{"cp", "nosuch:/etc", dst}, "Error response from daemon: No such container: nosuch\n"},
		{[]string{"cp", "up:/etc/passwd", dst + "/missing/x"}, "invalid output path: directory \"" + dst + "/missing\" does not exist\n"},
		{[]string{"cp", "up:/d", dst + "/f/"}, ""},
		{[]string{"cp", "up:/d/one", dst + "/nodir/"}, "no such directory\n"},
		{[]string{"cp", "/a", "/b"}, "must specify at least one container source\n"},
		{[]string{"cp", "up:/a", "down:/b"}, "copying between containers is not supported\n"},
	} {
		_, errs, code := h.run("", tc.args...)
		if tc.want == "" {
			if code != 0 {
				t.Errorf("%v: exit %d: %s", tc.args, code, errs)
			}
			continue
		}
		if code != 1 || errs != tc.want {
			t.Errorf("%v: exit %d, stderr %q, want 1 and %q", tc.args, code, errs, tc.want)
		}
	}
	// Over an existing file: a directory cannot go there.
	putFile(t, filepath.Join(dst, "file"), "x")
	if errs := h.mustFail("cp", "up:/d", filepath.Join(dst, "file")); errs != "cannot copy directory\n" {
		t.Errorf("dir over file: %q", errs)
	}
	// The closing line, shown on a terminal or when -q=false asks for it.
	_, errs, _ := h.run("", "cp", "-q=false", "up:/d/one", dst)
	if want := "Successfully copied 4B (transferred 2.05kB) to " + dst + "\n"; errs != want {
		t.Errorf("summary %q, want %q", errs, want)
	}
	if _, errs, _ := h.run("", "cp", "up:/d/one", dst); errs != "" {
		t.Errorf("summary without a terminal: %q", errs)
	}
}

func TestCpToContainer(t *testing.T) {
	h := newHost(t)
	h.ok("run", "-d", "--name", "up", "busybox", "sleep", "1000")
	h.ok("create", "--name", "down", "busybox", "true")
	src := t.TempDir()
	putFile(t, filepath.Join(src, "f"), "file\n")
	putFile(t, filepath.Join(src, "dir/a"), "a\n")
	putFile(t, filepath.Join(src, "dir/sub/b"), "b\n")
	if err := os.Chown(filepath.Join(src, "dir/a"), 1234, 5678); err != nil {
		t.Fatal(err)
	}
	for _, ctr := range []string{"up", "down"} {
		t.Run(ctr, func(t *testing.T) {
			h.ok("cp", filepath.Join(src, "f"), ctr+":/tmp")
			h.ok("cp", filepath.Join(src, "f"), ctr+":/renamed")
			h.ok("cp", filepath.Join(src, "dir"), ctr+":/newdir")
			h.ok("cp", filepath.Join(src, "dir"), ctr+":/tmp/")
			h.ok("cp", filepath.Join(src, "dir")+"/.", ctr+":/root")
			h.ok("cp", filepath.Join(src, "f"), ctr+":/etc/passwd") // over a file
			h.ok("cp", filepath.Join(src, "f"), ctr+":/etc/hosts")  // over a file mounted there
			for p, want := range map[string]string{
				"/tmp/f": "file\n", "/renamed": "file\n", "/newdir/sub/b": "b\n", "/tmp/dir/a": "a\n",
				"/root/sub/b": "b\n", "/etc/passwd": "file\n", "/etc/hosts": "file\n",
			} {
				if got := h.cpCat(ctr, p); got != want {
					t.Errorf("%s: %q, want %q", p, got, want)
				}
			}
			// Owners come from the tar (docker's behaviour without -a).
			if e := untarMap(t, h.ok("cp", ctr+":/newdir/a", "-"))["a"]; e.uid != 1234 || e.gid != 5678 {
				t.Errorf("owner of /newdir/a: %d:%d", e.uid, e.gid)
			}
			// A tar on stdin goes into a directory.
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			tw.WriteHeader(&tar.Header{Name: "fromstdin", Mode: 0o600, Size: 3, Typeflag: tar.TypeReg})
			tw.Write([]byte("in\n"))
			tw.Close()
			if _, errs, code := h.run(buf.String(), "cp", "-", ctr+":/tmp"); code != 0 {
				t.Fatalf("cp - %s:/tmp: %d %s", ctr, code, errs)
			}
			if got := h.cpCat(ctr, "/tmp/fromstdin"); got != "in\n" {
				t.Errorf("/tmp/fromstdin: %q", got)
			}
			for _, tc := range []struct {
				args []string
				want string
			}{
				{[]string{"cp", filepath.Join(src, "f"), ctr + ":/nodir/x"}, "Error response from daemon: Could not find the file /nodir in container " + ctr + "\n"},
				{[]string{"cp", filepath.Join(src, "f"), ctr + ":/nodir/"}, "no such directory\n"},
				{[]string{"cp", filepath.Join(src, "dir"), ctr + ":/etc/passwd"}, "cannot copy directory\n"},
				{[]string{"cp", filepath.Join(src, "nothere"), ctr + ":/tmp"}, "lstat " + src + "/nothere: no such file or directory\n"},
				{[]string{"cp", "-", ctr + ":/etc/passwd"}, `destination "` + ctr + `:/etc/passwd" must be a directory` + "\n"},
			} {
				_, errs, code := h.run("", tc.args...)
				if code != 1 || errs != tc.want {
					t.Errorf("%v: exit %d, stderr %q, want 1 and %q", tc.args, code, errs, tc.want)
				}
			}
			// A file never replaces a directory (docker's NoOverwriteDirNonDir).
			bin := filepath.Join(t.TempDir(), "bin")
			putFile(t, bin, "not a dir")
			if errs := h.mustFail("cp", bin, ctr+":/"); !strings.Contains(errs, `cannot overwrite directory "/bin" with non-directory "/"`) {
				t.Errorf("file over /bin: %q", errs)
			}
			if got := h.cpCat(ctr, "/bin/busybox"); len(got) < 1000 {
				t.Errorf("/bin/busybox damaged: %d bytes", len(got))
			}
		})
	}
	if out := h.ok("exec", "up", "cat", "/etc/hosts"); out != "file\n" {
		t.Errorf("/etc/hosts seen inside: %q", out)
	}
	_, errs, _ := h.run("", "cp", "-q=false", filepath.Join(src, "f"), "up:/tmp")
	if want := "Successfully copied 5B (transferred 2.05kB) to up:/tmp\n"; errs != want {
		t.Errorf("summary %q, want %q", errs, want)
	}
	// What was copied into the stopped container is there when it runs.
	if out := h.ok("start", "-a", "down"); out != "" {
		t.Fatalf("start -a down: %q", out)
	}
	h.ok("rm", "down")
	h.ok("run", "--name", "down2", "busybox", "true")
	h.ok("cp", filepath.Join(src, "f"), "down2:/f")
	if got := h.ok("commit", "down2", "withf"); !strings.HasPrefix(got, "sha256:") {
		t.Fatalf("commit: %q", got)
	}
	if out := h.ok("run", "--rm", "withf", "cat", "/f"); out != "file\n" {
		t.Fatalf("cat /f in the committed image: %q", out)
	}
}

func TestCpArchiveOwner(t *testing.T) {
	h := newHost(t)
	h.ok("run", "-d", "--name", "usr", "--user", "4321:8765", "busybox", "sleep", "1000")
	src := filepath.Join(t.TempDir(), "owned")
	putFile(t, src, "x")
	os.Chown(src, 1234, 5678)
	h.ok("cp", src, "usr:/tmp/plain")
	h.ok("cp", "-a", src, "usr:/tmp/archive")
	if e := untarMap(t, h.ok("cp", "usr:/tmp/plain", "-"))["plain"]; e.uid != 1234 || e.gid != 5678 {
		t.Errorf("without -a: %d:%d, want the source's 1234:5678", e.uid, e.gid)
	}
	if e := untarMap(t, h.ok("cp", "usr:/tmp/archive", "-"))["archive"]; e.uid != 4321 || e.gid != 8765 {
		t.Errorf("with -a: %d:%d, want the container user's 4321:8765", e.uid, e.gid)
	}
	// Copied out, files belong to the caller.
	dst := t.TempDir()
	h.ok("cp", "usr:/tmp/plain", dst)
	var st syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(dst, "plain"), &st); err != nil || st.Uid != 0 {
		t.Errorf("copied out: uid %d, %v", st.Uid, err)
	}
}

func TestCpVolumes(t *testing.T) {
	h := newHost(t)
	bind := t.TempDir()
	h.ok("volume", "create", "data")
	h.ok("run", "-d", "--name", "up", "-v", "data:/data", "-v", bind+":/bind", "-v", "/anon", "busybox", "sleep", "1000")
	h.ok("create", "--name", "down", "-v", "data:/data", "-v", bind+":/bind:ro", "busybox", "true")
	src := filepath.Join(t.TempDir(), "f")
	putFile(t, src, "vol\n")
	h.ok("cp", src, "up:/data/")
	h.ok("cp", src, "up:/bind/inbind")
	h.ok("cp", src, "up:/anon/")
	if got := getFile(t, filepath.Join(bind, "inbind")); got != "vol\n" {
		t.Fatalf("bind source: %q", got)
	}
	if out := h.ok("exec", "up", "cat", "/data/f", "/anon/f"); out != "vol\nvol\n" {
		t.Fatalf("in the volumes: %q", out)
	}
	// The stopped container sees the same volume and bind.
	if got := h.cpCat("down", "/data/f"); got != "vol\n" {
		t.Fatalf("down:/data/f: %q", got)
	}
	if got := h.cpCat("down", "/bind/inbind"); got != "vol\n" {
		t.Fatalf("down:/bind/inbind: %q", got)
	}
	putFile(t, src, "again\n")
	h.ok("cp", src, "down:/data/f")
	if out := h.ok("exec", "up", "cat", "/data/f"); out != "again\n" {
		t.Fatalf("written through the stopped container: %q", out)
	}
	if errs := h.mustFail("cp", src, "down:/bind/"); errs != "Error response from daemon: mounted volume is marked read-only\n" {
		t.Fatalf("read-only bind: %q", errs)
	}
	// A directory copied whole shows the volumes at their mount points.
	es := untarMap(t, h.ok("cp", "up:/", "-"))
	if es["/data/f"].body != "again\n" || es["/bind/inbind"].body != "vol\n" {
		t.Fatalf("cp up:/ - misses the volumes")
	}
	// export leaves them out, as docker does.
	ex := untarMap(t, h.ok("export", "up"))
	if _, ok := ex["data/f"]; ok {
		t.Fatalf("export has the volume's files")
	}
	if _, ok := ex["data/"]; !ok {
		t.Fatalf("export lacks the mount point /data")
	}
	// A read-only rootfs takes files only in volumes.
	h.ok("create", "--name", "ro", "--read-only", "-v", "data:/data", "busybox", "true")
	if errs := h.mustFail("cp", src, "ro:/tmp/"); errs != "Error response from daemon: container rootfs is marked read-only\n" {
		t.Fatalf("read-only rootfs: %q", errs)
	}
	h.ok("cp", src, "ro:/data/ro")
}

// TestCpSymlinks: links in a container resolve inside it, never on the
// host, both ways.
func TestCpSymlinks(t *testing.T) {
	h := newHost(t)
	secret := t.TempDir()
	putFile(t, filepath.Join(secret, "secret"), "host secret\n")
	h.ok("run", "-d", "--name", "ctr", "busybox", "sh", "-c",
		"ln -s / /rootlink; ln -s ../../../../../../.. /tmp/up; ln -s "+secret+" /hostdir; ln -s "+secret+"/secret /hostfile; "+
			"mkdir -p "+secret+" && echo container > "+secret+"/secret; exec sleep 1000")
	waitFor(t, func() bool { _, _, code := h.run("", "exec", "ctr", "test", "-L", "/hostfile"); return code == 0 })
	for _, p := range []string{"/rootlink" + secret + "/secret", "/tmp/up" + secret + "/secret", "/hostdir/secret"} {
		if got := h.cpCat("ctr", p); got != "container\n" {
			t.Errorf("%s: %q, want the container's file", p, got)
		}
	}
	// -L follows the link, inside the container, and keeps its name.
	dst := t.TempDir()
	h.ok("cp", "-L", "ctr:/hostfile", dst)
	if got := getFile(t, filepath.Join(dst, "hostfile")); got != "container\n" {
		t.Fatalf("cp -L: %q", got)
	}
	// Without -L the link itself is copied.
	h.ok("cp", "ctr:/hostfile", filepath.Join(dst, "link"))
	if l, err := os.Readlink(filepath.Join(dst, "link")); err != nil || l != secret+"/secret" {
		t.Fatalf("cp of a link: %q %v", l, err)
	}
	// Writes through links land in the container.
	src := filepath.Join(t.TempDir(), "secret")
	putFile(t, src, "overwritten\n")
	h.ok("cp", src, "ctr:/hostdir/")
	h.ok("cp", src, "ctr:/tmp/up"+secret+"/")
	// A tar that plants a link and writes through it stays in the container.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "evil", Typeflag: tar.TypeSymlink, Linkname: secret, Mode: 0o777})
	tw.WriteHeader(&tar.Header{Name: "evil/secret", Typeflag: tar.TypeReg, Mode: 0o644, Size: 5})
	tw.Write([]byte("evil\n"))
	tw.Close()
	h.okIn(buf.String(), "cp", "-", "ctr:/tmp")
	// One that climbs out with ../ is refused.
	buf.Reset()
	tw = tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "../../../../" + secret + "/climb", Typeflag: tar.TypeReg, Mode: 0o644})
	tw.Close()
	if _, errs, code := h.run(buf.String(), "cp", "-", "ctr:/tmp"); code == 0 || !strings.Contains(errs, "climbs out") {
		t.Errorf("tar with ../: exit %d %q", code, errs)
	}
	if got := getFile(t, filepath.Join(secret, "secret")); got != "host secret\n" {
		t.Fatalf("the host's file was written: %q", got)
	}
	if _, err := os.Stat(filepath.Join(secret, "climb")); err == nil {
		t.Fatal("a ../ entry escaped to the host")
	}
	if out := h.ok("exec", "ctr", "cat", secret+"/secret"); out != "evil\n" {
		t.Fatalf("in the container: %q", out)
	}
	// Copying out never follows a link already in the destination.
	h.ok("exec", "ctr", "sh", "-c", "mkdir -p /out/a && echo out > /out/a/secret")
	dst2 := t.TempDir()
	if err := os.Symlink(secret, filepath.Join(dst2, "a")); err != nil {
		t.Fatal(err)
	}
	if errs := h.mustFail("cp", "ctr:/out/.", dst2); !strings.Contains(errs, "cannot overwrite non-directory") {
		t.Errorf("cp over a local link: %q", errs)
	}
	if got := getFile(t, filepath.Join(secret, "secret")); got != "host secret\n" {
		t.Fatalf("the host's file was written: %q", got)
	}
}

// okIn is ok with stdin.
func (h *host) okIn(stdin string, args ...string) string {
	h.t.Helper()
	out, errs, code := h.run(stdin, args...)
	if code != 0 {
		h.t.Fatalf("berth %s: exit %d: %s%s", strings.Join(args, " "), code, errs, out)
	}
	return out
}

func TestExport(t *testing.T) {
	h := newHost(t)
	h.ok("run", "--name", "ctr", "busybox", "sh", "-c", "echo hi > /hello; rm /etc/group")
	es := untarMap(t, h.ok("export", "ctr"))
	if e := es["bin/busybox"]; e.typ != tar.TypeReg || len(e.body) < 1000 {
		t.Fatalf("export: bin/busybox %v", e.typ)
	}
	if es["hello"].body != "hi\n" || es["bin/sh"].link != "busybox" {
		t.Fatalf("export misses the container's changes")
	}
	if _, ok := es["etc/group"]; ok {
		t.Fatal("export has a deleted file")
	}
	out := filepath.Join(t.TempDir(), "c.tar")
	h.ok("export", "-o", out, "ctr")
	if got := untarMap(t, getFile(t, out)); got["hello"].body != "hi\n" {
		t.Fatalf("export -o: %v", got["hello"])
	}
	if errs := h.mustFail("export", "nosuch"); errs != "Error response from daemon: No such container: nosuch\n" {
		t.Fatalf("export nosuch: %q", errs)
	}
	// Not to a terminal.
	pty, slave, err := console.NewPty()
	if err != nil {
		t.Skip("no pty:", err)
	}
	defer pty.Close()
	tty, err := os.OpenFile(slave, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	cmd := exec.Command(berthBin(t), "--root", h.root, "--runroot", h.runRoot, "export", "ctr")
	var errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = tty, &errb
	if err := cmd.Run(); err == nil || errb.String() != "cowardly refusing to save to a terminal. Use the -o flag or redirect\n" {
		t.Fatalf("export to a terminal: %v %q", err, errb.String())
	}
}

func TestDiff(t *testing.T) {
	h := newHost(t)
	h.ok("run", "--name", "fresh", "busybox", "true")
	if out := h.ok("diff", "fresh"); out != "" {
		t.Fatalf("diff of a container that changed nothing: %q", out)
	}
	h.ok("run", "--name", "ctr", "busybox", "sh", "-c", "touch /tmp/new; rm /etc/group; mkdir -p /newdir/sub; echo x >> /etc/passwd")
	want := "C /etc\nD /etc/group\nC /etc/passwd\nA /newdir\nA /newdir/sub\nC /tmp\nA /tmp/new\n"
	if out := h.ok("diff", "ctr"); out != want {
		t.Fatalf("diff:\n%s\nwant:\n%s", out, want)
	}
	h.ok("run", "-d", "--name", "up", "busybox", "sh", "-c", "echo > /root/x; exec sleep 1000")
	waitFor(t, func() bool { return h.ok("diff", "up") == "C /root\nA /root/x\n" })
	if out := h.ok("container", "diff", "up"); out != "C /root\nA /root/x\n" {
		t.Fatalf("container diff: %q", out)
	}
	if errs := h.mustFail("diff", "nosuch"); errs != "Error response from daemon: No such container: nosuch\n" {
		t.Fatalf("diff nosuch: %q", errs)
	}
}

var commitID = regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`)

func TestCommit(t *testing.T) {
	h := newHost(t)
	h.ok("run", "--name", "ctr", "-e", "A=1", "busybox", "sh", "-c", "echo committed > /file; rm /etc/group")
	id := h.ok("commit", "-m", "a message", "-a", "someone", "ctr", "mine:v1")
	if !commitID.MatchString(id) {
		t.Fatalf("commit printed %q", id)
	}
	if out := h.ok("run", "--rm", "mine:v1", "sh", "-c", "cat /file; test -e /etc/group || echo gone; echo $A"); out != "committed\ngone\n1\n" {
		t.Fatalf("run the committed image: %q", out)
	}
	var imgs []map[string]any
	json.Unmarshal([]byte(h.ok("image", "inspect", "mine:v1")), &imgs)
	img := imgs[0]
	if img["Id"] != strings.TrimSpace(id) || img["Comment"] != "a message" || img["Author"] != "someone" {
		t.Fatalf("inspect: %v %v %v", img["Id"], img["Comment"], img["Author"])
	}
	if layers := img["RootFS"].(map[string]any)["Layers"].([]any); len(layers) != 2 {
		t.Fatalf("layers: %v", layers)
	}
	if cmd := img["Config"].(map[string]any)["Cmd"].([]any); len(cmd) != 3 || cmd[0] != "sh" {
		t.Fatalf("Cmd: %v", cmd)
	}
	// --change: CMD, ENV, and ENTRYPOINT dropping the CMD.
	h.ok("commit", "-c", `CMD ["echo","x"]`, "-c", "ENV B=2", "-c", "LABEL k=v", "-c", "WORKDIR /tmp", "ctr", "changed")
	if out := h.ok("run", "--rm", "changed"); out != "x\n" {
		t.Fatalf("CMD change: %q", out)
	}
	if out := h.ok("run", "--rm", "changed", "sh", "-c", "echo $A$B; pwd"); out != "12\n/tmp\n" {
		t.Fatalf("ENV/WORKDIR change: %q", out)
	}
	h.ok("commit", "-c", `ENTRYPOINT ["echo","entry"]`, "ctr", "entry")
	if out := h.ok("run", "--rm", "entry"); out != "entry\n" {
		t.Fatalf("ENTRYPOINT change: %q", out)
	}
	if errs := h.mustFail("commit", "-c", "FROM busybox", "ctr"); !strings.Contains(errs, "FROM is not a valid change command") {
		t.Fatalf("bad change: %q", errs)
	}
	// A running container is paused while committed, and runs on.
	h.ok("run", "-d", "--name", "up", "busybox", "sh", "-c", "echo live > /live; exec sleep 1000")
	waitFor(t, func() bool { _, _, code := h.run("", "exec", "up", "test", "-f", "/live"); return code == 0 })
	h.ok("commit", "up", "live")
	if st := h.state("up"); st["Status"] != "running" {
		t.Fatalf("after commit: %v", st["Status"])
	}
	if out := h.ok("run", "--rm", "live", "cat", "/live"); out != "live\n" {
		t.Fatalf("committed running container: %q", out)
	}
	h.ok("commit", "--no-pause", "up", "live2")
	if errs := h.mustFail("commit", "--pause=false", "--no-pause", "up"); !strings.Contains(errs, "conflicting options") {
		t.Fatalf("--pause with --no-pause: %q", errs)
	}
	// Nothing changed: no new layer, one more history entry.
	h.ok("create", "--name", "same", "busybox")
	h.ok("commit", "same", "same")
	json.Unmarshal([]byte(h.ok("image", "inspect", "same")), &imgs)
	if layers := imgs[0]["RootFS"].(map[string]any)["Layers"].([]any); len(layers) != 1 {
		t.Fatalf("empty commit layers: %v", layers)
	}
	if hist := h.ok("history", "-q", "same"); strings.Count(hist, "\n") != 2 {
		t.Fatalf("history of the empty commit: %q", hist)
	}
	if errs := h.mustFail("commit", "nosuch"); errs != "Error response from daemon: No such container: nosuch\n" {
		t.Fatalf("commit nosuch: %q", errs)
	}
	// Without a name: dangling, listed by ID.
	dangling := strings.TrimSpace(h.ok("commit", "ctr"))
	if out := h.ok("images", "-q", "--no-trunc", "-f", "dangling=true"); !strings.Contains(out, dangling) {
		t.Fatalf("dangling commit %s not in %q", dangling, out)
	}
}

// TestFilesVFS runs diff, cp and commit on the copying storage driver,
// where a container's layer is a full copy of the image's.
func TestFilesVFS(t *testing.T) {
	h := newHost(t)
	vfs := func(args ...string) string {
		t.Helper()
		return h.ok(append([]string{"--storage-driver", "vfs"}, args...)...)
	}
	vfs("import", rootfsTar(t, "gzip"), "busybox")
	vfs("run", "--name", "ctr", "busybox", "sh", "-c", "touch /tmp/new; rm /etc/group; mkdir -p /newdir/sub; echo x >> /etc/passwd")
	want := "C /etc\nC /etc/passwd\nD /etc/group\nA /newdir\nA /newdir/sub\nC /tmp\nA /tmp/new\n"
	if out := vfs("diff", "ctr"); out != want {
		t.Fatalf("diff:\n%s\nwant:\n%s", out, want)
	}
	src := filepath.Join(t.TempDir(), "f")
	putFile(t, src, "vfs\n")
	vfs("cp", src, "ctr:/f")
	vfs("commit", "ctr", "vfsimg")
	if out := vfs("run", "--rm", "vfsimg", "sh", "-c", "cat /f; test -e /etc/group || echo gone; ls /newdir"); out != "vfs\ngone\nsub\n" {
		t.Fatalf("run the committed image: %q", out)
	}
}
