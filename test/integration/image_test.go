package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImageRunsTheChartInstaller builds the node image as `make image`
// does (local binaries, busybox, FROM scratch; no registry) with Podman in
// a private store, then runs the chart's init container the way the
// kubelet would: the image's installer script, privileged, the (simulated)
// node's root at /host. The node gets nvbind-runtime and a containerd
// handler; the image's preStop command removes them again.
func TestImageRunsTheChartInstaller(t *testing.T) {
	requireRoot(t)
	podman := requireTool(t, "podman")
	requireTool(t, "busybox")
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	store := shortTempDir(t, "nvb-img-")
	pm := func(args ...string) Result {
		return runCmd(t, nil, podman, append([]string{"--root", store + "/root", "--runroot", store + "/run", "--storage-driver", "vfs"}, args...)...)
	}
	t.Cleanup(func() { pm("rmi", "-af") })
	build := runCmd(t, []string{"ENGINE=podman", "ENGINE_FLAGS=--root " + store + "/root --runroot " + store + "/run --storage-driver vfs"},
		filepath.Join(root, "deploy/image/build-image.sh"), filepath.Dir(bins.CLI), "nvbind/nvbind:0.1.0")
	if build.Code != 0 {
		t.Fatalf("build-image.sh: %s", build)
	}
	limits := []string{"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"}
	if r := pm(append(append([]string{"run", "--rm"}, limits...), "nvbind/nvbind:0.1.0", "--version")...); r.Code != 0 || !strings.HasPrefix(r.Stdout, "nvbind ") {
		t.Fatalf("image's nvbind --version: %s", r)
	}

	helm := helmTool(t)
	r := helmTemplate(t, helm, "")
	script := filepath.Join(t.TempDir(), "install.sh")
	os.WriteFile(script, []byte(r.configMap.Data["install.sh"]), 0o755)
	initC := containerNamed(t, r.daemonSet.Spec.Template.Spec.InitContainers, "install")
	host := simulatedHost(t, "version = 2\n")
	before := hostTree(t, host)
	run := func(verb string) Result {
		args := append([]string{"run", "--rm", "--privileged", "--network=none"}, limits...)
		args = append(args, "-v", host+":/host", "-v", script+":/scripts/install.sh:ro")
		for k, v := range envOf(initC) {
			args = append(args, "-e", k+"="+v)
		}
		args = append(args, "--entrypoint", "/bin/sh", "nvbind/nvbind:0.1.0", "/scripts/install.sh", verb)
		return pm(args...)
	}
	if res := run("install"); res.Code != 0 {
		t.Fatalf("installer in the image: %s", res)
	}
	fileContains(t, filepath.Join(host, "etc/containerd/config.toml"), `BinaryName = "/opt/nvbind/current/bin/nvbind-runtime"`)
	if _, err := os.Stat(filepath.Join(host, "opt/nvbind/current/bin/nvbind-runtime")); err != nil {
		t.Errorf("nvbind-runtime not on the node: %v", err)
	}
	if _, err := os.Stat(filepath.Join(host, "var/run/cdi/nvidia.yaml")); err != nil {
		t.Errorf("no CDI spec on the node: %v", err)
	}
	if res := run("uninstall"); res.Code != 0 {
		t.Fatalf("uninstall in the image: %s", res)
	}
	if after := hostTree(t, host); after != before {
		t.Errorf("uninstall left the node changed:\n%s", treeDiff(before, after))
	}
}
