// Command simroot builds a simulated NVIDIA driver root (see
// internal/gpu/simroot) for demos and tests:
//
//	go run ./test/cmd/simroot -out DIR -gpus N [-driver-version V] [-mig] [-compat32] [-ldcache]
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/nvbind/nvbind/internal/gpu/simroot"
)

func main() {
	fs := flag.NewFlagSet("simroot", flag.ContinueOnError)
	out := fs.String("out", "", "directory to build the root in (required)")
	gpus := fs.Int("gpus", 2, "number of GPUs")
	version := fs.String("driver-version", simroot.DefaultDriverVersion, "driver version")
	mig := fs.Bool("mig", false, "MIG mode on every GPU (two MIG devices each)")
	compat32 := fs.Bool("compat32", false, "add 32-bit libraries")
	ldcache := fs.Bool("ldcache", true, "write etc/ld.so.cache with the host's ldconfig")
	nodrm := fs.Bool("no-drm", false, "leave out /dev/dri")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if *out == "" {
		fmt.Fprintln(os.Stderr, "simroot: -out is required")
		os.Exit(2)
	}
	r, err := simroot.Build(*out, simroot.Options{GPUs: *gpus, DriverVersion: *version, MIG: *mig,
		Compat32: *compat32, LDCache: *ldcache, NoDRM: *nodrm})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("simulated driver root %s: driver %s, %d GPU(s)\n", r.Dir, r.DriverVersion, len(r.GPUs))
}
