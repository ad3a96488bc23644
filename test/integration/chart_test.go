package integration

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	"sigs.k8s.io/yaml"

	"github.com/nvbind/nvbind/internal/gpu/simroot"
)

// helmTool finds the helm that `make deps` builds from the Go module proxy
// (HELM, then .tools/bin/helm, then PATH).
func helmTool(t *testing.T) string {
	t.Helper()
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if p := filepath.Join(root, ".tools/bin/helm"); isExecutable(p) {
		return p
	}
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	missing(t, "helm (make deps builds it into .tools/bin)")
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

func chartDir(t *testing.T) string {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "deploy/helm/nvbind")
}

// nonDefaultValues turns on what the defaults leave off.
const nonDefaultValues = `
image: {repository: registry.local/nvbind, tag: "1.2.3-rc.1", pullPolicy: Never}
nodeSelector: {gpu: "yes"}
runtimeClass: {create: true, name: gpu}
install:
  hostDir: /usr/local/nvbind
  driverRoot: /run/nvidia/driver
  cdiSpec: /etc/cdi/nvbind.json
  runtimes: [containerd]
  containerdConfig: /etc/containerd/config.toml
  restartRuntime: true
  cleanupOnStop: false
policy: {preset: strict}
devicePlugin:
  resourceName: example.com/gpu
  migStrategy: mixed
  deviceListStrategy: cdi-cri
  timeSlicing: {replicas: 4}
  health: {enabled: false, ignoreXids: [13], probeInterval: 1m}
serve: {enabled: true, port: 9500}
`

// rendered is a chart rendering decoded into the k8s.io/api types.
type rendered struct {
	daemonSet    *appsv1.DaemonSet
	configMap    *corev1.ConfigMap
	runtimeClass *nodev1.RuntimeClass
}

// helmTemplate renders the chart and decodes every object strictly (an
// unknown field is an error) into its k8s.io/api type.
func helmTemplate(t *testing.T, helm string, values string) rendered {
	t.Helper()
	args := []string{"template", "rel", chartDir(t), "--namespace", "gpu-system"}
	if values != "" {
		f := filepath.Join(t.TempDir(), "values.yaml")
		os.WriteFile(f, []byte(values), 0o644)
		args = append(args, "--values", f)
		if r := runCmd(t, nil, helm, "lint", chartDir(t), "--strict", "--values", f); r.Code != 0 {
			t.Fatalf("helm lint with values: %s", r)
		}
	}
	r := runCmd(t, nil, helm, args...)
	if r.Code != 0 {
		t.Fatalf("helm template: %s", r)
	}
	var out rendered
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(r.Stdout, -1) {
		var meta struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("rendered YAML: %v\n%s", err, doc)
		}
		if meta.Kind == "" {
			continue
		}
		var obj any
		switch meta.APIVersion + " " + meta.Kind {
		case "apps/v1 DaemonSet":
			out.daemonSet = &appsv1.DaemonSet{}
			obj = out.daemonSet
		case "v1 ConfigMap":
			out.configMap = &corev1.ConfigMap{}
			obj = out.configMap
		case "node.k8s.io/v1 RuntimeClass":
			out.runtimeClass = &nodev1.RuntimeClass{}
			obj = out.runtimeClass
		default:
			t.Fatalf("unexpected object %s %s", meta.APIVersion, meta.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("%s does not decode strictly into its k8s.io/api type: %v\n%s", meta.Kind, err, doc)
		}
	}
	if out.daemonSet == nil || out.configMap == nil {
		t.Fatalf("rendering lacks the DaemonSet or the ConfigMap:\n%s", r.Stdout)
	}
	return out
}

func envOf(c corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		m[e.Name] = e.Value
	}
	return m
}

func containerNamed(t *testing.T, cs []corev1.Container, name string) corev1.Container {
	t.Helper()
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %q", name)
	return corev1.Container{}
}

func TestChartRenders(t *testing.T) {
	helm := helmTool(t)
	if r := runCmd(t, nil, helm, "lint", "--strict", chartDir(t)); r.Code != 0 {
		t.Fatalf("helm lint: %s", r)
	}

	def := helmTemplate(t, helm, "")
	ds := def.daemonSet.Spec.Template.Spec
	if def.runtimeClass == nil || def.runtimeClass.Name != "nvbind" || def.runtimeClass.Handler != "nvbind" {
		t.Errorf("RuntimeClass = %+v, want nvbind with handler nvbind", def.runtimeClass)
	}
	if ds.NodeSelector["nvidia.com/gpu.present"] != "true" {
		t.Errorf("nodeSelector = %v", ds.NodeSelector)
	}
	initC := containerNamed(t, ds.InitContainers, "install")
	if strings.Join(initC.Command, " ") != "/bin/sh /scripts/install.sh install" || initC.Image != "nvbind/nvbind:0.1.0" {
		t.Errorf("install container = %v %s", initC.Command, initC.Image)
	}
	if env := envOf(initC); env["RESTART_RUNTIME"] != "false" || env["RUNTIMES"] != "containerd crio" || env["CONFIG_TOML"] != "" {
		t.Errorf("installer env = %v: by default nothing is restarted and no config written", env)
	}
	dp := containerNamed(t, ds.Containers, "device-plugin")
	args := strings.Join(dp.Args, " ")
	for _, want := range []string{"--resource-name=nvidia.com/gpu", "--mig-strategy=none", "--device-list-strategy=cdi-annotations", "--replicas=1", "--ignore-xids=13,31,43,45,68,109", "--driver-root=/host"} {
		if !strings.Contains(args, want) {
			t.Errorf("device plugin args %q lack %q", args, want)
		}
	}
	if dp.Lifecycle == nil || dp.Lifecycle.PreStop == nil || strings.Join(dp.Lifecycle.PreStop.Exec.Command, " ") != "/bin/sh /scripts/install.sh uninstall" {
		t.Errorf("no uninstall on stop: %+v", dp.Lifecycle)
	}
	if len(ds.Containers) != 1 {
		t.Errorf("containers = %d, want the device plugin only (serve is off by default)", len(ds.Containers))
	}
	script, err := os.ReadFile(filepath.Join(chartDir(t), "files/install.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if def.configMap.Data["install.sh"] != string(script) {
		t.Error("the ConfigMap's install.sh differs from files/install.sh")
	}

	nd := helmTemplate(t, helm, nonDefaultValues)
	ds = nd.daemonSet.Spec.Template.Spec
	if nd.runtimeClass == nil || nd.runtimeClass.Name != "gpu" || nd.runtimeClass.Handler != "nvbind" ||
		nd.runtimeClass.Scheduling == nil || nd.runtimeClass.Scheduling.NodeSelector["gpu"] != "yes" {
		t.Errorf("RuntimeClass = %+v", nd.runtimeClass)
	}
	initC = containerNamed(t, ds.InitContainers, "install")
	env := envOf(initC)
	for k, want := range map[string]string{
		"NVBIND_VERSION": "1.2.3-rc.1", "HOST_DIR": "/usr/local/nvbind", "DRIVER_ROOT": "/run/nvidia/driver",
		"CDI_SPEC": "/etc/cdi/nvbind.json", "RUNTIMES": "containerd", "CONTAINERD_CONFIG": "/etc/containerd/config.toml",
		"RESTART_RUNTIME": "true", "CONFIG_TOML": "\n[policy]\npreset = \"strict\"",
	} {
		if env[k] != want {
			t.Errorf("installer %s = %q, want %q", k, env[k], want)
		}
	}
	if initC.Image != "registry.local/nvbind:1.2.3-rc.1" || initC.ImagePullPolicy != corev1.PullNever {
		t.Errorf("image = %s %s", initC.Image, initC.ImagePullPolicy)
	}
	dp = containerNamed(t, ds.Containers, "device-plugin")
	args = strings.Join(dp.Args, " ")
	for _, want := range []string{"--resource-name=example.com/gpu", "--mig-strategy=mixed", "--device-list-strategy=cdi-cri", "--replicas=4", "--no-health", "--probe-interval=1m", "--driver-root=/host/run/nvidia/driver"} {
		if !strings.Contains(args, want) {
			t.Errorf("device plugin args %q lack %q", args, want)
		}
	}
	if dp.Lifecycle != nil {
		t.Errorf("cleanupOnStop=false still has %+v", dp.Lifecycle)
	}
	serve := containerNamed(t, ds.Containers, "serve")
	if len(serve.Ports) != 1 || serve.Ports[0].ContainerPort != 9500 {
		t.Errorf("serve ports = %v", serve.Ports)
	}

	// Without the device plugin a keeper container holds the install and
	// undoes it on stop.
	keeper := helmTemplate(t, helm, "devicePlugin: {enabled: false}\n").daemonSet.Spec.Template.Spec.Containers
	if len(keeper) != 1 || keeper[0].Name != "keeper" || keeper[0].Lifecycle == nil || keeper[0].Lifecycle.PreStop == nil {
		t.Errorf("devicePlugin.enabled=false: containers %+v", keeper)
	}

	// NOTES.txt tells how to run a GPU pod (helm template does not render
	// NOTES, so a copy of the chart renders it through tpl).
	notes := renderNotes(t, helm, "")
	for _, want := range []string{"runtimeClassName: nvbind", "nvidia.com/gpu: 1", "were NOT restarted", "kubectl -n gpu-system logs ds/rel-nvbind -c install"} {
		if !strings.Contains(notes, want) {
			t.Errorf("NOTES lack %q:\n%s", want, notes)
		}
	}
	notes = renderNotes(t, helm, nonDefaultValues)
	for _, want := range []string{"runtimeClassName: gpu", "example.com/gpu: 1", "advertised as 4 shares", "does NOT"} {
		if !strings.Contains(notes, want) {
			t.Errorf("NOTES with non-default values lack %q:\n%s", want, notes)
		}
	}

	// The schema refuses what the device plugin would refuse.
	for _, bad := range []string{"devicePlugin.migStrategy=all", "devicePlugin.deviceListStrategy=cdi-annotations\\,cdi-cri",
		"devicePlugin.timeSlicing.replicas=0", "install.runtimes={docker}", "devicePlugin.resourceName=gpu", "nosuchkey=1"} {
		if r := runCmd(t, nil, helm, "template", "rel", chartDir(t), "--set", bad); r.Code == 0 {
			t.Errorf("--set %s rendered", bad)
		}
	}
}

// renderNotes renders the chart's NOTES.txt with values.
func renderNotes(t *testing.T, helm, values string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "nvbind")
	if r := runCmd(t, nil, "cp", "-r", chartDir(t), dir); r.Code != 0 {
		t.Fatal(r)
	}
	notes, err := os.ReadFile(filepath.Join(dir, "templates/NOTES.txt"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "files/notes.txt"), notes, 0o644)
	os.WriteFile(filepath.Join(dir, "templates/notes-check.yaml"), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\ndata:\n  notes: |\n{{ tpl (.Files.Get \"files/notes.txt\") . | indent 4 }}\n"), 0o644)
	args := []string{"template", "rel", dir, "--namespace", "gpu-system", "--show-only", "templates/notes-check.yaml"}
	if values != "" {
		f := filepath.Join(t.TempDir(), "values.yaml")
		os.WriteFile(f, []byte(values), 0o644)
		args = append(args, "--values", f)
	}
	r := runCmd(t, nil, helm, args...)
	if r.Code != 0 {
		t.Fatalf("render NOTES: %s", r)
	}
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict([]byte(r.Stdout), &cm); err != nil {
		t.Fatal(err)
	}
	return cm.Data["notes"]
}

// hostTree lists a directory's files, links and dirs with their content
// hashes and modes: what "the node as it was" means.
func hostTree(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		fi, _ := d.Info()
		line := fmt.Sprintf("%s %v", rel, fi.Mode())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			line += " -> " + l
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			line += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		lines = append(lines, line)
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// simulatedHost is a node's root: a simulated NVIDIA driver, the C
// library nvbind links (its commands run chrooted there), containerd's
// config.
func simulatedHost(t *testing.T, containerdConfig string) string {
	t.Helper()
	root := t.TempDir()
	if _, err := simroot.Build(root, simroot.Options{GPUs: 2, LDCache: true}); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ldd", bins.CLI).Output()
	if err != nil {
		t.Fatalf("ldd %s: %v", bins.CLI, err)
	}
	for _, m := range regexp.MustCompile(`(/\S+)`).FindAllString(string(out), -1) {
		data, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(root, m)
		os.MkdirAll(filepath.Dir(dst), 0o755)
		if err := os.WriteFile(dst, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(root, "etc/containerd/config.toml")
	os.MkdirAll(filepath.Dir(cfg), 0o755)
	if err := os.WriteFile(cfg, []byte(containerdConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// TestChartInstallScriptOnSimulatedHost runs the rendered installer, with
// the rendered init container's environment, against a simulated node:
// binaries in a versioned directory behind an atomic link, a CDI spec that
// names host paths, a containerd handler that containerd accepts; again
// with nothing changed; then uninstall leaves the node exactly as it was.
func TestChartInstallScriptOnSimulatedHost(t *testing.T) {
	requireRoot(t)
	containerd := requireTool(t, "containerd")
	// The image runs the installer with busybox's shell and tools.
	busybox := requireTool(t, "busybox")
	helm := helmTool(t)
	r := helmTemplate(t, helm, "install: {hostDir: /opt/nvbind, driverRoot: /, cdiSpec: /var/run/cdi/nvidia.yaml, runtimes: [containerd, crio], restartRuntime: false, cleanupOnStop: true}\nconfig: |\n  [cdi]\n  default-kind = \"nvidia.com/gpu\"\n")
	script := filepath.Join(t.TempDir(), "install.sh")
	os.WriteFile(script, []byte(r.configMap.Data["install.sh"]), 0o755)
	initC := containerNamed(t, r.daemonSet.Spec.Template.Spec.InitContainers, "install")
	tests := []struct {
		name      string
		config    string // the node's containerd config
		dropIn    string // where the handler must land
		dumpCheck bool   // containerd 1.x on this machine reads config version 2
	}{
		{"containerd 2 drop-in", "version = 3\nimports = [\"/etc/containerd/conf.d/*.toml\"]\n", "etc/containerd/conf.d/99-nvbind.toml", false},
		{"containerd 1.x main file", "version = 2\n", "etc/containerd/config.toml", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := simulatedHost(t, tt.config)
			before := hostTree(t, host)
			env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
			for k, v := range envOf(initC) {
				switch k {
				case "HOST_ROOT":
					v = host
				case "SRC_DIR":
					v = filepath.Dir(bins.CLI)
				}
				env = append(env, k+"="+v)
			}
			run := func(verb string) Result {
				cmd := exec.Command(busybox, "sh", script, verb)
				cmd.Env = env
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				err := cmd.Run()
				res := Result{Stdout: out.String(), Code: cmd.ProcessState.ExitCode()}
				if err != nil && res.Code == 0 {
					res.Code = -1
				}
				return res
			}
			res := run("install")
			if res.Code != 0 {
				t.Fatalf("install: %s", res)
			}
			link, err := os.Readlink(filepath.Join(host, "opt/nvbind/current"))
			if err != nil || !strings.HasPrefix(link, "versions/0.1.0-") {
				t.Fatalf("current -> %q (%v)", link, err)
			}
			for _, b := range []string{"nvbind", "nvbind-runtime", "nvbind-hook"} {
				got, _ := os.ReadFile(filepath.Join(host, "opt/nvbind/current/bin", b))
				want, _ := os.ReadFile(filepath.Join(filepath.Dir(bins.CLI), b))
				if !bytes.Equal(got, want) || !isExecutable(filepath.Join(host, "opt/nvbind/current/bin", b)) {
					t.Errorf("%s not installed as built", b)
				}
			}
			spec, err := os.ReadFile(filepath.Join(host, "var/run/cdi/nvidia.yaml"))
			if err != nil {
				t.Fatalf("no CDI spec: %v\n%s", err, res.Stdout)
			}
			if !strings.Contains(string(spec), `"/opt/nvbind/current/bin/nvbind-hook"`) || !strings.Contains(string(spec), `"nvidia.com/gpu"`) ||
				!strings.Contains(string(spec), `"/dev/nvidia1"`) || strings.Contains(string(spec), host) {
				t.Errorf("CDI spec does not name the host's paths:\n%s", spec)
			}
			fileContains(t, filepath.Join(host, "etc/nvbind/config.toml"), `default-kind = "nvidia.com/gpu"`)
			drop := filepath.Join(host, tt.dropIn)
			if tt.dumpCheck {
				fileContains(t, drop, `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvbind]`, `BinaryName = "/opt/nvbind/current/bin/nvbind-runtime"`)
				dump := mustRun(t, nil, containerd, "--config", drop, "config", "dump").Stdout
				if !strings.Contains(dump, `BinaryName = "/opt/nvbind/current/bin/nvbind-runtime"`) {
					t.Errorf("containerd config dump lacks the nvbind handler:\n%s", dump)
				}
			} else {
				fileContains(t, drop, "version = 3", `[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.nvbind]`, `BinaryName = "/opt/nvbind/current/bin/nvbind-runtime"`)
			}
			if !strings.Contains(res.Stdout, "crio not found on this node: skipped") || !strings.Contains(res.Stdout, "containerd: restart it") {
				t.Errorf("install output:\n%s", res.Stdout)
			}

			installed := hostTree(t, host)
			if res := run("install"); res.Code != 0 || !strings.Contains(res.Stdout, "nothing changed") || strings.Contains(res.Stdout, "restart it") {
				t.Errorf("second install: %s", res)
			}
			if again := hostTree(t, host); again != installed {
				t.Errorf("second install changed the node:\n%s", treeDiff(installed, again))
			}

			if res := run("uninstall"); res.Code != 0 {
				t.Fatalf("uninstall: %s", res)
			}
			if after := hostTree(t, host); after != before {
				t.Errorf("uninstall left the node changed:\n%s", treeDiff(before, after))
			}
		})
	}
}

// treeDiff lists the lines only in a (-) or only in b (+).
func treeDiff(a, b string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	var out []string
	for l := range ma {
		if !mb[l] {
			out = append(out, "- "+l)
		}
	}
	for l := range mb {
		if !ma[l] {
			out = append(out, "+ "+l)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// TestBundleCarriesTheChart: a cluster bundle carries nvbind's chart, and
// the recipe's values for it pass the chart's schema (helm lint --strict)
// and render the DaemonSet the deployment phase checks, with the recipe's
// driver root.
func TestBundleCarriesTheChart(t *testing.T) {
	helm := helmTool(t)
	dir := t.TempDir()
	for _, tt := range []struct {
		criteria   []string
		driverRoot string
	}{
		{[]string{"--service", "eks", "--accelerator", "h100", "--os", "ubuntu", "--intent", "training"}, "/run/nvidia/driver"},
		{[]string{"--service", "eks", "--accelerator", "h100", "--os", "amazonlinux", "--intent", "inference"}, "/"},
		{[]string{"--service", "gke", "--accelerator", "h100", "--intent", "training"}, "/home/kubernetes/bin/nvidia"},
	} {
		name := strings.Join(tt.criteria, "")
		rec := filepath.Join(dir, name+".yaml")
		if r := nvbindCLI(t, nil, append([]string{"recipe", "render", "-o", rec}, tt.criteria...)...); r.Code != 0 {
			t.Fatalf("render %v: %s", tt.criteria, r)
		}
		out := filepath.Join(dir, name)
		if r := nvbindCLI(t, nil, "bundle", "--recipe", rec, "-o", out); r.Code != 0 {
			t.Fatalf("bundle: %s", r)
		}
		run := func(name string, args ...string) Result {
			cmd := exec.Command(name, args...)
			cmd.Dir = out
			o, err := cmd.CombinedOutput()
			res := Result{Stdout: string(o)}
			if ee, ok := err.(*exec.ExitError); ok {
				res.Code = ee.ExitCode()
			}
			return res
		}
		if r := run("sha256sum", "-c", "--quiet", "checksums.txt"); r.Code != 0 {
			t.Errorf("%v: checksums: %s", tt.criteria, r)
		}
		if r := run(helm, "lint", "--strict", "./charts/nvbind", "--values", "components/nvbind/values.yaml"); r.Code != 0 {
			t.Errorf("%v: the recipe's values fail the chart: %s", tt.criteria, r)
		}
		r := run(helm, "template", "nvbind", "./charts/nvbind", "--namespace", "nvbind-system", "--values", "components/nvbind/values.yaml")
		if r.Code != 0 {
			t.Fatalf("%v: helm template: %s", tt.criteria, r)
		}
		var ds *appsv1.DaemonSet
		for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(r.Stdout, -1) {
			var meta struct{ Kind string }
			if yaml.Unmarshal([]byte(doc), &meta) == nil && meta.Kind == "DaemonSet" {
				ds = &appsv1.DaemonSet{}
				if err := yaml.UnmarshalStrict([]byte(doc), ds); err != nil {
					t.Fatal(err)
				}
			}
		}
		if ds == nil || ds.Name != "nvbind" || ds.Namespace != "nvbind-system" {
			t.Fatalf("%v: no DaemonSet nvbind-system/nvbind (the deployment check's):\n%s", tt.criteria, r.Stdout)
		}
		if len(ds.Spec.Template.Spec.InitContainers) == 0 || envOf(ds.Spec.Template.Spec.InitContainers[0])["DRIVER_ROOT"] != tt.driverRoot {
			t.Errorf("%v: the installer's DRIVER_ROOT is not %s", tt.criteria, tt.driverRoot)
		}
		if len(ds.Spec.Template.Spec.Containers) != 1 {
			// devicePlugin.enabled=false: the GPU Operator's plugin serves nvidia.com/gpu
			t.Errorf("%v: containers %d, want only the installer's keeper", tt.criteria, len(ds.Spec.Template.Spec.Containers))
		}
	}
}
