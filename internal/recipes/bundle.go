package recipes

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/nvbind/nvbind/deploy/helm"
	"github.com/nvbind/nvbind/internal/atomicfile"
)

// Deployers a bundle can be written for.
const (
	DeployerHelm   = "helm"
	DeployerArgoCD = "argocd"
)

// ChecksumsFile lists every other file of a bundle for `sha256sum -c`.
const ChecksumsFile = "checksums.txt"

// BundleOptions say how to write a bundle.
type BundleOptions struct {
	Deployer string
	// Sets are "component:path=value" overrides of component values.
	Sets []string
	// RepoURL and RepoPath locate the bundle in Git for ArgoCD's
	// app-of-apps.
	RepoURL  string
	RepoPath string
}

// File is one file of a bundle.
type File struct {
	Data []byte
	Mode fs.FileMode
}

// placeholderRepoURL stands in for the Git repository an ArgoCD bundle is
// pushed to, when none is given.
const placeholderRepoURL = "https://git.example.com/REPLACE-ME/cluster-bundles.git"

// Bundle renders the deployment files for a recipe, keyed by slash-separated
// path. The recipe is not modified; --set overrides apply to a copy.
func Bundle(r *Recipe, opts BundleOptions) (map[string]File, error) {
	switch opts.Deployer {
	case "":
		opts.Deployer = DeployerHelm
	case DeployerHelm, DeployerArgoCD:
	default:
		return nil, fmt.Errorf("unknown deployer %q (want helm or argocd)", opts.Deployer)
	}
	r, err := withSets(r, opts.Sets)
	if err != nil {
		return nil, err
	}
	files := map[string]File{}
	recipeYAML, err := Encode(r, FormatYAML)
	if err != nil {
		return nil, err
	}
	files["recipe.yaml"] = File{Data: recipeYAML, Mode: 0o644}
	for _, name := range r.DeploymentOrder {
		c := r.Components[name]
		if c.HasChart() {
			values, err := valuesYAML(c.Values)
			if err != nil {
				return nil, fmt.Errorf("component %s: %w", name, err)
			}
			files["components/"+name+"/values.yaml"] = File{Data: values, Mode: 0o644}
		}
		if len(c.Manifests) > 0 {
			m, err := manifestsYAML(c.Manifests)
			if err != nil {
				return nil, fmt.Errorf("component %s: %w", name, err)
			}
			files[manifestsPath(name)] = File{Data: m, Mode: 0o644}
		}
		files["components/"+name+"/README.md"] = File{Data: componentReadme(r, name), Mode: 0o644}
		if c.IsBundled() {
			if err := addBundledChart(files, name, c); err != nil {
				return nil, err
			}
		}
	}
	switch opts.Deployer {
	case DeployerHelm:
		files["deploy.sh"] = File{Data: deployScript(r), Mode: 0o755}
		files["undeploy.sh"] = File{Data: undeployScript(r), Mode: 0o755}
		files["README.md"] = File{Data: helmReadme(r, opts.Sets), Mode: 0o644}
	case DeployerArgoCD:
		if opts.RepoURL == "" {
			opts.RepoURL = placeholderRepoURL
		}
		waves := Waves(r)
		for _, name := range r.DeploymentOrder {
			app, err := yaml.Marshal(application(name, r.Components[name], waves[name], opts))
			if err != nil {
				return nil, fmt.Errorf("component %s: %w", name, err)
			}
			files["argocd/apps/"+name+".yaml"] = File{Data: app, Mode: 0o644}
		}
		root, err := yaml.Marshal(appOfApps(r, opts))
		if err != nil {
			return nil, err
		}
		files["argocd/app-of-apps.yaml"] = File{Data: root, Mode: 0o644}
		files["README.md"] = File{Data: argoReadme(r, opts, waves), Mode: 0o644}
	}
	files[ChecksumsFile] = File{Data: checksums(files), Mode: 0o644}
	return files, nil
}

// bundledChart is the chart nvbind carries (deploy/helm/nvbind); tests
// replace it.
var bundledChart = helm.Load

// addBundledChart writes the chart a component installs from the bundle
// under charts/<chart>/, refusing a recipe that pins another version than
// the one this nvbind carries.
func addBundledChart(files map[string]File, name string, c Component) error {
	chart, err := bundledChart()
	if err != nil {
		return fmt.Errorf("component %s: %w", name, err)
	}
	if chart.Name != c.Chart || chart.Version != c.Version {
		return fmt.Errorf("component %s: wants chart %s %s, this nvbind carries %s %s", name, c.Chart, c.Version, chart.Name, chart.Version)
	}
	for p, data := range chart.Files {
		files[bundledChartDir(c.Chart)+"/"+p] = File{Data: data, Mode: 0o644}
	}
	return nil
}

// withSets returns a copy of r with "component:path=value" overrides applied
// to component values. A value is read as YAML (true, 3, [a, b]); an empty
// one is the empty string.
func withSets(r *Recipe, sets []string) (*Recipe, error) {
	if len(sets) == 0 {
		return r, nil
	}
	cp := *r
	cp.Components = make(map[string]Component, len(r.Components))
	for name, c := range r.Components {
		c.Values, _ = deepCopy(c.Values).(map[string]any)
		cp.Components[name] = c
	}
	for _, s := range sets {
		comp, rest, ok := strings.Cut(s, ":")
		if !ok {
			return nil, fmt.Errorf("--set %q: want component:path=value", s)
		}
		p, raw, ok := strings.Cut(rest, "=")
		if !ok || p == "" {
			return nil, fmt.Errorf("--set %q: want component:path=value", s)
		}
		c, found := cp.Components[comp]
		if !found {
			return nil, fmt.Errorf("--set %q: recipe %s has no component %q", s, r.Name, comp)
		}
		var v any = ""
		if raw != "" {
			if err := decodeGeneric([]byte(raw), &v); err != nil {
				return nil, fmt.Errorf("--set %q: %w", s, err)
			}
		}
		if c.Values == nil {
			c.Values = map[string]any{}
		}
		if err := setPath(c.Values, strings.Split(p, "."), v); err != nil {
			return nil, fmt.Errorf("--set %q: %w", s, err)
		}
		cp.Components[comp] = c
	}
	return &cp, nil
}

func setPath(m map[string]any, path []string, v any) error {
	for i, k := range path {
		if k == "" {
			return fmt.Errorf("empty key in path")
		}
		if i == len(path)-1 {
			m[k] = v
			return nil
		}
		next, ok := m[k].(map[string]any)
		if !ok {
			if _, exists := m[k]; exists {
				return fmt.Errorf("%s is not a map", strings.Join(path[:i+1], "."))
			}
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	return nil
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = deepCopy(e)
		}
		return l
	}
	return v
}

func manifestsPath(name string) string { return "components/" + name + "/manifests.yaml" }

// manifestsYAML writes a component's objects as one multi-document file,
// in name order.
func manifestsYAML(m map[string]map[string]any) ([]byte, error) {
	var b bytes.Buffer
	for _, name := range slices.Sorted(maps.Keys(m)) {
		doc, err := yaml.Marshal(m[name])
		if err != nil {
			return nil, fmt.Errorf("manifest %s: %w", name, err)
		}
		fmt.Fprintf(&b, "---\n# %s\n", name)
		b.Write(doc)
	}
	return b.Bytes(), nil
}

func kubectlApply(name string, c Component) []string {
	return []string{"apply", "--server-side", "--namespace", c.Namespace, "--filename", manifestsPath(name)}
}

func kubectlDelete(name string, c Component) []string {
	return []string{"delete", "--ignore-not-found", "--namespace", c.Namespace, "--filename", manifestsPath(name)}
}

// installLines are the commands that install a component: its chart, then
// its manifests. prog names helm and kubectl ("helm"/"kubectl" in READMEs,
// the overridable variables in scripts).
func installLines(name string, c Component, helm, kubectl string) []string {
	var lines []string
	if c.HasChart() {
		lines = append(lines, commandLine(helm, helmInstall(name, c)))
	}
	if len(c.Manifests) > 0 {
		lines = append(lines, commandLine(kubectl, kubectlApply(name, c)))
	}
	return lines
}

// removeLines undo installLines, in reverse.
func removeLines(name string, c Component, helm, kubectl string) []string {
	var lines []string
	if len(c.Manifests) > 0 {
		lines = append(lines, commandLine(kubectl, kubectlDelete(name, c)))
	}
	if c.HasChart() {
		lines = append(lines, commandLine(helm, helmUninstall(name, c)))
	}
	return lines
}

func valuesYAML(values map[string]any) ([]byte, error) {
	if len(values) == 0 {
		return []byte("{}\n"), nil
	}
	return yaml.Marshal(values)
}

// shellWord quotes s for sh when it holds anything beyond a safe set.
func shellWord(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%+=:,./_-", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// helmInstall is the exact command that installs one component, run from
// the bundle's root.
func helmInstall(name string, c Component) []string {
	args := []string{"upgrade", "--install", name, c.ChartRef()}
	switch {
	case c.IsBundled(): // the chart directory is the version
	case c.IsOCI():
		args = append(args, "--version", c.Version)
	default:
		args = append(args, "--repo", c.Repository, "--version", c.Version)
	}
	return append(args,
		"--namespace", c.Namespace, "--create-namespace",
		"--values", "components/"+name+"/values.yaml",
		"--wait", "--timeout", "10m")
}

func helmUninstall(name string, c Component) []string {
	return []string{"uninstall", name, "--namespace", c.Namespace, "--wait", "--ignore-not-found"}
}

func commandLine(prog string, args []string) string {
	words := []string{prog}
	for _, a := range args {
		words = append(words, shellWord(a))
	}
	return strings.Join(words, " ")
}

const retryFunc = `# retry runs a command up to NVBIND_RETRIES times (default 3), doubling the
# pause between attempts from NVBIND_RETRY_DELAY seconds (default 10).
retry() {
  local attempt=1 max="${NVBIND_RETRIES:-3}" delay="${NVBIND_RETRY_DELAY:-10}"
  until "$@"; do
    if [ "$attempt" -ge "$max" ]; then
      echo "nvbind: giving up after $attempt attempts: $*" >&2
      return 1
    fi
    echo "nvbind: attempt $attempt failed, retrying in ${delay}s: $*" >&2
    sleep "$delay"
    attempt=$((attempt + 1))
    delay=$((delay * 2))
  done
}
`

func scriptHeader(r *Recipe, what string) *bytes.Buffer {
	var b bytes.Buffer
	fmt.Fprintf(&b, "#!/usr/bin/env bash\n# %s the components of recipe %s, generated by nvbind bundle.\n", what, r.Name)
	b.WriteString("# HELM and KUBECTL override the helm and kubectl binaries.\nset -euo pipefail\ncd \"$(dirname \"$0\")\"\nHELM=\"${HELM:-helm}\"\nKUBECTL=\"${KUBECTL:-kubectl}\"\n\n")
	b.WriteString(retryFunc)
	b.WriteByte('\n')
	return &b
}

func deployScript(r *Recipe) []byte {
	b := scriptHeader(r, "Installs, in dependency order,")
	n := len(r.DeploymentOrder)
	for i, name := range r.DeploymentOrder {
		c := r.Components[name]
		fmt.Fprintf(b, "echo \"nvbind: [%d/%d] %s %s\"\n", i+1, n, name, componentVersion(c))
		for _, l := range installLines(name, c, `"$HELM"`, `"$KUBECTL"`) {
			fmt.Fprintf(b, "retry %s\n", l)
		}
	}
	fmt.Fprintf(b, "echo \"nvbind: %s deployed\"\n", r.Name)
	return b.Bytes()
}

func undeployScript(r *Recipe) []byte {
	b := scriptHeader(r, "Removes, in reverse dependency order,")
	n := len(r.DeploymentOrder)
	for i := n - 1; i >= 0; i-- {
		name := r.DeploymentOrder[i]
		fmt.Fprintf(b, "echo \"nvbind: [%d/%d] removing %s\"\n", n-i, n, name)
		for _, l := range removeLines(name, r.Components[name], `"$HELM"`, `"$KUBECTL"`) {
			fmt.Fprintf(b, "retry %s\n", l)
		}
	}
	fmt.Fprintf(b, "echo \"nvbind: %s removed\"\n", r.Name)
	return b.Bytes()
}

func criteriaLine(r *Recipe) string {
	q := r.Criteria
	s := fmt.Sprintf("service %s, accelerator %s", q.Service, q.Accelerator)
	if q.OS != "" {
		s += ", os " + q.OS
	}
	s += ", intent " + q.Intent
	if q.Nodes > 0 {
		s += fmt.Sprintf(", %d nodes", q.Nodes)
	}
	return s
}

func writeComponentTable(b *bytes.Buffer, r *Recipe, waves map[string]int) {
	if waves != nil {
		b.WriteString("| # | Component | Chart | Version | Namespace | Depends on | Sync wave |\n|---|---|---|---|---|---|---|\n")
	} else {
		b.WriteString("| # | Component | Chart | Version | Namespace | Depends on |\n|---|---|---|---|---|---|\n")
	}
	for i, name := range r.DeploymentOrder {
		c := r.Components[name]
		deps := strings.Join(c.DependsOn, ", ")
		if deps == "" {
			deps = "-"
		}
		chart := "(manifests)"
		if c.HasChart() {
			chart = c.ChartRef()
		}
		fmt.Fprintf(b, "| %d | %s | %s | %s | %s | %s |", i+1, name, chart, componentVersion(c), c.Namespace, deps)
		if waves != nil {
			fmt.Fprintf(b, " %d |", waves[name])
		}
		b.WriteByte('\n')
	}
}

func writeConstraints(b *bytes.Buffer, r *Recipe) {
	if len(r.Constraints) == 0 {
		return
	}
	b.WriteString("\n## Node requirements\n\nChecked by `nvbind recipe validate --recipe recipe.yaml --snapshot SNAPSHOT`:\n\n")
	b.WriteString("| Measurement | Expected | Required | Set by |\n|---|---|---|---|\n")
	names := make([]string, 0, len(r.Constraints))
	for n := range r.Constraints {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := r.Constraints[n]
		req := "no"
		if c.Required {
			req = "yes"
		}
		expr := c.Value
		if e, err := ParseExpr(c.Value, c.Type); err == nil {
			expr = e.String()
		}
		fmt.Fprintf(b, "| `%s` | `%s` | %s | %s |\n", n, expr, req, c.Source)
	}
}

func readmeHead(r *Recipe, deployer string) *bytes.Buffer {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Cluster bundle %s\n\n", r.Name)
	fmt.Fprintf(&b, "Generated by `nvbind bundle --deployer %s` from recipe `%s` (%s).\n", deployer, r.Name, criteriaLine(r))
	fmt.Fprintf(&b, "Overlays applied, in order: %s.\n\n", strings.Join(r.Overlays, ", "))
	b.WriteString("Each component's Helm values are in `components/<name>/values.yaml`; `recipe.yaml` is the recipe\n")
	b.WriteString("this bundle was made from. Check the files with `sha256sum -c checksums.txt`.\n\n")
	b.WriteString("## Components, in deployment order\n\n")
	return &b
}

func helmReadme(r *Recipe, sets []string) []byte {
	b := readmeHead(r, DeployerHelm)
	writeComponentTable(b, r, nil)
	if len(sets) > 0 {
		b.WriteString("\nValues overridden when the bundle was made:\n\n")
		for _, s := range sets {
			fmt.Fprintf(b, "- `%s`\n", s)
		}
	}
	b.WriteString("\n## Deploy\n\n`./deploy.sh` runs these commands in this order, retrying each (NVBIND_RETRIES, default 3;\n")
	b.WriteString("NVBIND_RETRY_DELAY, default 10 s, doubling). Run from this directory:\n\n```sh\n")
	for _, name := range r.DeploymentOrder {
		for _, l := range installLines(name, r.Components[name], "helm", "kubectl") {
			b.WriteString(l + "\n")
		}
	}
	b.WriteString("```\n\n## Remove\n\n`./undeploy.sh` uninstalls in reverse order:\n\n```sh\n")
	for i := len(r.DeploymentOrder) - 1; i >= 0; i-- {
		name := r.DeploymentOrder[i]
		for _, l := range removeLines(name, r.Components[name], "helm", "kubectl") {
			b.WriteString(l + "\n")
		}
	}
	b.WriteString("```\n")
	writeConstraints(b, r)
	writeValidation(b, r)
	return b.Bytes()
}

// writeValidation lists the commands of the four validation phases.
func writeValidation(b *bytes.Buffer, r *Recipe) {
	b.WriteString("\n## Validate\n\n```sh\n")
	b.WriteString("nvbind snapshot job | kubectl apply -f -     # a GPU node's snapshot, into ConfigMap nvbind-system/nvbind-snapshot\n")
	b.WriteString("nvbind recipe validate --recipe recipe.yaml --snapshot cm://nvbind-system/nvbind-snapshot\n")
	b.WriteString("nvbind recipe validate --recipe recipe.yaml --phase deployment --kubeconfig ~/.kube/config\n")
	if r.Fabric != "" {
		b.WriteString("nvbind recipe fabric-job --recipe recipe.yaml > nccl-job.yaml   # then its launcher's log:\n")
		b.WriteString("nvbind recipe validate --recipe recipe.yaml --phase performance --nccl-log nccl.log\n")
	}
	b.WriteString("nvbind recipe validate --recipe recipe.yaml --phase conformance --evidence-dir evidence/\n```\n")
	if p := r.Performance; p != nil {
		fmt.Fprintf(b, "\nPerformance bar: NCCL all-reduce out-of-place bus bandwidth at %s >= %s GB/s less %s%% over %s, across %d+ nodes (%s)\n",
			p.MessageSize, fmtFloat(p.MinBusBandwidth), fmtFloat(p.TolerancePercent), r.Fabric, p.MinNodes, p.Basis)
	}
}

func componentReadme(r *Recipe, name string) []byte {
	c := r.Components[name]
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s\n\n", name)
	if c.Description != "" {
		fmt.Fprintf(&b, "%s\n\n", c.Description)
	}
	if c.HasChart() {
		fmt.Fprintf(&b, "- Chart: `%s` version `%s`", c.ChartRef(), c.Version)
		switch {
		case c.IsBundled():
			b.WriteString(", carried in this bundle (no chart registry needed)")
		case !c.IsOCI():
			fmt.Fprintf(&b, " from `%s`", c.Repository)
		}
		b.WriteByte('\n')
	}
	if len(c.Manifests) > 0 {
		fmt.Fprintf(&b, "- Manifests: `manifests.yaml` (%s)\n", strings.Join(slices.Sorted(maps.Keys(c.Manifests)), ", "))
	}
	fmt.Fprintf(&b, "- Namespace: `%s`\n", c.Namespace)
	if len(c.DependsOn) > 0 {
		fmt.Fprintf(&b, "- Install after: %s\n", strings.Join(c.DependsOn, ", "))
	}
	fmt.Fprintf(&b, "\nInstall or upgrade, from the bundle's root directory:\n\n```sh\n%s\n```\n", strings.Join(installLines(name, c, "helm", "kubectl"), "\n"))
	fmt.Fprintf(&b, "\nRemove:\n\n```sh\n%s\n```\n", strings.Join(removeLines(name, c, "helm", "kubectl"), "\n"))
	writeChecks(&b, c)
	return b.Bytes()
}

// componentVersion is the chart version, or "-" for manifests only.
func componentVersion(c Component) string {
	if c.HasChart() {
		return c.Version
	}
	return "-"
}

// writeChecks lists the deployment phase's checks of a component.
func writeChecks(b *bytes.Buffer, c Component) {
	if len(c.Checks) == 0 {
		return
	}
	b.WriteString("\nChecked by `nvbind recipe validate --phase deployment`:\n\n")
	for _, h := range c.Checks {
		ns := h.Namespace
		if ns == "" {
			ns = c.Namespace
		}
		switch h.Kind {
		case CheckCRD:
			fmt.Fprintf(b, "- CRD `%s` established\n", h.Name)
		case CheckResource:
			fmt.Fprintf(b, "- `%s` allocatable on the GPU nodes\n", h.Name)
		case CheckDaemonSet:
			fmt.Fprintf(b, "- DaemonSet `%s/%s` ready", ns, h.Name)
			if h.GPUNodes {
				b.WriteString(" on every GPU node")
			}
			b.WriteByte('\n')
		default:
			fmt.Fprintf(b, "- %s `%s/%s` available\n", h.Kind, ns, h.Name)
		}
	}
}

// application is the ArgoCD Application for one component: the chart from
// its repository with the values inline, and its manifests from the
// bundle's Git location, in its sync wave.
func application(name string, c Component, wave int, opts BundleOptions) map[string]any {
	repo := c.Repository
	if c.IsOCI() {
		repo = strings.TrimPrefix(repo, "oci://") // ArgoCD names OCI Helm repositories without a scheme
	}
	values := c.Values
	if values == nil {
		values = map[string]any{}
	}
	var sources []any
	if c.IsBundled() {
		sources = append(sources, map[string]any{
			"repoURL":        opts.RepoURL,
			"targetRevision": "HEAD",
			"path":           path.Join(strings.Trim(opts.RepoPath, "/"), bundledChartDir(c.Chart)),
			"helm":           map[string]any{"releaseName": name, "valuesObject": values},
		})
	} else if c.HasChart() {
		sources = append(sources, map[string]any{
			"repoURL":        repo,
			"chart":          c.Chart,
			"targetRevision": c.Version,
			"helm":           map[string]any{"releaseName": name, "valuesObject": values},
		})
	}
	if len(c.Manifests) > 0 {
		sources = append(sources, map[string]any{
			"repoURL":        opts.RepoURL,
			"targetRevision": "HEAD",
			"path":           path.Join(strings.Trim(opts.RepoPath, "/"), "components", name),
			"directory":      map[string]any{"include": "manifests.yaml"},
		})
	}
	spec := map[string]any{
		"project":     "default",
		"destination": map[string]any{"server": "https://kubernetes.default.svc", "namespace": c.Namespace},
		"syncPolicy":  syncPolicy(true),
	}
	if len(sources) == 1 {
		spec["source"] = sources[0]
	} else {
		spec["sources"] = sources
	}
	return map[string]any{
		"apiVersion": "argoproj.io/v1alpha1",
		"kind":       "Application",
		"metadata": map[string]any{
			"name":        name,
			"namespace":   "argocd",
			"annotations": map[string]any{"argocd.argoproj.io/sync-wave": strconv.Itoa(wave)},
			"finalizers":  []any{"resources-finalizer.argocd.argoproj.io"},
		},
		"spec": spec,
	}
}

func syncPolicy(createNamespace bool) map[string]any {
	p := map[string]any{
		"automated": map[string]any{"prune": true, "selfHeal": true},
		"retry": map[string]any{
			"limit":   5,
			"backoff": map[string]any{"duration": "10s", "factor": 2, "maxDuration": "3m"},
		},
	}
	if createNamespace {
		p["syncOptions"] = []any{"CreateNamespace=true", "ServerSideApply=true"}
	}
	return p
}

func appsPath(opts BundleOptions) string {
	return path.Join(strings.Trim(opts.RepoPath, "/"), "argocd/apps")
}

// appOfApps is the root Application that syncs every component's
// Application from the bundle's Git location.
func appOfApps(r *Recipe, opts BundleOptions) map[string]any {
	return map[string]any{
		"apiVersion": "argoproj.io/v1alpha1",
		"kind":       "Application",
		"metadata": map[string]any{
			"name":       "nvbind-" + r.Name,
			"namespace":  "argocd",
			"finalizers": []any{"resources-finalizer.argocd.argoproj.io"},
		},
		"spec": map[string]any{
			"project":     "default",
			"destination": map[string]any{"server": "https://kubernetes.default.svc", "namespace": "argocd"},
			"source": map[string]any{
				"repoURL":        opts.RepoURL,
				"targetRevision": "HEAD",
				"path":           appsPath(opts),
			},
			"syncPolicy": syncPolicy(false),
		},
	}
}

func argoReadme(r *Recipe, opts BundleOptions, waves map[string]int) []byte {
	b := readmeHead(r, DeployerArgoCD)
	writeComponentTable(b, r, waves)
	b.WriteString("\n## Deploy with Argo CD\n\n")
	fmt.Fprintf(b, "1. Push this directory to `%s` at `%s`", opts.RepoURL, strings.Trim(opts.RepoPath, "/"))
	if opts.RepoURL == placeholderRepoURL {
		b.WriteString(" (a placeholder: make the bundle again with `--repo-url`)")
	}
	b.WriteString(".\n")
	var oci []string
	for _, name := range r.DeploymentOrder {
		if c := r.Components[name]; c.IsOCI() {
			oci = append(oci, "`"+strings.TrimPrefix(c.Repository, "oci://")+"`")
		}
	}
	if len(oci) > 0 {
		fmt.Fprintf(b, "2. Register the OCI Helm repositories %s with Argo CD (`enableOCI: true`).\n", strings.Join(slices.Compact(slices.Sorted(slices.Values(oci))), ", "))
	} else {
		b.WriteString("2. No OCI Helm repositories to register.\n")
	}
	b.WriteString("3. `kubectl apply -n argocd -f argocd/app-of-apps.yaml`\n\n")
	fmt.Fprintf(b, "The app of apps syncs `%s/`: one `Application` per component, each with its chart, version\n", appsPath(opts))
	b.WriteString("and values inline. The `argocd.argoproj.io/sync-wave` annotation orders them: a component's wave is one\n")
	b.WriteString("more than its latest dependency's. Argo CD waits for a wave to be healthy before the next only when it\n")
	b.WriteString("assesses `Application` health (the `resource.customizations.health.argoproj.io_Application` setting).\n")
	writeConstraints(b, r)
	writeValidation(b, r)
	return b.Bytes()
}

// checksums lists "sha256  path" for every file, sorted by path, the format
// `sha256sum -c` reads.
func checksums(files map[string]File) []byte {
	paths := make([]string, 0, len(files))
	for p := range files {
		if p != ChecksumsFile {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	var b bytes.Buffer
	for _, p := range paths {
		fmt.Fprintf(&b, "%x  %s\n", sha256.Sum256(files[p].Data), p)
	}
	return b.Bytes()
}

// WriteBundle writes files under dir. dir must be missing, empty, or hold an
// earlier bundle (it has a checksums.txt); files of the earlier bundle that
// the new one lacks are removed. Unchanged files are not rewritten, and
// checksums.txt is written last.
func WriteBundle(dir string, files map[string]File) error {
	old, err := previousBundle(dir)
	if err != nil {
		return err
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		if p != ChecksumsFile {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	paths = append(paths, ChecksumsFile)
	for _, p := range paths {
		f := files[p]
		full := filepath.Join(dir, filepath.FromSlash(p))
		if _, err := atomicfile.WriteIfChanged(full, f.Data, f.Mode); err != nil {
			return fmt.Errorf("write bundle: %w", err)
		}
		if err := os.Chmod(full, f.Mode); err != nil {
			return fmt.Errorf("write bundle: %w", err)
		}
	}
	for _, p := range old {
		if _, keep := files[p]; keep {
			continue
		}
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.Remove(full); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove stale bundle file: %w", err)
		}
		// Drop directories the stale file leaves empty; Remove fails on
		// non-empty ones, which stops the walk.
		for d := filepath.Dir(full); d != filepath.Clean(dir); d = filepath.Dir(d) {
			if os.Remove(d) != nil {
				break
			}
		}
	}
	return nil
}

// previousBundle returns the files an earlier bundle in dir listed, or an
// error when dir holds anything else.
func previousBundle(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(entries) == 0) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("write bundle: %w", err)
	}
	data, err := os.ReadFile(filepath.Join(dir, ChecksumsFile))
	if err != nil {
		return nil, fmt.Errorf("write bundle: %s is not empty and holds no earlier bundle (no %s)", dir, ChecksumsFile)
	}
	var paths []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		_, p, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			continue
		}
		// Only plain relative paths inside dir: never remove outside it.
		if !filepath.IsLocal(filepath.FromSlash(p)) || p == ChecksumsFile {
			continue
		}
		paths = append(paths, p)
	}
	return paths, nil
}
