package engines

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestDoctorSpecRefresh(t *testing.T) {
	all := []string{
		"usr/lib/systemd/system/nvbind-cdi-refresh.service",
		"usr/lib/systemd/system/nvbind-cdi-refresh.path",
		"usr/lib/udev/rules.d/70-nvbind.rules",
		"etc/systemd/system/multi-user.target.wants/nvbind-cdi-refresh.service",
		"etc/systemd/system/paths.target.wants/nvbind-cdi-refresh.path",
	}
	for _, tt := range []struct {
		name    string
		files   []string
		noJIT   bool
		status  Status
		message []string
	}{
		{"package installed", all, false, Pass, []string{"regenerated at boot"}},
		{"nothing installed", nil, false, Warn, []string{"nvbind-cdi-refresh.service", "70-nvbind.rules", "engines' own CDI"}},
		{"nothing, JIT off", nil, true, Warn, []string{"cdi.jit-spec is off"}},
		{"units not enabled", all[:3], false, Warn, []string{"nvbind-cdi-refresh.service not enabled", "nvbind-cdi-refresh.path not enabled"}},
		{"arch without hook", append([]string{"etc/arch-release"}, all...), false, Warn, []string{"pacman hook"}},
		{"arch with hook", append([]string{"etc/arch-release", "usr/share/libalpm/hooks/nvbind-cdi.hook"}, all...), false, Pass, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opts := doctorFixture(t)
			for _, f := range tt.files {
				writeFile(t, filepath.Join(opts.SysRoot, f), "")
			}
			if tt.noJIT {
				opts.Config.CDI.JITSpec = ""
			}
			c := checkOf(t, Doctor(opts), "spec-refresh")
			if c.Status != tt.status {
				t.Errorf("status %s, want %s: %s", c.Status, tt.status, c.Message)
			}
			for _, m := range tt.message {
				if !strings.Contains(c.Message, m) {
					t.Errorf("message %q lacks %q", c.Message, m)
				}
			}
			if c.Status == Warn && !strings.Contains(c.Fix, "systemctl enable") {
				t.Errorf("fix: %q", c.Fix)
			}
		})
	}
}
