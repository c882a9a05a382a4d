package cgroup

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Labels of the two verdict blocks at the end of a device program.
const (
	labelAllow = "allow"
	labelDeny  = "deny"
)

// deviceProgram compiles rules into a BPF_PROG_TYPE_CGROUP_DEVICE program.
//
// Semantics: for each access bit the request asks for (read, write, mknod)
// the last rule that matches the device and names that bit decides; the
// request is allowed only if every bit is allowed, and a bit no rule names
// is denied. This is v1's devices.allow/deny list read as "last match wins",
// and it lets "allow c 1:3 r" followed by "allow c 1:3 w" grant "rw".
//
// The program walks the rules from last to first keeping the access bits
// still undecided in R6: a matching allow rule clears its bits (all clear:
// allow), a matching deny rule that names an undecided bit denies. A rule
// matching every device with every access ends the walk, since earlier
// rules can no longer decide anything; its verdict becomes the default.
//
// The context is struct bpf_cgroup_dev_ctx { u32 access_type (access << 16
// | type); u32 major; u32 minor; }.
func deviceProgram(rules []deviceRule) asm.Instructions {
	var emit []deviceRule
	defaultLabel := labelDeny
	for i := len(rules) - 1; i >= 0; i-- {
		r := rules[i]
		if r.wildcard() && r.access == accAll {
			if r.allow {
				defaultLabel = labelAllow
			}
			break
		}
		emit = append(emit, r)
	}

	insts := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word), // access_type
		asm.Mov.Reg32(asm.R3, asm.R2),
		asm.RSh.Imm32(asm.R3, 16),                // R3: access
		asm.And.Imm32(asm.R2, 0xffff),            // R2: type
		asm.LoadMem(asm.R4, asm.R1, 4, asm.Word), // R4: major
		asm.LoadMem(asm.R5, asm.R1, 8, asm.Word), // R5: minor
		asm.Mov.Reg32(asm.R6, asm.R3),            // R6: undecided bits
	}
	used := map[string]bool{defaultLabel: true}
	for k, r := range emit {
		next := defaultLabel
		if k+1 < len(emit) {
			next = fmt.Sprintf("rule%d", k+1)
		}
		var block asm.Instructions
		if r.typ != devAll {
			block = append(block, asm.JNE.Imm(asm.R2, int32(r.typ), next))
		}
		if r.major >= 0 {
			block = append(block, asm.JNE.Imm(asm.R4, int32(r.major), next))
		}
		if r.minor >= 0 {
			block = append(block, asm.JNE.Imm(asm.R5, int32(r.minor), next))
		}
		if r.allow {
			block = append(block,
				asm.And.Imm32(asm.R6, int32(accAll&^r.access)),
				asm.JEq.Imm(asm.R6, 0, labelAllow))
			used[labelAllow] = true
		} else {
			if r.access == accAll {
				// R6 is never empty here: an empty R6 has been allowed.
				block = append(block, asm.Ja.Label(labelDeny))
			} else {
				block = append(block,
					asm.Mov.Reg32(asm.R1, asm.R6),
					asm.And.Imm32(asm.R1, int32(r.access)),
					asm.JNE.Imm(asm.R1, 0, labelDeny))
			}
			used[labelDeny] = true
		}
		block[0] = block[0].WithSymbol(fmt.Sprintf("rule%d", k))
		insts = append(insts, block...)
	}
	// The default verdict comes first so that the walk falls into it; the
	// other is emitted only when a jump needs it (the verifier rejects
	// unreachable code).
	verdict := map[string]int32{labelAllow: 1, labelDeny: 0}
	labels := []string{defaultLabel}
	if defaultLabel == labelDeny {
		labels = append(labels, labelAllow)
	} else {
		labels = append(labels, labelDeny)
	}
	for _, l := range labels {
		if used[l] {
			insts = append(insts, asm.Mov.Imm32(asm.R0, verdict[l]).WithSymbol(l), asm.Return())
		}
	}
	return insts
}

// loadDeviceProgram loads the program for rules into the kernel.
func loadDeviceProgram(rules []deviceRule) (*ebpf.Program, error) {
	spec := &ebpf.ProgramSpec{
		Name:         "berth_devices",
		Type:         ebpf.CGroupDevice,
		License:      "Apache",
		Instructions: deviceProgram(rules),
	}
	prog, err := ebpf.NewProgram(spec)
	if errors.Is(err, unix.EPERM) {
		// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK. (Not
		// cilium's rlimit package: its init loads a probe program in
		// every process that links it, berth's init included.)
		inf := &unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
		if rerr := unix.Setrlimit(unix.RLIMIT_MEMLOCK, inf); rerr == nil {
			prog, err = ebpf.NewProgram(spec)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("load device program: %w", err)
	}
	return prog, nil
}

// setDevicesV2 replaces the device programs attached to the cgroup
// directory dir with one compiled from rules. The new program is attached
// before the old ones are detached, so the cgroup is never unfiltered.
func setDevicesV2(dir string, rules []deviceRule) error {
	prog, err := loadDeviceProgram(rules)
	if err != nil {
		return err
	}
	defer prog.Close()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(fd)
	old, err := link.QueryPrograms(link.QueryOptions{Target: fd, Attach: ebpf.AttachCGroupDevice})
	if err != nil {
		return fmt.Errorf("query device programs of %s: %w", dir, err)
	}
	err = link.RawAttachProgram(link.RawAttachProgramOptions{
		Target:  fd,
		Program: prog,
		Attach:  ebpf.AttachCGroupDevice,
		Flags:   unix.BPF_F_ALLOW_MULTI,
	})
	if err != nil {
		return fmt.Errorf("attach device program to %s: %w", dir, err)
	}
	var errs []error
	for _, p := range old.Programs {
		op, err := ebpf.NewProgramFromID(p.ID)
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			errs = append(errs, fmt.Errorf("open device program %d: %w", p.ID, err))
			continue
		}
		err = link.RawDetachProgram(link.RawDetachProgramOptions{
			Target:  fd,
			Program: op,
			Attach:  ebpf.AttachCGroupDevice,
		})
		op.Close()
		if err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("detach old device program %d from %s: %w", p.ID, dir, err))
		}
	}
	return errors.Join(errs...)
}
