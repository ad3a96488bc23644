package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/engines"
	"github.com/nvbind/nvbind/internal/gpu"
)

func init() {
	register("doctor", "check the driver, device nodes, CDI spec, engines and runtime setup", runDoctor)
}

func runDoctor(args []string) int {
	return doctorCmd(args, os.Stdout, os.Stderr)
}

func doctorCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("nvbind doctor", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the checks as JSON")
	driverRoot := fs.String("driver-root", "", "driver root to check (default: driver.root from the config, /)")
	noNVML := fs.Bool("no-nvml", false, "discover through /proc only, never load NVML")
	if code, done := parseStdFlags(fs, args, stderr); done {
		return code
	}
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
