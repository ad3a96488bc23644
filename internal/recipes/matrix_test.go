package recipes

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/nvbind/nvbind/deploy/helm"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// coverage is every supported combination (each with its default serving
// platform) plus the NIM serving layer on one of them.
func coverage(t testing.TB) []Query {
	c := mustLoad(t, "")
	var qs []Query
	for _, cb := range c.Support {
		qs = append(qs, c.Complete(Query{Service: cb.Service, Accelerator: cb.Accelerator, OS: cb.OS, Intent: cb.Intent}))
	}
	return append(qs, Query{Service: "eks", Accelerator: "h100", OS: "ubuntu", Intent: "inference", Platform: "nim"})
}

// nodeFacts describe a node as a snapshot would; written by hand from
// what such nodes run, independent of the recipe data.
type nodeFacts struct {
	k8s, provider, providerID, osID, osVersion, kernel string
	model, arch, driver, cuda                          string
	gpus                                               int
}

var serviceNodes = map[string]nodeFacts{
	"eks":          {k8s: "v1.33.5-eks-3025e55", provider: "eks", providerID: "aws:///us-east-1e/i-0861d1808b85e90ca"},
	"gke":          {k8s: "v1.33.5-gke.1080000", provider: "gke", providerID: "gce://proj/us-central1-a/gke-a3-mega-pool-1"},
	"aks":          {k8s: "v1.33.3", provider: "aks", providerID: "azure:///subscriptions/0/resourceGroups/mc/providers/Microsoft.Compute/virtualMachineScaleSets/aks-gpu/virtualMachines/0"},
	"oke":          {k8s: "v1.33.1", provider: "oke", providerID: "ocid1.instance.oc1.iad.anuwcljt"},
	"self-managed": {k8s: "v1.34.1"},
}

// osNodes are each OS's release and a kernel it boots, by service where
// the provider ships its own kernel build.
var osNodes = map[string]nodeFacts{
	"ubuntu":      {osID: "ubuntu", osVersion: "24.04", kernel: "6.8.0-85-generic"},
	"amazonlinux": {osID: "amzn", osVersion: "2023", kernel: "6.1.141-155.222.amzn2023.x86_64"},
	"rhel":        {osID: "rhel", osVersion: "9.4", kernel: "5.14.0-427.13.1.el9_4.x86_64"},
	"cos":         {osID: "cos", osVersion: "121", kernel: "6.6.93+"},
	"oraclelinux": {osID: "ol", osVersion: "8.10", kernel: "5.15.0-308.179.6.el8uek.x86_64"},
}

var ubuntuKernels = map[string]string{"eks": "6.8.0-1024-aws", "aks": "5.15.0-1092-azure", "oke": "6.8.0-1027-oracle"}

var acceleratorNodes = map[string]nodeFacts{
	"h100":  {model: "NVIDIA H100 80GB HBM3", arch: "Hopper", driver: "570.172.08", cuda: "12.8", gpus: 8},
	"h200":  {model: "NVIDIA H200", arch: "Hopper", driver: "570.172.08", cuda: "12.8", gpus: 8},
	"b200":  {model: "NVIDIA B200", arch: "Blackwell", driver: "580.82.07", cuda: "13.0", gpus: 8},
	"gb200": {model: "NVIDIA GB200", arch: "Blackwell", driver: "580.82.07", cuda: "13.0", gpus: 4},
	"a100":  {model: "NVIDIA A100-SXM4-80GB", arch: "Ampere", driver: "550.163.01", cuda: "12.4", gpus: 8},
	"l40s":  {model: "NVIDIA L40S", arch: "Ada Lovelace", driver: "570.172.08", cuda: "12.8", gpus: 4},
}

// applyFacts overwrites a snapshot's readings with the facts, keeping
// everything else it measured.
func applyFacts(s *Snapshot, f nodeFacts) *Snapshot {
	s.Set("K8s", "server", "version", f.k8s)
	if f.provider != "" {
		s.Set("K8s", "node", "provider", f.provider)
		s.Set("K8s", "node", "provider-id", f.providerID)
	} else {
		s.Set("K8s", "node", "provider", nil)
		s.Set("K8s", "node", "provider-id", nil)
	}
	s.Set("K8s", "node", "container-runtime-name", "containerd")
	s.Set("K8s", "node", "kernel-version", f.kernel)
	s.Set("OS", "release", "ID", f.osID)
	s.Set("OS", "release", "VERSION_ID", f.osVersion)
	s.Set("OS", "sysctl", "/proc/sys/kernel/osrelease", f.kernel)
	s.Set("OS", "kmod", "nvidia", true)
	s.Set("GPU", "smi", "gpu.model", f.model)
	s.Set("GPU", "smi", "gpu.product-architecture", f.arch)
	s.Set("GPU", "smi", "driver", f.driver)
	s.Set("GPU", "smi", "cuda-version", f.cuda)
	s.Set("GPU", "smi", "gpu-count", f.gpus)
	return s
}

func factsSnapshot(f nodeFacts) *Snapshot {
	s := &Snapshot{Kind: KindSnapshot, APIVersion: SnapshotAPIVersion, Metadata: map[string]any{"source": "test"}}
	return applyFacts(s, f)
}

func readSnapshotFile(t testing.TB, name string) *Snapshot {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "aicr", name))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ReadSnapshot(data)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// queryFacts is the node a query's recipe is for.
func queryFacts(q Query) nodeFacts {
	f := serviceNodes[q.Service]
	o := osNodes[q.OS]
	f.osID, f.osVersion, f.kernel = o.osID, o.osVersion, o.kernel
	if k, ok := ubuntuKernels[q.Service]; ok && q.OS == "ubuntu" {
		f.kernel = k
	}
	a := acceleratorNodes[q.Accelerator]
	f.model, f.arch, f.driver, f.cuda, f.gpus = a.model, a.arch, a.driver, a.cuda, a.gpus
	return f
}

// matchingSnapshot is a node the recipe is for: AICR's real EKS Ubuntu
// snapshots where there is one, else one derived from them (the GB200 one
// for GB200, the H100 one otherwise) with the facts of the node the recipe
// is for.
func matchingSnapshot(t testing.TB, q Query) *Snapshot {
	file := "h100.yaml"
	if q.Accelerator == "gb200" {
		file = "gb200.yaml"
	}
	s := readSnapshotFile(t, file)
	if q.Service == "eks" && q.OS == "ubuntu" && (q.Accelerator == "h100" || q.Accelerator == "gb200") {
		return s
	}
	return applyFacts(s, queryFacts(q))
}

// mismatchingSnapshot is the right cloud and OS with the wrong node: an
// old kernel, Kubernetes and driver and another GPU.
func mismatchingSnapshot(q Query) *Snapshot {
	f := queryFacts(q)
	f.k8s, f.kernel = "v1.29.15", "4.18.0-553.el8_10.x86_64"
	f.model, f.arch, f.driver, f.cuda, f.gpus = "NVIDIA L4", "Ada Lovelace", "470.256.02", "11.4", 1
	return factsSnapshot(f)
}

func TestCoverageMatrix(t *testing.T) {
	c := mustLoad(t, "")
	for _, q := range coverage(t) {
		t.Run(q.Name(), func(t *testing.T) {
			res, err := c.Resolve(q)
			if err != nil {
				t.Fatal(err)
			}
			r := res.Recipe
			checkStackInvariants(t, r)

			// A rendered recipe reads back as the same recipe.
			data, err := Encode(r, FormatYAML)
			if err != nil {
				t.Fatal(err)
			}
			back, err := ReadRecipe(data)
			if err != nil {
				t.Fatalf("rendered recipe does not read back: %v", err)
			}
			again, _ := Encode(back, FormatYAML)
			if !bytes.Equal(data, again) {
				t.Error("recipe changed on a read/write round trip")
			}

			good, err := Validate(r, matchingSnapshot(t, q))
			if err != nil {
				t.Fatal(err)
			}
			if !good.OK() || good.Passed == 0 {
				table, _ := good.Format(ReportTable)
				t.Errorf("matching snapshot does not pass:\n%s", table)
			}

			bad, err := Validate(r, mismatchingSnapshot(q))
			if err != nil {
				t.Fatal(err)
			}
			failed := map[string]bool{}
			for _, ch := range bad.Checks {
				if ch.Status == StatusFailed {
					failed[ch.Name] = true
				}
			}
			for _, want := range []string{"GPU.smi.gpu.model", "GPU.smi.driver", "K8s.server.version"} {
				if !failed[want] {
					table, _ := bad.Format(ReportTable)
					t.Errorf("mismatching snapshot: %s did not fail:\n%s", want, table)
				}
			}

			bundles := map[string]map[string]File{}
			for _, deployer := range []string{DeployerHelm, DeployerArgoCD} {
				files, err := Bundle(r, BundleOptions{Deployer: deployer, RepoURL: "https://git.example.com/gpu/clusters.git", RepoPath: "clusters/" + r.Name})
				if err != nil {
					t.Fatalf("%s bundle: %v", deployer, err)
				}
				checkBundleShape(t, r, deployer, files)
				bundles[deployer] = files
			}
			// The golden Helm bundle holds every file; the Argo CD one only
			// what differs, the rest must equal the Helm bundle's.
			golden(t, filepath.Join("testdata", "golden", r.Name+".helm.txt"), archive(bundles[DeployerHelm]))
			argoOnly := map[string]File{}
			for p, f := range bundles[DeployerArgoCD] {
				if p == "README.md" || strings.HasPrefix(p, "argocd/") {
					argoOnly[p] = f
				} else if h, ok := bundles[DeployerHelm][p]; ok && p != ChecksumsFile && !bytes.Equal(h.Data, f.Data) {
					t.Errorf("argocd bundle's %s differs from the helm bundle's", p)
				}
			}
			golden(t, filepath.Join("testdata", "golden", r.Name+".argocd.txt"), archive(argoOnly))
		})
	}
}

// checkBundleShape: every component has its values and README, the
// deployer's own files are there, and checksums list every other file.
func checkBundleShape(t *testing.T, r *Recipe, deployer string, files map[string]File) {
	t.Helper()
	want := []string{"README.md", "recipe.yaml", ChecksumsFile}
	for _, name := range r.DeploymentOrder {
		want = append(want, "components/"+name+"/README.md")
		if c := r.Components[name]; c.HasChart() {
			want = append(want, "components/"+name+"/values.yaml")
		}
		if len(r.Components[name].Manifests) > 0 {
			want = append(want, "components/"+name+"/manifests.yaml")
		}
		if c := r.Components[name]; c.IsBundled() {
			// nvbind's own chart, carried byte for byte.
			chart, err := helm.Load()
			if err != nil {
				t.Fatal(err)
			}
			for p, data := range chart.Files {
				want = append(want, "charts/"+c.Chart+"/"+p)
				if got := files["charts/"+c.Chart+"/"+p]; !bytes.Equal(got.Data, data) {
					t.Errorf("%s bundle: charts/%s/%s is not the chart's file", deployer, c.Chart, p)
				}
			}
		}
		if deployer == DeployerArgoCD {
			want = append(want, "argocd/apps/"+name+".yaml")
		}
	}
	if deployer == DeployerHelm {
		want = append(want, "deploy.sh", "undeploy.sh")
	} else {
		want = append(want, "argocd/app-of-apps.yaml")
	}
	var got []string
	for p := range files {
		got = append(got, p)
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s bundle files:\n%s\nwant:\n%s", deployer, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	lines := strings.Count(string(files[ChecksumsFile].Data), "\n")
	if lines != len(files)-1 {
		t.Errorf("checksums.txt lists %d files, want %d", lines, len(files)-1)
	}
}

// archive puts a bundle in one reviewable text: each file as a header line
// with its mode, then its content.
func archive(files map[string]File) []byte {
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var b bytes.Buffer
	for _, p := range paths {
		if strings.HasPrefix(p, "charts/") {
			// nvbind's own chart, tested where it lives (deploy/helm): here
			// only that it is carried, by content hash.
			fmt.Fprintf(&b, "=== %s (%04o) sha256 %x\n", p, files[p].Mode, sha256.Sum256(files[p].Data))
			continue
		}
		fmt.Fprintf(&b, "=== %s (%04o)\n", p, files[p].Mode)
		b.Write(files[p].Data)
	}
	return b.Bytes()
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output (run go test ./internal/recipes -update after checking the change):\n%s", path, firstDiff(want, got))
	}
}

func firstDiff(want, got []byte) string {
	wl, gl := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("line %d:\n  golden: %q\n  output: %q", i+1, w, g)
		}
	}
	return "(same lines, different bytes)"
}

// BenchmarkMatrix renders and validates the whole coverage matrix, each
// against its matching snapshot (parsed once, as a CI job would hold them).
func BenchmarkMatrix(b *testing.B) {
	c := mustLoad(b, "")
	qs := coverage(b)
	snaps := make([]*Snapshot, len(qs))
	for i, q := range qs {
		snaps[i] = matchingSnapshot(b, q)
	}
	b.ResetTimer()
	for b.Loop() {
		for i, q := range qs {
			res, err := c.Resolve(q)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := Validate(res.Recipe, snaps[i]); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkValidate is one validate of a rendered recipe against a parsed
// real snapshot.
func BenchmarkValidate(b *testing.B) {
	c := mustLoad(b, "")
	res, err := c.Resolve(Query{Service: "eks", Accelerator: "h100", Intent: "training"})
	if err != nil {
		b.Fatal(err)
	}
	snap := readSnapshotFile(b, "h100.yaml")
	b.ResetTimer()
	for b.Loop() {
		rep, err := Validate(res.Recipe, snap)
		if err != nil || !rep.OK() {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateFiles is what `nvbind recipe validate` does per run:
// parse the recipe and AICR's 80 KB snapshot, then validate.
func BenchmarkValidateFiles(b *testing.B) {
	c := mustLoad(b, "")
	res, err := c.Resolve(Query{Service: "eks", Accelerator: "h100", Intent: "training"})
	if err != nil {
		b.Fatal(err)
	}
	recipeData, err := Encode(res.Recipe, FormatYAML)
	if err != nil {
		b.Fatal(err)
	}
	snapData, err := os.ReadFile(filepath.Join("testdata", "aicr", "h100.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		r, err := ReadRecipe(recipeData)
		if err != nil {
			b.Fatal(err)
		}
		s, err := ReadSnapshot(snapData)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Validate(r, s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoad parses every embedded overlay and checks the catalog (done
// once per process).
func BenchmarkLoad(b *testing.B) {
	for b.Loop() {
		if _, err := load(""); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMatrixAllPhases is the whole matrix from cold: load the overlay
// data, render every supported recipe and run all four validation phases
// on it (readiness on its snapshot, deployment on a recorded cluster dump,
// performance on a recorded all_reduce_perf log, conformance on an
// evidence directory). The goal is under 1 s per op.
func BenchmarkMatrixAllPhases(b *testing.B) {
	qs := coverage(b)
	snaps := make([]*Snapshot, len(qs))
	for i, q := range qs {
		snaps[i] = matchingSnapshot(b, q)
	}
	dump, err := os.ReadFile(filepath.Join("testdata", "cluster", "eks-h100-healthy.json"))
	if err != nil {
		b.Fatal(err)
	}
	log, err := os.ReadFile(filepath.Join("testdata", "nccl", "eks-h100-pass.log"))
	if err != nil {
		b.Fatal(err)
	}
	ev := b.TempDir()
	os.WriteFile(filepath.Join(ev, "gang_scheduling.txt"), []byte("ok\n"), 0o644)
	b.ResetTimer()
	for b.Loop() {
		c, err := load("")
		if err != nil {
			b.Fatal(err)
		}
		conf, err := LoadConformance()
		if err != nil {
			b.Fatal(err)
		}
		cl, err := ReadClusterDump(dump, "dump")
		if err != nil {
			b.Fatal(err)
		}
		nccl, err := ParseNCCL(log)
		if err != nil {
			b.Fatal(err)
		}
		for i, q := range qs {
			res, err := c.Resolve(q)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := Validate(res.Recipe, snaps[i]); err != nil {
				b.Fatal(err)
			}
			ValidateDeployment(res.Recipe, cl)
			ValidatePerformance(res.Recipe, nccl, "log")
			if _, err := ValidateConformance(res.Recipe, conf, ev); err != nil {
				b.Fatal(err)
			}
		}
	}
}
