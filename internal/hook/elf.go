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
// dynamic segment (stripped libraries have no section headers). Anything
// malformed is an error; no offset is trusted to be in bounds.
func inspectLibrary(r io.ReaderAt) (library, error) {
	f, err := readELFHeaders(r)
	if err != nil {
		return library{}, fmt.Errorf("%w: %v", errNotLibrary, err)
	}
	if f.Type != elf.ET_DYN {
		return library{}, fmt.Errorf("%w: type %v", errNotLibrary, f.Type)
	}

	// The first PT_LOAD gives the load bias that turns DT_STRTAB's address
	// into a file offset; PT_DYNAMIC holds the dynamic array.
	var loadBias, dynOff, dynSize uint64
	haveLoad := false
	var interp string
	for _, p := range f.Progs {
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

	bo := f.ByteOrder
	entSize := 16
	if f.Class == elf.ELFCLASS32 {
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
		if f.Class == elf.ELFCLASS64 {
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
	case f.Machine == elf.EM_X86_64 && f.Class == elf.ELFCLASS64:
		lib.flags = flagX8664Lib64 | flagELFLibc6
	case f.Machine == elf.EM_X86_64 && f.Class == elf.ELFCLASS32:
		lib.flags = flagX8664LibX32 | flagELFLibc6
	case f.Machine == elf.EM_AARCH64 && f.Class == elf.ELFCLASS64:
		lib.flags = flagAArch64Lib64 | flagELFLibc6
	case f.Machine == elf.EM_PPC64 && f.Class == elf.ELFCLASS64:
		lib.flags = flagPowerPCLib64 | flagELFLibc6
	case f.Machine == elf.EM_386 && f.Class == elf.ELFCLASS32:
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
		return library{}, fmt.Errorf("unsupported machine %v (class %v)", f.Machine, f.Class)
	}
	return lib, nil
}

// elfHeaders is what inspectLibrary needs of an ELF file's header and
// program headers.
type elfHeaders struct {
	Class     elf.Class
	ByteOrder binary.ByteOrder
	Type      elf.Type
	Machine   elf.Machine
	Progs     []progHeader
}

type progHeader struct {
	Type               elf.ProgType
	Off, Vaddr, Filesz uint64
}

// headerRead is what the first read takes: the ELF header and, for any
// usual library, its program headers too.
const headerRead = 4096

// readELFHeaders reads the ELF header and the program headers, as the
// loader and ldconfig do, in one read for a usual library (debug/elf's
// NewFile also reads every section header and their names, which a
// library need not even have).
func readELFHeaders(r io.ReaderAt) (*elfHeaders, error) {
	buf := make([]byte, headerRead)
	n, err := r.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	buf = buf[:n]
	if len(buf) < 52 || string(buf[:4]) != elf.ELFMAG {
		return nil, errors.New("bad magic number")
	}
	h := &elfHeaders{Class: elf.Class(buf[elf.EI_CLASS])}
	switch elf.Data(buf[elf.EI_DATA]) {
	case elf.ELFDATA2LSB:
		h.ByteOrder = binary.LittleEndian
	case elf.ELFDATA2MSB:
		h.ByteOrder = binary.BigEndian
	default:
		return nil, fmt.Errorf("unknown ELF data encoding %d", buf[elf.EI_DATA])
	}
	if elf.Version(buf[elf.EI_VERSION]) != elf.EV_CURRENT {
		return nil, fmt.Errorf("unknown ELF version %d", buf[elf.EI_VERSION])
	}
	bo := h.ByteOrder
	h.Type, h.Machine = elf.Type(bo.Uint16(buf[16:])), elf.Machine(bo.Uint16(buf[18:]))
	var phoff uint64
	var phentsize, phnum, want int
	switch h.Class {
	case elf.ELFCLASS64:
		if len(buf) < 64 {
			return nil, errors.New("truncated ELF header")
		}
		phoff, phentsize, phnum, want = bo.Uint64(buf[32:]), int(bo.Uint16(buf[54:])), int(bo.Uint16(buf[56:])), 56
	case elf.ELFCLASS32:
		phoff, phentsize, phnum, want = uint64(bo.Uint32(buf[28:])), int(bo.Uint16(buf[42:])), int(bo.Uint16(buf[44:])), 32
	default:
		return nil, fmt.Errorf("unknown ELF class %d", buf[elf.EI_CLASS])
	}
	if phnum > maxProgHeaders {
		return nil, fmt.Errorf("%d program headers", phnum)
	}
	if phnum > 0 && phentsize != want {
		return nil, fmt.Errorf("program header size %d", phentsize)
	}
	if phoff > 1<<40 {
		return nil, errors.New("program headers out of range")
	}
	size := phnum * phentsize
	var ph []byte
	if end := phoff + uint64(size); end <= uint64(len(buf)) {
		ph = buf[phoff:end]
	} else {
		ph = make([]byte, size)
		if n, err := r.ReadAt(ph, int64(phoff)); n < size {
			return nil, fmt.Errorf("truncated program headers: %v", err)
		}
	}
	h.Progs = make([]progHeader, phnum)
	for i := range h.Progs {
		e := ph[i*phentsize:]
		p := &h.Progs[i]
		p.Type = elf.ProgType(bo.Uint32(e))
		if h.Class == elf.ELFCLASS64 {
			p.Off, p.Vaddr, p.Filesz = bo.Uint64(e[8:]), bo.Uint64(e[16:]), bo.Uint64(e[32:])
		} else {
			p.Off, p.Vaddr, p.Filesz = uint64(bo.Uint32(e[4:])), uint64(bo.Uint32(e[8:])), uint64(bo.Uint32(e[16:]))
		}
	}
	return h, nil
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
