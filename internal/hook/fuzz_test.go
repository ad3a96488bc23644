package hook

import (
	"bytes"
	"debug/elf"
	"testing"
)

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
