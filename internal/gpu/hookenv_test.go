package gpu_test

import (
	"slices"
	"testing"

	"github.com/nvbind/nvbind/internal/gpu"
	"github.com/nvbind/nvbind/internal/hook"
)

// TestHookEnvIsTheHooksClean: the env the specs give nvbind-hook is one
// it runs in without re-executing itself.
func TestHookEnvIsTheHooksClean(t *testing.T) {
	if !slices.Equal(gpu.HookEnv, hook.Env) {
		t.Fatalf("gpu.HookEnv %q != hook.Env %q", gpu.HookEnv, hook.Env)
	}
}
