package hook

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadState(t *testing.T) {
	tests := []struct {
		in      string
		bundle  string
		pid     int
		wantErr string
	}{
		{`{"ociVersion":"1.2.0","id":"c1","status":"creating","pid":42,"bundle":"/run/b"}`, "/run/b", 42, ""},
		{`{"ociVersion":"1.2.0","id":"c1","status":"creating","bundle":"/run/b"}`, "/run/b", 0, ""},
		{`{"id":"c1","PID":7,"bundle":"/run/b"}`, "/run/b", 7, ""},
		{`{"id":"c1","pid":null,"bundle":"/run/b"}`, "/run/b", 0, ""},
		{`{"id":"c1","pid":"42","bundle":"/run/b"}`, "", 0, "pid: \"42\" is not an integer"},
		{`{"id":"c1","pid":4.2,"bundle":"/run/b"}`, "", 0, "pid: 4.2 is not an integer"},
		{``, "", 0, "no container state on stdin"},
		{`{"ociVersion":"1.2.0","id":"c1","bundle":"/run/b"`, "", 0, "invalid container state on stdin"},
		{`not json`, "", 0, "invalid container state on stdin"},
		{`{"id":"c1"}`, "", 0, `bundle "" is not an absolute path`},
		{`{"id":"c1","bundle":"relative/b"}`, "", 0, `bundle "relative/b" is not an absolute path`},
		{`{"id":"c1","bundle":"/b"} trailing`, "", 0, "invalid container state on stdin"},
		{`{"id":"` + strings.Repeat("x", MaxStateSize) + `"}`, "", 0, "larger than"},
	}
	for _, tt := range tests {
		s, err := ReadState(strings.NewReader(tt.in))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ReadState(%.40q) = %v, %v; want error %q", tt.in, s, err, tt.wantErr)
			}
			continue
		}
		if err != nil || s.Bundle != tt.bundle || s.Pid != tt.pid {
			t.Errorf("ReadState(%.40q) = %v, %v; want bundle %s pid %d", tt.in, s, err, tt.bundle, tt.pid)
		}
	}
}

func TestRootfsPath(t *testing.T) {
	tests := []struct {
		config  string // "" = no config.json
		want    string // BUNDLE = the bundle dir
		wantErr string
	}{
		{`{"root":{"path":"rootfs"}}`, "BUNDLE/rootfs", ""},
		{`{"root":{"path":"/abs/rootfs","readonly":true}}`, "/abs/rootfs", ""},
		{`{"root":{"path":"../elsewhere"}}`, "BUNDLE/../elsewhere", ""},
		{``, "", "no such file"},
		{`{"ociVersion":"1.2.0","root":{"path":"roo`, "", "invalid"},
		{`{"ociVersion":"1.2.0"}`, "", "has no root.path"},
		{`{"root":{"path":""}}`, "", "has no root.path"},
		{`{"root":"rootfs"}`, "", "invalid"},
	}
	for _, tt := range tests {
		bundle := t.TempDir()
		if tt.config != "" {
			os.WriteFile(filepath.Join(bundle, "config.json"), []byte(tt.config), 0o644)
		}
		got, err := RootfsPath(bundle)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("RootfsPath(%s) = %q, %v; want error %q", tt.config, got, err, tt.wantErr)
			}
			continue
		}
		want := filepath.Clean(strings.Replace(tt.want, "BUNDLE", bundle, 1))
		if err != nil || got != want {
			t.Errorf("RootfsPath(%s) = %q, %v; want %q", tt.config, got, err, want)
		}
	}
}
