package main

import (
	"encoding/json"
	"fmt"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"io"
	"strings"

	"github.com/nvbind/nvbind/internal/atomicfile"
	"github.com/nvbind/nvbind/internal/gpu"
	"github.com/nvbind/nvbind/internal/recipes"
)

// cli.go: what the subcommands share to parse flags and print.

// failTo prints one error line to w and returns code.
func failTo(w io.Writer, code int, format string, a ...any) int {
	fmt.Fprintf(w, "nvbind: "+format+"\n", a...)
	return code
}

// discoveryFlags are the --driver-root and --no-nvml flags of the commands
// that look at the host's GPUs.
type discoveryFlags struct {
	root   string
	noNVML bool
}

// register adds the flags. The driver root's default comes from the
// config, read when the command runs (withDefault), so --help works even
// with a broken config file.
func (f *discoveryFlags) register(fs *pflag.FlagSet, _ string) {
	fs.StringVar(&f.root, "driver-root", "", "where the NVIDIA driver is installed (default: driver.root from the config, /)")
	fs.BoolVar(&f.noNVML, "no-nvml", false, "discover through /proc only, never load NVML")
}

// withDefault is f with the config's driver root where none was given.
func (f discoveryFlags) withDefault(root string) discoveryFlags {
	if f.root == "" {
		f.root = root
	}
	return f
}

// noArgs refuses positional arguments with one line naming the command.
func noArgs(stderr io.Writer) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) > 0 {
			return exitCode(failTo(stderr, 2, "%s: unexpected argument %q", strings.TrimPrefix(c.CommandPath(), "nvbind "), args[0]))
		}
		return nil
	}
}

// nvml is the NVML source to try first, nil with --no-nvml.
func (f *discoveryFlags) nvml() gpu.NVMLSource {
	if f.noNVML {
		return nil
	}
	return nvmlFor(f.root)
}

// docOutput is the --format (yaml or json) and -o flags of a command that
// writes one document.
type docOutput struct {
	format, file string
}

// register adds the flags; what names the document in the help.
func (o *docOutput) register(fs *pflag.FlagSet, what string) {
	fs.StringVar(&o.format, "format", "yaml", "output format: yaml or json")
	fs.StringVarP(&o.file, "o", "o", "", "write the "+what+" to this file instead of stdout")
}

func (o *docOutput) check() error {
	if o.format != "yaml" && o.format != "json" {
		return fmt.Errorf("--format %q: want yaml or json", o.format)
	}
	return nil
}

// write encodes v to the -o file (atomically), or to stdout without one.
func (o *docOutput) write(v any, stdout io.Writer) error {
	data, err := recipes.Encode(v, recipes.Format(o.format))
	if err != nil {
		return err
	}
	return writeFileOrStdout(o.file, data, stdout)
}

// writeFileOrStdout writes data to file atomically, or to stdout when file is "".
func writeFileOrStdout(file string, data []byte, stdout io.Writer) error {
	if file == "" {
		_, err := stdout.Write(data)
		return err
	}
	return atomicfile.Write(file, data, 0o644)
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
