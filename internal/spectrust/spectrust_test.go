package spectrust

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make files of other owners")
	}
	base := t.TempDir() // under the sticky /tmp
	os.Chmod(base, 0o755)
	mk := func(rel string, mode os.FileMode, uid int, dir bool) string {
		p := filepath.Join(base, rel)
		if dir {
			os.MkdirAll(p, 0o755)
		} else {
			os.WriteFile(p, []byte("{}"), 0o644)
		}
		os.Chmod(p, mode)
		os.Lchown(p, uid, 0)
		return p
	}
	mk("good", 0o755, 0, true)
	good := mk("good/nvidia.json", 0o644, 0, false)
	userFile := mk("good/user.json", 0o644, 1000, false)
	groupW := mk("good/groupw.json", 0o664, 0, false)
	mk("wdir", 0o777, 0, true)
	inWDir := mk("wdir/nvidia.json", 0o644, 0, false)
	mk("sticky", os.ModeSticky|0o777, 0, true)
	inSticky := mk("sticky/nvidia.json", 0o644, 0, false)
	mk("userdir", 0o755, 1000, true)
	inUserDir := mk("userdir/nvidia.json", 0o644, 0, false)
	link := filepath.Join(base, "good/link.json")
	os.Symlink(userFile, link)

	tests := []struct {
		path, want string
	}{
		{good, ""},
		{inSticky, ""},
		{userFile, "owned by uid 1000"},
		{groupW, "writable by its group"},
		{inWDir, "writable by its group and everyone"},
		{inUserDir, "directory " + filepath.Join(base, "userdir") + " is owned by uid 1000"},
		{link, "owned by uid 1000"},
	}
	c := &Checker{}
	for _, tt := range tests {
		err := c.Check(tt.path)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: got %v, want %q", tt.path, err, tt.want)
		}
	}
}
