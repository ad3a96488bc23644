package gpu

// ldcache.go: which of the root's ld.so.cache entries library discovery
// takes. The file itself is read by internal/ldcache.

const (
	flagTypeMask   = 0x00ff
	flagELFLibc6   = 0x0003
	flagArchMask   = 0xff00
	flagX8664Lib64 = 0x0300
	flagAArch64    = 0x0a00
)

// is64 reports a native 64-bit glibc library (x86-64 or aarch64) from its
// cache entry's flags.
func is64(flags int32) bool {
	a := flags & flagArchMask
	return flags&flagTypeMask == flagELFLibc6 && (a == flagX8664Lib64 || a == flagAArch64)
}

// is32 reports a 32-bit glibc library (i386 on x86-64 hosts) from its
// cache entry's flags.
func is32(flags int32) bool {
	return flags&flagTypeMask == flagELFLibc6 && flags&flagArchMask == 0
}
