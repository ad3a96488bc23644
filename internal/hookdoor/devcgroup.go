package hookdoor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/cgroups"
	_ "github.com/opencontainers/cgroups/devices" // sets cgroups.DevicesSetV2
	devconfig "github.com/opencontainers/cgroups/devices/config"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

// allowDevices opens the device cgroup of process pid for rules. On cgroup
// v1 each rule is added to devices.allow (the rules the runtime set stay).
// On cgroup v2 device access is an eBPF program: the runtime's program is
// replaced by one built from the container's whole rule set (the runtime's
// defaults, the spec's rules, then these), as runc would have built it had
// the spec held them.
func allowDevices(pid int, rules, all []rspec.LinuxDeviceCgroup) error {
	if len(rules) == 0 {
		return nil
	}
	if cgroups.IsCgroup2UnifiedMode() {
		return allowDevicesV2(pid, all)
	}
	paths, err := cgroups.ParseCgroupFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return fmt.Errorf("device cgroup: %w", err)
	}
	rel, ok := paths["devices"]
	if !ok {
		return fmt.Errorf("device cgroup: process %d is in no devices cgroup", pid)
	}
	mnt, err := cgroups.FindCgroupMountpoint("", "devices")
	if err != nil {
		return fmt.Errorf("device cgroup: %w", err)
	}
	dir := filepath.Join(mnt, rel)
	for _, r := range rules {
		rule, err := toRule(r)
		if err != nil {
			return err
		}
		if err := cgroups.WriteFile(dir, "devices.allow", rule.CgroupString()); err != nil {
			return fmt.Errorf("device cgroup %s: %w", dir, err)
		}
	}
	return nil
}

// allowDevicesV2 replaces the eBPF device program of pid's cgroup with one
// for all (the spec's rules with nvbind's added, in order).
func allowDevicesV2(pid int, all []rspec.LinuxDeviceCgroup) error {
	paths, err := cgroups.ParseCgroupFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return fmt.Errorf("device cgroup: %w", err)
	}
	return setDeviceProgram(filepath.Join("/sys/fs/cgroup", paths[""]), all)
}

// setDeviceProgram attaches to the cgroup v2 dir a device program for
// rules plus runc's defaults, replacing the programs attached there
// (runc's, and systemd's under its cgroup driver): a device program can
// only narrow what another one allows.
func setDeviceProgram(dir string, rules []rspec.LinuxDeviceCgroup) error {
	var res cgroups.Resources
	for _, r := range append(append([]rspec.LinuxDeviceCgroup(nil), rules...), runcDefaultRules...) {
		rule, err := toRule(r)
		if err != nil {
			return err
		}
		res.Devices = append(res.Devices, rule)
	}
	if cgroups.DevicesSetV2 == nil {
		return errors.New("device cgroup: no cgroup v2 device support")
	}
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("device cgroup: %w", err)
	}
	if err := cgroups.DevicesSetV2(dir, &res); err != nil {
		return fmt.Errorf("device cgroup %s: %w", dir, err)
	}
	return nil
}

// toRule converts a spec rule.
func toRule(r rspec.LinuxDeviceCgroup) (*devconfig.Rule, error) {
	rule := &devconfig.Rule{Type: devconfig.WildcardDevice, Major: devconfig.Wildcard, Minor: devconfig.Wildcard,
		Permissions: devconfig.Permissions(r.Access), Allow: r.Allow}
	switch r.Type {
	case "", "a":
	case "c", "b":
		rule.Type = devconfig.Type(r.Type[0])
	default:
		return nil, fmt.Errorf("device cgroup rule type %q", r.Type)
	}
	if r.Major != nil {
		rule.Major = *r.Major
	}
	if r.Minor != nil {
		rule.Minor = *r.Minor
	}
	if rule.Permissions == "" {
		rule.Permissions = "rwm"
	}
	return rule, nil
}

// runcDefaultRules are the rules runc appends to every container's
// (libcontainer/specconv.AllowedDevices, which a static binary cannot
// import): mknod of any node, the standard character devices, ptys and tun.
var runcDefaultRules = func() []rspec.LinuxDeviceCgroup {
	rule := func(typ string, major, minor int64, access string) rspec.LinuxDeviceCgroup {
		r := rspec.LinuxDeviceCgroup{Allow: true, Type: typ, Access: access}
		if major >= 0 {
			r.Major = &major
		}
		if minor >= 0 {
			r.Minor = &minor
		}
		return r
	}
	return []rspec.LinuxDeviceCgroup{
		rule("c", -1, -1, "m"), rule("b", -1, -1, "m"),
		rule("c", 1, 3, "rwm"), rule("c", 1, 8, "rwm"), rule("c", 1, 7, "rwm"), rule("c", 5, 0, "rwm"),
		rule("c", 1, 5, "rwm"), rule("c", 1, 9, "rwm"), rule("c", 136, -1, "rwm"), rule("c", 5, 2, "rwm"),
		rule("c", 10, 200, "rwm"),
	}
}()
