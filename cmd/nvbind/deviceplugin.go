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
	"github.com/spf13/cobra"

	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/deviceplugin"
	"github.com/nvbind/nvbind/internal/gpu"
)

func init() { addCommand(newDevicePluginCmd) }

type devicePluginOptions struct {
	disc                                         discoveryFlags
	resource, migStrategy, listStrategy, cdiKind string
	pluginDir, sysfs, ignore                     string
	replicas                                     int
	noHealth, debug                              bool
	probe                                        time.Duration
}

func newDevicePluginCmd(stdout, stderr io.Writer) *cobra.Command {
	var o devicePluginOptions
	c := &cobra.Command{
		Use:   "device-plugin",
		Short: "serve the node's GPUs to the kubelet (device plugin API v1beta1)",
		Long: `Serves the node's GPUs (or MIG devices) to the kubelet as an extended
resource, registers with kubelet.sock and again when the kubelet restarts,
reports health from NVML events (and recovery), prefers close GPUs, and
answers Allocate with CDI device names that nvbind-runtime resolves.`,
		Args: noArgs(stderr),
		RunE: func(c *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return code(runDevicePlugin(ctx, o, stdout, stderr))
		},
	}
	f := c.Flags()
	o.disc.register(f, "")
	f.StringVar(&o.resource, "resource-name", "nvidia.com/gpu", "extended resource to advertise")
	f.StringVar(&o.migStrategy, "mig-strategy", deviceplugin.MIGNone, "MIG devices: "+strings.Join(deviceplugin.MIGStrategies, ", "))
	f.IntVar(&o.replicas, "replicas", 1, "time-slicing: shares advertised per GPU (1 = no sharing)")
	f.StringVar(&o.listStrategy, "device-list-strategy", deviceplugin.ListCDIAnnotations, "how Allocate names the devices: "+strings.Join(deviceplugin.ListStrategies, ", "))
	f.StringVar(&o.cdiKind, "cdi-kind", "", "CDI kind of the device names (default: cdi.default-kind from the config)")
	f.StringVar(&o.pluginDir, "plugin-dir", "/var/lib/kubelet/device-plugins", "the kubelet's device plugin directory")
	f.StringVar(&o.sysfs, "sysfs", "/sys", "sysfs to read NUMA nodes from")
	f.StringVar(&o.ignore, "ignore-xids", joinXIDs(deviceplugin.DefaultIgnoredXIDs), "Xid errors that leave a GPU healthy (comma-separated)")
	f.BoolVar(&o.noHealth, "no-health", false, "do not watch GPU health (every GPU stays healthy)")
	f.DurationVar(&o.probe, "probe-interval", 30*time.Second, "how often an unhealthy GPU is probed to be reported healthy again")
	f.BoolVar(&o.debug, "debug", false, "log debug messages")
	c.RegisterFlagCompletionFunc("mig-strategy", cobra.FixedCompletions(deviceplugin.MIGStrategies, cobra.ShellCompDirectiveNoFileComp))
	c.RegisterFlagCompletionFunc("device-list-strategy", cobra.FixedCompletions(deviceplugin.ListStrategies, cobra.ShellCompDirectiveNoFileComp))
	return c
}

// devicePluginCmd runs `nvbind device-plugin args...` until ctx ends.
func devicePluginCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return executeContext(ctx, append([]string{"device-plugin"}, args...), stdout, stderr)
}

func runDevicePlugin(ctx context.Context, o devicePluginOptions, stdout, stderr io.Writer) int {
	cfg, err := config.Load()
	if err != nil {
		return failTo(stderr, 1, "device-plugin: %v", err)
	}
	disc := o.disc.withDefault(cfg.Driver.Root)
	if o.cdiKind == "" {
		o.cdiKind = cfg.CDI.DefaultKind
	}
	resource, migStrategy, replicas, listStrategy, cdiKind := &o.resource, &o.migStrategy, &o.replicas, &o.listStrategy, &o.cdiKind
	pluginDir, sysfs, ignore, noHealth, probe, debug := &o.pluginDir, &o.sysfs, &o.ignore, &o.noHealth, &o.probe, &o.debug
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
