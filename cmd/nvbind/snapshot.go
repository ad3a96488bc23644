package main

import (
	"fmt"
	"io"
	"os"

	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/gpu"
	"github.com/nvbind/nvbind/internal/recipes/snapshot"
)

func init() {
	register("snapshot", "measure this node (OS, kernel, GPUs, driver, engines) for recipe validate", runSnapshot)
}

func runSnapshot(args []string) int {
	return snapshotCmd(args, snapshot.Options{}, os.Stdout, os.Stderr)
}

// snapshotCmd runs `nvbind snapshot`; base carries what tests preset (a
// fake root).
func snapshotCmd(args []string, base snapshot.Options, stdout, stderr io.Writer) int {
	fs := flagSet("snapshot")
	var doc docOutput
	doc.register(fs, "snapshot")
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig of the cluster, to record the Kubernetes server version")
	driverRoot := fs.String("driver-root", "", "driver root (default: driver.root from the config, /)")
	if code, done := parseCmdFlagsOnly(fs, args, stdout, stderr); done {
		return code
	}
	if err := doc.check(); err != nil {
		return failTo(stderr, 2, "snapshot: %v", err)
	}
	opts := base
	opts.Kubeconfig = *kubeconfig
	opts.Version = version
	root := *driverRoot
	if root == "" {
		if cfg, err := config.Load(); err == nil {
			root = cfg.Driver.Root
		}
	}
	opts.GPU = gpu.DiscoverOptions{DriverRoot: root, NVML: nvmlFor(root)}
	snap := snapshot.Collect(opts)
	if err := doc.write(snap, stdout); err != nil {
		return failTo(stderr, 1, "snapshot: %v", err)
	}
	if snap.Metadata["partial"] == "true" {
		fmt.Fprintln(stderr, "nvbind: snapshot is partial; see NVBind.unreadable for what could not be read")
	}
	return 0
}
