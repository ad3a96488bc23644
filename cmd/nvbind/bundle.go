package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/nvbind/nvbind/internal/recipes"
)

func init() { addCommand(newBundleCmd) }

// bundleCmd runs `nvbind bundle args...`.
func bundleCmd(args []string, stdout, stderr io.Writer) int {
	return execute(append([]string{"bundle"}, args...), stdout, stderr)
}

func newBundleCmd(stdout, stderr io.Writer) *cobra.Command {
	c := &cobra.Command{Use: "bundle --recipe R -o DIR", Short: "write a recipe's deployment bundle (Helm scripts or Argo CD apps)", Args: noArgs(stderr)}
	fs := c.Flags()
	recipeFile := fs.String("recipe", "", "rendered recipe file (nvbind recipe render -o)")
	out := fs.StringP("o", "o", "", "directory to write the bundle to (created; an earlier bundle there is replaced)")
	deployer := fs.String("deployer", recipes.DeployerHelm, "helm (deploy.sh/undeploy.sh) or argocd (Applications, app of apps)")
	repoURL := fs.String("repo-url", "", "argocd: Git repository the bundle is pushed to")
	repoPath := fs.String("repo-path", "", "argocd: directory of the bundle in that repository")
	var sets []string
	fs.StringArrayVar(&sets, "set", nil, "override a value: component:path=value (repeatable), e.g. gpu-operator:driver.version=580.95.05")
	run := func(pos []string) int {
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
	c.RunE = func(_ *cobra.Command, pos []string) error { return code(run(pos)) }
	return c
}
