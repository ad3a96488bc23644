package hook

import (
	"bytes"
	"debug/elf"
	"testing"
)

// FuzzParseCache: an image's ld.so.cache is untrusted input. Parsing must
// never panic, and whatever parses must survive a round trip.
func FuzzParseCache(f *testing.F) {
	f.Add(encodeCache([]cacheEntry{
		{Key: "libcuda.so.1", Value: "/usr/lib/x86_64-linux-gnu/libcuda.so.1", Flags: 0x0303},
		{Key: "libz.so.1", Value: "/lib/glibc-hwcaps/x86-64-v3/libz.so.1", Flags: 0x0303, HWCap: hwcapExtension, Hwcaps: "x86-64-v3"},
	}))
	f.Add([]byte(cacheMagicOld + "\x00\x00\x00\x00\x00" + cacheMagicNew))
	f.Add([]byte(cacheMagicNew))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := parseCache(data)
		if err != nil {
			return
		}
		var keep []cacheEntry
		for _, e := range entries {
			if sortableKey(e.Key) {
				keep = append(keep, e)
			}
		}
		again, err := parseCache(encodeCache(keep))
		if err != nil {
			t.Fatalf("re-parse of an encoded cache: %v", err)
		}
		if len(again) != len(keep) {
			t.Fatalf("round trip kept %d of %d entries", len(again), len(keep))
		}
	})
}

// FuzzInspectLibrary: library files come from the image. Reading them
// must never panic; a SONAME it returns is bounded.
func FuzzInspectLibrary(f *testing.F) {
	f.Add(lib64("libcuda.so.1").bytes())
	f.Add(testELF{soname: "libcuda.so.1", needed: []string{"libc.so.6"}, machine: elf.EM_386, class: elf.ELFCLASS32, interp: "/lib/ld-linux.so.2"}.bytes())
	f.Add(testELF{soname: "libx.so.1", machine: elf.EM_AARCH64, class: elf.ELFCLASS64}.bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		lib, err := inspectLibrary(bytes.NewReader(data))
		if err != nil {
			return
		}
		if len(lib.soname) > maxSONAME {
			t.Fatalf("SONAME of %d bytes", len(lib.soname))
		}
		if lib.flags == 0 {
			t.Fatalf("library without flags: %+v", lib)
		}
	})
}
