package hook

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// testELF is a minimal ELF shared object with program headers only (like a
// stripped library): a PT_LOAD at a non-zero bias, a PT_DYNAMIC with
// DT_STRTAB, DT_SONAME (when soname != "") and DT_NEEDED entries. It has no
// code; nothing may execute it.
type testELF struct {
	soname  string
	needed  []string
	machine elf.Machine
	class   elf.Class
	order   binary.ByteOrder
	typ     elf.Type
	interp  string
}

// x86_64 library with the given SONAME, needing libc.so.6.
func lib64(soname string) testELF {
	return testELF{soname: soname, needed: []string{"libc.so.6"}, machine: elf.EM_X86_64, class: elf.ELFCLASS64}
}

func (e testELF) bytes() []byte {
	if e.order == nil {
		e.order = binary.LittleEndian
	}
	if e.typ == 0 {
		e.typ = elf.ET_DYN
	}
	const bias = 0x400000 // vaddr - offset of the PT_LOAD
	strtab := []byte{0}
	add := func(s string) uint64 {
		off := uint64(len(strtab))
		strtab = append(append(strtab, s...), 0)
		return off
	}
	var dyn [][2]uint64
	for _, n := range e.needed {
		dyn = append(dyn, [2]uint64{uint64(elf.DT_NEEDED), add(n)})
	}
	if e.soname != "" {
		dyn = append(dyn, [2]uint64{uint64(elf.DT_SONAME), add(e.soname)})
	}
	interpOff := 0
	is64 := e.class == elf.ELFCLASS64
	ehsize, phentsize, dynent := 52, 32, 8
	if is64 {
		ehsize, phentsize, dynent = 64, 56, 16
	}
	nph := 2
	if e.interp != "" {
		nph = 3
	}
	strOff := ehsize + nph*phentsize
	dyn = append(dyn, [2]uint64{uint64(elf.DT_STRTAB), uint64(strOff + bias)}, [2]uint64{uint64(elf.DT_NULL), 0})
	if e.interp != "" {
		interpOff = strOff + len(strtab)
	}
	dynOff := strOff + len(strtab) + len(e.interp) + 1
	dynOff = (dynOff + 7) &^ 7
	size := dynOff + len(dyn)*dynent

	var b bytes.Buffer
	w := func(v any) { binary.Write(&b, e.order, v) }
	data := byte(elf.ELFDATA2LSB)
	if e.order == binary.BigEndian {
		data = byte(elf.ELFDATA2MSB)
	}
	ident := [elf.EI_NIDENT]byte{0x7f, 'E', 'L', 'F', byte(e.class), data, byte(elf.EV_CURRENT)}
	type ph struct {
		typ       elf.ProgType
		off, addr uint64
		size      uint64
	}
	phs := []ph{{elf.PT_LOAD, 0, bias, uint64(size)}, {elf.PT_DYNAMIC, uint64(dynOff), uint64(dynOff + bias), uint64(len(dyn) * dynent)}}
	if e.interp != "" {
		phs = append(phs, ph{elf.PT_INTERP, uint64(interpOff), uint64(interpOff + bias), uint64(len(e.interp) + 1)})
	}
	if is64 {
		w(elf.Header64{Ident: ident, Type: uint16(e.typ), Machine: uint16(e.machine), Version: 1, Phoff: uint64(ehsize),
			Ehsize: uint16(ehsize), Phentsize: uint16(phentsize), Phnum: uint16(nph)})
		for _, p := range phs {
			w(elf.Prog64{Type: uint32(p.typ), Off: p.off, Vaddr: p.addr, Paddr: p.addr, Filesz: p.size, Memsz: p.size, Align: 8})
		}
	} else {
		w(elf.Header32{Ident: ident, Type: uint16(e.typ), Machine: uint16(e.machine), Version: 1, Phoff: uint32(ehsize),
			Ehsize: uint16(ehsize), Phentsize: uint16(phentsize), Phnum: uint16(nph)})
		for _, p := range phs {
			w(elf.Prog32{Type: uint32(p.typ), Off: uint32(p.off), Vaddr: uint32(p.addr), Paddr: uint32(p.addr), Filesz: uint32(p.size), Memsz: uint32(p.size), Align: 4})
		}
	}
	b.Write(strtab)
	if e.interp != "" {
		b.WriteString(e.interp)
		b.WriteByte(0)
	}
	for b.Len() < dynOff {
		b.WriteByte(0)
	}
	for _, d := range dyn {
		if is64 {
			w(elf.Dyn64{Tag: int64(d[0]), Val: d[1]})
		} else {
			w(elf.Dyn32{Tag: int32(d[0]), Val: uint32(d[1])})
		}
	}
	return b.Bytes()
}

func TestInspectLibrary(t *testing.T) {
	good := lib64("libcuda.so.1").bytes()
	tests := []struct {
		name       string
		data       []byte
		wantSONAME string
		wantFlags  int32
		wantErr    bool
	}{
		{"x86-64", good, "libcuda.so.1", 0x0303, false},
		{"no SONAME", testELF{machine: elf.EM_X86_64, class: elf.ELFCLASS64}.bytes(), "", 0x0303, false},
		{"i386 needing libc.so.6", testELF{soname: "libcuda.so.1", needed: []string{"libdl.so.2", "libc.so.6"}, machine: elf.EM_386, class: elf.ELFCLASS32}.bytes(), "libcuda.so.1", 0x0003, false},
		{"i386 needing no libc", testELF{soname: "libx.so.1", machine: elf.EM_386, class: elf.ELFCLASS32}.bytes(), "libx.so.1", 0x0001, false},
		{"i386 with interpreter", testELF{soname: "libx.so.1", machine: elf.EM_386, class: elf.ELFCLASS32, interp: "/lib/ld-linux.so.2"}.bytes(), "libx.so.1", 0x0003, false},
		{"x32", testELF{soname: "libx.so.1", machine: elf.EM_X86_64, class: elf.ELFCLASS32}.bytes(), "libx.so.1", 0x0803, false},
		{"aarch64", testELF{soname: "libcuda.so.1", machine: elf.EM_AARCH64, class: elf.ELFCLASS64}.bytes(), "libcuda.so.1", 0x0a03, false},
		{"ppc64 big endian", testELF{soname: "libcuda.so.1", machine: elf.EM_PPC64, class: elf.ELFCLASS64, order: binary.BigEndian}.bytes(), "libcuda.so.1", 0x0503, false},
		{"hostile SONAME is returned as is", lib64("../../../etc/passwd").bytes(), "../../../etc/passwd", 0x0303, false},
		{"unknown machine", testELF{soname: "libx.so.1", machine: elf.EM_MIPS, class: elf.ELFCLASS32}.bytes(), "", 0, true},
		{"executable", testELF{soname: "libx.so.1", machine: elf.EM_X86_64, class: elf.ELFCLASS64, typ: elf.ET_EXEC}.bytes(), "", 0, true},
		{"not ELF", []byte("/* GNU ld script */ GROUP ( libc.so.6 )"), "", 0, true},
		{"empty", nil, "", 0, true},
		{"truncated header", good[:40], "", 0, true},
		{"truncated program headers", good[:80], "", 0, true},
		{"truncated dynamic segment", good[:len(good)-40], "", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lib, err := inspectLibrary(bytes.NewReader(tt.data))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("inspectLibrary = %+v, want an error", lib)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if lib.soname != tt.wantSONAME || lib.flags != tt.wantFlags {
				t.Errorf("inspectLibrary = {%q %#04x}, want {%q %#04x}", lib.soname, lib.flags, tt.wantSONAME, tt.wantFlags)
			}
		})
	}
}

// TestInspectLibraryHostileOffsets: offsets pointing anywhere must give an
// error, never a panic or a huge allocation.
func TestInspectLibraryHostileOffsets(t *testing.T) {
	good := lib64("libcuda.so.1").bytes()
	patch := func(off int, v uint64) []byte {
		b := append([]byte(nil), good...)
		binary.LittleEndian.PutUint64(b[off:], v)
		return b
	}
	for name, data := range map[string][]byte{
		"phoff far away":     patch(32, 1<<62),
		"dynamic size huge":  patch(64+56+32, 1<<40),            // PT_DYNAMIC p_filesz
		"dynamic off beyond": patch(64+56+8, uint64(len(good))), // PT_DYNAMIC p_offset
		"strtab below bias":  patch(len(good)-16-8, 0),          // DT_STRTAB value
	} {
		t.Run(name, func(t *testing.T) {
			if lib, err := inspectLibrary(bytes.NewReader(data)); err == nil {
				t.Errorf("hostile file gave %+v, want an error", lib)
			}
		})
	}
}

// TestInspectLibraryRealELF checks a library the host's toolchain built.
func TestInspectLibraryRealELF(t *testing.T) {
	gcc := requireProgram(t, "gcc")
	dir := t.TempDir()
	src := filepath.Join(dir, "foo.c")
	os.WriteFile(src, []byte("int foo(void) { return 42; }\n"), 0o644)
	out := filepath.Join(dir, "libfoo.so.1.2.3")
	if b, err := exec.Command(gcc, "-shared", "-fPIC", "-Wl,-soname,libfoo.so.1", "-o", out, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lib, err := inspectLibrary(f)
	if err != nil {
		t.Fatal(err)
	}
	if lib.soname != "libfoo.so.1" {
		t.Errorf("SONAME %q, want libfoo.so.1", lib.soname)
	}
	if ef, err := elf.Open(out); err == nil && ef.Machine == elf.EM_X86_64 && lib.flags != 0x0303 {
		t.Errorf("flags %#x, want 0x0303 (libc6,x86-64)", lib.flags)
	}
}

// requireProgram returns the path of a program the test needs; it skips
// without it, except under CI=true where that is a failure.
func requireProgram(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	for _, dir := range []string{"/sbin", "/usr/sbin"} {
		if _, serr := os.Stat(filepath.Join(dir, name)); serr == nil {
			return filepath.Join(dir, name)
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required (CI=true)", name)
	}
	t.Skipf("%s not available: %v", name, errors.Unwrap(err))
	return ""
}

// TestInspectLibraryHostLibraries: on the real libraries of this machine,
// inspectLibrary reads the SONAME debug/elf reads.
func TestInspectLibraryHostLibraries(t *testing.T) {
	paths, _ := filepath.Glob("/usr/lib/x86_64-linux-gnu/lib*.so.*")
	if len(paths) == 0 {
		t.Skip("no host libraries")
	}
	checked := 0
	for _, p := range paths {
		if st, err := os.Lstat(p); err != nil || !st.Mode().IsRegular() {
			continue
		}
		ref, err := elf.Open(p)
		if err != nil {
			continue
		}
		names, err := ref.DynString(elf.DT_SONAME)
		ref.Close()
		if err != nil || len(names) != 1 {
			continue
		}
		f, _ := os.Open(p)
		lib, err := inspectLibrary(f)
		f.Close()
		if err != nil || lib.soname != names[0] || lib.flags != flagX8664Lib64|flagELFLibc6 {
			t.Errorf("%s: %+v, %v; want SONAME %s", p, lib, err, names[0])
		}
		if checked++; checked == 300 {
			break
		}
	}
	if checked == 0 {
		t.Skip("no host library with a SONAME")
	}
}
