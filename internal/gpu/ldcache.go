package gpu

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// ldcache.go reads glibc's /etc/ld.so.cache: the old "ld.so-1.7.0" table,
// the new "glibc-ld.so.cache1.1" table, or the old one followed by the new
// one. Only what library discovery needs is kept: the SONAME, the path and
// whether the entry is a native 64-bit or a 32-bit library.

const (
	oldCacheMagic = "ld.so-1.7.0"
	newCacheMagic = "glibc-ld.so.cache1.1"

	flagTypeMask   = 0x00ff
	flagELFLibc6   = 0x0003
	flagArchMask   = 0xff00
	flagX8664Lib64 = 0x0300
	flagAArch64    = 0x0a00
)

// cacheEntry is one library in ld.so.cache.
type cacheEntry struct {
	Name  string // the SONAME (or file name) the entry is keyed by
	Path  string // absolute path as seen from the root
	Flags int32
}

// is64 reports a native 64-bit glibc library (x86-64 or aarch64).
func (e cacheEntry) is64() bool {
	a := e.Flags & flagArchMask
	return e.Flags&flagTypeMask == flagELFLibc6 && (a == flagX8664Lib64 || a == flagAArch64)
}

// is32 reports a 32-bit glibc library (i386 on x86-64 hosts).
func (e cacheEntry) is32() bool {
	return e.Flags&flagTypeMask == flagELFLibc6 && e.Flags&flagArchMask == 0
}

// parseLDCache decodes ld.so.cache data.
func parseLDCache(data []byte) ([]cacheEntry, error) {
	le := binary.LittleEndian
	off := 0
	if bytes.HasPrefix(data, []byte(oldCacheMagic)) {
		// Old header: magic[11], pad, nlibs uint32; entries of 3 int32.
		if len(data) < 16 {
			return nil, errors.New("ld.so.cache: truncated header")
		}
		n := int(le.Uint32(data[12:16]))
		off = 16 + n*12
		if n < 0 || off > len(data) {
			return nil, errors.New("ld.so.cache: truncated old table")
		}
		off = (off + 7) &^ 7 // the new table follows, 8-byte aligned
		if !bytes.HasPrefix(data[off:], []byte(newCacheMagic)) {
			return parseOldTable(data, n)
		}
	}
	if !bytes.HasPrefix(data[off:], []byte(newCacheMagic)) {
		return nil, errors.New("ld.so.cache: unknown format")
	}
	// New header: magic[17]+version[3], nlibs, len_strings, flags+pad[4],
	// extension offset, unused[3] = 48 bytes; entries of 24 bytes. String
	// offsets count from the start of the new table.
	hdr := data[off:]
	if len(hdr) < 48 {
		return nil, errors.New("ld.so.cache: truncated header")
	}
	n := int(le.Uint32(hdr[20:24]))
	if n < 0 || 48+n*24 > len(hdr) {
		return nil, fmt.Errorf("ld.so.cache: %d entries do not fit", n)
	}
	entries := make([]cacheEntry, 0, n)
	for i := 0; i < n; i++ {
		e := hdr[48+i*24:]
		flags := int32(le.Uint32(e[0:4]))
		key, ok1 := cString(hdr, int(le.Uint32(e[4:8])))
		val, ok2 := cString(hdr, int(le.Uint32(e[8:12])))
		if !ok1 || !ok2 {
			return nil, errors.New("ld.so.cache: string offset out of range")
		}
		entries = append(entries, cacheEntry{Name: key, Path: val, Flags: flags})
	}
	return entries, nil
}

// parseOldTable decodes an old-format-only cache (glibc < 2.32 with
// --format=old); string offsets count from the end of the table.
func parseOldTable(data []byte, n int) ([]cacheEntry, error) {
	le := binary.LittleEndian
	strs := 16 + n*12
	entries := make([]cacheEntry, 0, n)
	for i := 0; i < n; i++ {
		e := data[16+i*12:]
		key, ok1 := cString(data, strs+int(le.Uint32(e[4:8])))
		val, ok2 := cString(data, strs+int(le.Uint32(e[8:12])))
		if !ok1 || !ok2 {
			return nil, errors.New("ld.so.cache: string offset out of range")
		}
		entries = append(entries, cacheEntry{Name: key, Path: val, Flags: int32(le.Uint32(e[0:4]))})
	}
	return entries, nil
}

func cString(b []byte, off int) (string, bool) {
	if off < 0 || off >= len(b) {
		return "", false
	}
	end := bytes.IndexByte(b[off:], 0)
	if end < 0 {
		return "", false
	}
	return string(b[off : off+end]), true
}
