package main

import (
	"fmt"
	"io"

	"github.com/nvbind/nvbind/internal/gpu"
)

// printWorkstation prints what `nvbind info` knows beyond the NVIDIA
// driver's own view: WSL2's setup, the kernel driver flavour, NVIDIA GPUs
// the driver cannot use and integrated GPUs (hybrid laptops).
func printWorkstation(w io.Writer, r *infoReport) {
	if wsl := r.Inventory.WSL; wsl != nil {
		fmt.Fprintf(w, "Platform:        WSL2 (kernel %s)\n", orUnknown(wsl.KernelRelease))
		fmt.Fprintf(w, "GPU device:      %s\n", orNone(wsl.Device, "none"))
		fmt.Fprintf(w, "Driver store:    %s\n", orNone(wsl.DriverStore, "none"))
		if wsl.DriverVersion != "" {
			fmt.Fprintf(w, "Windows driver:  %s (NVML)\n", wsl.DriverVersion)
		}
		fmt.Fprintf(w, "GPU selection:   all (or 0) only: WSL2 shares every GPU through %s\n", gpu.WSLDevice)
		return
	}
	h := r.Host
	if h == nil {
		return
	}
	switch h.Flavour {
	case gpu.FlavourOpen:
		fmt.Fprintf(w, "Kernel driver:   NVIDIA open kernel modules (%s)\n", h.FlavourDetail)
	case gpu.FlavourProprietary:
		fmt.Fprintf(w, "Kernel driver:   NVIDIA proprietary kernel modules (%s)\n", h.FlavourDetail)
	case gpu.FlavourNouveau:
		fmt.Fprintf(w, "Kernel driver:   nouveau (%s): no CUDA, containers get no GPU\n", h.FlavourDetail)
	default:
		fmt.Fprintf(w, "Kernel driver:   none\n")
	}
	if len(h.PCI) == 0 {
		return
	}
	fmt.Fprintf(w, "PCI GPUs:        %d\n", len(h.PCI))
	for _, p := range h.PCI {
		switch {
		case p.IsNVIDIA() && p.Usable:
			fmt.Fprintf(w, "  %s: usable for containers\n", p)
		case p.IsNVIDIA():
			fmt.Fprintf(w, "  %s: NOT usable for containers: %s\n", p, p.Problem)
			fmt.Fprintf(w, "     fix: %s\n", p.Fix)
		case p.Integrated:
			fmt.Fprintf(w, "  %s: integrated GPU\n", p)
		default:
			fmt.Fprintf(w, "  %s: other GPU\n", p)
		}
	}
	if h.Hybrid() {
		fmt.Fprintf(w, "Hybrid graphics: PRIME (integrated GPU beside NVIDIA): use the gaming profile with prime=true for render offload\n")
	}
}

func orNone(s, none string) string {
	if s == "" {
		return none
	}
	return s
}
