package gpu

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// require.go checks the NVIDIA_REQUIRE_* constraints images carry
// (NVIDIA_REQUIRE_CUDA="cuda>=12.4 brand=tesla,driver>=470,driver<471"):
// in one variable, space-separated alternatives are OR and comma-separated
// terms AND; separate variables are AND. NVIDIA_DISABLE_REQUIRE=true turns
// the checks off. An image with CUDA_VERSION but no NVIDIA_REQUIRE_CUDA
// requires cuda>=<CUDA_VERSION's major.minor>, as NVIDIA's runtime does.

// HostFacts are what requirements are checked against. On the runtime's
// hot path they come from procfs (ReadHostFacts), never from NVML:
//   - DriverVersion: the loaded kernel module's version (exact);
//   - CUDAVersion: from the driver branch (CUDAVersionForDriver; exact for
//     every branch in the table, "" for a branch newer than the table);
//   - Arch, Brand: per GPU, from the model name in
//     proc/driver/nvidia/gpus/*/information (ArchForModel, BrandForModel).
//
// A fact that is not known ("" or an empty list) is not checked: a term on
// it counts as met. Guessing would refuse containers on new hardware.
type HostFacts struct {
	DriverVersion string
	CUDAVersion   string
	// Arch is the compute capability of each GPU ("8.0").
	Arch []string
	// Brand is the NVML brand of each GPU ("nvidia", "tesla", "geforce").
	Brand []string
}

// ReadHostFacts reads the facts from procfs under root: one version file
// and one information file per GPU.
func ReadHostFacts(root string) (HostFacts, error) {
	inv, err := discoverProcfs(cleanRoot(root))
	if err != nil {
		return HostFacts{}, err
	}
	return FactsOf(inv), nil
}

// FactsOf gives the facts an Inventory holds (NVML's when it came from
// NVML).
func FactsOf(inv *Inventory) HostFacts {
	f := HostFacts{DriverVersion: inv.DriverVersion, CUDAVersion: inv.CUDAVersion}
	if f.CUDAVersion == "" {
		f.CUDAVersion = CUDAVersionForDriver(f.DriverVersion)
	}
	for _, g := range inv.GPUs {
		if g.ComputeCapability != "" {
			f.Arch = append(f.Arch, g.ComputeCapability)
		}
		if g.Brand != "" {
			f.Brand = append(f.Brand, g.Brand)
		}
	}
	return f
}

const requirePrefix = "NVIDIA_REQUIRE_"

// requirements returns the constraint variables of env (name -> value),
// nil when checks are disabled or there are none. A later entry for the
// same name wins, as with the OCI spec's env.
func requirements(env []string) map[string]string {
	vars := map[string]string{}
	for _, e := range env {
		if k, v, ok := strings.Cut(e, "="); ok {
			vars[k] = v
		}
	}
	if b, err := strconv.ParseBool(vars["NVIDIA_DISABLE_REQUIRE"]); err == nil && b {
		return nil
	}
	req := map[string]string{}
	for k, v := range vars {
		if strings.HasPrefix(k, requirePrefix) && strings.TrimSpace(v) != "" {
			req[k] = v
		}
	}
	if _, ok := req["NVIDIA_REQUIRE_CUDA"]; !ok {
		if mm := majorMinor(vars["CUDA_VERSION"]); mm != "" {
			req["CUDA_VERSION"] = "cuda>=" + mm
		}
	}
	return req
}

// HasRequirements reports whether env asks for any check, so the hot path
// reads host facts only when it must.
func HasRequirements(env []string) bool {
	return len(requirements(env)) > 0
}

// CheckRequirements checks every NVIDIA_REQUIRE_* variable of env against
// facts. The error names the first unmet (or malformed) variable, its
// value and what the host has.
func CheckRequirements(env []string, facts HostFacts) error {
	req := requirements(env)
	names := make([]string, 0, len(req))
	for k := range req {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		ok, keys, err := evalRequirement(req[name], facts)
		if err != nil {
			return fmt.Errorf("%s=%q: %w", name, req[name], err)
		}
		if !ok {
			return fmt.Errorf("unsatisfied requirement %s=%q: host has %s", name, req[name], facts.describe(keys))
		}
	}
	return nil
}

// evalRequirement evaluates one variable and returns the fact keys it used.
func evalRequirement(value string, facts HostFacts) (bool, map[string]bool, error) {
	keys := map[string]bool{}
	any := false
	for _, alt := range strings.Fields(value) {
		all := true
		for _, term := range strings.Split(alt, ",") {
			if term == "" {
				continue
			}
			c, err := parseConstraint(term)
			if err != nil {
				return false, keys, err
			}
			keys[c.key] = true
			met, err := c.met(facts)
			if err != nil {
				return false, keys, err
			}
			all = all && met
		}
		any = any || all
	}
	return any, keys, nil
}

type constraint struct{ key, op, value string }

var constraintOps = []string{">=", "<=", "==", "!=", "=", ">", "<"}

func parseConstraint(term string) (constraint, error) {
	for _, key := range []string{"cuda", "driver", "arch", "brand"} {
		if len(term) <= len(key) || !strings.EqualFold(term[:len(key)], key) {
			continue
		}
		rest := term[len(key):]
		for _, op := range constraintOps {
			if v, ok := strings.CutPrefix(rest, op); ok && v != "" {
				if key == "brand" && op != "=" && op != "==" && op != "!=" {
					return constraint{}, fmt.Errorf("brand constraint %q: only = and != compare brands", term)
				}
				if key != "brand" {
					if _, err := parseVersion(v); err != nil {
						return constraint{}, fmt.Errorf("constraint %q: %w", term, err)
					}
				}
				return constraint{key: key, op: op, value: v}, nil
			}
		}
	}
	return constraint{}, fmt.Errorf("invalid constraint %q (want cuda|driver|arch|brand, an operator and a value)", term)
}

// met reports whether the host meets the constraint; an unknown fact
// counts as met (see HostFacts).
func (c constraint) met(f HostFacts) (bool, error) {
	var have []string
	switch c.key {
	case "cuda":
		have = nonEmpty(f.CUDAVersion)
	case "driver":
		have = nonEmpty(f.DriverVersion)
	case "arch":
		have = f.Arch
	case "brand":
		for _, b := range f.Brand {
			ok := strings.EqualFold(b, c.value)
			if (c.op == "!=") == ok {
				return false, nil
			}
		}
		return true, nil
	}
	for _, h := range have {
		cmp, err := compareVersions(h, c.value)
		if err != nil {
			return false, fmt.Errorf("host %s %q: %w", c.key, h, err)
		}
		if !opHolds(c.op, cmp) {
			return false, nil
		}
	}
	return true, nil
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func opHolds(op string, cmp int) bool {
	switch op {
	case ">=":
		return cmp >= 0
	case "<=":
		return cmp <= 0
	case ">":
		return cmp > 0
	case "<":
		return cmp < 0
	case "!=":
		return cmp != 0
	default: // "=", "=="
		return cmp == 0
	}
}

func parseVersion(v string) ([]int, error) {
	parts := strings.Split(v, ".")
	out := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q is not a version", v)
		}
		out[i] = n
	}
	return out, nil
}

// compareVersions compares dotted versions numerically; missing parts are 0.
func compareVersions(a, b string) (int, error) {
	va, err := parseVersion(a)
	if err != nil {
		return 0, err
	}
	vb, err := parseVersion(b)
	if err != nil {
		return 0, err
	}
	for i := 0; i < len(va) || i < len(vb); i++ {
		x, y := 0, 0
		if i < len(va) {
			x = va[i]
		}
		if i < len(vb) {
			y = vb[i]
		}
		if x != y {
			if x < y {
				return -1, nil
			}
			return 1, nil
		}
	}
	return 0, nil
}

func majorMinor(v string) string {
	parts := strings.Split(strings.TrimSpace(v), ".")
	if len(parts) < 2 {
		return ""
	}
	mm := parts[0] + "." + parts[1]
	if _, err := parseVersion(mm); err != nil {
		return ""
	}
	return mm
}

func (f HostFacts) describe(keys map[string]bool) string {
	unknown := func(s string) string {
		if s == "" {
			return "unknown"
		}
		return s
	}
	var parts []string
	if keys["cuda"] {
		parts = append(parts, "CUDA "+unknown(f.CUDAVersion))
	}
	if keys["driver"] || keys["cuda"] {
		parts = append(parts, "driver "+unknown(f.DriverVersion))
	}
	if keys["arch"] {
		parts = append(parts, "arch "+unknown(strings.Join(f.Arch, ",")))
	}
	if keys["brand"] {
		parts = append(parts, "brand "+unknown(strings.Join(f.Brand, ",")))
	}
	return strings.Join(parts, ", ")
}
