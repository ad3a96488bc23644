package engines

import (
	"os"
	"strings"
)

// The files nvbind's packages install so the CDI spec follows the driver
// (packaging/): each is looked for where the package puts it and where an
// admin would override it.
var refreshTriggers = []struct {
	what  string
	paths []string
}{
	{"nvbind-cdi-refresh.service (boot, udev)", []string{"usr/lib/systemd/system/nvbind-cdi-refresh.service", "etc/systemd/system/nvbind-cdi-refresh.service", "lib/systemd/system/nvbind-cdi-refresh.service"}},
	{"nvbind-cdi-refresh.path (driver files)", []string{"usr/lib/systemd/system/nvbind-cdi-refresh.path", "etc/systemd/system/nvbind-cdi-refresh.path", "lib/systemd/system/nvbind-cdi-refresh.path"}},
	{"udev rule 70-nvbind.rules (module load, GPU hot-plug)", []string{"usr/lib/udev/rules.d/70-nvbind.rules", "etc/udev/rules.d/70-nvbind.rules", "lib/udev/rules.d/70-nvbind.rules"}},
}

// enabledLinks are the symlinks `systemctl enable` makes for the units.
var enabledLinks = []string{
	"etc/systemd/system/multi-user.target.wants/nvbind-cdi-refresh.service",
	"etc/systemd/system/paths.target.wants/nvbind-cdi-refresh.path",
}

// specRefresh says which of the triggers that regenerate the CDI spec
// after a driver change are missing: the systemd units (and whether they
// are enabled), the udev rule and, on Arch, the pacman hook.
func (d *doctor) specRefresh() {
	const name = "spec-refresh"
	exists := func(p string) bool { _, err := os.Lstat(d.sys(p)); return err == nil }
	var missing []string
	for _, t := range refreshTriggers {
		found := false
		for _, p := range t.paths {
			found = found || exists(p)
		}
		if !found {
			missing = append(missing, t.what)
		}
	}
	if len(missing) == 0 {
		for _, l := range enabledLinks {
			if !exists(l) {
				missing = append(missing, l[strings.LastIndex(l, "/")+1:]+" not enabled")
			}
		}
	}
	if exists("etc/arch-release") && !exists("usr/share/libalpm/hooks/nvbind-cdi.hook") && !exists("etc/pacman.d/hooks/nvbind-cdi.hook") {
		missing = append(missing, "pacman hook nvbind-cdi.hook (nvidia* upgrades)")
	}
	if len(missing) == 0 {
		d.add(name, Pass, "", "the spec is regenerated at boot, when the driver loads, when its files change")
		return
	}
	fix := "install nvbind from its package (it ships and enables them), or: systemctl enable --now nvbind-cdi-refresh.service nvbind-cdi-refresh.path"
	why := "after a driver change, engines' own CDI (podman --device, docker --device) use a stale spec until 'nvbind cdi generate' runs"
	if d.opts.Config.CDI.JITSpec == "" {
		why = "cdi.jit-spec is off too, so after a driver change GPU containers fail until 'nvbind cdi generate' runs"
	}
	d.add(name, Warn, fix, "missing: %s; %s", strings.Join(missing, ", "), why)
}
