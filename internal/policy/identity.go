package policy

import (
	"os"
	"strconv"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tidwall/gjson"

	"github.com/nvbind/nvbind/internal/audit"
	"github.com/nvbind/nvbind/internal/request"
)

// CRI annotations: containerd's CRI plugin and CRI-O name the pod.
var (
	namespaceKeys = []string{"io.kubernetes.cri.sandbox-namespace", "io.kubernetes.pod.namespace"}
	podKeys       = []string{"io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name"}
)

// Identity is who asks: what the spec and the runtime's own process say.
// Under dockerd the spec does not say which user asked (the caller is the
// daemon, root).
type Identity struct {
	Namespace, Pod string
	// CallerUID/GID/Groups are the runtime process's: the engine's, or
	// the user's under rootless Podman.
	CallerUID, CallerGID uint32
	CallerGroups         []uint32
	// ProcessUID/GID are what the container's process runs as.
	ProcessUID, ProcessGID uint32
	// Privileged: CAP_SYS_ADMIN in the bounding set.
	Privileged bool
	// Engine is podman, containerd, cri-o, docker or "".
	Engine      string
	Annotations map[string]string
}

// Identify reads the identity of a create: spec is the decoded spec, raw
// its JSON (for the capabilities, which the spec codec leaves undecoded).
func Identify(spec *rspec.Spec, raw []byte) *Identity {
	id := &Identity{Annotations: spec.Annotations}
	id.Namespace = firstAnnotation(spec.Annotations, namespaceKeys)
	id.Pod = firstAnnotation(spec.Annotations, podKeys)
	// Rootless Podman runs the runtime inside its user namespace, as
	// "root": the caller is the host id that uid maps to.
	var uidMap, gidMap string
	if !initialUserNS() {
		uidMap, gidMap = readMap("/proc/self/uid_map"), readMap("/proc/self/gid_map")
	}
	id.CallerUID = mapID(uint32(os.Getuid()), uidMap)
	id.CallerGID = mapID(uint32(os.Getgid()), gidMap)
	if gs, err := os.Getgroups(); err == nil {
		for _, g := range gs {
			id.CallerGroups = append(id.CallerGroups, mapID(uint32(g), gidMap))
		}
	}
	if spec.Process != nil {
		id.ProcessUID, id.ProcessGID = spec.Process.User.UID, spec.Process.User.GID
	}
	id.Privileged = privileged(raw)
	id.Engine = engine(spec)
	return id
}

func firstAnnotation(a map[string]string, keys []string) string {
	for _, k := range keys {
		if v := a[k]; v != "" {
			return v
		}
	}
	return ""
}

// privileged reports CAP_SYS_ADMIN in process.capabilities.bounding.
func privileged(raw []byte) bool {
	found := false
	gjson.GetBytes(raw, "process.capabilities.bounding").ForEach(func(_, v gjson.Result) bool {
		found = v.String() == "CAP_SYS_ADMIN"
		return !found
	})
	return found
}

// engine tells the engine from what it leaves in the spec.
func engine(spec *rspec.Spec) string {
	a := spec.Annotations
	switch {
	case a["io.container.manager"] == "libpod":
		return "podman"
	case a["io.kubernetes.cri.sandbox-id"] != "" || a["io.kubernetes.cri.container-type"] != "":
		return "containerd"
	case a["io.kubernetes.cri-o.ContainerType"] != "" || a["io.kubernetes.pod.namespace"] != "":
		return "cri-o"
	}
	if spec.Hooks != nil {
		for _, h := range append(append([]rspec.Hook(nil), spec.Hooks.Prestart...), spec.Hooks.CreateRuntime...) {
			// dockerd's network setup hook.
			if len(h.Args) > 1 && h.Args[1] == "libnetwork-setkey" {
				return "docker"
			}
		}
	}
	return ""
}

// Tenant is who a grant belongs to: the unit of per-tenant caches (and of
// quotas). Key is the Kubernetes namespace, "uid.<n>" for a non-root
// caller (rootless Podman), else "default".
type Tenant struct {
	Key string
}

// Tenant returns id's tenant.
func (id *Identity) Tenant() Tenant {
	switch {
	case id.Namespace != "" && safeComponent(id.Namespace):
		return Tenant{Key: id.Namespace}
	case id.CallerUID != 0:
		return Tenant{Key: "uid." + strconv.FormatUint(uint64(id.CallerUID), 10)}
	}
	return Tenant{Key: "default"}
}

// safeComponent accepts a name that can be one path component.
func safeComponent(s string) bool {
	return checkToken("", s) == nil && s != "." && s != ".." && !strings.HasPrefix(s, ".")
}

// Audit returns the identity as the audit log records it.
func (id *Identity) Audit() audit.Tenant {
	return audit.Tenant{
		Key: id.Tenant().Key, Namespace: id.Namespace, Pod: id.Pod,
		CallerUID: id.CallerUID, CallerGID: id.CallerGID, ProcessUID: id.ProcessUID, ProcessGID: id.ProcessGID,
		Privileged: id.Privileged, Engine: id.Engine,
	}
}

// RequestInput is the part of spec a request is read from.
func RequestInput(spec *rspec.Spec) request.Input {
	in := request.Input{Annotations: spec.Annotations, Mounts: spec.Mounts}
	if spec.Process != nil {
		in.Env = spec.Process.Env
	}
	return in
}

// initUserNS is the initial user namespace's inode (the kernel's
// PROC_USER_INIT_INO): a process in it needs no id mapping.
const initUserNS = "user:[4026531837]"

// initialUserNS reports whether this process runs in the initial user
// namespace; one readlink saves reading the id maps on every create.
func initialUserNS() bool {
	l, err := os.Readlink("/proc/self/ns/user")
	return err == nil && l == initUserNS
}

// readMap reads /proc/self/uid_map or gid_map ("" when it cannot: ids
// then stay as they are).
func readMap(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(data)
}

// mapID translates an id of this process's user namespace to the initial
// namespace's through uid_map text ("inside outside count" lines); an id
// the table does not map is returned as it is.
func mapID(id uint32, table string) uint32 {
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		in, err1 := strconv.ParseUint(f[0], 10, 32)
		out, err2 := strconv.ParseUint(f[1], 10, 32)
		n, err3 := strconv.ParseUint(f[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		if uint64(id) >= in && uint64(id) < in+n {
			return uint32(out + (uint64(id) - in))
		}
	}
	return id
}
