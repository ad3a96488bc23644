package gpu

import (
	"strconv"
	"strings"
)

// facts.go derives what NVML would report from what is cheap to read: the
// CUDA driver API version from the driver branch, and a GPU's compute
// capability and brand from its model name. These serve the procfs path
// and the runtime's requirement checks; NVML's answers win where present.

// cudaByBranch maps a driver branch (the first number of the version) to
// the CUDA version its libcuda reports (what nvidia-smi shows as "CUDA
// Version"). Newest first.
var cudaByBranch = []struct {
	branch int
	cuda   string
}{
	{590, "13.1"}, {580, "13.0"}, {575, "12.9"}, {570, "12.8"}, {565, "12.7"},
	{560, "12.6"}, {555, "12.5"}, {550, "12.4"}, {545, "12.3"}, {535, "12.2"},
	{530, "12.1"}, {525, "12.0"}, {520, "11.8"}, {515, "11.7"}, {510, "11.6"},
	{495, "11.5"}, {470, "11.4"}, {465, "11.3"}, {460, "11.2"}, {455, "11.1"},
	{450, "11.0"}, {440, "10.2"}, {418, "10.1"}, {410, "10.0"},
}

// CUDAVersionForDriver returns the CUDA version a driver supports, from its
// branch; "" when the branch is unknown (older than 410, or newer than the
// newest branch this table knows, which must not be guessed low).
func CUDAVersionForDriver(driver string) string {
	major, _, _ := strings.Cut(driver, ".")
	b, err := strconv.Atoi(major)
	if err != nil || b > cudaByBranch[0].branch+9 {
		return ""
	}
	for _, e := range cudaByBranch {
		if b >= e.branch {
			return e.cuda
		}
	}
	return ""
}

// archRules maps model-name tokens to compute capability. A rule matches
// when the model has a token equal to (or, for series ending in "*",
// starting with) Token, preceded by Prev when Prev is set. First match
// wins, so more specific rules come first.
var archRules = []struct{ prev, token, cc string }{
	{"", "GB300", "10.3"}, {"", "B300", "10.3"},
	{"", "GB200", "10.0"}, {"", "B200", "10.0"}, {"", "B100", "10.0"},
	{"RTX", "50*", "12.0"}, {"", "Blackwell", "12.0"},
	{"", "GH200", "9.0"}, {"", "H200", "9.0"}, {"", "H100", "9.0"}, {"", "H800", "9.0"}, {"", "H20", "9.0"},
	{"", "L40S", "8.9"}, {"", "L40", "8.9"}, {"", "L20", "8.9"}, {"", "L4", "8.9"}, {"RTX", "40*", "8.9"}, {"", "Ada", "8.9"},
	{"", "A100", "8.0"}, {"", "A800", "8.0"}, {"", "A30", "8.0"},
	{"", "A40", "8.6"}, {"", "A16", "8.6"}, {"", "A10", "8.6"}, {"", "A10G", "8.6"}, {"", "A2", "8.6"},
	{"RTX", "A*", "8.6"}, {"RTX", "30*", "8.6"},
	{"", "T4", "7.5"}, {"RTX", "20*", "7.5"}, {"Quadro", "RTX", "7.5"}, {"TITAN", "RTX", "7.5"},
	{"", "V100", "7.0"}, {"TITAN", "V", "7.0"},
	{"", "P100", "6.0"}, {"", "P40", "6.1"}, {"", "P4", "6.1"}, {"GTX", "10*", "6.1"},
}

func modelTokens(model string) []string {
	return strings.FieldsFunc(model, func(r rune) bool { return r == ' ' || r == '-' || r == '_' })
}

// ArchForModel returns the compute capability of a GPU model name such as
// "NVIDIA A100-SXM4-80GB" ("8.0"); "" when the model is not known.
func ArchForModel(model string) string {
	toks := modelTokens(model)
	for _, r := range archRules {
		for i, t := range toks {
			match := strings.EqualFold(t, r.token)
			if p, ok := strings.CutSuffix(r.token, "*"); ok {
				match = len(t) > len(p) && strings.EqualFold(t[:len(p)], p)
			}
			if match && (r.prev == "" || i > 0 && strings.EqualFold(toks[i-1], r.prev)) {
				return r.cc
			}
		}
	}
	return ""
}

// BrandForModel returns the NVML brand name (as NVIDIA_REQUIRE_BRAND spells
// it) a model name implies; "" when the name is empty.
func BrandForModel(model string) string {
	m := strings.ToLower(model)
	switch {
	case m == "":
		return ""
	case strings.Contains(m, "tesla"):
		return "tesla"
	case strings.Contains(m, "quadro rtx"):
		return "quadrortx"
	case strings.Contains(m, "quadro"):
		return "quadro"
	case strings.Contains(m, "geforce rtx"):
		return "geforcertx"
	case strings.Contains(m, "geforce"):
		return "geforce"
	case strings.Contains(m, "titan rtx"):
		return "titanrtx"
	case strings.Contains(m, "titan"):
		return "titan"
	case strings.Contains(m, "nvidia rtx"), strings.HasPrefix(m, "rtx"):
		return "nvidiartx"
	default:
		return "nvidia"
	}
}
