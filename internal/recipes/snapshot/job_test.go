package snapshot

import (
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestJob(t *testing.T) {
	out, err := Job(JobOptions{Namespace: "gpu-check", Name: "node-1", Image: "ghcr.io/nvbind/nvbind:0.1.0"})
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Job(JobOptions{Namespace: "gpu-check", Name: "node-1", Image: "ghcr.io/nvbind/nvbind:0.1.0"})
	if string(out) != string(again) {
		t.Error("not byte-stable")
	}
	docs := strings.Split(string(out), "\n---\n")
	var job map[string]any
	for _, d := range docs[1:] {
		var o map[string]any
		if err := yaml.Unmarshal([]byte(d), &o); err != nil {
			t.Fatal(err)
		}
		if o["kind"] == "Job" {
			job = o
		}
	}
	if job == nil {
		t.Fatalf("no Job:\n%s", out)
	}
	pod := job["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	ct := pod["containers"].([]any)[0].(map[string]any)
	cmd := strings.Join(func() []string {
		var s []string
		for _, a := range ct["command"].([]any) {
			s = append(s, a.(string))
		}
		return s
	}(), " ")
	if cmd != "nvbind snapshot --root /host --driver-root /host --in-cluster --node $(NODE_NAME) --to-configmap gpu-check/node-1" {
		t.Errorf("command = %s", cmd)
	}
	if pod["serviceAccountName"] != "node-1" || pod["nodeSelector"].(map[string]any)["nvidia.com/gpu.present"] != "true" {
		t.Errorf("pod = %v", pod)
	}
	out, _ = Job(JobOptions{Namespace: "n", Name: "x", Image: "i", NodeName: "gpu-7", DriverRoot: "/host/run/nvidia/driver"})
	if !strings.Contains(string(out), "nodeName: gpu-7") || strings.Contains(string(out), "nodeSelector") ||
		!strings.Contains(string(out), "- --driver-root\n        - /host/run/nvidia/driver\n") {
		t.Errorf("pinned job:\n%s", out)
	}
	if _, err := Job(JobOptions{Name: "x", Image: "i"}); err == nil {
		t.Error("no namespace accepted")
	}
}
