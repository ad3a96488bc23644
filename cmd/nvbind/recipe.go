package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/nvbind/nvbind/internal/recipes"
	"github.com/nvbind/nvbind/internal/recipes/kube"
)

func init() { addCommand(newRecipeCmd) }

func newRecipeCmd(stdout, stderr io.Writer) *cobra.Command {
	g := group("recipe", "cluster recipes: render, explain, validate (readiness, deployment, performance, conformance), diff, fabric-job", stdout, stderr,
		newRecipeRenderCmd(stdout, stderr), newRecipeExplainCmd(stdout, stderr), newRecipeValidateCmd(stdout, stderr),
		newRecipeDiffCmd(stdout, stderr), newRecipeFabricJobCmd(stdout, stderr))
	g.Long = recipeUsage
	return g
}

const recipeUsage = `usage: nvbind recipe <command> [flags]

  render      --service S --accelerator A --intent I [--os O] [--platform kserve|nim] [--nodes N]
              [--snapshot FILE|cm://NS/NAME] [--data DIR] [--format yaml|json] [-o FILE]
  explain     (render's criteria flags) [--path P]
  validate    --recipe R [--phase readiness|deployment|performance|conformance] [--format table|json|junit|ctrf] [-o FILE]
                readiness:   --snapshot FILE|cm://NS/NAME [--kubeconfig K]
                deployment:  --cluster-dump FILE (kubectl get deploy,ds,crd,nodes -A -o json) | --kubeconfig K
                performance: --nccl-log FILE (all_reduce_perf output)
                conformance: --evidence-dir DIR
              exit 0 pass, 1 failed, 2 bad input
  diff        A B [--format text|json-patch]                                  exit 0 same, 1 drift, 2 bad input
  fabric-job  --recipe R [--nodes N] [--namespace NS] [--image IMG] [--test-path P] [-o FILE]
`

// recipeCmd runs `nvbind recipe args...`.
func recipeCmd(args []string, stdout, stderr io.Writer) int {
	return execute(append([]string{"recipe"}, args...), stdout, stderr)
}

// connectKube builds the cluster clients; tests replace it with fakes.
var connectKube = func(kubeconfig string, inCluster bool) (*kube.Clients, error) {
	return kube.Connect(kubeconfig, inCluster)
}

// readSnapshotRef reads a snapshot from a file, or from a ConfigMap with
// cm://namespace/name (written by the job of nvbind snapshot job).
func readSnapshotRef(ref, kubeconfig string) (*recipes.Snapshot, error) {
	var data []byte
	if ns, name, ok := kube.ParseConfigMapRef(ref); ok {
		c, err := connectKube(kubeconfig, false)
		if err != nil {
			return nil, err
		}
		if data, err = kube.ReadSnapshotConfigMap(context.Background(), c.Core, ns, name); err != nil {
			return nil, err
		}
	} else if strings.HasPrefix(ref, "cm://") {
		return nil, fmt.Errorf("snapshot %q: want cm://namespace/name", ref)
	} else {
		var err error
		if data, err = os.ReadFile(ref); err != nil {
			return nil, err
		}
	}
	s, err := recipes.ReadSnapshot(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	return s, nil
}

// criteriaFlags are the criteria flags render and explain share.
type criteriaFlags struct {
	q                    recipes.Query
	data                 string
	snapshot, kubeconfig string
}

func (f *criteriaFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.q.Service, "service", "", "Kubernetes service: eks, gke, aks, oke, self-managed")
	fs.StringVar(&f.q.Accelerator, "accelerator", "", "GPU: h100, h200, gb200, b200, a100, l40s")
	fs.StringVar(&f.q.Intent, "intent", "", "training or inference")
	fs.StringVar(&f.q.OS, "os", "", "node OS: ubuntu, rhel, cos, amazonlinux, oraclelinux (default: the service's first supported)")
	fs.StringVar(&f.q.Platform, "platform", "", "inference serving layer: kserve (default) or nim")
	fs.IntVar(&f.q.Nodes, "nodes", 0, "number of GPU nodes (optional)")
	fs.StringVar(&f.data, "data", "", "directory of your own overlays, layered over the built-in ones")
	fs.StringVar(&f.snapshot, "snapshot", "", "derive the criteria from a snapshot (file or cm://NS/NAME); flags override")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig for --snapshot cm://NS/NAME")
}

// fromSnapshot fills the criteria the flags left empty from the snapshot,
// and says on stderr which it derived and which it could not.
func (f *criteriaFlags) fromSnapshot(fs *pflag.FlagSet, stderr io.Writer) error {
	if f.snapshot == "" {
		return nil
	}
	set := map[string]bool{}
	fs.Visit(func(fl *pflag.Flag) { set[fl.Name] = true })
	s, err := readSnapshotRef(f.snapshot, f.kubeconfig)
	if err != nil {
		return err
	}
	d, ders := recipes.DeriveQuery(s)
	fmt.Fprintf(stderr, "nvbind: criteria from %s:\n", f.snapshot)
	for _, der := range ders {
		target := map[string]*string{"service": &f.q.Service, "accelerator": &f.q.Accelerator, "os": &f.q.OS, "intent": &f.q.Intent}[der.Criterion]
		switch {
		case target != nil && set[der.Criterion]:
			fmt.Fprintf(stderr, "  %-12s %-22s from --%s", der.Criterion, *target, der.Criterion)
			if der.Value != "" && der.Value != *target {
				fmt.Fprintf(stderr, " (the snapshot says %s: %s)", der.Value, der.From)
			}
			fmt.Fprintln(stderr)
		case der.Value != "":
			fmt.Fprintf(stderr, "  %-12s %-22s derived from %s\n", der.Criterion, der.Value, der.From)
		default:
			fmt.Fprintf(stderr, "  %-12s %-22s not derived: %s\n", der.Criterion, "-", der.Why)
		}
	}
	if !set["service"] {
		f.q.Service = d.Service
	}
	if !set["accelerator"] {
		f.q.Accelerator = d.Accelerator
	}
	if !set["os"] {
		f.q.OS = d.OS
	}
	return nil
}

func (f *criteriaFlags) resolve(name string, fs *pflag.FlagSet, stderr io.Writer) (*recipes.Resolution, int) {
	if err := f.fromSnapshot(fs, stderr); err != nil {
		return nil, failTo(stderr, 2, "%s: %v", name, err)
	}
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

func newRecipeRenderCmd(stdout, stderr io.Writer) *cobra.Command {
	c := &cobra.Command{Use: "render", Short: "render the recipe for a cluster's criteria (or a snapshot's)", Args: noArgs(stderr)}
	fs := c.Flags()
	var qf criteriaFlags
	qf.register(fs)
	var doc docOutput
	doc.register(fs, "recipe")
	run := func(pos []string) int {
		if err := doc.check(); err != nil {
			return failTo(stderr, 2, "recipe render: %v", err)
		}
		res, code := qf.resolve("recipe render", fs, stderr)
		if res == nil {
			return code
		}
		if err := doc.write(res.Recipe, stdout); err != nil {
			return failTo(stderr, 1, "recipe render: %v", err)
		}
		return 0
	}
	c.RunE = func(_ *cobra.Command, pos []string) error { return code(run(pos)) }
	return c
}

func newRecipeExplainCmd(stdout, stderr io.Writer) *cobra.Command {
	c := &cobra.Command{Use: "explain", Short: "say which overlay set each value of the recipe, and why", Args: noArgs(stderr)}
	fs := c.Flags()
	var qf criteriaFlags
	qf.register(fs)
	path := fs.String("path", "", "explain only this value and what is under it, e.g. components.gpu-operator.values.driver.version")
	run := func(pos []string) int {
		res, code := qf.resolve("recipe explain", fs, stderr)
		if res == nil {
			return code
		}
		if err := res.Explain(stdout, strings.TrimSpace(*path)); err != nil {
			return failTo(stderr, 2, "recipe explain: %v", err)
		}
		return 0
	}
	c.RunE = func(_ *cobra.Command, pos []string) error { return code(run(pos)) }
	return c
}

func readRecipeFile(file string) (*recipes.Recipe, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	r, err := recipes.ReadRecipe(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return r, nil
}

func newRecipeValidateCmd(stdout, stderr io.Writer) *cobra.Command {
	c := &cobra.Command{Use: "validate --recipe R [--phase readiness|deployment|performance|conformance]", Short: "validate a cluster against a recipe: exit 0 pass, 1 failed, 2 bad input", Args: noArgs(stderr)}
	fs := c.Flags()
	recipeFile := fs.String("recipe", "", "rendered recipe file (nvbind recipe render -o)")
	phase := fs.String("phase", recipes.PhaseReadiness, "readiness, deployment, performance or conformance")
	snapRef := fs.String("snapshot", "", "readiness: snapshot file (nvbind snapshot, or AICR's) or cm://NS/NAME")
	dump := fs.String("cluster-dump", "", "deployment: kubectl get deployments,daemonsets,crds,nodes -A -o json output")
	kubeconfig := fs.String("kubeconfig", "", "deployment: check the live cluster; readiness: read cm://NS/NAME")
	ncclLog := fs.String("nccl-log", "", "performance: all_reduce_perf output (the fabric-job launcher's log)")
	evidence := fs.String("evidence-dir", "", "conformance: directory of evidence files named after each requirement id")
	format := fs.String("format", "table", "report format: table, json, junit or ctrf")
	out := fs.StringP("o", "o", "", "write the report to this file instead of stdout")
	run := func(pos []string) int {
		if *recipeFile == "" {
			return failTo(stderr, 2, "recipe validate: --recipe is required")
		}
		if !slices.Contains(recipes.ReportFormats, *format) {
			return failTo(stderr, 2, "recipe validate: --format %q: want table, json, junit or ctrf", *format)
		}
		need := map[string]string{
			recipes.PhaseReadiness: "--snapshot", recipes.PhaseDeployment: "--cluster-dump or --kubeconfig",
			recipes.PhasePerformance: "--nccl-log", recipes.PhaseConformance: "--evidence-dir",
		}
		if _, ok := need[*phase]; !ok {
			return failTo(stderr, 2, "recipe validate: --phase %q: want readiness, deployment, performance or conformance", *phase)
		}
		given := map[string]bool{
			recipes.PhaseReadiness: *snapRef != "", recipes.PhaseDeployment: *dump != "" || *kubeconfig != "",
			recipes.PhasePerformance: *ncclLog != "", recipes.PhaseConformance: *evidence != "",
		}
		if !given[*phase] {
			return failTo(stderr, 2, "recipe validate: --phase %s needs %s", *phase, need[*phase])
		}
		r, err := readRecipeFile(*recipeFile)
		if err != nil {
			return failTo(stderr, 2, "recipe validate: %v", err)
		}
		var rep *recipes.Report
		switch *phase {
		case recipes.PhaseReadiness:
			snap, err := readSnapshotRef(*snapRef, *kubeconfig)
			if err != nil {
				return failTo(stderr, 2, "recipe validate: %v", err)
			}
			if rep, err = recipes.Validate(r, snap); err != nil {
				return failTo(stderr, 2, "recipe validate: %v", err)
			}
		case recipes.PhaseDeployment:
			var cl *recipes.Cluster
			if *dump != "" {
				data, err := os.ReadFile(*dump)
				if err != nil {
					return failTo(stderr, 2, "recipe validate: %v", err)
				}
				if cl, err = recipes.ReadClusterDump(data, *dump); err != nil {
					return failTo(stderr, 2, "recipe validate: %v", err)
				}
			} else {
				c, err := connectKube(*kubeconfig, false)
				if err != nil {
					return failTo(stderr, 2, "recipe validate: %v", err)
				}
				if cl, err = kube.Cluster(context.Background(), c); err != nil {
					return failTo(stderr, 2, "recipe validate: %v", err)
				}
			}
			rep = recipes.ValidateDeployment(r, cl)
		case recipes.PhasePerformance:
			data, err := os.ReadFile(*ncclLog)
			if err != nil {
				return failTo(stderr, 2, "recipe validate: %v", err)
			}
			res, err := recipes.ParseNCCL(data)
			if err != nil {
				return failTo(stderr, 2, "recipe validate: %s: %v", *ncclLog, err)
			}
			rep = recipes.ValidatePerformance(r, res, *ncclLog)
		case recipes.PhaseConformance:
			c, err := recipes.LoadConformance()
			if err != nil {
				return failTo(stderr, 2, "recipe validate: %v", err)
			}
			if rep, err = recipes.ValidateConformance(r, c, *evidence); err != nil {
				return failTo(stderr, 2, "recipe validate: %v", err)
			}
		}
		text, err := rep.Format(*format)
		if err != nil {
			return failTo(stderr, 2, "recipe validate: %v", err)
		}
		if err := writeFileOrStdout(*out, text, stdout); err != nil {
			return failTo(stderr, 2, "recipe validate: %v", err)
		}
		if *out != "" {
			fmt.Fprintf(stderr, "%s %s: %d passed, %d failed, %d skipped\n", rep.Phase, rep.Recipe, rep.Passed, rep.Failed, rep.Skipped)
		}
		if !rep.OK() {
			return 1
		}
		return 0
	}
	c.RunE = func(_ *cobra.Command, pos []string) error { return code(run(pos)) }
	return c
}

func newRecipeFabricJobCmd(stdout, stderr io.Writer) *cobra.Command {
	c := &cobra.Command{Use: "fabric-job --recipe R", Short: "print the NCCL all-reduce test Job for a training recipe's network", Args: noArgs(stderr)}
	fs := c.Flags()
	recipeFile := fs.String("recipe", "", "rendered training recipe file")
	var opts recipes.FabricJobOptions
	fs.IntVar(&opts.Nodes, "nodes", 0, "GPU nodes to run across (default: the recipe's minimum, 2)")
	fs.StringVar(&opts.Namespace, "namespace", "default", "namespace of the job")
	fs.StringVar(&opts.Image, "image", "", "nccl-tests image (default: the fabric's)")
	fs.StringVar(&opts.TestPath, "test-path", "", "all_reduce_perf's path in the image (default: the fabric's)")
	out := fs.StringP("o", "o", "", "write the job to this file instead of stdout")
	run := func(pos []string) int {
		if *recipeFile == "" {
			return failTo(stderr, 2, "recipe fabric-job: --recipe is required")
		}
		r, err := readRecipeFile(*recipeFile)
		if err != nil {
			return failTo(stderr, 2, "recipe fabric-job: %v", err)
		}
		job, err := recipes.FabricJob(r, opts)
		if err != nil {
			return failTo(stderr, 2, "recipe fabric-job: %v", err)
		}
		if err := writeFileOrStdout(*out, job, stdout); err != nil {
			return failTo(stderr, 1, "recipe fabric-job: %v", err)
		}
		return 0
	}
	c.RunE = func(_ *cobra.Command, pos []string) error { return code(run(pos)) }
	return c
}

func newRecipeDiffCmd(stdout, stderr io.Writer) *cobra.Command {
	c := &cobra.Command{Use: "diff A B", Short: "show the drift between two recipes or two snapshots: exit 0 same, 1 drift, 2 bad input", Args: cobra.ArbitraryArgs}
	fs := c.Flags()
	format := fs.String("format", "text", "output format: text or json-patch")
	run := func(pos []string) int {
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
	c.RunE = func(_ *cobra.Command, pos []string) error { return code(run(pos)) }
	return c
}
