package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/nvbind/nvbind/internal/recipes"
)

func init() {
	register("bundle", "write a recipe's deployment bundle (Helm scripts or Argo CD apps)", runBundle)
}

// setFlags collects repeated --set component:path=value flags.
type setFlags []string

func (s *setFlags) String() string     { return strings.Join(*s, ",") }
func (s *setFlags) Set(v string) error { *s = append(*s, v); return nil }

func runBundle(args []string) int {
	return bundleCmd(args, os.Stdout, os.Stderr)
}

func bundleCmd(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("bundle")
	recipeFile := fs.String("recipe", "", "rendered recipe file (nvbind recipe render -o)")
	out := fs.String("o", "", "directory to write the bundle to (created; an earlier bundle there is replaced)")
	deployer := fs.String("deployer", recipes.DeployerHelm, "helm (deploy.sh/undeploy.sh) or argocd (Applications, app of apps)")
	repoURL := fs.String("repo-url", "", "argocd: Git repository the bundle is pushed to")
	repoPath := fs.String("repo-path", "", "argocd: directory of the bundle in that repository")
	var sets setFlags
	fs.Var(&sets, "set", "override a value: component:path=value (repeatable), e.g. gpu-operator:driver.version=580.95.05")
	if code, done := parseCmdFlagsOnly(fs, args, stdout, stderr); done {
		return code
	}
	if *recipeFile == "" || *out == "" {
		return failTo(stderr, 2, "bundle: --recipe and -o are required")
	}
	data, err := os.ReadFile(*recipeFile)
	if err != nil {
		return failTo(stderr, 2, "bundle: %v", err)
	}
	r, err := recipes.ReadRecipe(data)
	if err != nil {
		return failTo(stderr, 2, "bundle: %s: %v", *recipeFile, err)
	}
	files, err := recipes.Bundle(r, recipes.BundleOptions{
		Deployer: *deployer, Sets: sets, RepoURL: *repoURL, RepoPath: *repoPath,
	})
	if err != nil {
		return failTo(stderr, 2, "bundle: %v", err)
	}
	if err := recipes.WriteBundle(*out, files); err != nil {
		return failTo(stderr, 1, "bundle: %v", err)
	}
	fmt.Fprintf(stdout, "wrote %d files for %s (%s) to %s; check them with: (cd %s && sha256sum -c %s)\n",
		len(files), r.Name, *deployer, *out, *out, recipes.ChecksumsFile)
	return 0
}
