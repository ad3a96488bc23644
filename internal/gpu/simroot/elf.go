package simroot

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
)

// sharedObject returns a minimal but well-formed ELF shared object whose
// dynamic section carries soname as DT_SONAME and needs libc.so.6, as the
// driver's libraries do. It has what ldconfig reads (PT_LOAD, PT_DYNAMIC,
// DT_STRTAB, DT_SONAME), what the dynamic loader needs to dlopen it without
// harm (DT_HASH, DT_SYMTAB with only the null symbol, PT_GNU_STACK so no
// executable stack is asked for) and section headers so debug/elf and
// readelf see the same thing. It exports no symbols and holds no code, so a
// dlopen succeeds and every dlsym fails cleanly. class64 selects ELF64
// x86-64, else ELF32 i386.
func sharedObject(soname string, class64 bool) []byte {
	// Like the real driver libraries, each needs libc.so.6: that is also
	// what makes ldconfig tag a 32-bit library "libc6" rather than "ELF".
	const libc = "libc.so.6"
	dynstr := append([]byte{0}, libc...)
	dynstr = append(dynstr, 0)
	sonameOff := uint64(len(dynstr))
	dynstr = append(dynstr, soname...)
	dynstr = append(dynstr, 0)
	shstr := []byte("\x00.dynstr\x00.dynamic\x00.shstrtab\x00.dynsym\x00.hash\x00")
	const (
		nameDynstr   = 1
		nameDynamic  = 9
		nameShstrtab = 18
		nameDynsym   = 28
		nameHash     = 36
	)

	var ehsize, phentsize, shentsize, dynentsize, symentsize, align int
	if class64 {
		ehsize, phentsize, shentsize, dynentsize, symentsize, align = 64, 56, 64, 16, 24, 8
	} else {
		ehsize, phentsize, shentsize, dynentsize, symentsize, align = 52, 32, 40, 8, 16, 4
	}
	pad := func(n int) int { return (n + align - 1) / align * align }

	// Layout: header, 3 program headers, .dynsym (null symbol), .hash
	// (one empty bucket), .dynstr, .dynamic, .shstrtab, section headers.
	// Virtual addresses equal file offsets (one PT_LOAD at 0).
	const nphdr = 3
	dynsymOff := ehsize + nphdr*phentsize
	hashOff := dynsymOff + symentsize
	hash := []uint32{1, 1, 0, 0} // nbucket, nchain, bucket[0], chain[0]
	dynstrOff := hashOff + 4*len(hash)
	dynamicOff := pad(dynstrOff + len(dynstr))
	dyn := [][2]uint64{
		{uint64(elf.DT_NEEDED), 1},
		{uint64(elf.DT_SONAME), sonameOff},
		{uint64(elf.DT_HASH), uint64(hashOff)},
		{uint64(elf.DT_SYMTAB), uint64(dynsymOff)},
		{uint64(elf.DT_SYMENT), uint64(symentsize)},
		{uint64(elf.DT_STRTAB), uint64(dynstrOff)},
		{uint64(elf.DT_STRSZ), uint64(len(dynstr))},
		{uint64(elf.DT_NULL), 0},
	}
	dynamicSize := len(dyn) * dynentsize
	shstrOff := dynamicOff + dynamicSize
	shoff := pad(shstrOff + len(shstr))

	type sect struct {
		name, typ, flags, addr, off, size, link, info, entsize, align uint64
	}
	sections := []sect{
		{},
		{name: nameDynstr, typ: uint64(elf.SHT_STRTAB), flags: uint64(elf.SHF_ALLOC), addr: uint64(dynstrOff), off: uint64(dynstrOff), size: uint64(len(dynstr)), align: 1},
		{name: nameDynamic, typ: uint64(elf.SHT_DYNAMIC), flags: uint64(elf.SHF_ALLOC | elf.SHF_WRITE), addr: uint64(dynamicOff), off: uint64(dynamicOff), size: uint64(dynamicSize), link: 1, entsize: uint64(dynentsize), align: uint64(align)},
		{name: nameShstrtab, typ: uint64(elf.SHT_STRTAB), off: uint64(shstrOff), size: uint64(len(shstr)), align: 1},
		{name: nameDynsym, typ: uint64(elf.SHT_DYNSYM), flags: uint64(elf.SHF_ALLOC), addr: uint64(dynsymOff), off: uint64(dynsymOff), size: uint64(symentsize), link: 1, info: 1, entsize: uint64(symentsize), align: uint64(align)},
		{name: nameHash, typ: uint64(elf.SHT_HASH), flags: uint64(elf.SHF_ALLOC), addr: uint64(hashOff), off: uint64(hashOff), size: uint64(4 * len(hash)), link: 4, entsize: 4, align: 4},
	}
	fileSize := shoff + len(sections)*shentsize

	var b bytes.Buffer
	w := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	fill := func(off int) {
		for b.Len() < off {
			b.WriteByte(0)
		}
	}
	ident := [elf.EI_NIDENT]byte{0x7f, 'E', 'L', 'F', 0, byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT), byte(elf.ELFOSABI_NONE)}
	type prog struct {
		typ, flags, off, size, align uint64
	}
	progs := []prog{
		{typ: uint64(elf.PT_LOAD), flags: uint64(elf.PF_R | elf.PF_W), off: 0, size: uint64(fileSize), align: 0x1000},
		{typ: uint64(elf.PT_DYNAMIC), flags: uint64(elf.PF_R | elf.PF_W), off: uint64(dynamicOff), size: uint64(dynamicSize), align: uint64(align)},
		{typ: uint64(elf.PT_GNU_STACK), flags: uint64(elf.PF_R | elf.PF_W), align: 16},
	}

	if class64 {
		ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
		w(elf.Header64{Ident: ident, Type: uint16(elf.ET_DYN), Machine: uint16(elf.EM_X86_64), Version: uint32(elf.EV_CURRENT),
			Phoff: uint64(ehsize), Shoff: uint64(shoff), Ehsize: uint16(ehsize), Phentsize: uint16(phentsize), Phnum: nphdr,
			Shentsize: uint16(shentsize), Shnum: uint16(len(sections)), Shstrndx: 3})
		for _, p := range progs {
			w(elf.Prog64{Type: uint32(p.typ), Flags: uint32(p.flags), Off: p.off, Vaddr: p.off, Paddr: p.off, Filesz: p.size, Memsz: p.size, Align: p.align})
		}
		w(elf.Sym64{})
	} else {
		ident[elf.EI_CLASS] = byte(elf.ELFCLASS32)
		w(elf.Header32{Ident: ident, Type: uint16(elf.ET_DYN), Machine: uint16(elf.EM_386), Version: uint32(elf.EV_CURRENT),
			Phoff: uint32(ehsize), Shoff: uint32(shoff), Ehsize: uint16(ehsize), Phentsize: uint16(phentsize), Phnum: nphdr,
			Shentsize: uint16(shentsize), Shnum: uint16(len(sections)), Shstrndx: 3})
		for _, p := range progs {
			w(elf.Prog32{Type: uint32(p.typ), Flags: uint32(p.flags), Off: uint32(p.off), Vaddr: uint32(p.off), Paddr: uint32(p.off),
				Filesz: uint32(p.size), Memsz: uint32(p.size), Align: uint32(p.align)})
		}
		w(elf.Sym32{})
	}
	w(hash)
	b.Write(dynstr)
	fill(dynamicOff)
	for _, d := range dyn {
		if class64 {
			w(elf.Dyn64{Tag: int64(d[0]), Val: d[1]})
		} else {
			w(elf.Dyn32{Tag: int32(d[0]), Val: uint32(d[1])})
		}
	}
	b.Write(shstr)
	fill(shoff)
	for _, s := range sections {
		if class64 {
			w(elf.Section64{Name: uint32(s.name), Type: uint32(s.typ), Flags: s.flags, Addr: s.addr, Off: s.off, Size: s.size,
				Link: uint32(s.link), Info: uint32(s.info), Addralign: s.align, Entsize: s.entsize})
		} else {
			w(elf.Section32{Name: uint32(s.name), Type: uint32(s.typ), Flags: uint32(s.flags), Addr: uint32(s.addr), Off: uint32(s.off),
				Size: uint32(s.size), Link: uint32(s.link), Info: uint32(s.info), Addralign: uint32(s.align), Entsize: uint32(s.entsize)})
		}
	}
	return b.Bytes()
}
