package inject

import (
	"slices"

	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/nvbind/nvbind/internal/gpu"
)

// hookbatch.go folds a container's nvbind-hook createContainer hooks (one
// per task and per CDI device: links, loader cache, modes) into one
// `nvbind-hook batch` hook. Each hook is a process start on the create's
// critical path, and most of what nvbind added to a GPU create.

// batchable are the nvbind-hook subcommands a batch runs, in the order it
// runs them: links first, so the loader cache sees them.
var batchable = []string{"create-symlinks", "update-ldcache", "chmod"}

// batchHooks replaces the nvbind-hook hooks of spec's createContainer
// list by one batch hook at the first one's place, with the explicit
// minimal environment of gpu.HookEnv (specs made before nvbind set it get
// it too). Hooks of another program, or with other arguments, stay as
// they are.
func batchHooks(spec *rspec.Spec) {
	if spec.Hooks == nil {
		return
	}
	hooks := spec.Hooks.CreateContainer
	path, first := "", -1
	var steps [][]string
	var timeout *int
	allTimed := true
	kept := hooks[:0:0]
	for _, h := range hooks {
		ok := len(h.Args) >= 2 && h.Args[0] == "nvbind-hook" && slices.Contains(batchable, h.Args[1]) &&
			(path == "" || h.Path == path)
		if !ok {
			kept = append(kept, h)
			continue
		}
		if first < 0 {
			path, first = h.Path, len(kept)
			kept = append(kept, rspec.Hook{})
		}
		steps = append(steps, h.Args[1:])
		if h.Timeout == nil {
			allTimed = false
		} else if allTimed {
			t := *h.Timeout
			if timeout != nil {
				t += *timeout
			}
			timeout = &t
		}
	}
	if first < 0 {
		return
	}
	slices.SortStableFunc(steps, func(a, b []string) int {
		return slices.Index(batchable, a[0]) - slices.Index(batchable, b[0])
	})
	args := []string{"nvbind-hook", "batch"}
	for i, s := range steps {
		if i > 0 {
			args = append(args, "--and")
		}
		args = append(args, s...)
	}
	if !allTimed {
		timeout = nil
	}
	kept[first] = rspec.Hook{Path: path, Args: args, Env: slices.Clone(gpu.HookEnv), Timeout: timeout}
	spec.Hooks.CreateContainer = kept
}
