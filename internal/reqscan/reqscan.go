// Package reqscan tells, without decoding it, whether a spec can hold a GPU
// request. It imports only bytes, so that nvbind-hook's precreate
// passthrough (cmd/nvbind-hook/internal/passthrough) can use it while the
// program is still initialising its packages.
package reqscan

import "bytes"

// markers are strings one of which any GPU request contains: the env names,
// annotation prefixes and volume-mount list (/var/run/nvidia-container-devices)
// internal/request reads.
var markers = [...]string{"NVIDIA_VISIBLE_DEVICES", "NVBIND_PROFILE", "cdi.k8s.io", "nvbind.io", "nvidia-container-devices"}

// MayRequest reports whether a spec can hold a GPU request: a request
// needs one of the markers literally, unless the JSON spells letters as \u
// escapes. Most containers ask for no GPU, and this keeps their create as
// cheap as any other passed-through call.
func MayRequest(data []byte) bool {
	if bytes.Contains(data, []byte(`\u`)) {
		return true
	}
	for _, m := range markers {
		if bytes.Contains(data, []byte(m)) {
			return true
		}
	}
	return false
}

// MayRequestWith is MayRequest for a config.toml whose [policy] reads CDI
// annotations under prefixes too.
func MayRequestWith(data []byte, prefixes []string) bool {
	if MayRequest(data) {
		return true
	}
	for _, p := range prefixes {
		if p != "" && bytes.Contains(data, []byte(p)) {
			return true
		}
	}
	return false
}
