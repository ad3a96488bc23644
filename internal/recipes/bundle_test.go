package recipes

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

func resolveRecipe(t testing.TB, q Query) *Recipe {
	t.Helper()
	res, err := mustLoad(t, "").Resolve(q)
	if err != nil {
		t.Fatal(err)
	}
	return res.Recipe
}

func writeBundle(t *testing.T, dir string, r *Recipe, opts BundleOptions) map[string]File {
	t.Helper()
	files, err := Bundle(r, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteBundle(dir, files); err != nil {
		t.Fatal(err)
	}
	return files
}

// listDir returns every regular file under dir, slash-separated.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func sha256sumCheck(t *testing.T, dir string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("sha256sum")
	if err != nil {
		t.Fatalf("sha256sum (coreutils) is needed: %v", err)
	}
	cmd := exec.Command(bin, "-c", ChecksumsFile)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestBundleChecksumsWithSha256sum(t *testing.T) {
	for _, deployer := range []string{DeployerHelm, DeployerArgoCD} {
		t.Run(deployer, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "bundle")
			files := writeBundle(t, dir, resolveRecipe(t, Query{Service: "oke", Accelerator: "gb200", Intent: "training"}), BundleOptions{Deployer: deployer})
			out, err := sha256sumCheck(t, dir)
			if err != nil {
				t.Fatalf("sha256sum -c: %v\n%s", err, out)
			}
			if n := strings.Count(out, ": OK\n"); n != len(files)-1 {
				t.Errorf("sha256sum checked %d files, want %d:\n%s", n, len(files)-1, out)
			}
			if got := listDir(t, dir); len(got) != len(files) {
				t.Errorf("directory holds %v, want the %d bundle files", got, len(files))
			}
			// A changed file is caught.
			if err := os.WriteFile(filepath.Join(dir, "components/gpu-operator/values.yaml"), []byte("driver: {enabled: true}\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := sha256sumCheck(t, dir); err == nil || !strings.Contains(out, "components/gpu-operator/values.yaml: FAILED") {
				t.Errorf("sha256sum -c accepted a changed file: %v\n%s", err, out)
			}
		})
	}
}

// fakeHelm is a helm that logs its arguments and fails as told: a file
// fail-<release> holding N makes that release fail N more times.
const fakeHelm = `#!/bin/sh
echo "$*" >> "$FAKE_HELM_DIR/log"
release=$3
[ "$1" = uninstall ] && release=$2
f="$FAKE_HELM_DIR/fail-$release"
if [ -f "$f" ]; then
  n=$(cat "$f")
  if [ "$n" -gt 0 ]; then
    echo $((n - 1)) > "$f"
    echo "fake helm: $release failed" >&2
    exit 1
  fi
fi
exit 0
`

func runScript(t *testing.T, dir, script, helmDir string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", filepath.Join(dir, script))
	cmd.Env = append(os.Environ(), "HELM="+filepath.Join(helmDir, "helm"), "KUBECTL="+filepath.Join(helmDir, "kubectl"),
		"FAKE_HELM_DIR="+helmDir, "NVBIND_RETRY_DELAY=0", "NVBIND_RETRIES=3")
	cmd.Dir = t.TempDir() // the script must not depend on the caller's directory
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func helmLog(t *testing.T, helmDir string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(helmDir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

func TestDeployScripts(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatalf("bash is needed: %v", err)
	}
	r := resolveRecipe(t, Query{Service: "aks", Accelerator: "h100", Intent: "training"})
	dir := filepath.Join(t.TempDir(), "bundle")
	writeBundle(t, dir, r, BundleOptions{})
	helmDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(helmDir, "helm"), []byte(fakeHelm), 0o755); err != nil {
		t.Fatal(err)
	}
	// kubectl logs to its own file: manifests apply after their chart.
	if err := os.WriteFile(filepath.Join(helmDir, "kubectl"), []byte("#!/bin/sh\necho \"$*\" >> \"$FAKE_HELM_DIR/kubectl-log\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var charts, manifests []string
	for _, name := range r.DeploymentOrder {
		if r.Components[name].HasChart() {
			charts = append(charts, name)
		}
		if len(r.Components[name].Manifests) > 0 {
			manifests = append(manifests, name)
		}
	}
	if len(manifests) == 0 {
		t.Fatal("the test recipe has no component with manifests")
	}
	kubectlLog := func() string {
		data, _ := os.ReadFile(filepath.Join(helmDir, "kubectl-log"))
		os.Remove(filepath.Join(helmDir, "kubectl-log"))
		return string(data)
	}

	t.Run("deploy in order, retrying a failure", func(t *testing.T) {
		os.Remove(filepath.Join(helmDir, "log"))
		if err := os.WriteFile(filepath.Join(helmDir, "fail-gpu-operator"), []byte("2"), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := runScript(t, dir, "deploy.sh", helmDir)
		if err != nil {
			t.Fatalf("deploy.sh: %v\n%s", err, out)
		}
		var releases []string
		for _, line := range helmLog(t, helmDir) {
			f := strings.Fields(line)
			releases = append(releases, f[2])
		}
		var want []string
		for _, name := range charts {
			want = append(want, name)
			if name == "gpu-operator" {
				want = append(want, name, name) // two failures, then success
			}
		}
		if !slices.Equal(releases, want) {
			t.Errorf("helm releases in order %v, want %v", releases, want)
		}
		if !strings.Contains(out, "attempt 2 failed, retrying") {
			t.Errorf("deploy.sh output does not show the retries:\n%s", out)
		}
		var applied string
		for _, name := range manifests {
			applied += "apply --server-side --namespace " + r.Components[name].Namespace + " --filename components/" + name + "/manifests.yaml\n"
		}
		if got := kubectlLog(); got != applied {
			t.Errorf("kubectl calls:\n%s\nwant\n%s", got, applied)
		}
		first := helmLog(t, helmDir)[0]
		wantFirst := "upgrade --install cert-manager cert-manager --repo https://charts.jetstack.io --version v1.17.2 --namespace cert-manager --create-namespace --values components/cert-manager/values.yaml --wait --timeout 10m"
		if first != wantFirst {
			t.Errorf("first helm call:\n%s\nwant\n%s", first, wantFirst)
		}
	})

	t.Run("deploy stops after the last retry", func(t *testing.T) {
		os.Remove(filepath.Join(helmDir, "log"))
		if err := os.WriteFile(filepath.Join(helmDir, "fail-nvbind"), []byte("5"), 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(filepath.Join(helmDir, "fail-nvbind"))
		out, err := runScript(t, dir, "deploy.sh", helmDir)
		if err == nil {
			t.Fatalf("deploy.sh succeeded with a release that always fails:\n%s", out)
		}
		log := strings.Join(helmLog(t, helmDir), "\n")
		if strings.Count(log, "--install nvbind ") != 3 || strings.Contains(log, "--install gpu-operator ") {
			t.Errorf("want 3 attempts at nvbind and nothing after it, got:\n%s", log)
		}
	})

	t.Run("undeploy in reverse order", func(t *testing.T) {
		os.Remove(filepath.Join(helmDir, "log"))
		out, err := runScript(t, dir, "undeploy.sh", helmDir)
		if err != nil {
			t.Fatalf("undeploy.sh: %v\n%s", err, out)
		}
		var releases []string
		for _, line := range helmLog(t, helmDir) {
			f := strings.Fields(line)
			if f[0] != "uninstall" || !slices.Contains(f, "--ignore-not-found") {
				t.Errorf("unexpected call %q", line)
			}
			releases = append(releases, f[1])
		}
		want := slices.Clone(charts)
		slices.Reverse(want)
		if !slices.Equal(releases, want) {
			t.Errorf("uninstalled %v, want %v", releases, want)
		}
		if got := kubectlLog(); !strings.HasPrefix(got, "delete --ignore-not-found --namespace ") || strings.Count(got, "\n") != len(manifests) {
			t.Errorf("kubectl calls on undeploy:\n%s", got)
		}
	})
}

func TestBundleSet(t *testing.T) {
	r := resolveRecipe(t, Query{Service: "eks", Accelerator: "h100", Intent: "inference"})
	before, _ := Encode(r, FormatYAML)
	files, err := Bundle(r, BundleOptions{Sets: []string{
		"gpu-operator:driver.version=570.172.08",
		"gpu-operator:driver.enabled=false",
		"kai-scheduler:scheduler.replicas=2",
		"nvbind:extra.labels=[a, b]",
		"nvbind:note=",
	}})
	if err != nil {
		t.Fatal(err)
	}
	var gpuValues, kaiValues, nvValues map[string]any
	for p, v := range map[string]*map[string]any{
		"components/gpu-operator/values.yaml":  &gpuValues,
		"components/kai-scheduler/values.yaml": &kaiValues,
		"components/nvbind/values.yaml":        &nvValues,
	} {
		if err := yaml.Unmarshal(files[p].Data, v); err != nil {
			t.Fatal(err)
		}
	}
	if valueAt(gpuValues, "driver.version") != "570.172.08" || valueAt(gpuValues, "driver.enabled") != false {
		t.Errorf("gpu-operator driver = %v", gpuValues["driver"])
	}
	if valueAt(kaiValues, "scheduler.replicas") != float64(2) {
		t.Errorf("kai scheduler.replicas = %#v, want 2", valueAt(kaiValues, "scheduler.replicas"))
	}
	if l, ok := valueAt(nvValues, "extra.labels").([]any); !ok || len(l) != 2 || valueAt(nvValues, "note") != "" {
		t.Errorf("nvbind values = %v", nvValues)
	}
	if !strings.Contains(string(files["README.md"].Data), "`gpu-operator:driver.version=570.172.08`") {
		t.Error("README does not list the overrides")
	}
	after, _ := Encode(r, FormatYAML)
	if string(before) != string(after) {
		t.Error("Bundle changed the recipe it was given")
	}
	again := resolveRecipe(t, Query{Service: "eks", Accelerator: "h100", Intent: "inference"})
	if valueAt(again.Components["gpu-operator"].Values, "driver.version") == "570.172.08" {
		t.Error("--set leaked into the embedded catalog")
	}

	for _, tt := range []struct{ set, want string }{
		{"gpu-operator", "want component:path=value"},
		{"gpu-operator:driver.version", "want component:path=value"},
		{"nope:a=1", `has no component "nope"`},
		{"gpu-operator:driver.version.major=1", "driver.version is not a map"},
		{"gpu-operator:driver..x=1", "empty key"},
		{"gpu-operator:a=[1", "--set"},
	} {
		if _, err := Bundle(r, BundleOptions{Sets: []string{tt.set}}); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("--set %s: error = %v, want %q", tt.set, err, tt.want)
		}
	}
	if _, err := Bundle(r, BundleOptions{Deployer: "flux"}); err == nil || !strings.Contains(err.Error(), `unknown deployer "flux"`) {
		t.Errorf("deployer flux: error = %v", err)
	}
}

func TestWriteBundleReplacesEarlierBundle(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bundle")
	training := resolveRecipe(t, Query{Service: "aks", Accelerator: "h100", Intent: "training"})
	inference := resolveRecipe(t, Query{Service: "aks", Accelerator: "h100", Intent: "inference"})
	writeBundle(t, dir, training, BundleOptions{})
	if _, err := os.Stat(filepath.Join(dir, "components/network-operator/values.yaml")); err != nil {
		t.Fatal(err)
	}

	// The same bundle again rewrites nothing.
	stamp := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	values := filepath.Join(dir, "components/gpu-operator/values.yaml")
	if err := os.Chtimes(values, stamp, stamp); err != nil {
		t.Fatal(err)
	}
	writeBundle(t, dir, training, BundleOptions{})
	if fi, err := os.Stat(values); err != nil || !fi.ModTime().Equal(stamp) {
		t.Errorf("unchanged file was rewritten (%v)", err)
	}

	files := writeBundle(t, dir, inference, BundleOptions{})
	var want []string
	for p := range files {
		want = append(want, p)
	}
	sort.Strings(want)
	if got := listDir(t, dir); !slices.Equal(got, want) {
		t.Errorf("after replacing the bundle the directory holds\n%v\nwant\n%v", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "components/network-operator")); !os.IsNotExist(err) {
		t.Errorf("stale component directory left behind (%v)", err)
	}
	if out, err := sha256sumCheck(t, dir); err != nil {
		t.Errorf("sha256sum -c: %v\n%s", err, out)
	}
	if fi, err := os.Stat(filepath.Join(dir, "deploy.sh")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("deploy.sh mode = %v (%v), want 0755", fi.Mode(), err)
	}
}

func TestWriteBundleRefusesForeignDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := Bundle(resolveRecipe(t, Query{Service: "eks", Accelerator: "h100", Intent: "training"}), BundleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteBundle(dir, files); err == nil || !strings.Contains(err.Error(), "holds no earlier bundle") {
		t.Fatalf("WriteBundle into a foreign directory: %v", err)
	}
	if got := listDir(t, dir); !slices.Equal(got, []string{"notes.txt"}) {
		t.Errorf("directory now holds %v", got)
	}
	// An earlier bundle's checksums cannot make it remove files outside.
	outside := filepath.Join(t.TempDir(), "keep")
	if err := os.WriteFile(outside, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	bundleDir := filepath.Join(t.TempDir(), "b")
	if err := os.MkdirAll(bundleDir, 0o755); err != nil {
		t.Fatal(err)
	}
	evil := "0000  ../" + filepath.Base(filepath.Dir(outside)) + "/keep\n0000  " + outside + "\n"
	if err := os.WriteFile(filepath.Join(bundleDir, ChecksumsFile), []byte(evil), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteBundle(bundleDir, files); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(outside); err != nil {
		t.Errorf("a file outside the bundle was removed: %v", err)
	}
}

func TestArgoCDWaves(t *testing.T) {
	r := resolveRecipe(t, Query{Service: "oke", Accelerator: "gb200", Intent: "training"})
	files, err := Bundle(r, BundleOptions{Deployer: DeployerArgoCD})
	if err != nil {
		t.Fatal(err)
	}
	waves := map[string]int{}
	for _, name := range r.DeploymentOrder {
		var app struct {
			Metadata struct {
				Annotations map[string]string `json:"annotations"`
			} `json:"metadata"`
			Spec struct {
				Source struct {
					RepoURL, Chart, TargetRevision, Path string
				} `json:"source"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(files["argocd/apps/"+name+".yaml"].Data, &app); err != nil {
			t.Fatal(err)
		}
		w, err := strconv.Atoi(app.Metadata.Annotations["argocd.argoproj.io/sync-wave"])
		if err != nil {
			t.Fatalf("%s: sync wave: %v", name, err)
		}
		waves[name] = w
		c := r.Components[name]
		switch src := app.Spec.Source; {
		case c.IsBundled():
			// nvbind's chart, from the bundle's own Git location.
			if src.RepoURL != placeholderRepoURL || src.Path != "charts/"+c.Chart || src.TargetRevision != "HEAD" {
				t.Errorf("%s: bundled chart source %+v", name, src)
			}
		case strings.Contains(src.RepoURL, "://") && c.IsOCI() || src.TargetRevision != c.Version || src.Chart != c.Chart:
			t.Errorf("%s: source %+v", name, src)
		}
	}
	for name, c := range r.Components {
		for _, d := range c.DependsOn {
			if waves[d] >= waves[name] {
				t.Errorf("%s (wave %d) does not come after its dependency %s (wave %d)", name, waves[name], d, waves[d])
			}
		}
	}
	if waves["cert-manager"] != 0 || waves["gpu-operator"] != 2 {
		t.Errorf("waves = %v", waves)
	}
	readme := string(files["README.md"].Data)
	if !strings.Contains(readme, placeholderRepoURL) || !strings.Contains(readme, "--repo-url") {
		t.Error("README does not say the repository URL is a placeholder")
	}
}

// TestArgoCDManifests: a component of manifests only is an Application over
// the bundle's Git location, taking manifests.yaml and nothing else.
func TestArgoCDManifests(t *testing.T) {
	r := resolveRecipe(t, Query{Service: "gke", Accelerator: "h100", Intent: "training"})
	files, err := Bundle(r, BundleOptions{Deployer: DeployerArgoCD, RepoURL: "https://git.example.com/c.git", RepoPath: "/clusters/a3/"})
	if err != nil {
		t.Fatal(err)
	}
	var app struct {
		Spec struct {
			Source struct {
				RepoURL, Path, TargetRevision string
				Directory                     struct{ Include string }
				Chart                         string
			}
			Destination struct{ Namespace string }
		}
	}
	if err := yaml.Unmarshal(files["argocd/apps/gke-nccl-tcpxo.yaml"].Data, &app); err != nil {
		t.Fatal(err)
	}
	s := app.Spec.Source
	if s.RepoURL != "https://git.example.com/c.git" || s.Path != "clusters/a3/components/gke-nccl-tcpxo" || s.Directory.Include != "manifests.yaml" || s.Chart != "" || app.Spec.Destination.Namespace != "kube-system" {
		t.Errorf("application = %+v", app.Spec)
	}
	var docs int
	for _, d := range strings.Split(string(files["components/gke-nccl-tcpxo/manifests.yaml"].Data), "---\n") {
		var o map[string]any
		if strings.TrimSpace(d) == "" {
			continue
		}
		if err := yaml.Unmarshal([]byte(d), &o); err != nil || o["kind"] != "DaemonSet" {
			t.Errorf("manifest %q: %v", d[:min(len(d), 60)], err)
		}
		docs++
	}
	if docs != 2 {
		t.Errorf("%d manifests, want the installer and the device injector", docs)
	}
	if _, ok := files["components/gke-nccl-tcpxo/values.yaml"]; ok {
		t.Error("a component without a chart has a values.yaml")
	}
}
