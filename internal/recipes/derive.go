package recipes

import (
	"fmt"
	"strings"
)

// Derivation says how one criterion was found from a snapshot, or why it
// could not be.
type Derivation struct {
	Criterion string
	// Value is "" when the criterion could not be derived.
	Value string
	// From names the reading used, with its value; Why says why nothing
	// was derived.
	From, Why string
}

// acceleratorModels maps nvidia-smi's model names to accelerator values;
// the first match wins, so GB200 comes before B200.
var acceleratorModels = []struct{ pattern, accelerator string }{
	{"GB200", "gb200"}, {"B200", "b200"}, {"H200", "h200"}, {"H100", "h100"}, {"A100", "a100"}, {"L40S", "l40s"},
}

// osIDs maps os-release's ID to the os criterion.
var osIDs = map[string]string{"ubuntu": "ubuntu", "rhel": "rhel", "cos": "cos", "amzn": "amazonlinux", "ol": "oraclelinux"}

// providerIDs maps a node's providerID scheme to the service criterion.
var providerIDs = []struct{ prefix, service string }{
	{"aws://", "eks"}, {"gce://", "gke"}, {"azure://", "aks"}, {"oci://", "oke"}, {"ocid1.", "oke"},
}

// DeriveQuery reads the criteria a snapshot tells: the service from the
// node's provider (K8s.node.provider, its providerID, or the provider's
// build suffix in the Kubernetes version), the accelerator from the GPU
// model, the OS from os-release, and the Kubernetes version (reported, and
// checked by the recipe's constraints, not a criterion). The intent is
// never in a snapshot. It returns the query and one Derivation per
// criterion, in a fixed order.
func DeriveQuery(s *Snapshot) (Query, []Derivation) {
	var q Query
	var out []Derivation
	reading := func(name string) (string, bool) {
		v, ok := s.Lookup(name)
		return strings.TrimSpace(v), ok && strings.TrimSpace(v) != ""
	}

	svc := Derivation{Criterion: "service"}
	if v, ok := reading("K8s.node.provider"); ok {
		svc.Value, svc.From = v, "K8s.node.provider = "+v
	} else if v, ok := reading("K8s.node.provider-id"); ok {
		for _, p := range providerIDs {
			if strings.HasPrefix(v, p.prefix) {
				svc.Value, svc.From = p.service, "K8s.node.provider-id = "+v
			}
		}
	}
	if svc.Value == "" {
		if v, ok := reading("K8s.server.version"); ok {
			switch {
			case strings.Contains(v, "-eks-"):
				svc.Value = "eks"
			case strings.Contains(v, "-gke."):
				svc.Value = "gke"
			}
			if svc.Value != "" {
				svc.From = "K8s.server.version = " + v
			}
		}
	}
	if svc.Value == "" {
		svc.Why = "no K8s.node.provider, provider-id or provider build in K8s.server.version (take the snapshot with --kubeconfig); pass --service (self-managed for a cluster you run)"
	}
	q.Service = svc.Value
	out = append(out, svc)

	acc := Derivation{Criterion: "accelerator"}
	if v, ok := reading("GPU.smi.gpu.model"); ok {
		for _, m := range acceleratorModels {
			if strings.Contains(strings.ToUpper(v), m.pattern) {
				acc.Value, acc.From = m.accelerator, "GPU.smi.gpu.model = "+v
				break
			}
		}
		if acc.Value == "" {
			acc.Why = fmt.Sprintf("GPU model %q has no recipes; pass --accelerator", v)
		}
	} else {
		acc.Why = "no GPU.smi.gpu.model (snapshot taken off a GPU node?); pass --accelerator"
	}
	q.Accelerator = acc.Value
	out = append(out, acc)

	osd := Derivation{Criterion: "os"}
	if v, ok := reading("OS.release.ID"); ok {
		if o, known := osIDs[v]; known {
			osd.Value, osd.From = o, "OS.release.ID = "+v
		} else {
			osd.Why = fmt.Sprintf("OS %q has no recipes; pass --os", v)
		}
	} else {
		osd.Why = "no OS.release.ID; pass --os, or leave it to the service's default"
	}
	q.OS = osd.Value
	out = append(out, osd)

	k8s := Derivation{Criterion: "kubernetes"}
	if v, ok := reading("K8s.server.version"); ok {
		k8s.Value, k8s.From = v, "K8s.server.version (checked by the recipe's K8s.server.version constraint)"
	} else {
		k8s.Why = "no K8s.server.version (take the snapshot with --kubeconfig)"
	}
	out = append(out, k8s)

	out = append(out, Derivation{Criterion: "intent", Why: "a snapshot does not say what the cluster is for; pass --intent training or inference"})
	return q, out
}
