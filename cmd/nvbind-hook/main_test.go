package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// bundle makes a bundle whose config.json says rootPath (relative to it)
// and returns the bundle dir and the OCI state naming it.
func bundle(t *testing.T, config string) (dir, state string) {
	t.Helper()
	dir = t.TempDir()
	os.MkdirAll(filepath.Join(dir, "rootfs/dev"), 0o755)
	os.WriteFile(filepath.Join(dir, "rootfs/dev/nvidia0"), nil, 0o600)
	if config != "" {
		os.WriteFile(filepath.Join(dir, "config.json"), []byte(config), 0o644)
	}
	return dir, `{"ociVersion":"1.2.0","id":"c1","status":"creating","pid":1,"bundle":"` + dir + `"}`
}

// tree lists every path under dir, so a test can tell nothing was written.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var paths []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		paths = append(paths, strings.TrimPrefix(p, dir)+" "+fi.Mode().String())
		return nil
	})
	return strings.Join(paths, "\n")
}

func TestRun(t *testing.T) {
	const good = `{"ociVersion":"1.2.0","root":{"path":"rootfs"}}`
	tests := []struct {
		name    string
		args    []string
		config  string // "" = none
		state   string // "" = the bundle's state; "-" = empty stdin
		code    int
		wantErr string // the one stderr line ("" = none)
		check   func(t *testing.T, bundle string)
	}{
		{name: "chmod", args: []string{"chmod", "--mode", "0666", "--path", "/dev/nvidia0"}, config: good, code: 0,
			check: func(t *testing.T, b string) {
				if fi, _ := os.Stat(filepath.Join(b, "rootfs/dev/nvidia0")); fi.Mode().Perm() != 0o666 {
					t.Errorf("mode %v", fi.Mode())
				}
			}},
		{name: "create-symlinks", args: []string{"create-symlinks", "--link", "libcuda.so.1::/usr/lib/libcuda.so", "--link=a::/b"}, config: good, code: 0,
			check: func(t *testing.T, b string) {
				if target, _ := os.Readlink(filepath.Join(b, "rootfs/usr/lib/libcuda.so")); target != "libcuda.so.1" {
					t.Errorf("link -> %q", target)
				}
			}},
		{name: "update-ldcache", args: []string{"update-ldcache", "--folder", "/usr/lib/x86_64-linux-gnu"}, config: good, code: 0,
			wantErr: "nvbind-hook: warning: skipping folder /usr/lib/x86_64-linux-gnu: it does not exist in the container",
			check: func(t *testing.T, b string) {
				if _, err := os.Stat(filepath.Join(b, "rootfs/etc/ld.so.cache")); err != nil {
					t.Error(err)
				}
			}},
		{name: "no subcommand", args: nil, config: good, code: 2, wantErr: "nvbind-hook: no subcommand"},
		{name: "unknown subcommand", args: []string{"rm-rf", "--path", "/"}, config: good, code: 2,
			wantErr: `nvbind-hook: unknown subcommand "rm-rf" (want update-ldcache, create-symlinks, chmod or batch)`},
		{name: "unknown flag", args: []string{"chmod", "--mode", "0666", "--force"}, config: good, code: 2,
			wantErr: "nvbind-hook: chmod: flag provided but not defined: -force"},
		{name: "bad mode", args: []string{"chmod", "--mode", "4755", "--path", "/dev/nvidia0"}, config: good, code: 2,
			wantErr: `nvbind-hook: chmod: mode "4755" is not an octal permission between 0 and 0777`},
		{name: "bad link", args: []string{"create-symlinks", "--link", "libcuda.so"}, config: good, code: 2,
			wantErr: `nvbind-hook: create-symlinks: link "libcuda.so" is not TARGET::LINK`},
		{name: "relative folder", args: []string{"update-ldcache", "--folder", "usr/lib"}, config: good, code: 2,
			wantErr: `nvbind-hook: update-ldcache: --folder "usr/lib" is not an absolute path`},
		{name: "relative chmod path", args: []string{"chmod", "--mode", "0666", "--path", "dev/nvidia0"}, config: good, code: 2,
			wantErr: `nvbind-hook: chmod: --path "dev/nvidia0" is not an absolute path`},
		{name: "no folder", args: []string{"update-ldcache"}, config: good, code: 2,
			wantErr: "nvbind-hook: update-ldcache: no --folder given"},
		{name: "stray argument", args: []string{"chmod", "--mode", "0666", "/dev/nvidia0"}, config: good, code: 2,
			wantErr: `nvbind-hook: chmod: unexpected argument "/dev/nvidia0"`},
		{name: "empty stdin", args: []string{"chmod", "--mode", "0666", "--path", "/dev/nvidia0"}, config: good, state: "-", code: 1,
			wantErr: "nvbind-hook: chmod: no container state on stdin (nvbind-hook runs as an OCI hook)"},
		{name: "bad state JSON", args: []string{"chmod", "--mode", "0666", "--path", "/dev/nvidia0"}, config: good, state: `{"id":"c1","bundle":`, code: 1,
			wantErr: "nvbind-hook: chmod: invalid container state on stdin: unexpected end of JSON input"},
		{name: "truncated config.json", args: []string{"chmod", "--mode", "0666", "--path", "/dev/nvidia0"}, config: `{"ociVersion":"1.2.0","root":{"pa`, code: 1,
			wantErr: "config.json: unexpected end of JSON input"},
		{name: "missing rootfs", args: []string{"chmod", "--mode", "0666", "--path", "/dev/nvidia0"}, config: `{"root":{"path":"nowhere"}}`, code: 1,
			wantErr: "nvbind-hook: chmod: open rootfs: open "},
		{name: "missing config.json", args: []string{"chmod", "--mode", "0666", "--path", "/dev/nvidia0"}, code: 1,
			wantErr: "config.json: no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, state := bundle(t, tt.config)
			switch tt.state {
			case "":
			case "-":
				state = ""
			default:
				state = tt.state
			}
			before := tree(t, dir)
			var stderr bytes.Buffer
			code := run(tt.args, strings.NewReader(state), &stderr)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tt.code, stderr.String())
			}
			got := strings.TrimSuffix(stderr.String(), "\n")
			if strings.Count(got, "\n") > 0 {
				t.Errorf("stderr has more than one line: %q", got)
			}
			if tt.wantErr == "" && got != "" || !strings.Contains(got, tt.wantErr) {
				t.Errorf("stderr %q, want %q", got, tt.wantErr)
			}
			if tt.code != 0 {
				if after := tree(t, dir); after != before {
					t.Errorf("a failed run changed the bundle:\n%s\nwas:\n%s", after, before)
				}
				if fi, _ := os.Stat(filepath.Join(dir, "rootfs/dev/nvidia0")); fi.Mode().Perm() != 0o600 {
					t.Errorf("a failed run changed a mode")
				}
			}
			if tt.check != nil {
				tt.check(t, dir)
			}
		})
	}
}
