package main

import (
	"errors"
	"fmt"
	"github.com/spf13/cobra"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/profiles"
)

func init() { addCommand(newProfileCmd) }

func newProfileCmd(stdout, stderr io.Writer) *cobra.Command {
	var listJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "list the workload profiles (built-in and from the config)",
		Args:  noArgs(stderr),
		RunE:  func(*cobra.Command, []string) error { return code(profileList(listJSON, stdout, stderr)) },
	}
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON")

	var o profileShowOptions
	show := &cobra.Command{
		Use:   "show NAME",
		Short: "show what a profile applies for given parameters",
		Args: func(c *cobra.Command, args []string) error {
			switch {
			case len(args) == 0:
				return exitCode(failTo(stderr, 2, "profile show: want a profile name"))
			case len(args) > 1:
				return exitCode(failTo(stderr, 2, "profile show: unexpected argument %q", args[1]))
			}
			return nil
		},
		RunE: func(_ *cobra.Command, args []string) error { return code(profileShow(args[0], o, stdout, stderr)) },
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			cat, _ := loadCatalogQuiet()
			var names []string
			if cat != nil {
				for _, p := range cat.List() {
					names = append(names, p.Name)
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
	}
	f := show.Flags()
	f.BoolVar(&o.json, "json", false, "print JSON")
	f.IntVar(&o.gpus, "gpus", 1, "GPUs the container would get")
	f.StringArrayVar(&o.params, "param", nil, "profile parameter key=value (repeatable)")
	return group("profile", "list workload profiles, show what one applies", stdout, stderr, list, show)
}

func profileList(asJSON bool, stdout, stderr io.Writer) int {
	cat, code := loadCatalog(stderr)
	if cat == nil {
		return code
	}
	if asJSON {
		return printJSON(cat.List(), stdout, stderr)
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tFROM\tDESCRIPTION")
	for _, p := range cat.List() {
		fmt.Fprintf(w, "%s\t%s\t%s\n", p.Name, p.Origin, p.Description)
	}
	w.Flush()
	return 0
}

type profileShowOptions struct {
	json   bool
	gpus   int
	params []string
}

func profileShow(name string, o profileShowOptions, stdout, stderr io.Writer) int {
	gpus := &o.gpus
	params := map[string]string{}
	for _, v := range o.params {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return failTo(stderr, 2, "profile show: --param: want key=value, got %q", v)
		}
		params[k] = val
	}
	asJSON := &o.json
	if *gpus < 0 {
		return failTo(stderr, 2, "profile show: --gpus must not be negative")
	}
	cat, code := loadCatalog(stderr)
	if cat == nil {
		return code
	}
	r, err := cat.Resolve(name, params, profiles.Target{GPUs: *gpus})
	if err != nil {
		return failTo(stderr, 1, "%v", err)
	}
	if *asJSON {
		return printJSON(r, stdout, stderr)
	}
	printResolved(stdout, r)
	return 0
}

// loadCatalogQuiet loads the catalog for shell completion: no output.
func loadCatalogQuiet() (*profiles.Catalog, error) {
	cfg, err := config.Load()
	if err != nil {
		return nil, err
	}
	return profiles.LoadCatalog(cfg)
}

func loadCatalog(stderr io.Writer) (*profiles.Catalog, int) {
	cat, err := loadCatalogQuiet()
	if err != nil {
		return nil, failTo(stderr, 1, "%v", err)
	}
	return cat, 0
}

func printJSON(v any, stdout, stderr io.Writer) int {
	if err := writeJSON(stdout, v); err != nil && !errors.Is(err, os.ErrClosed) {
		return failTo(stderr, 1, "write: %v", err)
	}
	return 0
}

func printResolved(out io.Writer, r *profiles.Resolved) {
	fmt.Fprintf(out, "profile %s: %s\n", r.Name, r.Description)
	fmt.Fprintf(out, "from: %s\n", strings.Join(r.Chain, " <- "))
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if len(r.Params) > 0 {
		fmt.Fprintln(w, "\nPARAMETER\tVALUE\tSOURCE\tMEANING")
		for _, p := range r.Params {
			v := p.Value
			if v == "" {
				v = "-"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", p.Name, v, p.Source, p.Description)
		}
	}
	fmt.Fprintln(w, "\nKIND\tSETTING\tCONSUMER\tSOURCE")
	for _, s := range r.Settings {
		setting := s.Name
		switch s.Kind {
		case "env":
			setting = s.Name + "=" + s.Value
		case "mount":
			setting = s.Name + " <- " + s.Value
		case "shm-size", "rlimit":
			setting = s.Name + " = " + s.Value
		}
		src := s.Source
		if s.Skipped != "" {
			src += " [skipped: " + s.Skipped + "]"
		}
		consumer := s.Consumer
		if consumer == "" {
			consumer = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", s.Kind, setting, consumer, src)
	}
	w.Flush()
	if f := r.Fit; f != nil {
		fmt.Fprintf(out, "\nollama fit: %s class, %s weights, context %d × %d parallel, KV cache %s: weights %.1f GiB + KV cache %.1f GiB + overhead = %.1f GiB",
			f.Class, f.Precision, f.Context, f.Parallel, f.KVCacheType,
			float64(f.WeightsBytes)/(1<<30), float64(f.KVBytes)/(1<<30), float64(f.NeedBytes)/(1<<30))
		switch {
		case f.MemoryUnknown:
			fmt.Fprintln(out, "; GPU memory unknown")
		default:
			var total uint64
			for _, b := range f.GPUMemory {
				total += b
			}
			verdict := "fits on one GPU"
			if f.Spread {
				verdict = "spread across GPUs"
			}
			if !f.Fits {
				verdict = "does NOT fit"
			}
			fmt.Fprintf(out, "; GPUs: %d, %.1f GiB (%s): %s\n", len(f.GPUMemory), float64(total)/(1<<30), f.MemorySource, verdict)
		}
	}
	for _, warn := range r.Warnings {
		fmt.Fprintf(out, "warning: %s\n", warn)
	}
}
