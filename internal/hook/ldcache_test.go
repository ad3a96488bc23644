package hook

import (
	"strings"
	"testing"
)

func TestValidSONAME(t *testing.T) {
	for name, want := range map[string]bool{
		"libcuda.so.1":              true,
		"libnvidia-ml.so.580.95.05": true,
		"":                          false,
		".":                         false,
		"..":                        false,
		"../../etc/passwd":          false,
		"lib/cuda.so":               false,
		"libcuda.so.1\n":            false,
		"libcüda.so":                false,
		"libx.so.1234567890":        false, // overflows glibc's int compare
		"libx.so.123456789":         true,
		strings.Repeat("a", 256):    false,
	} {
		if got := validSONAME(name); got != want {
			t.Errorf("validSONAME(%q) = %v, want %v", name, got, want)
		}
	}
}

// listing is ldconfig -p's output without the header and generator lines.
func listing(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "\t") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}
