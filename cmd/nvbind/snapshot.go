package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/gpu"
	"github.com/nvbind/nvbind/internal/recipes"
	"github.com/nvbind/nvbind/internal/recipes/kube"
	"github.com/nvbind/nvbind/internal/recipes/snapshot"
)

func init() { addCommand(newSnapshotCmd) }

// snapshotBase is what tests preset for `nvbind snapshot` (a fake root).
var snapshotBase snapshot.Options

// snapshotCmd runs `nvbind snapshot args...` with base preset.
func snapshotCmd(args []string, base snapshot.Options, stdout, stderr io.Writer) int {
	saved := snapshotBase
	snapshotBase = base
	defer func() { snapshotBase = saved }()
	return execute(append([]string{"snapshot"}, args...), stdout, stderr)
}

func newSnapshotCmd(stdout, stderr io.Writer) *cobra.Command {
	c := &cobra.Command{
		Use:   "snapshot",
		Short: "measure this node (OS, kernel, GPUs, driver, engines) and the cluster's view for recipe validate; snapshot job: run it in the cluster",
		Args:  noArgs(stderr),
	}
	fs := c.Flags()
	var o snapshotOptions
	o.doc.register(fs, "snapshot")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "add the cluster's view (provider, Kubernetes version, GPU node labels, installed operators) from this kubeconfig")
	fs.BoolVar(&o.inCluster, "in-cluster", false, "add the cluster's view through the pod's service account (nvbind snapshot job)")
	fs.StringVar(&o.node, "node", "", "node whose labels and provider the cluster view records (default: the first GPU node)")
	fs.StringVar(&o.toConfigMap, "to-configmap", "", "also store the snapshot in ConfigMap NAMESPACE/NAME (read with --snapshot cm://NAMESPACE/NAME)")
	fs.StringVar(&o.root, "root", "", "the host's root for /etc, /proc and /sys (default /; /host in nvbind snapshot job)")
	fs.StringVar(&o.driverRoot, "driver-root", "", "driver root (default: driver.root from the config, /)")
	c.RunE = func(*cobra.Command, []string) error {
		return code(runSnapshot(snapshotBase, o, stdout, stderr))
	}
	c.AddCommand(newSnapshotJobCmd(stdout, stderr))
	return c
}

type snapshotOptions struct {
	doc                                             docOutput
	kubeconfig, node, toConfigMap, root, driverRoot string
	inCluster                                       bool
}

func runSnapshot(base snapshot.Options, o snapshotOptions, stdout, stderr io.Writer) int {
	doc, kubeconfig, inCluster, node, toConfigMap, root, driverRoot := o.doc, &o.kubeconfig, &o.inCluster, &o.node, &o.toConfigMap, &o.root, &o.driverRoot
	if err := doc.check(); err != nil {
		return failTo(stderr, 2, "snapshot: %v", err)
	}
	var cmNS, cmName string
	if *toConfigMap != "" {
		var ok bool
		if cmNS, cmName, ok = kube.ParseConfigMapRef("cm://" + *toConfigMap); !ok {
			return failTo(stderr, 2, "snapshot: --to-configmap %q: want NAMESPACE/NAME", *toConfigMap)
		}
	}
	if *kubeconfig != "" && *inCluster {
		return failTo(stderr, 2, "snapshot: --kubeconfig and --in-cluster exclude each other")
	}
	useCluster := *kubeconfig != "" || *inCluster
	if (*node != "" || *toConfigMap != "") && !useCluster {
		return failTo(stderr, 2, "snapshot: --node and --to-configmap need --kubeconfig or --in-cluster")
	}
	var clients *kube.Clients
	if useCluster {
		var err error
		if clients, err = connectKube(*kubeconfig, *inCluster); err != nil {
			return failTo(stderr, 2, "snapshot: %v", err)
		}
	}
	opts := base
	if *root != "" {
		opts.Root = *root
	}
	opts.Version = version
	dr := *driverRoot
	if dr == "" {
		if cfg, err := config.Load(); err == nil {
			dr = cfg.Driver.Root
		}
	}
	opts.GPU = gpu.DiscoverOptions{DriverRoot: dr, NVML: nvmlFor(dr)}
	snap := snapshot.Collect(opts)
	if clients != nil {
		kube.AddClusterView(context.Background(), clients, snap, *node)
	}
	if err := doc.write(snap, stdout); err != nil {
		return failTo(stderr, 1, "snapshot: %v", err)
	}
	if cmName != "" {
		data, err := recipes.Encode(snap, recipes.FormatYAML)
		if err != nil {
			return failTo(stderr, 1, "snapshot: %v", err)
		}
		if err := kube.WriteSnapshotConfigMap(context.Background(), clients.Core, cmNS, cmName, data); err != nil {
			return failTo(stderr, 1, "snapshot: %v", err)
		}
		fmt.Fprintf(stderr, "nvbind: snapshot stored in configmap %s/%s (read it with --snapshot cm://%s/%s)\n", cmNS, cmName, cmNS, cmName)
	}
	if snap.Metadata["partial"] == "true" {
		fmt.Fprintln(stderr, "nvbind: snapshot is partial; see NVBind.unreadable for what could not be read")
	}
	return 0
}

func newSnapshotJobCmd(stdout, stderr io.Writer) *cobra.Command {
	c := &cobra.Command{Use: "job", Short: "print a Job and RBAC that run the node snapshot on a GPU node and store it in a ConfigMap", Args: noArgs(stderr)}
	fs := c.Flags()
	var opts snapshot.JobOptions
	fs.StringVar(&opts.Namespace, "namespace", "nvbind-system", "namespace of the Job and the ConfigMap")
	fs.StringVar(&opts.Name, "name", "nvbind-snapshot", "name of the Job, its RBAC and the ConfigMap")
	fs.StringVar(&opts.Image, "image", "ghcr.io/nvbind/nvbind:"+imageTag(), "image with the nvbind CLI")
	fs.StringVar(&opts.NodeName, "node", "", "run on this node (default: any node labelled nvidia.com/gpu.present=true)")
	fs.StringVar(&opts.DriverRoot, "driver-root", "/host", "the driver as the pod sees it: /host, or /host/run/nvidia/driver where the GPU Operator installs it")
	out := fs.StringP("o", "o", "", "write the manifests to this file instead of stdout")
	run := func(pos []string) int {
		for _, v := range []struct{ flag, value string }{{"namespace", opts.Namespace}, {"name", opts.Name}} {
			if errs := validation.IsDNS1123Label(v.value); len(errs) > 0 {
				return failTo(stderr, 2, "snapshot job: --%s %q is not a Kubernetes name", v.flag, v.value)
			}
		}
		data, err := snapshot.Job(opts)
		if err != nil {
			return failTo(stderr, 2, "snapshot job: %v", err)
		}
		if err := writeFileOrStdout(*out, data, stdout); err != nil {
			return failTo(stderr, 1, "snapshot job: %v", err)
		}
		return 0
	}
	c.RunE = func(_ *cobra.Command, pos []string) error { return code(run(pos)) }
	return c
}

// imageTag is the nvbind image tag matching this binary.
func imageTag() string {
	if version == "" || version == "dev" {
		return "latest"
	}
	return version
}
