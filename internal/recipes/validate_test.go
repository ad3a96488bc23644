package recipes

import (
	"encoding/json"
	"encoding/xml"
	"strings"
	"testing"
)

func TestReadAICRSnapshots(t *testing.T) {
	tests := []struct {
		file, name, want string
	}{
		{"h100.yaml", "GPU.smi.gpu.model", "NVIDIA H100 80GB HBM3"},
		{"h100.yaml", "GPU.smi.gpu-count", "8"},
		{"h100.yaml", "GPU.smi.driver", "570.133.20"},
		{"h100.yaml", "GPU.smi.cuda-version", "12.8"},
		{"h100.yaml", "K8s.server.version", "v1.30.14-eks-3025e55"},
		{"h100.yaml", "OS.sysctl./proc/sys/kernel/osrelease", "6.8.0-1024-aws"},
		{"h100.yaml", "OS.release.VERSION_ID", "24.04"},
		{"h100.yaml", "OS.kmod.nvidia", "true"},
		{"h100.yaml", "OS.grub.nokaslr", ""},
		// A subtype with a dot in its name, and a number past float64.
		{"h100.yaml", "SystemD.containerd.service.ActiveState", "active"},
		{"h100.yaml", "SystemD.containerd.service.BlockIOWeight", "18446744073709551615"},
		{"gb200.yaml", "GPU.smi.gpu.model", "NVIDIA GB200"},
		{"gb200.yaml", "GPU.smi.gpu-count", "4"},
		{"gb200.yaml", "K8s.server.version", "v1.34.2-eks-b3126f4"},
		{"gb200.yaml", "OS.sysctl./proc/sys/kernel/osrelease", "6.14.0-1018-aws-64k"},
	}
	for _, tt := range tests {
		s := readSnapshotFile(t, tt.file)
		got, ok := s.Lookup(tt.name)
		if !ok || got != tt.want {
			t.Errorf("%s: %s = %q (%v), want %q", tt.file, tt.name, got, ok, tt.want)
		}
	}
	s := readSnapshotFile(t, "h100.yaml")
	if _, ok := s.Lookup("GPU.smi.nope"); ok {
		t.Error("Lookup found a reading that is not there")
	}
}

func TestReadSnapshotErrors(t *testing.T) {
	for _, tt := range []struct{ doc, want string }{
		{"kind: Recipe\n", `kind is "Recipe"`},
		{"kind: Snapshot\nmeasurements: [{subtypes: []}]\n", "no type"},
		{"kind: Snapshot\nmeasurements: [{type: OS, subtypes: [{data: {}}]}]\n", "without a name"},
		{"kind: Snapshot\nmeasurements: {}\n", "read snapshot"},
		{"[[[", "read snapshot"},
	} {
		if _, err := ReadSnapshot([]byte(tt.doc)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ReadSnapshot(%q) error = %v, want %q", tt.doc, err, tt.want)
		}
	}
}

func testRecipe(constraints map[string]Constraint) *Recipe {
	return &Recipe{APIVersion: APIVersion, Kind: KindRecipe, Name: "test", Constraints: constraints, Components: map[string]Component{}}
}

func req(value string, required bool) Constraint {
	return Constraint{ConstraintSpec: ConstraintSpec{Value: value, Required: required, Remediation: "fix " + value}, Source: "t"}
}

func TestValidateStatuses(t *testing.T) {
	s := &Snapshot{Kind: KindSnapshot, Metadata: map[string]any{"source": "node-1"}}
	s.Set("GPU", "smi", "driver", "570.133.20")
	s.Set("OS", "release", "ID", "ubuntu")
	s.Set("K8s", "server", "version", "unknown")
	s.MarkUnreadable("GPU.smi.cuda-version", "NVML not usable")
	r := testRecipe(map[string]Constraint{
		"GPU.smi.driver":       req(">= 550", true),
		"OS.release.ID":        req("rhel", false),
		"OS.release.missing":   req("x", false),
		"OS.grub.missing":      req("x", true),
		"GPU.smi.cuda-version": req(">= 12.4", false),
		"K8s.server.version":   req(">= 1.30", false),
	})
	rep, err := Validate(r, s)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]string{
		"GPU.smi.driver":       {StatusPassed, ""},
		"OS.release.ID":        {StatusFailed, "ubuntu is not == rhel"},
		"OS.release.missing":   {StatusSkipped, "not measured"},
		"OS.grub.missing":      {StatusFailed, "required, not measured"},
		"GPU.smi.cuda-version": {StatusSkipped, "could not be read: NVML not usable"},
		"K8s.server.version":   {StatusFailed, `actual value "unknown" is not a version`},
	}
	if len(rep.Checks) != len(want) {
		t.Fatalf("%d checks, want %d (validation must not stop early)", len(rep.Checks), len(want))
	}
	for _, c := range rep.Checks {
		w := want[c.Name]
		if c.Status != w[0] || c.Message != w[1] {
			t.Errorf("%s: %s %q, want %s %q", c.Name, c.Status, c.Message, w[0], w[1])
		}
	}
	if rep.Passed != 1 || rep.Failed != 3 || rep.Skipped != 2 || rep.OK() || rep.Snapshot != "node-1" {
		t.Errorf("report = %+v", rep)
	}

	table, err := rep.Format(ReportTable)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"failed  OS.release.ID",
		"skipped  GPU.smi.cuda-version",
		"readiness test: 1 passed, 3 failed, 2 skipped",
	} {
		if !strings.Contains(strings.Join(strings.Fields(string(table)), "  "), strings.Join(strings.Fields(line), "  ")) {
			t.Errorf("table lacks %q:\n%s", line, table)
		}
	}

	// The remediation is printed under each failure, and only there.
	lines := strings.Split(string(table), "\n")
	fixes := 0
	for i, l := range lines {
		if strings.HasPrefix(l, "  fix: ") {
			fixes++
			if !strings.HasPrefix(lines[i-1], "failed") {
				t.Errorf("fix line %q is not under a failure", l)
			}
		}
	}
	if fixes != 3 || !strings.Contains(string(table), "failed   OS.release.ID         == rhel   ubuntu      t       ubuntu is not == rhel\n  fix: fix rhel\n") {
		t.Errorf("want a fix line under each of the 3 failures:\n%s", table)
	}

	js, err := rep.Format(ReportJSON)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js, &back); err != nil || back.Failed != 3 || len(back.Checks) != 6 || back.Phase != PhaseReadiness {
		t.Errorf("JSON report: %v %+v", err, back)
	}
	for _, c := range back.Checks {
		if (c.Status == StatusFailed) != (c.Remediation != "") {
			t.Errorf("JSON check %s (%s) remediation %q: want it on failures only", c.Name, c.Status, c.Remediation)
		}
	}

	ct, err := rep.Format(ReportCTRF)
	if err != nil {
		t.Fatal(err)
	}
	var ctrf ctrfDoc
	if err := json.Unmarshal(ct, &ctrf); err != nil {
		t.Fatal(err)
	}
	if s := ctrf.Results.Summary; s.Tests != 6 || s.Passed != 1 || s.Failed != 3 || s.Skipped != 2 || ctrf.Results.Tool.Name != "nvbind" {
		t.Errorf("CTRF summary = %+v", s)
	}
	for _, tc := range ctrf.Results.Tests {
		if tc.Name == "OS.release.ID" && (tc.Status != "failed" || tc.Extra["remediation"] != "fix rhel" || tc.Suite != "readiness") {
			t.Errorf("CTRF test = %+v", tc)
		}
	}

	ju, err := rep.Format(ReportJUnit)
	if err != nil {
		t.Fatal(err)
	}
	var suites junitSuites
	if err := xml.Unmarshal(ju, &suites); err != nil {
		t.Fatalf("JUnit report is not XML: %v\n%s", err, ju)
	}
	run := suites.Suites[0]
	failures, skips := 0, 0
	for _, c := range run.Cases {
		if c.Failure != nil {
			failures++
			if !strings.Contains(c.Failure.Text, "remediation: fix ") {
				t.Errorf("JUnit failure %s lacks the remediation: %q", c.Name, c.Failure.Text)
			}
		}
		if c.Skipped != nil {
			skips++
		}
	}
	if run.Tests != 6 || run.Failures != 3 || run.Skipped != 2 || failures != 3 || skips != 2 {
		t.Errorf("JUnit suite = %+v", run)
	}
	if _, err := rep.Format("html"); err == nil {
		t.Error("unknown format accepted")
	}
}

func TestValidateAICRSnapshots(t *testing.T) {
	c := mustLoad(t, "")
	tests := []struct {
		q        Query
		snapshot string
		ok       bool
		failed   []string
	}{
		{Query{Service: "eks", Accelerator: "h100", Intent: "training"}, "h100.yaml", true, nil},
		{Query{Service: "eks", Accelerator: "h100", OS: "ubuntu", Intent: "inference"}, "h100.yaml", true, nil},
		{Query{Service: "eks", Accelerator: "gb200", Intent: "training"}, "gb200.yaml", true, nil},
		{Query{Service: "eks", Accelerator: "gb200", Intent: "training"}, "h100.yaml", false,
			[]string{"GPU.smi.gpu.model", "GPU.smi.gpu.product-architecture", "K8s.server.version"}},
		{Query{Service: "gke", Accelerator: "h100", OS: "cos", Intent: "training"}, "h100.yaml", false,
			[]string{"K8s.node.provider", "OS.release.ID"}},
	}
	for _, tt := range tests {
		res, err := c.Resolve(tt.q)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Validate(res.Recipe, readSnapshotFile(t, tt.snapshot))
		if err != nil {
			t.Fatal(err)
		}
		var failed []string
		for _, ch := range rep.Checks {
			if ch.Status == StatusFailed {
				failed = append(failed, ch.Name)
			}
		}
		if rep.OK() != tt.ok || strings.Join(failed, ",") != strings.Join(tt.failed, ",") {
			table, _ := rep.Format(ReportTable)
			t.Errorf("%s vs %s: failed %v, want %v\n%s", tt.q.Name(), tt.snapshot, failed, tt.failed, table)
		}
	}
}
