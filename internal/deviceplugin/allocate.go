package deviceplugin

import (
	"fmt"
	"strings"

	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
	"tags.cncf.io/container-device-interface/pkg/cdi"
)

// Device list strategies: how Allocate tells the runtime which GPUs the
// container gets (NVIDIA's DEVICE_LIST_STRATEGY values). Exactly one is
// used: two CDI forms would make a CDI-aware containerd and nvbind-runtime
// both inject the devices.
const (
	// ListCDIAnnotations: the annotation cdi.k8s.io/<key>, which
	// nvbind-runtime resolves (and containerd, when its CDI support is on).
	ListCDIAnnotations = "cdi-annotations"
	// ListCDICRI: the CRI's cdi_devices field (KEP-4009, GA in Kubernetes
	// 1.31), resolved by containerd or CRI-O with CDI enabled.
	ListCDICRI = "cdi-cri"
	// ListEnvvar: NVIDIA_VISIBLE_DEVICES=<ids>, the NVIDIA toolkit's form.
	ListEnvvar = "envvar"
	// ListVolumeMounts: one /dev/null mount per device under
	// /var/run/nvidia-container-devices, the NVIDIA toolkit's form that an
	// image's env cannot forge.
	ListVolumeMounts = "volume-mounts"
)

// ListStrategies lists the accepted device list strategies.
var ListStrategies = []string{ListCDIAnnotations, ListCDICRI, ListEnvvar, ListVolumeMounts}

// DefaultCDIKind is the CDI kind nvbind cdi generate writes.
const DefaultCDIKind = "nvidia.com/gpu"

// volumeMountRoot is where the volume-mounts strategy lists devices.
const volumeMountRoot = "/var/run/nvidia-container-devices"

// CheckListStrategy refuses an unknown strategy.
func CheckListStrategy(s string) error {
	for _, k := range ListStrategies {
		if s == k {
			return nil
		}
	}
	return fmt.Errorf("device list strategy %q: want one of %s", s, strings.Join(ListStrategies, ", "))
}

// annotationKey is the CDI annotation for a resource's devices, as the
// CDI library forms it: one key per resource, so two resources of one
// container do not overwrite each other (cdi.k8s.io/nvbind_nvidia.com_gpu).
func annotationKey(resource string) (string, error) {
	return cdi.AnnotationKey("nvbind", resource)
}

// allocate answers one container's request: the devices' CDI names (shares
// of one GPU named once) in the form the strategy says.
func allocate(devs map[string]Device, resource, strategy, kind string, ids []string) (*pluginapi.ContainerAllocateResponse, error) {
	if len(ids) == 0 {
		return nil, fmt.Errorf("allocate: no device requested")
	}
	var names []string
	seen := map[string]bool{}
	for _, id := range ids {
		d, ok := devs[id]
		if !ok {
			return nil, fmt.Errorf("allocate: unknown device %q for %s", id, resource)
		}
		if !seen[d.CDIName] {
			seen[d.CDIName] = true
			names = append(names, d.CDIName)
		}
	}
	resp := &pluginapi.ContainerAllocateResponse{}
	qualified := make([]string, len(names))
	for i, n := range names {
		qualified[i] = kind + "=" + n
	}
	switch strategy {
	case ListCDIAnnotations:
		key, err := annotationKey(resource)
		if err != nil {
			return nil, err
		}
		val, err := cdi.AnnotationValue(qualified)
		if err != nil {
			return nil, err
		}
		resp.Annotations = map[string]string{key: val}
	case ListCDICRI:
		for _, q := range qualified {
			resp.CdiDevices = append(resp.CdiDevices, &pluginapi.CDIDevice{Name: q})
		}
	case ListEnvvar:
		resp.Envs = map[string]string{"NVIDIA_VISIBLE_DEVICES": strings.Join(names, ",")}
	case ListVolumeMounts:
		resp.Envs = map[string]string{"NVIDIA_VISIBLE_DEVICES": volumeMountRoot}
		for _, n := range names {
			resp.Mounts = append(resp.Mounts, &pluginapi.Mount{
				HostPath: "/dev/null", ContainerPath: volumeMountRoot + "/" + n, ReadOnly: true,
			})
		}
	default:
		return nil, CheckListStrategy(strategy)
	}
	return resp, nil
}
