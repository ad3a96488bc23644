package main

import (
	"fmt"
	"io"
	"os"

	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/gpu"
	"github.com/nvbind/nvbind/internal/gpu/nvmlgpu"
	"github.com/nvbind/nvbind/internal/recipes"
	"github.com/nvbind/nvbind/internal/recipes/snapshot"
)

func init() {
	register("snapshot", "measure this node (OS, kernel, GPUs, driver, engines) for recipe validate", runSnapshot)
}

// snapshotNVML gives the NVML source snapshot tries first for a driver
// root; tests replace it.
var snapshotNVML = func(root string) gpu.NVMLSource { return nvmlgpu.ForRoot(root) }

func runSnapshot(args []string) int {
	return snapshotCmd(args, snapshot.Options{}, os.Stdout, os.Stderr)
}

// snapshotCmd runs `nvbind snapshot`; base carries what tests preset (a
// fake root).
func snapshotCmd(args []string, base snapshot.Options, stdout, stderr io.Writer) int {
	fs := flagSet("snapshot")
	out := fs.String("o", "", "write the snapshot to this file instead of stdout")
	format := fs.String("format", "yaml", "output format: yaml or json")
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig of the cluster, to record the Kubernetes server version")
	driverRoot := fs.String("driver-root", "", "driver root (default: driver.root from the config, /)")
	pos, code, done := parseCmdFlags(fs, args, stdout, stderr)
	if done {
		return code
	}
	if code, bad := rejectPositional(fs.Name(), pos, stderr); bad {
		return code
	}
	if *format != "yaml" && *format != "json" {
		return failTo(stderr, 2, "snapshot: --format %q: want yaml or json", *format)
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
	opts.GPU = gpu.DiscoverOptions{DriverRoot: root, NVML: snapshotNVML(root)}
	snap := snapshot.Collect(opts)
	data, err := recipes.Encode(snap, recipes.Format(*format))
	if err != nil {
		return failTo(stderr, 1, "snapshot: %v", err)
	}
	if err := writeFileOrStdout(*out, data, stdout); err != nil {
		return failTo(stderr, 1, "snapshot: %v", err)
	}
	if snap.Metadata["partial"] == "true" {
		fmt.Fprintln(stderr, "nvbind: snapshot is partial; see NVBind.unreadable for what could not be read")
	}
	return 0
}
