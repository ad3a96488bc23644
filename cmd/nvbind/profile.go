package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/profiles"
)

func init() {
	register("profile", "list workload profiles, show what one applies", runProfile)
}

func runProfile(args []string) int {
	if len(args) == 0 {
		return fail(2, "profile: want a subcommand: list, show <name> [--json] [--param key=value] [--gpus N]")
	}
	switch args[0] {
	case "list":
		return profileList(args[1:])
	case "show":
		return profileShow(args[1:])
	}
	return fail(2, "profile: unknown subcommand %q (valid: list, show)", args[0])
}

func profileList(args []string) int {
	fs := flag.NewFlagSet("profile list", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return fail(2, "profile list: %v", err)
	}
	if fs.NArg() > 0 {
		return fail(2, "profile list: unexpected argument %q", fs.Arg(0))
	}
	cat, code := loadCatalog()
	if cat == nil {
		return code
	}
	if *asJSON {
		return printJSON(cat.List())
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tFROM\tDESCRIPTION")
	for _, p := range cat.List() {
		fmt.Fprintf(w, "%s\t%s\t%s\n", p.Name, p.Origin, p.Description)
	}
	w.Flush()
	return 0
}

func profileShow(args []string) int {
	fs := flag.NewFlagSet("profile show", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print JSON")
	gpus := fs.Int("gpus", 1, "GPUs the container would get")
	params := map[string]string{}
	fs.Func("param", "profile parameter key=value (repeatable)", func(v string) error {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return fmt.Errorf("want key=value, got %q", v)
		}
		params[k] = val
		return nil
	})
	// The name may come before or after the flags.
	if err := fs.Parse(args); err != nil {
		return fail(2, "profile show: %v", err)
	}
	if fs.NArg() == 0 {
		return fail(2, "profile show: want a profile name")
	}
	name := fs.Arg(0)
	if err := fs.Parse(fs.Args()[1:]); err != nil {
		return fail(2, "profile show: %v", err)
	}
	if fs.NArg() > 0 {
		return fail(2, "profile show: unexpected argument %q", fs.Arg(0))
	}
	if *gpus < 0 {
		return fail(2, "profile show: --gpus must not be negative")
	}
	cat, code := loadCatalog()
	if cat == nil {
		return code
	}
	r, err := cat.Resolve(name, params, profiles.Target{GPUs: *gpus})
	if err != nil {
		return fail(1, "%v", err)
	}
	if *asJSON {
		return printJSON(r)
	}
	printResolved(os.Stdout, r)
	return 0
}

func loadCatalog() (*profiles.Catalog, int) {
	cfg, err := config.Load()
	if err != nil {
		return nil, fail(1, "%v", err)
	}
	cat, err := profiles.LoadCatalog(cfg)
	if err != nil {
		return nil, fail(1, "%v", err)
	}
	return cat, 0
}

func printJSON(v any) int {
	if err := writeJSON(os.Stdout, v); err != nil && !errors.Is(err, os.ErrClosed) {
		return fail(1, "write: %v", err)
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
