package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/gpu"
	"github.com/nvbind/nvbind/internal/gpu/nvmlgpu"
)

func init() {
	register("cdi", "generate or list CDI specs for the host's GPUs (cdi generate|list)", func(args []string) int {
		return cdiCmd(args, os.Stdout, os.Stderr)
	})
}

// nvmlFor gives the NVML source for a driver root; tests replace it.
var nvmlFor = func(root string) gpu.NVMLSource { return nvmlgpu.ForRoot(root) }

func cdiCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: nvbind cdi generate|list [flags]")
		return 2
	}
	switch args[0] {
	case "generate":
		return cdiGenerate(args[1:], stdout, stderr)
	case "list":
		return cdiList(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, "usage: nvbind cdi generate|list [flags]")
		return 0
	default:
		return failTo(stderr, 2, "cdi: unknown subcommand %q (want generate or list)", args[0])
	}
}

func cdiGenerate(args []string, stdout, stderr io.Writer) int {
	cfg, err := config.Load()
	if err != nil {
		return failTo(stderr, 1, "cdi generate: %v", err)
	}
	fs := flag.NewFlagSet("nvbind cdi generate", flag.ContinueOnError)
	var disc discoveryFlags
	disc.register(fs, cfg.Driver.Root)
	output := fs.String("output", defaultSpecPath(cfg), "spec file to write atomically ('-' for stdout)")
	format := fs.String("format", "", "yaml or json (default: json for a file, yaml for stdout)")
	names := fs.String("device-name-strategy", "index,uuid", "device names: index, uuid or both (comma-separated)")
	hookPath := fs.String("hook-path", cfg.HookPath(), "absolute path of nvbind-hook on the host")
	if code, done := parseStdFlags(fs, args, stderr); done {
		return code
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

func cdiList(args []string, stdout, stderr io.Writer) int {
	cfg, err := config.Load()
	if err != nil {
		return failTo(stderr, 1, "cdi list: %v", err)
	}
	fs := flag.NewFlagSet("nvbind cdi list", flag.ContinueOnError)
	var dirs stringList
	fs.Var(&dirs, "spec-dir", "CDI spec directory (repeatable; default: cdi.spec-dirs from the config)")
	if code, done := parseStdFlags(fs, args, stderr); done {
		return code
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

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
