package hook

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Cache entry flags, as glibc's ldconfig sets them (sysdeps/generic/ldconfig.h).
// The dynamic loader only takes entries whose flags are FlagELF or its own
// default (x86-64: FlagELFLibc6|FlagX8664Lib64).
const (
	flagELF          = 0x0001
	flagELFLibc5     = 0x0002
	flagELFLibc6     = 0x0003
	flagX8664Lib64   = 0x0300
	flagPowerPCLib64 = 0x0500
	flagX8664LibX32  = 0x0800
	flagAArch64Lib64 = 0x0a00
)

// Bounds on what is read from an untrusted library.
const (
	maxProgHeaders = 512
	maxDynamicSize = 1 << 20
	maxSONAME      = 255 // a file name
)

// library is what the ld cache needs to know about a shared object.
type library struct {
	soname string // DT_SONAME, "" when it has none
	flags  int32
}

var errNotLibrary = errors.New("not an ELF shared object")

// inspectLibrary reads the SONAME and the cache flags of the ELF shared
// object in r, the way ldconfig does: from the program headers and the
// dynamic segment only (stripped libraries have no section headers).
// Anything malformed is an error; nothing is trusted to be in bounds.
func inspectLibrary(r io.ReaderAt) (library, error) {
	var ident [elf.EI_NIDENT]byte
	if _, err := r.ReadAt(ident[:], 0); err != nil || !bytes.HasPrefix(ident[:], []byte(elf.ELFMAG)) {
		return library{}, errNotLibrary
	}
	var bo binary.ByteOrder
	switch elf.Data(ident[elf.EI_DATA]) {
	case elf.ELFDATA2LSB:
		bo = binary.LittleEndian
	case elf.ELFDATA2MSB:
		bo = binary.BigEndian
	default:
		return library{}, fmt.Errorf("%w: bad data encoding", errNotLibrary)
	}
	class := elf.Class(ident[elf.EI_CLASS])
	var typ, machine uint16
	var phoff uint64
	var phnum, phentsize, wantPhentsize int
	switch class {
	case elf.ELFCLASS64:
		var h elf.Header64
		if err := binary.Read(io.NewSectionReader(r, 0, 64), bo, &h); err != nil {
			return library{}, errNotLibrary
		}
		typ, machine, phoff, phnum, phentsize, wantPhentsize = h.Type, h.Machine, h.Phoff, int(h.Phnum), int(h.Phentsize), 56
	case elf.ELFCLASS32:
		var h elf.Header32
		if err := binary.Read(io.NewSectionReader(r, 0, 52), bo, &h); err != nil {
			return library{}, errNotLibrary
		}
		typ, machine, phoff, phnum, phentsize, wantPhentsize = h.Type, h.Machine, uint64(h.Phoff), int(h.Phnum), int(h.Phentsize), 32
	default:
		return library{}, fmt.Errorf("%w: bad class", errNotLibrary)
	}
	if elf.Type(typ) != elf.ET_DYN {
		return library{}, fmt.Errorf("%w: type %v", errNotLibrary, elf.Type(typ))
	}
	if phentsize != wantPhentsize || phnum == 0 || phnum > maxProgHeaders || phoff > 1<<40 {
		return library{}, fmt.Errorf("%w: bad program headers", errNotLibrary)
	}

	// Program headers: the first PT_LOAD gives the load bias that turns
	// DT_STRTAB's address into a file offset; PT_DYNAMIC the dynamic array.
	var loadBias uint64
	haveLoad := false
	var dynOff, dynSize uint64
	var interp string
	for i := 0; i < phnum; i++ {
		var p elf.ProgHeader
		sr := io.NewSectionReader(r, int64(phoff)+int64(i*phentsize), int64(phentsize))
		if class == elf.ELFCLASS64 {
			var ph elf.Prog64
			if err := binary.Read(sr, bo, &ph); err != nil {
				return library{}, fmt.Errorf("%w: truncated program headers", errNotLibrary)
			}
			p = elf.ProgHeader{Type: elf.ProgType(ph.Type), Off: ph.Off, Vaddr: ph.Vaddr, Filesz: ph.Filesz}
		} else {
			var ph elf.Prog32
			if err := binary.Read(sr, bo, &ph); err != nil {
				return library{}, fmt.Errorf("%w: truncated program headers", errNotLibrary)
			}
			p = elf.ProgHeader{Type: elf.ProgType(ph.Type), Off: uint64(ph.Off), Vaddr: uint64(ph.Vaddr), Filesz: uint64(ph.Filesz)}
		}
		switch p.Type {
		case elf.PT_LOAD:
			if !haveLoad {
				loadBias, haveLoad = p.Vaddr-p.Off, true
			}
		case elf.PT_DYNAMIC:
			dynOff, dynSize = p.Off, p.Filesz
		case elf.PT_INTERP:
			interp, _ = readString(r, p.Off, 64)
		}
	}
	if dynSize == 0 {
		return library{}, fmt.Errorf("%w: no dynamic segment", errNotLibrary)
	}
	if dynSize > maxDynamicSize || dynOff > 1<<40 {
		return library{}, fmt.Errorf("%w: dynamic segment too large", errNotLibrary)
	}
	dyn := make([]byte, dynSize)
	n, err := r.ReadAt(dyn, int64(dynOff))
	if err != nil && !(errors.Is(err, io.EOF) && n > 0) {
		return library{}, fmt.Errorf("%w: truncated dynamic segment", errNotLibrary)
	}
	dyn = dyn[:n]

	entSize := 16
	if class == elf.ELFCLASS32 {
		entSize = 8
	}
	var strtab uint64
	haveStrtab := false
	var sonameOff uint64
	haveSONAME := false
	var needed []uint64
dynamic:
	for off := 0; off+entSize <= len(dyn); off += entSize {
		var tag int64
		var val uint64
		if class == elf.ELFCLASS64 {
			tag, val = int64(bo.Uint64(dyn[off:])), bo.Uint64(dyn[off+8:])
		} else {
			tag, val = int64(int32(bo.Uint32(dyn[off:]))), uint64(bo.Uint32(dyn[off+4:]))
		}
		switch elf.DynTag(tag) {
		case elf.DT_NULL:
			break dynamic
		case elf.DT_STRTAB:
			if !haveStrtab {
				strtab, haveStrtab = val-loadBias, true
			}
		case elf.DT_SONAME:
			sonameOff, haveSONAME = val, true
		case elf.DT_NEEDED:
			if len(needed) < 64 {
				needed = append(needed, val)
			}
		}
	}
	if !haveStrtab {
		return library{}, fmt.Errorf("%w: no string table", errNotLibrary)
	}
	lib := library{}
	if haveSONAME {
		s, err := readString(r, strtab+sonameOff, maxSONAME)
		if err != nil {
			return library{}, fmt.Errorf("%w: SONAME: %v", errNotLibrary, err)
		}
		lib.soname = s
	}

	// Flags: what ldconfig's per-architecture readelflib decides.
	switch {
	case elf.Machine(machine) == elf.EM_X86_64 && class == elf.ELFCLASS64:
		lib.flags = flagX8664Lib64 | flagELFLibc6
	case elf.Machine(machine) == elf.EM_X86_64 && class == elf.ELFCLASS32:
		lib.flags = flagX8664LibX32 | flagELFLibc6
	case elf.Machine(machine) == elf.EM_AARCH64 && class == elf.ELFCLASS64:
		lib.flags = flagAArch64Lib64 | flagELFLibc6
	case elf.Machine(machine) == elf.EM_PPC64 && class == elf.ELFCLASS64:
		lib.flags = flagPowerPCLib64 | flagELFLibc6
	case elf.Machine(machine) == elf.EM_386 && class == elf.ELFCLASS32:
		// Generic rule: the C library it needs (or its interpreter) says
		// which libc it is for; otherwise it is a plain ELF library.
		lib.flags = flagELF
		switch interp {
		case "/lib/ld-linux.so.2":
			lib.flags = flagELFLibc6
		case "/lib/ld-linux.so.1":
			lib.flags = flagELFLibc5
		}
		for _, off := range needed {
			if lib.flags != flagELF {
				break
			}
			switch name, _ := readString(r, strtab+off, 64); name {
			case "libc.so.6", "libm.so.6":
				lib.flags = flagELFLibc6
			case "libc.so.5", "libm.so.5":
				lib.flags = flagELFLibc5
			}
		}
	default:
		return library{}, fmt.Errorf("unsupported machine %v (class %v)", elf.Machine(machine), class)
	}
	return lib, nil
}

// readString reads the NUL-terminated string at off, of at most max bytes.
func readString(r io.ReaderAt, off uint64, max int) (string, error) {
	if off > 1<<40 {
		return "", errors.New("string offset out of range")
	}
	buf := make([]byte, max+1)
	n, err := r.ReadAt(buf, int64(off))
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	i := bytes.IndexByte(buf[:n], 0)
	if i < 0 {
		return "", errors.New("string unterminated or too long")
	}
	return string(buf[:i]), nil
}
