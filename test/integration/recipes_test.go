package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRecipeWorkflow drives the built nvbind through the offline cluster
// recipe workflow: render, validate against AICR's real snapshots and this
// host's own snapshot, diff, and bundle for both deployers.
func TestRecipeWorkflow(t *testing.T) {
	sha := requireTool(t, "sha256sum")
	bash := requireTool(t, "bash")
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	aicr := filepath.Join(root, "internal/recipes/testdata/aicr")
	dir := t.TempDir()
	env := []string{"NVBIND_CONFIG=" + filepath.Join(dir, "none.toml")}
	nvbind := func(args ...string) Result { t.Helper(); return runCmd(t, env, bins.CLI, args...) }

	rec := filepath.Join(dir, "eks-h100-training.yaml")
	if r := nvbind("recipe", "render", "--service", "eks", "--accelerator", "h100", "--intent", "training", "-o", rec); r.Code != 0 {
		t.Fatalf("render: %s", r)
	}
	if r := nvbind("recipe", "validate", "--recipe", rec, "--snapshot", filepath.Join(aicr, "h100.yaml")); r.Code != 0 || !strings.Contains(r.Stdout, "0 failed") {
		t.Errorf("validate against the matching AICR snapshot: %s", r)
	}
	if r := nvbind("recipe", "validate", "--recipe", rec, "--snapshot", filepath.Join(aicr, "gb200.yaml"), "--format", "junit"); r.Code != 1 || !strings.Contains(r.Stdout, "<failure") {
		t.Errorf("validate against a GB200 node: %s", r)
	}
	if r := nvbind("recipe", "validate", "--recipe", rec, "--snapshot", rec); r.Code != 2 {
		t.Errorf("validate with a recipe as snapshot: %s", r)
	}

	// The phases past readiness, and a recipe from a snapshot.
	td := filepath.Join(root, "internal/recipes/testdata")
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"recipe", "validate", "--recipe", rec, "--phase", "deployment", "--cluster-dump", filepath.Join(td, "cluster/eks-h100-healthy.json")}, 0, "0 failed"},
		{[]string{"recipe", "validate", "--recipe", rec, "--phase", "deployment", "--cluster-dump", filepath.Join(td, "cluster/eks-h100-broken.json"), "--format", "ctrf"}, 1, `"remediation"`},
		{[]string{"recipe", "validate", "--recipe", rec, "--phase", "performance", "--nccl-log", filepath.Join(td, "nccl/eks-h100-pass.log")}, 0, "338.6 GB/s"},
		{[]string{"recipe", "validate", "--recipe", rec, "--phase", "performance", "--nccl-log", filepath.Join(td, "nccl/eks-h100-fail.log")}, 1, "  fix: "},
		{[]string{"recipe", "validate", "--recipe", rec, "--phase", "conformance", "--evidence-dir", dir}, 1, "secure_accelerator_access"},
		{[]string{"recipe", "fabric-job", "--recipe", rec}, 0, "kind: MPIJob"},
		{[]string{"recipe", "render", "--snapshot", filepath.Join(aicr, "gb200.yaml"), "--intent", "training"}, 0, "name: eks-gb200-ubuntu-training"},
		{[]string{"recipe", "render", "--service", "gke", "--accelerator", "h100", "--os", "rhel", "--intent", "training"}, 2, ""},
	} {
		r := nvbind(tt.args...)
		if r.Code != tt.code || !strings.Contains(r.Stdout, tt.want) {
			t.Errorf("%v: want exit %d and %q: %s", tt.args[1:], tt.code, tt.want, r)
		}
	}

	// This host, measured with no driver: a partial snapshot that still
	// validates, with the GPU constraints failing or skipped.
	snap := filepath.Join(dir, "host.yaml")
	if r := nvbind("snapshot", "--driver-root", filepath.Join(dir, "no-driver"), "-o", snap); r.Code != 0 || !strings.Contains(r.Stderr, "partial") {
		t.Fatalf("snapshot: %s", r)
	}
	if r := nvbind("recipe", "validate", "--recipe", rec, "--snapshot", snap); r.Code != 1 || !strings.Contains(r.Stdout, "could not be read") {
		t.Errorf("validate of the host snapshot: %s", r)
	}
	if r := nvbind("recipe", "diff", snap, snap); r.Code != 0 {
		t.Errorf("diff of a snapshot with itself: %s", r)
	}
	if r := nvbind("recipe", "diff", filepath.Join(aicr, "h100.yaml"), filepath.Join(aicr, "gb200.yaml"), "--format", "json-patch"); r.Code != 1 || !strings.HasPrefix(r.Stdout, "[") {
		t.Errorf("diff h100 gb200: exit %d", r.Code)
	}

	for _, deployer := range []string{"helm", "argocd"} {
		out := filepath.Join(dir, "bundle-"+deployer)
		if r := nvbind("bundle", "--recipe", rec, "-o", out, "--deployer", deployer); r.Code != 0 {
			t.Fatalf("bundle %s: %s", deployer, r)
		}
		check := exec.Command(sha, "-c", "checksums.txt")
		check.Dir = out
		if b, err := check.CombinedOutput(); err != nil {
			t.Errorf("%s bundle: sha256sum -c: %v\n%s", deployer, err, b)
		}
	}

	// deploy.sh against a helm and a kubectl that record their calls.
	helmDir := t.TempDir()
	fake := "#!/bin/sh\necho \"$*\" >> " + filepath.Join(helmDir, "log") + "\n"
	if err := os.WriteFile(filepath.Join(helmDir, "helm"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	fakeKubectl := "#!/bin/sh\necho \"$*\" >> " + filepath.Join(helmDir, "kubectl-log") + "\n"
	if err := os.WriteFile(filepath.Join(helmDir, "kubectl"), []byte(fakeKubectl), 0o755); err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, []string{"PATH=" + helmDir + ":" + os.Getenv("PATH")}, bash, filepath.Join(dir, "bundle-helm", "deploy.sh"))
	if r.Code != 0 {
		t.Fatalf("deploy.sh: %s", r)
	}
	log, err := os.ReadFile(filepath.Join(helmDir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	// EKS H100 training on Ubuntu: eight charts, EBS CSI first (Prometheus'
	// volume), nvbind before the GPU Operator; the Skyhook tuning is a
	// manifest applied with kubectl after its operator.
	lines := strings.Split(strings.TrimSpace(string(log)), "\n")
	if len(lines) != 8 || !strings.HasPrefix(lines[0], "upgrade --install aws-ebs-csi-driver ") ||
		!strings.HasPrefix(lines[4], "upgrade --install nvbind ") || !strings.HasPrefix(lines[5], "upgrade --install gpu-operator ") {
		t.Errorf("helm calls:\n%s", log)
	}
	klog, err := os.ReadFile(filepath.Join(helmDir, "kubectl-log"))
	if err != nil || string(klog) != "apply --server-side --namespace skyhook --filename components/skyhook-customizations/manifests.yaml\n" {
		t.Errorf("kubectl calls: %v\n%s", err, klog)
	}
}
