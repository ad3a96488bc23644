package profiles

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

func gibs(n ...float64) []uint64 {
	out := make([]uint64, len(n))
	for i, g := range n {
		out[i] = uint64(g * (1 << 30))
	}
	return out
}

// TestMemoryFit checks the estimate and the placement for every size
// class and precision on 24, 48, 80 and 141 GiB GPUs at the defaults
// (context 8192, parallel and KV cache auto, flash attention on). The
// expected GiB are worked out by hand from the formula in docs/profiles.md:
// weights × 1.05 + KV (1, 1.5, 2, 2.5 GiB per 8192-token f16 sequence for
// the four classes) + 1 GiB.
func TestMemoryFit(t *testing.T) {
	type want struct {
		parallel int
		kv       string
		need     float64 // GiB, one decimal; for errors the smallest configuration
		fits     bool
	}
	no := func(need float64) want { return want{1, "q4_0", need, false} }
	f16 := func(p int, need float64) want { return want{p, "f16", need, true} }
	tests := []struct {
		size, precision string
		gpu             map[float64]want
	}{
		{"8b", "fp16", map[float64]want{24: f16(4, 20.6), 48: f16(4, 20.6), 80: f16(4, 20.6), 141: f16(4, 20.6)}},
		{"8b", "q8", map[float64]want{24: f16(4, 13.3), 48: f16(4, 13.3), 80: f16(4, 13.3), 141: f16(4, 13.3)}},
		{"8b", "q4", map[float64]want{24: f16(4, 9.7), 48: f16(4, 9.7), 80: f16(4, 9.7), 141: f16(4, 9.7)}},
		{"14b", "fp16", map[float64]want{24: no(28.8), 48: f16(4, 34.4), 80: f16(4, 34.4), 141: f16(4, 34.4)}},
		{"14b", "q8", map[float64]want{24: f16(4, 21.5), 48: f16(4, 21.5), 80: f16(4, 21.5), 141: f16(4, 21.5)}},
		{"14b", "q4", map[float64]want{24: f16(4, 15.3), 48: f16(4, 15.3), 80: f16(4, 15.3), 141: f16(4, 15.3)}},
		{"34b", "fp16", map[float64]want{24: no(68.0), 48: no(68.0), 80: f16(4, 75.5), 141: f16(4, 75.5)}},
		{"34b", "q8", map[float64]want{24: no(36.8), 48: f16(4, 44.3), 80: f16(4, 44.3), 141: f16(4, 44.3)}},
		{"34b", "q4", map[float64]want{24: f16(1, 23.2), 48: f16(4, 29.2), 80: f16(4, 29.2), 141: f16(4, 29.2)}},
		{"70b", "fp16", map[float64]want{24: no(138.5), 48: no(138.5), 80: no(138.5), 141: f16(1, 140.4)}},
		{"70b", "q8", map[float64]want{24: no(74.4), 48: no(74.4), 80: f16(2, 78.7), 141: f16(4, 83.7)}},
		{"70b", "q4", map[float64]want{24: no(43.1), 48: f16(2, 47.5), 80: f16(4, 52.5), 141: f16(4, 52.5)}},
	}
	for _, tt := range tests {
		for _, size := range []float64{24, 48, 80, 141} {
			w := tt.gpu[size]
			t.Run(fmt.Sprintf("%s-%s-%vGiB", tt.size, tt.precision, size), func(t *testing.T) {
				m, err := parseModel("", tt.size, tt.precision)
				if err != nil {
					t.Fatal(err)
				}
				in := ollamaInput{Model: m, Context: 8192, FlashAttention: true, KeepAlive: "-1", MaxLoaded: 1,
					GPUMemory: gibs(size), MemorySource: "test"}
				got, err := tuneOllama(in)
				if !w.fits {
					if err == nil {
						t.Fatalf("fits (%d × %s), want an error", got.Fit.Parallel, got.Fit.KVCacheType)
					}
					wantMsg := fmt.Sprintf("needs about %.1f GiB", w.need)
					if !strings.Contains(err.Error(), wantMsg) || !strings.Contains(err.Error(), fmt.Sprintf("have %.1f GiB", size)) {
						t.Errorf("error %q does not say %q and what the GPUs have", err, wantMsg)
					}
					// With allow-overcommit the same model starts, with a warning.
					in.AllowOver = true
					got, err = tuneOllama(in)
					if err != nil || len(got.Warnings) == 0 || got.Fit.Fits {
						t.Errorf("allow-overcommit: err %v, warnings %v, fits %v", err, got.Warnings, got.Fit.Fits)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				f := got.Fit
				if f.Parallel != w.parallel || f.KVCacheType != w.kv || f.Spread || !f.Fits {
					t.Errorf("got %d × %s (spread %v, fits %v), want %d × %s on one GPU", f.Parallel, f.KVCacheType, f.Spread, f.Fits, w.parallel, w.kv)
				}
				if g := math.Round(float64(f.NeedBytes)/(1<<30)*10) / 10; g != w.need {
					t.Errorf("need %.1f GiB, want %.1f", g, w.need)
				}
				env := map[string]string{}
				for _, kv := range got.Env {
					env[kv[0]] = kv[1]
				}
				wantEnv := map[string]string{
					"OLLAMA_CONTEXT_LENGTH": "8192", "OLLAMA_NUM_PARALLEL": fmt.Sprint(w.parallel),
					"OLLAMA_MAX_LOADED_MODELS": "1", "OLLAMA_FLASH_ATTENTION": "1",
					"OLLAMA_KV_CACHE_TYPE": w.kv, "OLLAMA_KEEP_ALIVE": "-1",
				}
				if fmt.Sprint(env) != fmt.Sprint(wantEnv) {
					t.Errorf("env %v, want %v", env, wantEnv)
				}
			})
		}
	}
}

func TestMemoryFitPlacement(t *testing.T) {
	tests := []struct {
		name     string
		model    string
		gpus     []uint64
		parallel int
		kv       string
		fa       bool
		want     string // "P×KV spread" or an error substring
	}{
		{"70b q4 over two 24 GiB GPUs", "llama3.1:70b", gibs(24, 24), 0, "", true, "1×f16 spread"},
		{"70b fp16 over two 80 GiB GPUs", "llama3.1:70b-instruct-fp16", gibs(80, 80), 0, "", true, "4×f16 spread"},
		{"fits on the larger of two", "qwen2.5:32b", gibs(24, 48), 0, "", true, "4×f16 one"},
		{"70b q4 on four 24 GiB", "llama3.1:70b", gibs(24, 24, 24, 24), 0, "", true, "4×f16 spread"},
		{"kv falls back to q8_0", "llama3.1:70b", gibs(44), 0, "", true, "1×q8_0 one"},
		{"kv falls back to q4_0", "llama3.1:70b", gibs(43.2), 0, "", true, "1×q4_0 one"},
		{"no flash attention: f16 only", "llama3.1:70b", gibs(43.5), 0, "", false, "needs about 45.0 GiB"},
		{"explicit parallel too big", "llama3.1:70b", gibs(48), 4, "f16", true, "needs about 52.5 GiB"},
		{"explicit parallel and kv", "llama3.1:70b", gibs(48), 4, "q8_0", true, "4×q8_0 one"},
		{"quantized kv needs flash attention", "llama3.1:8b", gibs(80), 0, "q8_0", false, "needs flash-attention=true"},
		{"no GPU at all", "llama3.1:8b", []uint64{}, 0, "", true, "have 0.0 GiB (no GPU)"},
		{"memory unknown", "llama3.1:8b", nil, 0, "", true, "1×f16 one unknown"},
		{"405b scales weights", "llama3.1:405b", gibs(141, 141, 141, 141, 141, 141, 141, 141), 0, "", true, "4×f16 spread"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parseModel(tt.model, "", "")
			if err != nil {
				t.Fatal(err)
			}
			got, err := tuneOllama(ollamaInput{Model: m, Context: 8192, Parallel: tt.parallel, KVCache: tt.kv,
				FlashAttention: tt.fa, KeepAlive: "5m", MaxLoaded: 1, GPUMemory: tt.gpus, MemorySource: "test"})
			if err != nil {
				if !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("error %q, want %q", err, tt.want)
				}
				return
			}
			where := "one"
			if got.Fit.Spread {
				where = "spread"
			}
			s := fmt.Sprintf("%d×%s %s", got.Fit.Parallel, got.Fit.KVCacheType, where)
			if got.Fit.MemoryUnknown {
				s += " unknown"
				if len(got.Warnings) == 0 {
					t.Error("unknown memory gives no warning")
				}
			}
			if s != tt.want {
				t.Errorf("got %s, want %s", s, tt.want)
			}
			spread := false
			for _, kv := range got.Env {
				if kv[0] == "OLLAMA_SCHED_SPREAD" {
					spread = kv[1] == "1"
				}
			}
			if spread != got.Fit.Spread {
				t.Errorf("OLLAMA_SCHED_SPREAD set %v, spread %v", spread, got.Fit.Spread)
			}
		})
	}
}

func TestParseModel(t *testing.T) {
	tests := []struct {
		model, size, precision string
		class, prec            string
		billions               float64
		err                    string
	}{
		{model: "llama3.1:8b", class: "7-8B", prec: "q4", billions: 8},
		{model: "llama3.1:70b-instruct-q8_0", class: "70B+", prec: "q8", billions: 70},
		{model: "qwen2.5:14b-instruct-fp16", class: "13-14B", prec: "fp16", billions: 14},
		{model: "qwen2.5:32b-instruct-q4_K_M", class: "30-34B", prec: "q4", billions: 34},
		{model: "codellama:13b", class: "13-14B", prec: "q4", billions: 14},
		{model: "mixtral:8x7b", class: "70B+", prec: "q4", billions: 70},
		{model: "qwen2.5:1.5b", class: "7-8B", prec: "q4", billions: 8},
		{model: "llama3.1:405b", class: "70B+", prec: "q4", billions: 405},
		{model: "mymodel", size: "34b", precision: "q8", class: "30-34B", prec: "q8", billions: 34},
		{size: "70b", precision: "fp16", class: "70B+", prec: "fp16", billions: 70},
		{model: "llama3.1", err: "cannot tell the size"},
		{err: "model or size is required"},
		{model: "llama3.1:8b-instruct-q8_0", precision: "q4", err: "disagrees"},
		{model: "llama3.1:8b", size: "70b", err: "disagrees"},
		{size: "big", err: "not a size"},
	}
	for _, tt := range tests {
		t.Run(tt.model+"/"+tt.size+"/"+tt.precision, func(t *testing.T) {
			m, err := parseModel(tt.model, tt.size, tt.precision)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Class.Name != tt.class || m.Precision != tt.prec || m.Billions != tt.billions {
				t.Errorf("got %s %s %gB, want %s %s %gB", m.Class.Name, m.Precision, m.Billions, tt.class, tt.prec, tt.billions)
			}
		})
	}
}
