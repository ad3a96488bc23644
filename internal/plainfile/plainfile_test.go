package plainfile

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSameAsOS: ReadFile, Stat and ReadAt answer as os does, errors
// included.
func TestSameAsOS(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{"empty": "", "small": "{}\n", "large": strings.Repeat("x", 70000)}
	for name, data := range files {
		os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644)
	}
	os.Symlink("small", filepath.Join(dir, "link"))
	os.Symlink("missing", filepath.Join(dir, "dangling"))
	paths := []string{"empty", "small", "large", "link", "dangling", "missing", ".", "small/x", "/proc/self/status", ""}
	for _, p := range paths {
		if p != "" && !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		got, err := ReadFile(p)
		want, werr := os.ReadFile(p)
		if fmt.Sprint(err) != fmt.Sprint(werr) || (!strings.HasPrefix(p, "/proc/") && !bytes.Equal(got, want)) {
			t.Errorf("ReadFile(%q) = %d bytes, %v; os: %d bytes, %v", p, len(got), err, len(want), werr)
		}
		got, st, stable, err := ReadFileStable(p)
		if fmt.Sprint(err) != fmt.Sprint(werr) || (err == nil && !strings.HasPrefix(p, "/proc/") && (!bytes.Equal(got, want) || !stable)) {
			t.Errorf("ReadFileStable(%q) = %d bytes, stable %v, %v; os: %d bytes, %v", p, len(got), stable, err, len(want), werr)
		}
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && st.Size != fi.Size() {
			t.Errorf("ReadFileStable(%q): size %d, os: %d", p, st.Size, fi.Size())
		}

		f, err := Open(p)
		of, werr := os.Open(p)
		if fmt.Sprint(err) != fmt.Sprint(werr) {
			t.Errorf("Open(%q): %v; os: %v", p, err, werr)
		}
		if err != nil || werr != nil {
			continue
		}
		size, regular, err := f.Stat()
		fi, werr := of.Stat()
		if err != nil || werr != nil || size != fi.Size() || regular != fi.Mode().IsRegular() {
			t.Errorf("Stat(%q) = %d %v %v; os: %v %v", p, size, regular, err, fi, werr)
		}
		for _, n := range []int{0, 1, 3, 100} {
			b, ob := make([]byte, n), make([]byte, n)
			m, err := f.ReadAt(b, 1)
			om, werr := of.ReadAt(ob, 1)
			if m != om || fmt.Sprint(err) != fmt.Sprint(werr) || !bytes.Equal(b, ob) {
				t.Errorf("ReadAt(%q, %d bytes) = %d, %v; os: %d, %v", p, n, m, err, om, werr)
			}
		}
		f.Close()
		of.Close()
	}
}
