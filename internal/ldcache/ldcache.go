// Package ldcache reads and writes glibc's ld.so.cache file, the table the
// dynamic loader searches for a library's SONAME. It knows the file format
// and the loader's sort order; which entries to keep is the caller's call.
package ldcache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"sort"
)

// The glibc ld.so.cache file ("glibc-ld.so.cache1.1", glibc's
// sysdeps/generic/dl-cache.h), written in the host's byte order:
//
//	header   magic[20] nlibs len_strings flags(u8) pad[3] extension_offset unused[3]   (48 bytes)
//	entries  nlibs x {flags i32, key u32, value u32, osversion u32, hwcap u64}          (24 bytes each)
//	strings  len_strings bytes of NUL-terminated strings; key/value are file offsets
//	extension (optional, 4-aligned) {magic, count, count x {tag, flags, offset, size}} + section data
//
// Every glibc since 2.2 reads this format; older "compat" files carry it
// after an "ld.so-1.7.0" table, which Parse skips.
const (
	cacheMagicOld      = "ld.so-1.7.0"
	cacheMagicNew      = "glibc-ld.so.cache1.1"
	cacheHeaderSize    = 48
	cacheEntrySize     = 24
	oldHeaderSize      = 16 // magic[11], pad, nlibs
	oldEntrySize       = 12 // flags i32, key u32, value u32
	extensionMagic     = 0xeaa42174
	extTagGenerator    = 0
	extTagGlibcHwcaps  = 1
	hwcapISALevelMask  = uint64(1)<<10 - 1
	endianLittle       = 2
	endianBig          = 3
	maxKeyDigitRunSize = 9 // see Libcmp
)

const (
	// MaxSize bounds the cache file Parse reads.
	MaxSize = 64 << 20
	// MaxEntries bounds the entries Parse accepts.
	MaxEntries = 1 << 20
	// HWCapExtension marks an entry that lives in a glibc-hwcaps subdirectory.
	HWCapExtension = uint64(1) << 62
)

// Entry is one library in the cache.
type Entry struct {
	Key, Value string // SONAME and the path the loader opens
	Flags      int32
	OSVersion  uint32
	HWCap      uint64
	// Hwcaps is the glibc-hwcaps subdirectory name ("x86-64-v3") of an
	// extension entry, "" for a plain one.
	Hwcaps string
}

// nativeEndian is the byte order of the host, which is the container's.
var nativeEndian = binary.NativeEndian

func endianFlag() uint8 {
	var b [2]byte
	nativeEndian.PutUint16(b[:], 1)
	if b[0] == 1 {
		return endianLittle
	}
	return endianBig
}

var errFormat = errors.New("not a glibc ld.so.cache")

// errOldOnly is a file with the old table and no new one after it. A type
// rather than fmt.Errorf: package init runs on every nvbind-runtime call,
// and fmt's first use in a process is not free.
var errOldOnly error = oldOnlyError{}

type oldOnlyError struct{}

func (oldOnlyError) Error() string { return errFormat.Error() + ": no " + cacheMagicNew + " table" }
func (oldOnlyError) Unwrap() error { return errFormat }

// Parse decodes the new-format table of an ld.so.cache file (new format, or
// compat format with the new table embedded), the one every loader since
// glibc 2.2 reads. It checks every offset against the file; a bad file is
// an error, never a panic. Entries naming a glibc-hwcaps subdirectory the
// file does not list are dropped, as the loader cannot use them either.
func Parse(data []byte) ([]Entry, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes", errFormat, len(data))
	}
	base := 0
	if bytes.HasPrefix(data, []byte(cacheMagicOld)) {
		if len(data) < oldHeaderSize {
			return nil, errFormat
		}
		n := uint64(nativeEndian.Uint32(data[12:]))
		end := uint64(oldHeaderSize) + n*oldEntrySize
		base = int((end + 7) &^ 7)
		if end > uint64(len(data)) || base > len(data) {
			return nil, fmt.Errorf("%w: old table overruns the file", errFormat)
		}
		if !bytes.HasPrefix(data[base:], []byte(cacheMagicNew)) {
			return nil, errOldOnly
		}
	}
	c := data[base:]
	if len(c) < cacheHeaderSize || !bytes.HasPrefix(c, []byte(cacheMagicNew)) {
		return nil, fmt.Errorf("%w: no %s table", errFormat, cacheMagicNew)
	}
	if e := c[28] & 3; e != 0 && e != endianFlag() {
		return nil, fmt.Errorf("%w: wrong byte order", errFormat)
	}
	nlibs := uint64(nativeEndian.Uint32(c[20:]))
	if nlibs > MaxEntries || cacheHeaderSize+nlibs*cacheEntrySize > uint64(len(c)) {
		return nil, fmt.Errorf("%w: %d entries overrun the file", errFormat, nlibs)
	}
	str := func(off uint32) (string, bool) { return cString(c, uint64(off)) }
	// Extension offsets count from the file start, its string indices from
	// the new table's: they only agree in a new-format file. A compat
	// file's glibc-hwcaps entries are dropped; the loader then uses the
	// plain entry for the same library.
	var hwcaps []string
	if base == 0 {
		var err error
		if hwcaps, err = parseExtension(c, nativeEndian.Uint32(c[32:]), str); err != nil {
			return nil, err
		}
	}
	entries := make([]Entry, 0, nlibs)
	for i := uint64(0); i < nlibs; i++ {
		e := c[cacheHeaderSize+i*cacheEntrySize:]
		key, ok1 := str(nativeEndian.Uint32(e[4:]))
		value, ok2 := str(nativeEndian.Uint32(e[8:]))
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%w: entry %d points outside the file", errFormat, i)
		}
		ent := Entry{
			Key: key, Value: value,
			Flags:     int32(nativeEndian.Uint32(e[0:])),
			OSVersion: nativeEndian.Uint32(e[12:]),
			HWCap:     nativeEndian.Uint64(e[16:]),
		}
		if isHwcapExtension(ent.HWCap) {
			idx := uint32(ent.HWCap)
			if int(idx) >= len(hwcaps) || hwcaps[idx] == "" {
				continue // no such subdirectory: the loader cannot use it either
			}
			ent.Hwcaps = hwcaps[idx]
		}
		entries = append(entries, ent)
	}
	return entries, nil
}

// ParseAny is Parse, and also reads a file that holds only the old
// "ld.so-1.7.0" table (glibc before 2.32 run with --format=old), for
// callers that look libraries up rather than hand the file to a loader.
func ParseAny(data []byte) ([]Entry, error) {
	entries, err := Parse(data)
	if !errors.Is(err, errOldOnly) {
		return entries, err
	}
	// Old table: entries of {flags, key, value}, string offsets counting
	// from the end of the table. Parse has checked that the table fits.
	n := uint64(nativeEndian.Uint32(data[12:]))
	strs := uint64(oldHeaderSize) + n*oldEntrySize
	entries = make([]Entry, 0, n)
	for i := uint64(0); i < n; i++ {
		e := data[oldHeaderSize+i*oldEntrySize:]
		key, ok1 := cString(data, strs+uint64(nativeEndian.Uint32(e[4:])))
		value, ok2 := cString(data, strs+uint64(nativeEndian.Uint32(e[8:])))
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%w: entry %d points outside the file", errFormat, i)
		}
		entries = append(entries, Entry{Key: key, Value: value, Flags: int32(nativeEndian.Uint32(e[0:]))})
	}
	return entries, nil
}

// cString is the NUL-terminated string at off in b.
func cString(b []byte, off uint64) (string, bool) {
	if off >= uint64(len(b)) {
		return "", false
	}
	i := bytes.IndexByte(b[off:], 0)
	if i < 0 {
		return "", false
	}
	return string(b[off : off+uint64(i)]), true
}

// isHwcapExtension is glibc's dl_cache_hwcap_extension: only the extension
// bit set in the upper half, ignoring the ISA level bits.
func isHwcapExtension(hwcap uint64) bool {
	return (hwcap>>32)&^hwcapISALevelMask == HWCapExtension>>32
}

// parseExtension returns the glibc-hwcaps subdirectory names of the
// extension directory at off (none when off is 0).
func parseExtension(c []byte, off uint32, str func(uint32) (string, bool)) ([]string, error) {
	if off == 0 {
		return nil, nil
	}
	bad := fmt.Errorf("%w: bad extension directory", errFormat)
	if off%4 != 0 || uint64(off)+8 > uint64(len(c)) || nativeEndian.Uint32(c[off:]) != extensionMagic {
		return nil, bad
	}
	count := uint64(nativeEndian.Uint32(c[off+4:]))
	if uint64(off)+8+count*16 > uint64(len(c)) {
		return nil, bad
	}
	var names []string
	for i := uint64(0); i < count; i++ {
		s := c[uint64(off)+8+i*16:]
		tag, offset, size := nativeEndian.Uint32(s), nativeEndian.Uint32(s[8:]), nativeEndian.Uint32(s[12:])
		if uint64(offset)+uint64(size) > uint64(len(c)) {
			return nil, bad
		}
		if tag != extTagGlibcHwcaps || size == 0 || offset%4 != 0 || size%4 != 0 {
			continue
		}
		names = names[:0]
		for j := uint32(0); j < size; j += 4 {
			name, ok := str(nativeEndian.Uint32(c[offset+j:]))
			if !ok {
				return nil, bad
			}
			names = append(names, name)
		}
	}
	return names, nil
}

// Encode builds a new-format cache file for entries, sorted the way the
// loader's binary search expects, naming generator as its writer. The sort
// is stable: of entries the loader ranks equal, the earlier one in entries
// stays first and wins.
func Encode(entries []Entry, generator string) []byte {
	sorted := append([]Entry(nil), entries...)
	sort.SliceStable(sorted, func(i, j int) bool { return less(sorted[i], sorted[j]) })

	// glibc-hwcaps names, sorted, become the extension's index array.
	var hwcaps []string
	for _, e := range sorted {
		if e.Hwcaps != "" {
			hwcaps = append(hwcaps, e.Hwcaps)
		}
	}
	sort.Strings(hwcaps)
	hwcaps = compactStrings(hwcaps)
	hwcapIndex := map[string]uint32{}
	for i, h := range hwcaps {
		hwcapIndex[h] = uint32(i)
	}

	// String table, each string once; offsets count from the file start.
	strStart := cacheHeaderSize + len(sorted)*cacheEntrySize
	var strs bytes.Buffer
	offsets := map[string]uint32{}
	intern := func(s string) uint32 {
		if off, ok := offsets[s]; ok {
			return off
		}
		off := uint32(strStart + strs.Len())
		strs.WriteString(s)
		strs.WriteByte(0)
		offsets[s] = off
		return off
	}

	var out bytes.Buffer
	put32 := func(v uint32) { out.Write(nativeEndian.AppendUint32(nil, v)) }
	out.WriteString(cacheMagicNew)
	put32(uint32(len(sorted)))
	lenStringsAt := out.Len()
	put32(0) // len_strings, patched below
	out.Write([]byte{endianFlag(), 0, 0, 0})
	extAt := out.Len()
	put32(0) // extension_offset, patched below
	out.Write(make([]byte, 12))
	for _, e := range sorted {
		hwcap := e.HWCap
		if e.Hwcaps != "" {
			hwcap = hwcap&^0xffffffff | uint64(hwcapIndex[e.Hwcaps])
		}
		put32(uint32(e.Flags))
		put32(intern(e.Key))
		put32(intern(e.Value))
		put32(e.OSVersion)
		out.Write(nativeEndian.AppendUint64(nil, hwcap))
	}
	hwcapOffsets := make([]uint32, len(hwcaps))
	for i, h := range hwcaps {
		hwcapOffsets[i] = intern(h)
	}
	out.Write(strs.Bytes())
	nativeEndian.PutUint32(out.Bytes()[lenStringsAt:], uint32(strs.Len()))

	// Extension directory: the generator string, and the glibc-hwcaps
	// array when any entry uses it.
	for out.Len()%4 != 0 {
		out.WriteByte(0)
	}
	extOff := out.Len()
	nativeEndian.PutUint32(out.Bytes()[extAt:], uint32(extOff))
	count := 1
	if len(hwcaps) > 0 {
		count = 2
	}
	dataOff := extOff + 8 + 16*count
	put32(extensionMagic)
	put32(uint32(count))
	if len(hwcaps) > 0 {
		put32(extTagGlibcHwcaps)
		put32(0)
		put32(uint32(dataOff))
		put32(uint32(4 * len(hwcaps)))
		dataOff += 4 * len(hwcaps)
	}
	put32(extTagGenerator)
	put32(0)
	put32(uint32(dataOff))
	put32(uint32(len(generator)))
	for _, off := range hwcapOffsets {
		put32(off)
	}
	out.WriteString(generator)
	return out.Bytes()
}

func compactStrings(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// less is the order of glibc's ldconfig (cache.c compare): keys
// descending by _dl_cache_libcmp, then flags descending, then glibc-hwcaps
// entries before plain ones (the loader stops at the first plain one), by
// subdirectory name.
func less(a, b Entry) bool {
	if c := Libcmp(a.Key, b.Key); c != 0 {
		return c > 0
	}
	if a.Flags != b.Flags {
		return a.Flags > b.Flags
	}
	if (a.Hwcaps != "") != (b.Hwcaps != "") {
		return a.Hwcaps != ""
	}
	if a.Hwcaps != b.Hwcaps {
		return a.Hwcaps < b.Hwcaps
	}
	if ba, bb := bits.OnesCount64(a.HWCap), bits.OnesCount64(b.HWCap); ba != bb {
		return ba > bb
	}
	if a.HWCap != b.HWCap {
		return a.HWCap > b.HWCap
	}
	return a.OSVersion > b.OSVersion
}

// Libcmp is glibc's _dl_cache_libcmp: byte order, except that runs of
// digits compare as numbers and sort after non-digits. glibc computes the
// numbers in an int and compares plain char; keys with runs of more than 9
// digits or bytes above 0x7f (where that overflows or depends on char
// signedness) must be kept out of the cache: see SortableKey.
func Libcmp(a, b string) int {
	at := func(s string, i int) byte {
		if i < len(s) {
			return s[i]
		}
		return 0
	}
	i, j := 0, 0
	for i < len(a) {
		ca, cb := a[i], at(b, j)
		switch {
		case isDigit(ca) && isDigit(cb):
			va, vb := 0, 0
			for ; i < len(a) && isDigit(a[i]); i++ {
				va = va*10 + int(a[i]-'0')
			}
			for ; j < len(b) && isDigit(b[j]); j++ {
				vb = vb*10 + int(b[j]-'0')
			}
			if va != vb {
				return va - vb
			}
		case isDigit(ca):
			return 1
		case isDigit(cb):
			return -1
		case ca != cb:
			return int(ca) - int(cb)
		default:
			i++
			j++
		}
	}
	return -int(at(b, j))
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// SortableKey reports whether Libcmp orders key exactly as the loader does.
func SortableKey(key string) bool {
	if key == "" {
		return false
	}
	run := 0
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c < 0x20 || c > 0x7e {
			return false
		}
		if isDigit(c) {
			run++
			if run > maxKeyDigitRunSize {
				return false
			}
		} else {
			run = 0
		}
	}
	return true
}
