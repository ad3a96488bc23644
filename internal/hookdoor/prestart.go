package hookdoor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/door"
	"github.com/nvbind/nvbind/internal/hook"
	"github.com/nvbind/nvbind/internal/oci"
)

// Prestart is the door for engines that keep their runtime and call a
// prestart (or createRuntime) hook: dockerd's `--gpus`, CRI-O and Podman
// hooks.d. The runtime has made the container's namespaces and mounts and
// stopped before pivot_root; the hook computes the same edits nvbind-runtime
// would have written into config.json and applies them into the created
// container: device nodes in its /dev, the device cgroup opened for them,
// driver files bind-mounted at their container paths inside its mount
// namespace, then the spec's createContainer hooks (ld cache, links, modes)
// run in that namespace. What a created container cannot take any more (its
// environment, rlimits) is logged, not applied.
func Prestart(stateIn io.Reader, cfg *config.Config, log *logrus.Logger) error {
	raw, err := readLimited(stateIn, hook.MaxStateSize, "container state on stdin")
	if err != nil {
		return err
	}
	state, err := hook.ReadState(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	specPath := filepath.Join(state.Bundle, oci.SpecFile)
	data, err := oci.ReadSpec(specPath)
	if errors.Is(err, oci.ErrTooLarge) {
		// Too large to edit, but only a GPU request needs editing (as
		// nvbind-runtime decides).
		if may, ferr := oci.FileMayRequest(specPath, cfg.AnnotationPrefixes()); ferr == nil && !may {
			return nil
		}
	}
	if err != nil {
		return err
	}
	res, err := door.Edit(door.Call{Door: door.Prestart, ID: state.ID, Bundle: state.Bundle, Spec: data, Source: "bundle " + state.Bundle}, cfg, log)
	if err != nil || res == nil {
		return err
	}
	if state.Pid <= 0 {
		return fmt.Errorf("container state on stdin has no pid (is this a prestart or createRuntime hook?)")
	}
	before, err := oci.ParseDocument(data)
	if err != nil {
		return err
	}
	p, err := planInto(before.Spec, res.Doc.Spec, state.Bundle, log)
	if err != nil {
		return err
	}
	return p.apply(state.Pid, raw, log)
}

// intoPlan is what a created container still needs from the edited spec.
type intoPlan struct {
	rootfs  string
	devices []rspec.LinuxDevice
	rules   []rspec.LinuxDeviceCgroup // the allow rules added
	all     []rspec.LinuxDeviceCgroup // every rule of the edited spec
	mounts  []rspec.Mount
	hooks   []rspec.Hook
}

// planInto compares the spec as the runtime created the container with
// the edited one.
func planInto(before, after *rspec.Spec, bundle string, log *logrus.Logger) (*intoPlan, error) {
	rootfs, err := hook.RootfsPath(bundle)
	if err != nil {
		return nil, err
	}
	if before.Linux != nil && strings.Contains(before.Linux.RootfsPropagation, "shared") {
		// A mount under a shared root would propagate to the host.
		return nil, fmt.Errorf("rootfsPropagation %q: GPUs are not injected at prestart into a container whose mounts propagate to the host", before.Linux.RootfsPropagation)
	}
	p := &intoPlan{rootfs: rootfs}
	have := map[string]bool{}
	for _, d := range linuxOf(before).Devices {
		have[d.Path] = true
	}
	for _, d := range linuxOf(after).Devices {
		if !have[d.Path] {
			p.devices = append(p.devices, d)
		}
	}
	p.all = rulesOf(after)
	for _, r := range p.all {
		if r.Allow && !containsRule(rulesOf(before), r) {
			p.rules = append(p.rules, r)
		}
	}
	for _, m := range after.Mounts {
		if containsMount(before.Mounts, m) {
			continue
		}
		if !oci.IsBind(m) {
			log.Warnf("prestart: mount %s (%s) not applied: only bind mounts can be added to a created container", m.Destination, m.Type)
			continue
		}
		p.mounts = append(p.mounts, m)
	}
	if after.Hooks != nil {
		var old rspec.Hooks
		if before.Hooks != nil {
			old = *before.Hooks
		}
		h := after.Hooks
		for _, stage := range [][2][]rspec.Hook{{old.Prestart, h.Prestart}, {old.CreateRuntime, h.CreateRuntime}, {old.CreateContainer, h.CreateContainer}} {
			for _, hk := range stage[1] {
				if !containsHook(stage[0], hk) {
					p.hooks = append(p.hooks, hk)
				}
			}
		}
		for _, hk := range h.StartContainer {
			if !containsHook(old.StartContainer, hk) {
				log.Warnf("prestart: startContainer hook %s not run", hk.Path)
			}
		}
	}
	if before.Process != nil && after.Process != nil {
		if added := newEntries(before.Process.Env, after.Process.Env); len(added) > 0 {
			log.Infof("prestart: environment not changed (the process is already set up): %s", strings.Join(added, " "))
		}
		if !reflect.DeepEqual(before.Process.Rlimits, after.Process.Rlimits) {
			log.Warnf("prestart: rlimits not changed (the process is already set up)")
		}
	}
	return p, nil
}

func linuxOf(s *rspec.Spec) *rspec.Linux {
	if s.Linux == nil {
		return &rspec.Linux{}
	}
	return s.Linux
}

func rulesOf(s *rspec.Spec) []rspec.LinuxDeviceCgroup {
	if s.Linux == nil || s.Linux.Resources == nil {
		return nil
	}
	return s.Linux.Resources.Devices
}

func containsRule(rules []rspec.LinuxDeviceCgroup, r rspec.LinuxDeviceCgroup) bool {
	for _, o := range rules {
		if reflect.DeepEqual(o, r) {
			return true
		}
	}
	return false
}

func containsMount(mounts []rspec.Mount, m rspec.Mount) bool {
	for _, o := range mounts {
		if reflect.DeepEqual(o, m) {
			return true
		}
	}
	return false
}

func containsHook(hooks []rspec.Hook, h rspec.Hook) bool {
	for _, o := range hooks {
		if reflect.DeepEqual(o, h) {
			return true
		}
	}
	return false
}

func newEntries(before, after []string) []string {
	have := map[string]bool{}
	for _, e := range before {
		have[e] = true
	}
	var out []string
	for _, e := range after {
		if !have[e] {
			out = append(out, e)
		}
	}
	return out
}

// source is a driver file or directory cloned from the host as a detached
// mount, ready to be attached inside the container.
type source struct {
	m     rspec.Mount
	tree  *os.File
	isDir bool
}

func (p *intoPlan) apply(pid int, state []byte, log *logrus.Logger) error {
	if err := sameUserNamespace(pid); err != nil {
		return err
	}
	// Everything taken from the host is opened before entering the
	// container's namespace, where host paths may mean something else.
	var sources []source
	defer func() {
		for _, s := range sources {
			s.tree.Close()
		}
	}()
	for _, m := range p.mounts {
		s, err := cloneSource(m)
		if err != nil {
			return err
		}
		sources = append(sources, s)
	}
	if err := allowDevices(pid, p.rules, p.all); err != nil {
		return err
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("container process %d: %w", pid, err)
	}
	defer unix.Close(pidfd)
	return inMountNamespace(pidfd, func() error {
		root, err := hook.OpenRoot(p.rootfs)
		if err != nil {
			return err
		}
		defer root.Close()
		for _, d := range p.devices {
			if err := root.Mknod(d); err != nil {
				return fmt.Errorf("device %s: %w", d.Path, err)
			}
		}
		for _, s := range sources {
			if err := root.Attach(s.tree, s.m.Destination, s.isDir); err != nil {
				return fmt.Errorf("mount %s: %w", s.m.Destination, err)
			}
		}
		for _, h := range p.hooks {
			if err := runHook(h, state); err != nil {
				return err
			}
		}
		log.Debugf("prestart: %d devices, %d mounts, %d hooks applied into %s", len(p.devices), len(sources), len(p.hooks), p.rootfs)
		return nil
	})
}

// sameUserNamespace refuses a container with a user namespace of its own:
// device nodes made for it would be unusable (its /dev is nodev to the
// host's root) and its ids are mapped.
func sameUserNamespace(pid int) error {
	var self, other unix.Stat_t
	if err := unix.Stat("/proc/self/ns/user", &self); err != nil {
		return fmt.Errorf("user namespace: %w", err)
	}
	if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/user", pid), &other); err != nil {
		return fmt.Errorf("container process %d: %w", pid, err)
	}
	if self.Ino != other.Ino || self.Dev != other.Dev {
		return errors.New("the container has its own user namespace: the prestart hook cannot add GPUs to it (use the precreate hook or nvbind-runtime)")
	}
	return nil
}

// cloneSource clones the host file or tree m.Source as a detached mount
// with m's read-only, nosuid, nodev and noexec options set on it.
func cloneSource(m rspec.Mount) (source, error) {
	flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC)
	var attr unix.MountAttr
	for _, o := range m.Options {
		switch o {
		case "rbind":
			flags |= unix.AT_RECURSIVE
		case "ro":
			attr.Attr_set |= unix.MOUNT_ATTR_RDONLY
		case "nosuid":
			attr.Attr_set |= unix.MOUNT_ATTR_NOSUID
		case "nodev":
			attr.Attr_set |= unix.MOUNT_ATTR_NODEV
		case "noexec":
			attr.Attr_set |= unix.MOUNT_ATTR_NOEXEC
		}
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, m.Source, flags)
	if err != nil {
		return source{}, fmt.Errorf("mount %s: open %s: %w", m.Destination, m.Source, err)
	}
	f := os.NewFile(uintptr(fd), m.Source)
	if attr.Attr_set != 0 {
		setFlags := uint(unix.AT_EMPTY_PATH)
		if flags&unix.AT_RECURSIVE != 0 {
			setFlags |= unix.AT_RECURSIVE
		}
		if err := unix.MountSetattr(fd, "", setFlags, &attr); err != nil {
			f.Close()
			return source{}, fmt.Errorf("mount %s: set options on %s: %w", m.Destination, m.Source, err)
		}
	}
	var st unix.Stat_t
	err = unix.Fstat(int(f.Fd()), &st)
	if err != nil {
		f.Close()
		return source{}, err
	}
	return source{m: m, tree: f, isDir: st.Mode&unix.S_IFMT == unix.S_IFDIR}, nil
}

// inMountNamespace runs fn on a thread of its own that has joined the
// mount namespace of pidfd's process. setns(CLONE_NEWNS) needs a thread
// that shares no filesystem context, which unshare(CLONE_FS) gives this
// one. The thread is never unlocked, so it exits with the goroutine and no
// other goroutine ever runs in the container's namespace; the Go runtime
// starts new threads from a clean template thread, never from this one.
func inMountNamespace(pidfd int, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("unshare filesystem context: %w", err)
			return
		}
		if err := unix.Setns(pidfd, unix.CLONE_NEWNS); err != nil {
			errc <- fmt.Errorf("join the container's mount namespace: %w", err)
			return
		}
		unix.Umask(0) // modes are set exactly as the spec says
		errc <- fn()
	}()
	return <-errc
}

// hookTimeout bounds a spec hook without a timeout of its own.
const hookTimeout = 30 * time.Second

// runHook runs a hook the CDI edits added, as the runtime would have run
// it (its args, its env, the state on stdin), but from this thread, so it
// starts inside the container's mount namespace and sees the mounts made
// there.
func runHook(h rspec.Hook, state []byte) error {
	timeout := hookTimeout
	if h.Timeout != nil && *h.Timeout > 0 {
		timeout = time.Duration(*h.Timeout) * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.Path)
	cmd.Args = h.Args
	if len(cmd.Args) == 0 {
		cmd.Args = []string{h.Path}
	}
	cmd.Env = h.Env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.Stdin = bytes.NewReader(state)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		return fmt.Errorf("hook %s %s: %v: %s", h.Path, strings.Join(h.Args[min(1, len(h.Args)):], " "), err, msg)
	}
	return nil
}
