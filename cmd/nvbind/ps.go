package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nvbind/nvbind/internal/api"
	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/gpu"
	"github.com/nvbind/nvbind/internal/ledger"
)

// ps.go: `nvbind ps`, which container holds which GPU, from the ledger
// nvbind-runtime keeps (dead containers are reclaimed as it is read).

func init() { addCommand(newPsCmd) }

func newPsCmd(stdout, stderr io.Writer) *cobra.Command {
	var asJSON bool
	var disc discoveryFlags
	c := &cobra.Command{
		Use:   "ps",
		Short: "show which container holds which GPU (tenant, profile, since) and the free GPUs",
		Long: `Lists every GPU and MIG device with the live containers holding it, then
each container with its GPUs, then the free GPUs. It reads the ledger
nvbind-runtime keeps (ledger.dir); containers the low-level runtime no longer
knows are dropped from it as it is read.`,
		Args: noArgs(stderr),
		RunE: func(*cobra.Command, []string) error { return code(runPs(asJSON, disc, stdout, stderr)) },
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	disc.register(c.Flags(), "")
	return c
}

// loadView reads the ledger and the host's GPUs.
func loadView(cfg *config.Config, disc discoveryFlags) (*api.View, error) {
	if cfg.Ledger.Dir == "" {
		return nil, fmt.Errorf("the ledger is off (ledger.dir is empty)")
	}
	live, err := ledger.Open(cfg.Ledger.Dir).List()
	if err != nil {
		return nil, err
	}
	d := disc.withDefault(cfg.Driver.Root)
	inv, err := gpu.Discover(gpu.DiscoverOptions{DriverRoot: d.root, NVML: d.nvml()})
	if err != nil {
		inv = nil // the ledger alone still says who holds what
	}
	return api.BuildView(inv, live), nil
}

func runPs(asJSON bool, disc discoveryFlags, stdout, stderr io.Writer) int {
	cfg, err := config.Load()
	if err != nil {
		return failTo(stderr, 1, "ps: %v", err)
	}
	v, err := loadView(cfg, disc)
	if err != nil {
		return failTo(stderr, 1, "ps: %v", err)
	}
	if asJSON {
		if err := writeJSON(stdout, v); err != nil {
			return failTo(stderr, 1, "ps: %v", err)
		}
		return 0
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "GPU\tUUID\tCONTAINER\tTENANT\tPROFILE\tSINCE")
	for _, g := range v.GPUs {
		if g.Free {
			fmt.Fprintf(w, "%s\t%s\t-\t-\t-\t-\n", g.Index, dash(g.UUID))
		}
		for _, h := range g.Holders {
			c := h.Container
			if h.Exclusive {
				c += " (exclusive)"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", g.Index, dash(g.UUID), c, h.Tenant, dash(h.Profile), h.Since.Local().Format(time.DateTime))
		}
	}
	w.Flush()
	if len(v.Containers) > 0 {
		fmt.Fprintln(stdout)
		w = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "CONTAINER\tTENANT\tPROFILE\tGPUS")
		for _, c := range v.Containers {
			var gpus []string
			for _, d := range c.GPUs {
				gpus = append(gpus, d.Short())
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", c.ID, c.Tenant, dash(c.Profile), strings.Join(gpus, ", "))
		}
		w.Flush()
	}
	free := "none"
	if len(v.Free) > 0 {
		free = strings.Join(v.Free, " ")
	}
	fmt.Fprintf(stdout, "\nfree: %s\n", free)
	return 0
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
