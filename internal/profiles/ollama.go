package profiles

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The Ollama memory estimate (docs/profiles.md explains it):
//
//	need = weights × 1.05 + KV cache + 1 GiB per GPU used
//	weights  = parameters × bits per weight / 8
//	KV cache = context × parallel × layers × KV heads × (K dim + V dim) × bytes per element
//
// Parameters, layers and KV heads come from a representative model of the
// size class; bits per weight from the precision (Ollama's default q4 tags
// are Q4_K_M); bytes per KV element are Ollama's own (f16 2, q8_0 1,
// q4_0 0.5). The 5% and the 1 GiB cover the CUDA context, compute graph
// and allocator slack.

const gib = float64(1 << 30)

// sizeClass is a model size class and the shape used for its estimate.
type sizeClass struct {
	Name    string
	MaxB    float64 // largest parameter count (billions) in the class
	Params  float64 // billions used for the weights
	Layers  int
	KVHeads int
	HeadDim int // per K and per V
	Example string
}

var sizeClasses = []sizeClass{
	{"7-8B", 8.5, 8, 32, 8, 128, "Llama 3.1 8B"},
	{"13-14B", 14.9, 14, 48, 8, 128, "Qwen2.5 14B"},
	{"30-34B", 34.9, 34, 64, 8, 128, "Qwen2.5 32B"},
	{"70B+", math.Inf(1), 70, 80, 8, 128, "Llama 3.1 70B"},
}

// bitsPerWeight by precision parameter value.
var bitsPerWeight = map[string]float64{"fp16": 16, "q8": 8.5, "q4": 4.85}

// kvBytes per element by OLLAMA_KV_CACHE_TYPE.
var kvBytes = map[string]float64{"f16": 2, "q8_0": 1, "q4_0": 0.5}

// kvOrder is the order auto KV cache selection tries: quality first.
var kvOrder = []string{"f16", "q8_0", "q4_0"}

// parallelOrder is the order auto parallelism tries: throughput first.
var parallelOrder = []int{4, 2, 1}

const (
	overheadPerGPU = 1 << 30
	weightSlack    = 1.05
)

// Model is what the estimate needs to know about a model.
type Model struct {
	Name      string // the model or size parameter, for messages
	Class     sizeClass
	Billions  float64 // parameters, billions
	Precision string  // fp16, q8, q4
}

// Fit is the outcome of the memory estimate.
type Fit struct {
	Class         string   `json:"class"`
	Precision     string   `json:"precision"`
	Context       int      `json:"context"`
	Parallel      int      `json:"parallel"`
	KVCacheType   string   `json:"kvCacheType"`
	WeightsBytes  uint64   `json:"weightsBytes"`
	KVBytes       uint64   `json:"kvCacheBytes"`
	NeedBytes     uint64   `json:"needBytes"`
	GPUMemory     []uint64 `json:"gpuMemoryBytes,omitempty"`
	MemorySource  string   `json:"memorySource"`
	Spread        bool     `json:"spread"`
	Fits          bool     `json:"fits"`
	MemoryUnknown bool     `json:"memoryUnknown,omitempty"`
}

// weights returns the model's weight bytes.
func (m Model) weights() float64 {
	return m.Billions * 1e9 * bitsPerWeight[m.Precision] / 8
}

// kvCache returns the KV cache bytes for context × parallel tokens.
func (m Model) kvCache(context, parallel int, kvType string) float64 {
	c := m.Class
	perToken := float64(c.Layers*c.KVHeads*2*c.HeadDim) * kvBytes[kvType]
	return perToken * float64(context) * float64(parallel)
}

// need returns the bytes needed on gpus GPUs together.
func (m Model) need(context, parallel int, kvType string, gpus int) float64 {
	return m.weights()*weightSlack + m.kvCache(context, parallel, kvType) + float64(gpus)*overheadPerGPU
}

// placement says where the model goes on mem: one GPU (spread false),
// all of them (spread true), or nowhere (ok false).
func (m Model) placement(context, parallel int, kvType string, mem []uint64) (spread, ok bool) {
	if len(mem) == 0 {
		return false, false
	}
	var largest, total float64
	for _, b := range mem {
		total += float64(b)
		largest = math.Max(largest, float64(b))
	}
	if m.need(context, parallel, kvType, 1) <= largest {
		return false, true
	}
	if len(mem) > 1 && m.need(context, parallel, kvType, len(mem)) <= total {
		return true, true
	}
	return false, false
}

// modelSize finds the parameter count in an Ollama model name: the tag's
// "70b", "8x7b" or "1.5b" part (llama3.1:70b-instruct-q4_K_M).
var modelSize = lazyRegexp(`(?i)(?:^|[-:_])(?:(\d+)x)?(\d+(?:\.\d+)?)b(?:$|[-_])`)

// modelPrecision finds a quantization in a tag: fp16, q8_0, q4_K_M, ...
var modelPrecision = lazyRegexp(`(?i)(?:^|[-_:])(fp16|f16|bf16|q8_0|q4_[0-9a-z_]+)$`)

// parseModel reads the model class and precision from the parameters model,
// size and precision. An explicit parameter must agree with the tag.
func parseModel(model, size, precision string) (Model, error) {
	var billions float64
	tagPrecision := ""
	if model != "" {
		_, tag, _ := strings.Cut(model, ":")
		if tag == "" {
			tag = model
		}
		if m := modelSize().FindStringSubmatch(tag); m != nil {
			billions, _ = strconv.ParseFloat(m[2], 64)
			if m[1] != "" {
				experts, _ := strconv.ParseFloat(m[1], 64)
				billions *= experts
			}
		}
		if m := modelPrecision().FindStringSubmatch(tag); m != nil {
			switch p := strings.ToLower(m[1]); {
			case p == "fp16" || p == "f16" || p == "bf16":
				tagPrecision = "fp16"
			case p == "q8_0":
				tagPrecision = "q8"
			default:
				tagPrecision = "q4"
			}
		}
	}
	if size != "" {
		m := modelSize().FindStringSubmatch(size)
		if m == nil || m[1] != "" {
			return Model{}, fmt.Errorf("parameter size: %q is not a size like 8b, 14b, 34b or 70b", size)
		}
		b, _ := strconv.ParseFloat(m[2], 64)
		if billions != 0 && b != billions {
			return Model{}, fmt.Errorf("parameter size=%s disagrees with model %s (%gb)", size, model, billions)
		}
		billions = b
	}
	if billions == 0 {
		if model == "" {
			return Model{}, fmt.Errorf("parameter model or size is required (e.g. model=llama3.1:8b, size=70b)")
		}
		return Model{}, fmt.Errorf("cannot tell the size of model %q; add parameter size=8b|14b|34b|70b", model)
	}
	if precision == "" || precision == "auto" {
		precision = tagPrecision
		if precision == "" {
			precision = "q4" // Ollama's default tags are Q4_K_M
		}
	} else if tagPrecision != "" && tagPrecision != precision {
		return Model{}, fmt.Errorf("parameter precision=%s disagrees with model %s (%s)", precision, model, tagPrecision)
	}
	if _, ok := bitsPerWeight[precision]; !ok {
		return Model{}, fmt.Errorf("parameter precision: %q is not one of fp16, q8, q4", precision)
	}
	class := classFor(billions)
	weightsB := billions
	if weightsB < class.Params {
		weightsB = class.Params // estimate a class by its largest model
	}
	name := model
	if name == "" {
		name = size
	}
	return Model{Name: name, Class: class, Billions: weightsB, Precision: precision}, nil
}

func classFor(billions float64) sizeClass {
	for _, c := range sizeClasses {
		if billions <= c.MaxB {
			return c
		}
	}
	return sizeClasses[len(sizeClasses)-1]
}

// ollamaEnvNames is every variable the tuner may set (docs/profiles.md
// lists each; a test checks).
var ollamaEnvNames = []string{
	"OLLAMA_CONTEXT_LENGTH", "OLLAMA_NUM_PARALLEL", "OLLAMA_MAX_LOADED_MODELS", "OLLAMA_FLASH_ATTENTION",
	"OLLAMA_KV_CACHE_TYPE", "OLLAMA_KEEP_ALIVE", "OLLAMA_SCHED_SPREAD",
}

// ollamaInput is the tuner's view of the parameters.
type ollamaInput struct {
	Model          Model
	Context        int
	Parallel       int    // 0: auto
	KVCache        string // "" or auto: auto
	FlashAttention bool
	KeepAlive      string
	MaxLoaded      int
	AllowOver      bool
	GPUMemory      []uint64 // nil: unknown
	MemorySource   string
}

// ollamaChoice is what the tuner settles on.
type ollamaChoice struct {
	Fit      Fit
	Env      [][2]string // name, value in a stable order
	Warnings []string
}

// tuneOllama picks parallelism and KV cache type that fit, checks the fit
// and returns Ollama's environment.
func tuneOllama(in ollamaInput) (ollamaChoice, error) {
	m := in.Model
	if !in.FlashAttention && in.KVCache != "" && in.KVCache != "auto" && in.KVCache != "f16" {
		return ollamaChoice{}, fmt.Errorf("kv-cache=%s needs flash-attention=true (Ollama quantizes the KV cache only with flash attention)", in.KVCache)
	}
	kvs := kvOrder
	if in.KVCache != "" && in.KVCache != "auto" {
		kvs = []string{in.KVCache}
	} else if !in.FlashAttention {
		kvs = []string{"f16"}
	}
	pars := parallelOrder
	if in.Parallel > 0 {
		pars = []int{in.Parallel}
	}
	var out ollamaChoice
	f := Fit{Class: m.Class.Name, Precision: m.Precision, Context: in.Context, GPUMemory: in.GPUMemory, MemorySource: in.MemorySource}
	chosen := false
	if in.GPUMemory == nil {
		f.MemoryUnknown = true
		f.Parallel, f.KVCacheType = pars[len(pars)-1], kvs[0]
		out.Warnings = append(out.Warnings, "GPU memory unknown: fit check skipped; pass "+ParamAnnotationPrefix+"gpu-memory=<size per GPU> (e.g. 24GiB)")
		chosen = true
	}
	for _, kv := range kvs {
		for _, p := range pars {
			if chosen {
				break
			}
			if spread, ok := m.placement(in.Context, p, kv, in.GPUMemory); ok {
				f.Parallel, f.KVCacheType, f.Spread, f.Fits, chosen = p, kv, spread, true, true
			}
		}
	}
	gpusUsed := 1
	if !chosen {
		// Nothing fits: report the smallest configuration tried.
		f.Parallel, f.KVCacheType = pars[len(pars)-1], kvs[len(kvs)-1]
		gpusUsed = len(in.GPUMemory)
		f.Spread = len(in.GPUMemory) > 1
	} else if f.Spread {
		gpusUsed = len(in.GPUMemory)
	}
	f.WeightsBytes = uint64(m.weights())
	f.KVBytes = uint64(m.kvCache(in.Context, f.Parallel, f.KVCacheType))
	f.NeedBytes = uint64(m.need(in.Context, f.Parallel, f.KVCacheType, gpusUsed))
	out.Fit = f
	if !chosen {
		msg := fmt.Sprintf("model %s (%s class, %s, context %d × %d parallel, KV cache %s) needs about %s of GPU memory (weights %s + KV cache %s + overhead); the container's GPUs have %s (%s)",
			m.Name, m.Class.Name, m.Precision, in.Context, f.Parallel, f.KVCacheType, gibString(f.NeedBytes),
			gibString(f.WeightsBytes), gibString(f.KVBytes), gibString(sum(in.GPUMemory)), describeGPUs(in.GPUMemory, in.MemorySource))
		if !in.AllowOver {
			return ollamaChoice{}, fmt.Errorf("%s; use a smaller model or precision, a shorter context, more GPUs, or set %sallow-overcommit=true to let Ollama run layers on the CPU", msg, ParamAnnotationPrefix)
		}
		out.Warnings = append(out.Warnings, msg+"; allow-overcommit=true: Ollama will run some layers on the CPU")
	}
	fa := "0"
	if in.FlashAttention {
		fa = "1"
	}
	out.Env = [][2]string{
		{"OLLAMA_CONTEXT_LENGTH", strconv.Itoa(in.Context)},
		{"OLLAMA_NUM_PARALLEL", strconv.Itoa(f.Parallel)},
		{"OLLAMA_MAX_LOADED_MODELS", strconv.Itoa(in.MaxLoaded)},
		{"OLLAMA_FLASH_ATTENTION", fa},
		{"OLLAMA_KV_CACHE_TYPE", f.KVCacheType},
		{"OLLAMA_KEEP_ALIVE", in.KeepAlive},
	}
	if f.Spread {
		out.Env = append(out.Env, [2]string{"OLLAMA_SCHED_SPREAD", "1"})
	}
	return out, nil
}

func sum(v []uint64) uint64 {
	var t uint64
	for _, b := range v {
		t += b
	}
	return t
}

func gibString(b uint64) string {
	return strconv.FormatFloat(float64(b)/gib, 'f', 1, 64) + " GiB"
}

func describeGPUs(mem []uint64, source string) string {
	if len(mem) == 0 {
		return "no GPU"
	}
	parts := make([]string, len(mem))
	for i, b := range mem {
		parts[i] = gibString(b)
	}
	return fmt.Sprintf("%d GPU(s): %s, from %s", len(mem), strings.Join(parts, " + "), source)
}
