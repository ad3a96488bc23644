package main

import (
	"fmt"
	"github.com/spf13/cobra"
	"io"
	"path/filepath"
	"strings"

	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/gpu"
	"github.com/nvbind/nvbind/internal/gpu/nvmlgpu"
)

func init() { addCommand(newCDICmd) }

func newCDICmd(stdout, stderr io.Writer) *cobra.Command {
	return group("cdi", "generate or list CDI specs for the host's GPUs", stdout, stderr,
		newCDIGenerateCmd(stdout, stderr), newCDIListCmd(stdout, stderr))
}

// nvmlFor gives the NVML source for a driver root; tests replace it.
var nvmlFor = func(root string) gpu.NVMLSource { return nvmlgpu.ForRoot(root) }

// cdiCmd runs `nvbind cdi args...`.
func cdiCmd(args []string, stdout, stderr io.Writer) int {
	return execute(append([]string{"cdi"}, args...), stdout, stderr)
}

type cdiGenerateOptions struct {
	disc                            discoveryFlags
	output, format, names, hookPath string
}

func newCDIGenerateCmd(stdout, stderr io.Writer) *cobra.Command {
	var o cdiGenerateOptions
	c := &cobra.Command{
		Use:   "generate",
		Short: "write the CDI spec for the host's GPUs (nvidia.com/gpu)",
		Long: `Writes kind nvidia.com/gpu: devices by index and UUID, all, MIG devices,
driver (for NVIDIA_VISIBLE_DEVICES=none) and capability-<cap> devices. The
file is written atomically, as compact JSON unless --format yaml (JSON is
YAML too, so every CDI consumer reads it); stdout gets YAML.`,
		Args: noArgs(stderr),
		RunE: func(*cobra.Command, []string) error { return code(cdiGenerate(o, stdout, stderr)) },
	}
	f := c.Flags()
	o.disc.register(f, "")
	f.StringVar(&o.output, "output", "", "spec file to write atomically ('-' for stdout; default: cdi.jit-spec from the config)")
	f.StringVar(&o.format, "format", "", "yaml or json (default: json for a file, yaml for stdout)")
	f.StringVar(&o.names, "device-name-strategy", "index,uuid", "device names: index, uuid or both (comma-separated)")
	f.StringVar(&o.hookPath, "hook-path", "", "absolute path of nvbind-hook on the host (default: hook.path from the config)")
	return c
}

func cdiGenerate(o cdiGenerateOptions, stdout, stderr io.Writer) int {
	cfg, err := config.Load()
	if err != nil {
		return failTo(stderr, 1, "cdi generate: %v", err)
	}
	disc := o.disc.withDefault(cfg.Driver.Root)
	output, format, names, hookPath := &o.output, &o.format, &o.names, &o.hookPath
	if *output == "" {
		*output = defaultSpecPath(cfg)
	}
	if *hookPath == "" {
		*hookPath = cfg.HookPath()
	}
	opts := gpu.GenerateOptions{
		DriverRoot: disc.root,
		HookPath:   *hookPath,
		Format:     *format,
		Generator:  "nvbind " + version,
	}
	if opts.Format == "" {
		// A spec file is read by runtimes, nvbind-runtime on every GPU
		// create, and JSON (a subset of YAML, so every CDI consumer reads
		// it under either name) parses several times faster than YAML;
		// stdout is read by people.
		opts.Format = "json"
		if *output == "-" {
			opts.Format = "yaml"
		}
	}
	if opts.Format != "yaml" && opts.Format != "json" {
		return failTo(stderr, 2, "cdi generate: --format %q is not yaml or json", opts.Format)
	}
	for _, s := range strings.Split(*names, ",") {
		switch s = strings.TrimSpace(s); s {
		case "":
		case gpu.NameByIndex, gpu.NameByUUID:
			opts.DeviceNameStrategies = append(opts.DeviceNameStrategies, s)
		default:
			return failTo(stderr, 2, "cdi generate: --device-name-strategy %q is not index or uuid", s)
		}
	}
	if len(opts.DeviceNameStrategies) == 0 {
		return failTo(stderr, 2, "cdi generate: --device-name-strategy is empty (want index, uuid or both)")
	}
	if *output != "-" && !strings.HasSuffix(*output, ".yaml") && !strings.HasSuffix(*output, ".json") {
		return failTo(stderr, 2, "cdi generate: --output %q must end in .yaml or .json (CDI reads no other files)", *output)
	}
	opts.NVML = disc.nvml()
	data, inv, err := gpu.Generate(opts)
	if err != nil {
		return failTo(stderr, 1, "cdi generate: %v", err)
	}
	if *output == "-" {
		stdout.Write(data)
		return 0
	}
	if err := gpu.WriteSpecFile(*output, data); err != nil {
		return failTo(stderr, 1, "cdi generate: %v", err)
	}
	fmt.Fprintf(stdout, "wrote %s: driver %s, %d GPU(s) (via %s)\n", *output, inv.DriverVersion, len(inv.GPUs), inv.Source)
	// What NVML knew and procfs does not (GPU memory) is kept for the
	// runtime, which never loads NVML.
	if inv.Source == gpu.SourceNVML && cfg.Driver.Inventory != "" {
		if err := gpu.SaveInventory(cfg.Driver.Inventory, inv); err != nil {
			return failTo(stderr, 1, "cdi generate: %v", err)
		}
		fmt.Fprintf(stdout, "wrote %s: GPU inventory for the runtime\n", cfg.Driver.Inventory)
	}
	return 0
}

func newCDIListCmd(stdout, stderr io.Writer) *cobra.Command {
	var dirs []string
	c := &cobra.Command{
		Use:   "list",
		Short: "list the CDI devices the spec dirs define",
		Args:  noArgs(stderr),
		RunE:  func(*cobra.Command, []string) error { return code(cdiList(dirs, stdout, stderr)) },
	}
	c.Flags().StringArrayVar(&dirs, "spec-dir", nil, "CDI spec directory (repeatable; default: cdi.spec-dirs from the config)")
	return c
}

func cdiList(dirs []string, stdout, stderr io.Writer) int {
	cfg, err := config.Load()
	if err != nil {
		return failTo(stderr, 1, "cdi list: %v", err)
	}
	if len(dirs) == 0 {
		dirs = cfg.CDI.SpecDirs
	}
	devices, errs := gpu.ListDevices(dirs)
	for _, e := range errs {
		fmt.Fprintf(stderr, "nvbind: cdi list: %s\n", e)
	}
	for _, d := range devices {
		fmt.Fprintln(stdout, d)
	}
	if len(devices) == 0 {
		fmt.Fprintf(stderr, "nvbind: cdi list: no CDI devices in %s (run 'nvbind cdi generate')\n", strings.Join(dirs, ", "))
	}
	if len(errs) > 0 {
		return 1
	}
	return 0
}

// defaultSpecPath is where `cdi generate` writes without --output: the
// just-in-time spec path from the config, so the runtime sees the spec as
// fresh and does not regenerate it.
func defaultSpecPath(cfg *config.Config) string {
	if cfg.CDI.JITSpec != "" {
		return cfg.CDI.JITSpec
	}
	return filepath.Join("/var/run/cdi", "nvidia.yaml")
}
