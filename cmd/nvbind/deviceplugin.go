package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/deviceplugin"
	"github.com/nvbind/nvbind/internal/gpu"
)

func init() {
	register("device-plugin", "serve the node's GPUs to the kubelet (device plugin API v1beta1)", func(args []string) int {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return devicePluginCmd(ctx, args, os.Stdout, os.Stderr)
	})
}

func devicePluginCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := config.Load()
	if err != nil {
		return failTo(stderr, 1, "device-plugin: %v", err)
	}
	fs := flagSet("nvbind device-plugin")
	var disc discoveryFlags
	disc.register(fs, cfg.Driver.Root)
	resource := fs.String("resource-name", "nvidia.com/gpu", "extended resource to advertise")
	migStrategy := fs.String("mig-strategy", deviceplugin.MIGNone, "MIG devices: "+strings.Join(deviceplugin.MIGStrategies, ", "))
	replicas := fs.Int("replicas", 1, "time-slicing: shares advertised per GPU (1 = no sharing)")
	listStrategy := fs.String("device-list-strategy", deviceplugin.ListCDIAnnotations, "how Allocate names the devices: "+strings.Join(deviceplugin.ListStrategies, ", "))
	cdiKind := fs.String("cdi-kind", cfg.CDI.DefaultKind, "CDI kind of the device names")
	pluginDir := fs.String("plugin-dir", "/var/lib/kubelet/device-plugins", "the kubelet's device plugin directory")
	sysfs := fs.String("sysfs", "/sys", "sysfs to read NUMA nodes from")
	ignore := fs.String("ignore-xids", joinXIDs(deviceplugin.DefaultIgnoredXIDs), "Xid errors that leave a GPU healthy (comma-separated)")
	noHealth := fs.Bool("no-health", false, "do not watch GPU health (every GPU stays healthy)")
	probe := fs.Duration("probe-interval", 30*time.Second, "how often an unhealthy GPU is probed to be reported healthy again")
	debug := fs.Bool("debug", false, "log debug messages")
	if code, done := parseStdFlags(fs, args, stderr); done {
		return code
	}
	if err := deviceplugin.CheckListStrategy(*listStrategy); err != nil {
		return failTo(stderr, 2, "device-plugin: %v", err)
	}
	if *replicas < 1 {
		return failTo(stderr, 2, "device-plugin: --replicas %d: want 1 or more", *replicas)
	}
	if *probe <= 0 {
		return failTo(stderr, 2, "device-plugin: --probe-interval must be positive")
	}
	ignored, err := deviceplugin.ParseXIDs(*ignore)
	if err != nil {
		return failTo(stderr, 2, "device-plugin: --ignore-xids: %v", err)
	}
	log := logrus.New()
	log.SetOutput(stderr)
	if *debug {
		log.SetLevel(logrus.DebugLevel)
	}
	inv, err := gpu.Discover(gpu.DiscoverOptions{DriverRoot: disc.root, NVML: disc.nvml()})
	if err != nil {
		return failTo(stderr, 1, "device-plugin: %v", err)
	}
	if len(inv.GPUs) == 0 {
		return failTo(stderr, 1, "device-plugin: no GPU found under %s (%s)", inv.DriverRoot, inv.Note)
	}
	numa := deviceplugin.SysfsNUMA(*sysfs)
	res, err := deviceplugin.Build(inv, deviceplugin.BuildOptions{
		ResourceName: *resource, MIGStrategy: *migStrategy, Replicas: *replicas, NUMA: numa,
	})
	if err != nil {
		return failTo(stderr, 2, "device-plugin: %v", err)
	}
	opts := deviceplugin.Options{
		PluginDir: *pluginDir, DeviceListStrategy: *listStrategy, CDIKind: *cdiKind,
		ProbeInterval: *probe, Log: log,
	}
	// NVML gives NVLink/PCIe closeness and health events; without it the
	// plugin prefers GPUs on one NUMA node and reports every GPU healthy.
	if inv.Source == gpu.SourceNVML {
		topo, mon, err := deviceplugin.OpenNVMLBackend(disc.root, ignored, inv, numa)
		if err != nil {
			log.Warnf("NVML topology and health not available (%v): NUMA closeness only, no health checks", err)
		} else {
			opts.Topology = topo
			if !*noHealth {
				opts.Health = mon
			}
		}
	} else {
		log.Warnf("GPUs found via %s, not NVML (%s): NUMA closeness only, no health checks", inv.Source, inv.Note)
	}
	if opts.Topology == nil {
		nodes := deviceplugin.NUMATopology{}
		for _, g := range inv.GPUs {
			nodes[g.Index] = numa(g)
		}
		opts.Topology = nodes
	}
	for _, r := range res {
		fmt.Fprintf(stdout, "serving %s: %d device(s), %s, in %s\n", r.Name, len(r.Devices), *listStrategy, *pluginDir)
	}
	if err := deviceplugin.Run(ctx, res, opts); err != nil {
		return failTo(stderr, 1, "device-plugin: %v", err)
	}
	return 0
}

func joinXIDs(xids []uint64) string {
	s := make([]string, len(xids))
	for i, x := range xids {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}
