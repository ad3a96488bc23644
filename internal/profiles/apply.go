package profiles

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/moby/sys/capability"
	"github.com/moby/sys/userns"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"tags.cncf.io/container-device-interface/pkg/cdi"
)

// shmPath is where the container's POSIX shared memory lives.
const shmPath = "/dev/shm"

// Apply edits spec with r: env (a variable the container already sets keeps
// the container's value), mounts and device nodes with their cgroup rules
// (through the CDI library), the /dev/shm size and rlimits. It returns notes
// on what it left alone. spec is only changed when Apply succeeds up to
// the CDI step; callers write the spec back only on success.
func (r *Resolved) Apply(spec *rspec.Spec) ([]string, error) {
	var notes []string
	edits := r.Edits
	edits.Env = nil
	for _, kv := range r.Edits.Env {
		name, _, _ := strings.Cut(kv, "=")
		if v, ok := lookupEnv(spec, name); ok {
			notes = append(notes, fmt.Sprintf("container sets %s=%s; profile %s's value not applied", name, v, r.Name))
			continue
		}
		edits.Env = append(edits.Env, kv)
	}
	// The CDI library fills device majors and minors from the host nodes.
	// Copy the nodes so the Resolved stays reusable.
	edits.DeviceNodes = nil
	for _, d := range r.Edits.DeviceNodes {
		c := *d
		edits.DeviceNodes = append(edits.DeviceNodes, &c)
	}
	ce := &cdi.ContainerEdits{ContainerEdits: &edits}
	if err := ce.Validate(); err != nil {
		return nil, fmt.Errorf("profile %s: %w", r.Name, err)
	}
	if err := ce.Apply(spec); err != nil {
		return nil, fmt.Errorf("profile %s: %w", r.Name, err)
	}
	if r.ShmSize > 0 {
		if note := setShmSize(spec, r.ShmSize); note != "" {
			notes = append(notes, note)
		}
	}
	if len(r.Rlimits) > 0 {
		if spec.Process == nil {
			spec.Process = &rspec.Process{}
		}
		for _, rl := range r.Rlimits {
			rl, note := clampRlimit(rl)
			if note != "" {
				notes = append(notes, note)
			}
			spec.Process.Rlimits = setRlimit(spec.Process.Rlimits, rl)
		}
	}
	return notes, nil
}

func lookupEnv(spec *rspec.Spec, name string) (string, bool) {
	if spec.Process == nil {
		return "", false
	}
	for i := len(spec.Process.Env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(spec.Process.Env[i], "="); ok && k == name {
			return v, true
		}
	}
	return "", false
}

var sizeOption = lazyRegexp(`^size=`)

// setShmSize sets the size= option of the /dev/shm tmpfs, adding the mount
// when there is none. A bind-mounted /dev/shm belongs to the engine (Docker
// and Podman make their own, --ipc=host shares the host's): it is left
// alone and reported.
func setShmSize(spec *rspec.Spec, size int64) string {
	opt := "size=" + strconv.FormatInt(size, 10)
	for i := range spec.Mounts {
		m := &spec.Mounts[i]
		if m.Destination != shmPath {
			continue
		}
		if m.Type != "tmpfs" || contains(m.Options, "bind") || contains(m.Options, "rbind") {
			return fmt.Sprintf("/dev/shm is a bind mount from %s: its size is the engine's (use --shm-size=%d)", m.Source, size)
		}
		out := m.Options[:0:0]
		for _, o := range m.Options {
			if !sizeOption().MatchString(o) {
				out = append(out, o)
			}
		}
		m.Options = append(out, opt)
		return ""
	}
	spec.Mounts = append(spec.Mounts, rspec.Mount{
		Destination: shmPath,
		Type:        "tmpfs",
		Source:      "shm",
		Options:     []string{"nosuid", "noexec", "nodev", "mode=1777", opt},
	})
	return ""
}

// rlimitResources maps OCI rlimit types to setrlimit resources.
var rlimitResources = map[string]int{
	"RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU, "RLIMIT_DATA": unix.RLIMIT_DATA,
	"RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS, "RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK,
	"RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE,
	"RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS, "RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING, "RLIMIT_STACK": unix.RLIMIT_STACK,
}

// hostRlimit returns this process's hard limit for an OCI rlimit type
// and whether it may raise it. The low-level runtime runs with the same
// limits and capabilities, so a hard limit above ours would make it fail
// to start the container.
var hostRlimit = func(typ string) (hard uint64, canRaise bool, err error) {
	res, ok := rlimitResources[typ]
	if !ok {
		return 0, false, fmt.Errorf("unknown rlimit %s", typ)
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(res, &lim); err != nil {
		return 0, false, err
	}
	return lim.Max, canRaiseRlimits(), nil
}

// canRaiseRlimits: raising a hard limit needs CAP_SYS_RESOURCE in the
// initial user namespace.
func canRaiseRlimits() bool {
	if userns.RunningInUserNS() {
		return false
	}
	caps, err := capability.NewPid2(0)
	if err != nil || caps.Load() != nil {
		return false
	}
	return caps.Get(capability.EFFECTIVE, capability.CAP_SYS_RESOURCE)
}

// clampRlimit lowers a limit this host cannot grant to the most it can,
// with a note, rather than let the container fail to start.
func clampRlimit(rl rspec.POSIXRlimit) (rspec.POSIXRlimit, string) {
	hard, canRaise, err := hostRlimit(rl.Type)
	if err != nil || canRaise || rl.Hard <= hard {
		return rl, ""
	}
	want := rl.Hard
	rl.Hard = hard
	if rl.Soft > hard {
		rl.Soft = hard
	}
	return rl, fmt.Sprintf("%s capped at %s: asked for %s, but the runtime lacks CAP_SYS_RESOURCE to raise its hard limit", rl.Type, limitString(hard), limitString(want))
}

func limitString(v uint64) string {
	if v == unix.RLIM_INFINITY {
		return "unlimited"
	}
	return strconv.FormatUint(v, 10)
}

func setRlimit(list []rspec.POSIXRlimit, rl rspec.POSIXRlimit) []rspec.POSIXRlimit {
	for i := range list {
		if list[i].Type == rl.Type {
			list[i] = rl
			return list
		}
	}
	return append(list, rl)
}
