package inject

import (
	"encoding/json"
	"io"
	"reflect"
	"testing"

	"github.com/opencontainers/runc/libcontainer/specconv"
	"github.com/sirupsen/logrus"

	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/request"
)

// An engine with its own CDI support (Podman --device, Docker 25+,
// containerd's enable_cdi) may have injected the same devices before
// nvbind-runtime runs: injecting again must not duplicate anything.
func TestApplyTwiceDuplicatesNothing(t *testing.T) {
	dir := t.TempDir()
	writeSpecFile(t, dir, "nvidia.json", `{"cdiVersion":"0.5.0","kind":"nvidia.com/gpu",
 "containerEdits":{"env":["NVBIND_DRIVER_VERSION=580.95.05"],
  "mounts":[{"hostPath":"/usr/lib/libcuda.so.580.95.05","containerPath":"/usr/lib/libcuda.so.580.95.05","options":["ro","bind"]}],
  "hooks":[{"hookName":"createContainer","path":"/usr/local/bin/nvbind-hook","args":["nvbind-hook","update-ldcache","--folder","/usr/lib"]}]},
 "devices":[{"name":"0","containerEdits":{"deviceNodes":[{"path":"/dev/null0","hostPath":"/dev/null"}]}}]}`)
	cfg := config.Default()
	cfg.CDI.SpecDirs = []string{dir}
	cfg.CDI.JITSpec = ""
	log := logrus.New()
	log.SetOutput(io.Discard)
	req, err := request.Parse([]string{"NVIDIA_VISIBLE_DEVICES=0"}, nil, cfg.CDI.DefaultKind)
	if err != nil {
		t.Fatal(err)
	}
	spec := specconv.Example()
	if err := Apply(spec, req, cfg, log); err != nil {
		t.Fatal(err)
	}
	once, _ := json.Marshal(spec)
	if err := Apply(spec, req, cfg, log); err != nil {
		t.Fatal(err)
	}
	twice, _ := json.Marshal(spec)
	if !reflect.DeepEqual(once, twice) {
		t.Errorf("second injection changed the spec:\n%s\n%s", once, twice)
	}
	if n := len(spec.Hooks.CreateContainer); n != 1 {
		t.Errorf("%d createContainer hooks, want 1", n)
	}
}
