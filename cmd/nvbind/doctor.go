package main

import (
	"fmt"
	"github.com/spf13/cobra"
	"io"
	"strings"

	"github.com/nvbind/nvbind/internal/api"
	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/engines"
	"github.com/nvbind/nvbind/internal/gpu"
)

func init() { addCommand(newDoctorCmd) }

type doctorOptions struct {
	json, noNVML bool
	driverRoot   string
	api          string
}

func newDoctorCmd(stdout, stderr io.Writer) *cobra.Command {
	var o doctorOptions
	c := &cobra.Command{
		Use:   "doctor",
		Short: "check the driver, device nodes, CDI spec, engines and runtime setup",
		Long: `Checks the driver, device nodes, NVML, the CDI spec and its freshness,
which engines have nvbind registered, the low-level runtime, cgroups,
persistence mode and rootless setup; each warning or failure comes with a
fix. Exit 0 unless a check fails.`,
		Args: noArgs(stderr),
		RunE: func(*cobra.Command, []string) error { return code(runDoctor(o, stdout, stderr)) },
	}
	f := c.Flags()
	f.BoolVar(&o.json, "json", false, "print the checks as JSON")
	f.StringVar(&o.driverRoot, "driver-root", "", "driver root to check (default: driver.root from the config, /)")
	f.BoolVar(&o.noNVML, "no-nvml", false, "discover through /proc only, never load NVML")
	f.StringVar(&o.api, "api", api.DefaultListen, "where nvbind serve is expected to listen")
	return c
}

// doctorCmd runs `nvbind doctor args...`.
func doctorCmd(args []string, stdout, stderr io.Writer) int {
	return execute(append([]string{"doctor"}, args...), stdout, stderr)
}

func runDoctor(o doctorOptions, stdout, stderr io.Writer) int {
	asJSON, driverRoot, noNVML := &o.json, &o.driverRoot, &o.noNVML
	cfg, cfgErr := config.Load()
	if cfgErr != nil {
		cfg = config.Default()
	}
	var nvml gpu.NVMLSource
	if !*noNVML {
		root := *driverRoot
		if root == "" {
			root = cfg.Driver.Root
		}
		nvml = nvmlFor(root)
	}
	report := engines.Doctor(engines.DoctorOptions{
		Config:      cfg,
		ConfigError: cfgErr,
		DriverRoot:  *driverRoot,
		NVML:        nvml,
		RuntimePath: defaultRuntimePath(),
	})
	addPolicyCheck(report, cfg, cfgErr)
	addServeCheck(report, cfg, o.api)
	if *asJSON {
		if err := writeJSON(stdout, report); err != nil {
			return failTo(stderr, 1, "doctor: %v", err)
		}
	} else {
		printReport(stdout, report)
	}
	if report.Failed() {
		return 1
	}
	return 0
}

func printReport(w io.Writer, r *engines.Report) {
	width := 0
	for _, c := range r.Checks {
		width = max(width, len(c.Name))
	}
	pad := strings.Repeat(" ", 6+width+2)
	for _, c := range r.Checks {
		fmt.Fprintf(w, "%-4s  %-*s  %s\n", strings.ToUpper(string(c.Status)), width, c.Name, c.Message)
		if c.Fix != "" {
			fmt.Fprintf(w, "%sfix: %s\n", pad, c.Fix)
		}
	}
	s := r.Summary
	fmt.Fprintf(w, "\nsummary: %d fail, %d warn, %d pass, %d skip\n", s[engines.Fail], s[engines.Warn], s[engines.Pass], s[engines.Skip])
}
