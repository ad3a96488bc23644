package gpu

import "testing"

func TestLibraryClass(t *testing.T) {
	for _, tt := range []struct {
		flags      int32
		is64, is32 bool
	}{
		{flagELFLibc6 | flagX8664Lib64, true, false},
		{flagELFLibc6 | flagAArch64, true, false},
		{flagELFLibc6, false, true},
		{1, false, false},
	} {
		if is64(tt.flags) != tt.is64 || is32(tt.flags) != tt.is32 {
			t.Errorf("flags %#x: is64 %v, is32 %v; want %v, %v", tt.flags, is64(tt.flags), is32(tt.flags), tt.is64, tt.is32)
		}
	}
}
