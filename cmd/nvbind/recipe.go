package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/nvbind/nvbind/internal/recipes"
)

func init() {
	register("recipe", "cluster recipes, offline: render, explain, validate, diff", runRecipe)
}

const recipeUsage = `usage: nvbind recipe <command> [flags]

  render    --service S --accelerator A --intent I [--os O] [--nodes N] [--data DIR] [--format yaml|json] [-o FILE]
  explain   --service S --accelerator A --intent I [--os O] [--nodes N] [--data DIR] [--path P]
  validate  --recipe R --snapshot S [--format table|json|junit] [-o FILE]   exit 0 pass, 1 failed, 2 bad input
  diff      A B [--format text|json-patch]                                  exit 0 same, 1 drift, 2 bad input
`

func runRecipe(args []string) int {
	return recipeCmd(args, os.Stdout, os.Stderr)
}

func recipeCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, recipeUsage)
		return 2
	}
	switch args[0] {
	case "render":
		return recipeRender(args[1:], stdout, stderr)
	case "explain":
		return recipeExplain(args[1:], stdout, stderr)
	case "validate":
		return recipeValidate(args[1:], stdout, stderr)
	case "diff":
		return recipeDiff(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, recipeUsage)
		return 0
	}
	return failTo(stderr, 2, "recipe: unknown command %q (valid: render, explain, validate, diff)", args[0])
}

// criteriaFlags are the criteria flags render and explain share.
type criteriaFlags struct {
	q    recipes.Query
	data string
}

func (f *criteriaFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.q.Service, "service", "", "Kubernetes service: eks, gke, aks, oke, self-managed")
	fs.StringVar(&f.q.Accelerator, "accelerator", "", "GPU: h100, h200, gb200, b200, a100, l40s")
	fs.StringVar(&f.q.Intent, "intent", "", "training or inference")
	fs.StringVar(&f.q.OS, "os", "", "node OS: ubuntu, rhel, cos, amazonlinux (optional)")
	fs.IntVar(&f.q.Nodes, "nodes", 0, "number of GPU nodes (optional)")
	fs.StringVar(&f.data, "data", "", "directory of your own overlays, layered over the built-in ones")
}

func (f *criteriaFlags) resolve(name string, stderr io.Writer) (*recipes.Resolution, int) {
	cat, err := recipes.Load(f.data)
	if err != nil {
		return nil, failTo(stderr, 2, "%s: %v", name, err)
	}
	res, err := cat.Resolve(f.q)
	if err != nil {
		return nil, failTo(stderr, 2, "%s: %v", name, err)
	}
	return res, 0
}

func recipeRender(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("recipe render")
	var qf criteriaFlags
	qf.register(fs)
	var doc docOutput
	doc.register(fs, "recipe")
	if code, done := parseCmdFlagsOnly(fs, args, stdout, stderr); done {
		return code
	}
	if err := doc.check(); err != nil {
		return failTo(stderr, 2, "recipe render: %v", err)
	}
	res, code := qf.resolve("recipe render", stderr)
	if res == nil {
		return code
	}
	if err := doc.write(res.Recipe, stdout); err != nil {
		return failTo(stderr, 1, "recipe render: %v", err)
	}
	return 0
}

func recipeExplain(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("recipe explain")
	var qf criteriaFlags
	qf.register(fs)
	path := fs.String("path", "", "explain only this value and what is under it, e.g. components.gpu-operator.values.driver.version")
	if code, done := parseCmdFlagsOnly(fs, args, stdout, stderr); done {
		return code
	}
	res, code := qf.resolve("recipe explain", stderr)
	if res == nil {
		return code
	}
	if err := res.Explain(stdout, strings.TrimSpace(*path)); err != nil {
		return failTo(stderr, 2, "recipe explain: %v", err)
	}
	return 0
}

func recipeValidate(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("recipe validate")
	recipeFile := fs.String("recipe", "", "rendered recipe file (nvbind recipe render -o)")
	snapFile := fs.String("snapshot", "", "snapshot file: nvbind snapshot or AICR kind: Snapshot")
	format := fs.String("format", "table", "report format: table, json or junit")
	out := fs.String("o", "", "write the report to this file instead of stdout")
	if code, done := parseCmdFlagsOnly(fs, args, stdout, stderr); done {
		return code
	}
	if *recipeFile == "" || *snapFile == "" {
		return failTo(stderr, 2, "recipe validate: --recipe and --snapshot are required")
	}
	switch *format {
	case recipes.ReportTable, recipes.ReportJSON, recipes.ReportJUnit:
	default:
		return failTo(stderr, 2, "recipe validate: --format %q: want table, json or junit", *format)
	}
	data, err := os.ReadFile(*recipeFile)
	if err != nil {
		return failTo(stderr, 2, "recipe validate: %v", err)
	}
	r, err := recipes.ReadRecipe(data)
	if err != nil {
		return failTo(stderr, 2, "recipe validate: %s: %v", *recipeFile, err)
	}
	if data, err = os.ReadFile(*snapFile); err != nil {
		return failTo(stderr, 2, "recipe validate: %v", err)
	}
	snap, err := recipes.ReadSnapshot(data)
	if err != nil {
		return failTo(stderr, 2, "recipe validate: %s: %v", *snapFile, err)
	}
	rep, err := recipes.Validate(r, snap)
	if err != nil {
		return failTo(stderr, 2, "recipe validate: %v", err)
	}
	text, err := rep.Format(*format)
	if err != nil {
		return failTo(stderr, 2, "recipe validate: %v", err)
	}
	if err := writeFileOrStdout(*out, text, stdout); err != nil {
		return failTo(stderr, 2, "recipe validate: %v", err)
	}
	if *out != "" {
		fmt.Fprintf(stderr, "recipe %s: %d passed, %d failed, %d skipped\n", rep.Recipe, rep.Passed, rep.Failed, rep.Skipped)
	}
	if !rep.OK() {
		return 1
	}
	return 0
}

func recipeDiff(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("recipe diff")
	format := fs.String("format", "text", "output format: text or json-patch")
	pos, code, done := parseCmdFlags(fs, args, stdout, stderr)
	if done {
		return code
	}
	if len(pos) != 2 {
		return failTo(stderr, 2, "recipe diff: want two files, A and B (two snapshots or two recipes)")
	}
	if *format != "text" && *format != "json-patch" {
		return failTo(stderr, 2, "recipe diff: --format %q: want text or json-patch", *format)
	}
	var docs [2][]byte
	for i, p := range pos {
		data, err := os.ReadFile(p)
		if err != nil {
			return failTo(stderr, 2, "recipe diff: %v", err)
		}
		docs[i] = data
	}
	d, err := recipes.DiffDocuments(docs[0], docs[1])
	if err != nil {
		return failTo(stderr, 2, "recipe diff: %v", err)
	}
	text := d.Text()
	if *format == "json-patch" {
		if text, err = d.JSONPatch(); err != nil {
			return failTo(stderr, 2, "recipe diff: %v", err)
		}
	}
	if _, err := stdout.Write(text); err != nil {
		return failTo(stderr, 2, "recipe diff: %v", err)
	}
	if d.Drift() {
		return 1
	}
	return 0
}
