package main

import (
	"fmt"
	"github.com/spf13/cobra"
	"io"
	"strings"

	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/gpu"
	"github.com/nvbind/nvbind/internal/oci"
)

func init() { addCommand(newInfoCmd) }

func newInfoCmd(stdout, stderr io.Writer) *cobra.Command {
	var o infoOptions
	c := &cobra.Command{
		Use:   "info",
		Short: "show GPUs, driver and CUDA versions, CDI specs and the low-level runtime",
		Args:  noArgs(stderr),
		RunE:  func(*cobra.Command, []string) error { return code(runInfo(o, stdout, stderr)) },
	}
	c.Flags().BoolVar(&o.json, "json", false, "print as JSON")
	o.disc.register(c.Flags(), "")
	return c
}

type infoOptions struct {
	json bool
	disc discoveryFlags
}

// infoCmd runs `nvbind info args...`.
func infoCmd(args []string, stdout, stderr io.Writer) int {
	return execute(append([]string{"info"}, args...), stdout, stderr)
}

// infoReport is what `nvbind info` shows.
type infoReport struct {
	*gpu.Inventory
	Specs   []gpu.SpecInfo `json:"specs"`
	JITSpec string         `json:"jitSpec,omitempty"`
	Runtime string         `json:"runtime,omitempty"`
	// RuntimeError says why no low-level runtime was found.
	RuntimeError string `json:"runtimeError,omitempty"`
	Config       string `json:"config"`
	// Host: driver flavour and the machine's display-class PCI devices
	// (not on WSL2, which has no PCI view of its GPUs).
	Host *gpu.HostGPUs `json:"host,omitempty"`
}

func runInfo(o infoOptions, stdout, stderr io.Writer) int {
	cfg, err := config.Load()
	if err != nil {
		return failTo(stderr, 1, "info: %v", err)
	}
	disc := o.disc.withDefault(cfg.Driver.Root)
	inv, err := gpu.Discover(gpu.DiscoverOptions{DriverRoot: disc.root, NVML: disc.nvml()})
	if err != nil {
		return failTo(stderr, 1, "info: %v", err)
	}
	r := infoReport{Inventory: inv, JITSpec: cfg.CDI.JITSpec, Config: cfg.Path}
	if r.Config == "" {
		r.Config = "(built-in defaults; " + config.Path() + " not found)"
	}
	if inv.WSL == nil {
		r.Host = gpu.ReadHostGPUs(inv.DriverRoot, "")
	}
	r.Specs = gpu.FindSpecs(cfg.CDI.SpecDirs, cfg.CDI.JITSpec, inv.DriverVersion)
	if r.Runtime, err = oci.FindRuntime(cfg.Runtime.Runtimes); err != nil {
		r.RuntimeError = err.Error()
	}
	if o.json {
		if err := writeJSON(stdout, r); err != nil {
			return failTo(stderr, 1, "info: %v", err)
		}
		return 0
	}
	printInfo(stdout, &r)
	return 0
}

func printInfo(w io.Writer, r *infoReport) {
	inv := r.Inventory
	fmt.Fprintf(w, "Driver root:     %s\n", inv.DriverRoot)
	if inv.Source == gpu.SourceNone {
		fmt.Fprintf(w, "NVIDIA driver:   none (%s)\n", inv.Note)
	} else {
		fmt.Fprintf(w, "Driver version:  %s\n", inv.DriverVersion)
		fmt.Fprintf(w, "CUDA version:    %s\n", orUnknown(inv.CUDAVersion))
		fmt.Fprintf(w, "Discovery:       %s\n", inv.Source)
		if inv.Note != "" {
			fmt.Fprintf(w, "Note:            %s\n", inv.Note)
		}
		if inv.WSL != nil && len(inv.GPUs) == 0 {
			fmt.Fprintf(w, "GPUs:            unknown without NVML (WSL2 shares them all through %s)\n", gpu.WSLDevice)
		} else {
			fmt.Fprintf(w, "GPUs:            %d\n", len(inv.GPUs))
		}
		for _, g := range inv.GPUs {
			extra := []string{"bus " + g.BusID}
			if g.ComputeCapability != "" {
				extra = append(extra, "compute "+g.ComputeCapability)
			}
			if g.MemoryBytes > 0 {
				extra = append(extra, fmt.Sprintf("%d MiB", g.MemoryBytes>>20))
			}
			fmt.Fprintf(w, "  %d: %s %s (%s)\n", g.Index, g.Name, g.UUID, strings.Join(extra, ", "))
			for _, m := range g.MIGDevices {
				fmt.Fprintf(w, "     MIG %d:%d gi %d ci %d %s %s\n", g.Index, m.Index, m.GIID, m.CIID, m.Profile, m.UUID)
			}
		}
	}
	printWorkstation(w, r)
	if len(r.Specs) == 0 {
		fmt.Fprintf(w, "CDI spec:        none (run 'nvbind cdi generate'; the runtime writes %s on first use)\n", orUnknown(r.JITSpec))
	}
	for _, s := range r.Specs {
		state := "stale (made for driver " + orUnknown(s.DriverVersion) + ")"
		switch {
		case s.Error != "":
			state = "invalid: " + s.Error
		case s.Fresh:
			state = "fresh"
		case s.DriverVersion == "":
			state = "not made by nvbind"
		}
		fmt.Fprintf(w, "CDI spec:        %s (%s, %d devices)\n", s.Path, state, len(s.Devices))
	}
	if r.Runtime != "" {
		fmt.Fprintf(w, "Runtime:         %s\n", r.Runtime)
	} else {
		fmt.Fprintf(w, "Runtime:         none (%s)\n", r.RuntimeError)
	}
	fmt.Fprintf(w, "Config:          %s\n", r.Config)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
