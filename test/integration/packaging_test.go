package integration

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

// packaging_test.go: the .deb installed into this machine with dpkg, as a
// user would; the .rpm and Arch package compared with it.

// builtPackages builds the packages once per run at a version no release
// uses, into a temp dir; the second build (for the upgrade) is another
// version of the same tree.
var (
	pkgOnce sync.Once
	pkgDirs [2]string
	pkgErr  string
)

const pkgVersion1, pkgVersion2 = "0.1.90001", "0.1.90002"

func packages(t *testing.T) (v1, v2 string) {
	t.Helper()
	requireTool(t, "dpkg")
	requireTool(t, "rpm")
	requireTool(t, "zstd")
	pkgOnce.Do(func() {
		root, _ := repoRoot()
		base, err := os.MkdirTemp("", "nvbind-pkg-")
		if err != nil {
			pkgErr = err.Error()
			return
		}
		for i, v := range []string{pkgVersion1, pkgVersion2} {
			pkgDirs[i] = filepath.Join(base, v)
			cmd := exec.Command("make", "--no-print-directory", "package", "PKG_VERSION="+v, "DIST="+pkgDirs[i])
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				pkgErr = "make package: " + err.Error() + "\n" + string(out)
				return
			}
		}
	})
	if pkgErr != "" {
		t.Fatal(pkgErr)
	}
	return pkgDirs[0], pkgDirs[1]
}

func onePackage(t *testing.T, dir, glob string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, glob))
	if len(m) != 1 {
		t.Fatalf("%s in %s: %v", glob, dir, m)
	}
	return m[0]
}

// systemState lists the files and modes under the paths a package may
// touch, to prove that install + purge leaves the machine as it was.
func systemState(t *testing.T) map[string]fs.FileMode {
	t.Helper()
	state := map[string]fs.FileMode{}
	for _, root := range []string{"/etc", "/usr/bin", "/usr/lib/systemd", "/usr/lib/udev", "/usr/share/bash-completion",
		"/usr/share/zsh", "/usr/share/fish", "/usr/share/man/man1", "/usr/share/doc", "/usr/share/licenses", "/var/lib/dpkg/info", "/var/run/cdi", "/var/run/nvbind"} {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if info, err := d.Info(); err == nil {
				state[p] = info.Mode()
			}
			return nil
		})
	}
	return state
}

func diffState(before, after map[string]fs.FileMode) []string {
	var out []string
	for p, m := range after {
		if bm, ok := before[p]; !ok {
			out = append(out, "left behind: "+p)
		} else if bm != m {
			out = append(out, "mode changed: "+p)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			out = append(out, "removed: "+p)
		}
	}
	sort.Strings(out)
	return out
}

func TestDebPackageInstallUpgradePurge(t *testing.T) {
	requireRoot(t)
	dir1, dir2 := packages(t)
	deb1, deb2 := onePackage(t, dir1, "*.deb"), onePackage(t, dir2, "*.deb")
	if r := runT(t, nil, "dpkg-query", "-W", "nvbind"); r.Code == 0 {
		t.Fatalf("nvbind is already installed on this machine; remove it first (dpkg --purge nvbind)")
	}
	before := systemState(t)
	t.Cleanup(func() { exec.Command("dpkg", "--purge", "nvbind").Run() })

	mustRun(t, nil, "dpkg", "-i", deb1)
	for path, mode := range map[string]fs.FileMode{
		"/usr/bin/nvbind": 0o755, "/usr/bin/nvbind-runtime": 0o755, "/usr/bin/nvbind-hook": 0o755,
		"/etc/nvbind/config.toml":                            0o644,
		"/usr/lib/systemd/system/nvbind-cdi-refresh.service": 0o644,
		"/usr/lib/systemd/system/nvbind-cdi-refresh.path":    0o644,
		"/usr/lib/systemd/system/nvbind-serve.service":       0o644,
		"/usr/lib/udev/rules.d/70-nvbind.rules":              0o644,
		"/usr/share/bash-completion/completions/nvbind":      0o644,
		"/usr/share/zsh/site-functions/_nvbind":              0o644,
		"/usr/share/fish/vendor_completions.d/nvbind.fish":   0o644,
		"/usr/share/man/man1/nvbind.1.gz":                    0o644,
		"/usr/share/man/man1/nvbind-cdi-generate.1.gz":       0o644,
		"/usr/share/doc/nvbind/LICENSE":                      0o644,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Errorf("installed package lacks %s: %v", path, err)
			continue
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), mode)
		}
	}

	// The installed programs work.
	if r := mustRun(t, nil, "/usr/bin/nvbind", "--version"); !strings.HasPrefix(r.Stdout, "nvbind ") {
		t.Errorf("nvbind --version: %s", r)
	}
	if r := runT(t, []string{"NVBIND_CONFIG=/etc/nvbind/config.toml"}, "/usr/bin/nvbind", "doctor"); r.Code > 1 || !strings.Contains(r.Stdout, "summary:") {
		t.Errorf("nvbind doctor: %s", r)
	}
	// The shipped config sets nothing: every value is the built-in one.
	if r := mustRun(t, []string{"NVBIND_CONFIG=/etc/nvbind/config.toml"}, "/usr/bin/nvbind", "config", "show"); strings.Contains(r.Stdout, "file:") {
		t.Errorf("the packaged config.toml sets keys:\n%s", r.Stdout)
	}
	mustRun(t, nil, "/usr/bin/nvbind", "config", "check", "/etc/nvbind/config.toml")

	// A GPU container through the installed nvbind-runtime and nvbind-hook.
	s := newSimRoot(t, 2)
	s.WriteConfig(t, "")
	cfg, _ := os.ReadFile(s.Config)
	os.WriteFile(s.Config, []byte(strings.Replace(string(cfg), bins.Hook, "/usr/bin/nvbind-hook", 1)), 0o644)
	b := newBundle(t, "ls", "/dev")
	b.SetEnv("NVIDIA_VISIBLE_DEVICES=1")
	b.Save(t)
	id := "nvbind-pkg-" + filepath.Base(b.Dir)
	t.Cleanup(func() { exec.Command("runc", "--root", s.RunRoot, "delete", "--force", id).Run() })
	r := runCmd(t, s.Env(), "/usr/bin/nvbind-runtime", "--root", s.RunRoot, "run", "--bundle", b.Dir, id)
	if r.Code != 0 || !strings.Contains(r.Stdout, "nvidia1") || strings.Contains(r.Stdout, "nvidia0") {
		t.Errorf("container through the installed nvbind-runtime: %s", r)
	}

	// Units, rule, completions and man pages as their tools read them.
	if r := runT(t, nil, "systemd-analyze", "verify", "/usr/lib/systemd/system/nvbind-cdi-refresh.service",
		"/usr/lib/systemd/system/nvbind-cdi-refresh.path", "/usr/lib/systemd/system/nvbind-serve.service"); r.Code != 0 || strings.Contains(r.Stdout+r.Stderr, "nvbind") {
		t.Errorf("systemd-analyze verify: %s", r)
	}
	if r := runT(t, nil, "udevadm", "test", "/sys/class/mem/null"); !strings.Contains(r.Stdout+r.Stderr, "70-nvbind.rules") ||
		strings.Contains(r.Stdout+r.Stderr, "70-nvbind.rules:") {
		t.Errorf("udevadm test did not read the rule cleanly:\n%s", grepLines(r.Stdout+r.Stderr, "nvbind"))
	}
	mustRun(t, nil, "bash", "-n", "/usr/share/bash-completion/completions/nvbind")
	if r := mustRun(t, nil, "bash", "-c", "source /usr/share/bash-completion/completions/nvbind && complete -p nvbind"); !strings.Contains(r.Stdout, "nvbind") {
		t.Errorf("bash completion not registered: %s", r)
	}
	if r := mustRun(t, []string{"MANPAGER=cat", "MANWIDTH=100"}, "man", "-l", "/usr/share/man/man1/nvbind-cdi-generate.1.gz"); !strings.Contains(r.Stdout, "device-name-strategy") {
		t.Errorf("man page: %s", r)
	}

	// An upgrade keeps the admin's edited config.
	edited := strings.Replace(readFile(t, "/etc/nvbind/config.toml"), `# log-level = "info"`, `log-level = "debug"`, 1)
	if err := os.WriteFile("/etc/nvbind/config.toml", []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, nil, "dpkg", "-i", deb2)
	if v := mustRun(t, nil, "dpkg-query", "-W", "-f", "${Version}", "nvbind").Stdout; v != pkgVersion2+"-1" {
		t.Errorf("after upgrade: version %q", v)
	}
	if got := readFile(t, "/etc/nvbind/config.toml"); got != edited {
		t.Errorf("upgrade replaced the edited config:\n%s", got)
	}

	// Remove keeps the config (a conffile); purge takes it too and leaves
	// the machine as it was.
	mustRun(t, nil, "dpkg", "-r", "nvbind")
	if _, err := os.Stat("/usr/bin/nvbind"); err == nil {
		t.Error("dpkg -r left /usr/bin/nvbind")
	}
	if _, err := os.Stat("/etc/nvbind/config.toml"); err != nil {
		t.Errorf("dpkg -r removed the config: %v", err)
	}
	mustRun(t, nil, "dpkg", "--purge", "nvbind")
	if d := diffState(before, systemState(t)); len(d) > 0 {
		t.Errorf("install + purge changed the machine:\n%s", strings.Join(d, "\n"))
	}
}

func grepLines(text, word string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestRPMAndArchMatchDeb: the three packages hold the same files (Arch
// adds its licence dir and pacman hook) and the same maintainer scripts.
func TestRPMAndArchMatchDeb(t *testing.T) {
	dir, _ := packages(t)
	deb, rpm, arch := onePackage(t, dir, "*.deb"), onePackage(t, dir, "*.rpm"), onePackage(t, dir, "*.pkg.tar.zst")

	files := func(lines string, strip string) map[string]bool {
		out := map[string]bool{}
		for _, l := range strings.Split(lines, "\n") {
			l = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(l), strip), "/"), "/")
			if l == "" || strings.HasPrefix(l, ".") {
				continue
			}
			out["/"+l] = true
		}
		return out
	}
	debFiles := map[string]bool{}
	for _, l := range strings.Split(mustRun(t, nil, "dpkg-deb", "-c", deb).Stdout, "\n") {
		f := strings.Fields(l)
		if len(f) >= 6 && !strings.HasSuffix(f[5], "/") {
			debFiles[strings.TrimPrefix(f[5], ".")] = true
		}
	}
	rpmFiles := files(mustRun(t, nil, "rpm", "-qlp", rpm).Stdout, "")
	archAll := files(mustRun(t, nil, "tar", "--zstd", "-tf", arch).Stdout, "")
	archFiles := map[string]bool{}
	for f := range archAll {
		if !strings.HasSuffix(f, "/") && !isDirIn(f, archAll) {
			archFiles[f] = true
		}
	}
	archOnly := map[string]bool{"/usr/share/licenses/nvbind/LICENSE": true, "/usr/share/libalpm/hooks/nvbind-cdi.hook": true}
	for f := range debFiles {
		if !rpmFiles[f] {
			t.Errorf("rpm lacks %s", f)
		}
		if !archFiles[f] {
			t.Errorf("arch package lacks %s", f)
		}
	}
	for f := range rpmFiles {
		if !debFiles[f] && !isDirIn(f, rpmFiles) {
			t.Errorf("rpm has %s, the deb does not", f)
		}
	}
	for f := range archFiles {
		if !debFiles[f] && !archOnly[f] {
			t.Errorf("arch package has %s, the deb does not", f)
		}
	}
	for f := range archOnly {
		if !archFiles[f] {
			t.Errorf("arch package lacks %s", f)
		}
	}

	// Same scripts: the rpm's scriptlets and Arch's .INSTALL carry the
	// deb's maintainer steps.
	scripts := mustRun(t, nil, "rpm", "-qp", "--scripts", rpm).Stdout
	for _, want := range []string{"postinstall scriptlet", "preuninstall scriptlet", "postuninstall scriptlet",
		"nvbind runtime unconfigure", "udevadm control --reload-rules", "nvbind cdi generate"} {
		if !strings.Contains(scripts, want) {
			t.Errorf("rpm scripts lack %q", want)
		}
	}
	install := mustRun(t, nil, "tar", "--zstd", "-xOf", arch, ".INSTALL").Stdout
	for _, want := range []string{"post_install", "post_upgrade", "pre_remove", "post_remove", "nvbind runtime unconfigure"} {
		if !strings.Contains(install, want) {
			t.Errorf("arch .INSTALL lacks %q", want)
		}
	}
	if info := mustRun(t, nil, "tar", "--zstd", "-xOf", arch, ".PKGINFO").Stdout; !strings.Contains(info, "backup = etc/nvbind/config.toml") {
		t.Errorf("arch package does not keep the config on upgrade:\n%s", info)
	}
	if cf := mustRun(t, nil, "rpm", "-qp", "--configfiles", rpm).Stdout; !strings.Contains(cf, "/etc/nvbind/config.toml") {
		t.Errorf("rpm config files: %q", cf)
	}
}

// isDirIn reports whether some other entry of set lies under p.
func isDirIn(p string, set map[string]bool) bool {
	for f := range set {
		if strings.HasPrefix(f, p+"/") {
			return true
		}
	}
	return false
}
