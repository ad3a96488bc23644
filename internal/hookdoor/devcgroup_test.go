package hookdoor

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestSetDeviceProgram: on a real cgroup v2 hierarchy, a process in a
// cgroup whose device program nvbind replaced can open the devices of the
// rules and runc's defaults, and no other. The second replacement (the
// container's program already there) widens what the first allowed.
func TestSetDeviceProgram(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	var unified string
	for _, d := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		var st unix.Statfs_t
		if unix.Statfs(d, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			unified = d
			break
		}
	}
	if unified == "" {
		t.Skip("no cgroup v2 hierarchy mounted")
	}
	cg := filepath.Join(unified, fmt.Sprintf("nvbind-test-%d", os.Getpid()))
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Skipf("cannot make a cgroup: %v", err)
	}
	t.Cleanup(func() { os.Remove(cg) })
	node := filepath.Join(t.TempDir(), "nvidia0")
	if err := unix.Mknod(node, unix.S_IFCHR|0o666, int(unix.Mkdev(195, 0))); err != nil {
		t.Fatal(err)
	}
	i64 := func(v int64) *int64 { return &v }
	deny := rspec.LinuxDeviceCgroup{Allow: false, Access: "rwm"}
	gpu := rspec.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(195), Minor: i64(0), Access: "rwm"}

	// open runs a shell in the cgroup that opens /dev/null and the node
	// once rules are in place.
	open := func(rules []rspec.LinuxDeviceCgroup) string {
		cmd := exec.Command("/bin/sh", "-c", "read _; cat /dev/null && echo null=ok; cat "+node+" 2>&1; true")
		in, _ := cmd.StdinPipe()
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
			cmd.Process.Kill()
			t.Fatal(err)
		}
		if err := setDeviceProgram(cg, rules); err != nil {
			cmd.Process.Kill()
			t.Fatal(err)
		}
		in.Write([]byte("\n"))
		in.Close()
		cmd.Wait()
		return out.String()
	}
	if out := open([]rspec.LinuxDeviceCgroup{deny}); !strings.Contains(out, "null=ok") || !strings.Contains(out, "Operation not permitted") {
		t.Errorf("without a rule for the GPU: %s", out)
	}
	// The node has no driver behind it: allowed, it opens to ENXIO.
	if out := open([]rspec.LinuxDeviceCgroup{deny, gpu}); !strings.Contains(out, "null=ok") || !strings.Contains(out, "No such device or address") {
		t.Errorf("with the GPU's rule: %s", out)
	}
}
