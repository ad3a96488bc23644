package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestDevicePluginBadInput(t *testing.T) {
	t.Setenv("NVBIND_CONFIG", t.TempDir()+"/none.toml")
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--replicas", "0"}, 2, "--replicas 0: want 1 or more"},
		{[]string{"--device-list-strategy", "cdi-annotations,cdi-cri"}, 2, `device list strategy "cdi-annotations,cdi-cri"`},
		{[]string{"--ignore-xids", "13,x"}, 2, `xid "x" is not a number`},
		{[]string{"--probe-interval", "0s"}, 2, "--probe-interval must be positive"},
		{[]string{"--bogus"}, 2, "flag provided but not defined"},
		{[]string{"--driver-root", t.TempDir(), "--no-nvml"}, 1, "no GPU found under"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := devicePluginCmd(context.Background(), tt.args, &stdout, &stderr)
			if code != tt.code || !strings.Contains(stderr.String(), tt.want) || strings.Count(stderr.String(), "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want exit %d and one line with %q", code, stderr.String(), tt.code, tt.want)
			}
		})
	}
}
