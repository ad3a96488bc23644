package hookdoor

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/moby/sys/userns"
	"github.com/sirupsen/logrus"

	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/door"
	"github.com/nvbind/nvbind/internal/hook"
)

// Precreate is the Podman/Buildah precreate door (containers/common's
// runtime-config filter): the proposed config.json comes on in, the spec
// the runtime should get goes to out. A container asking for no GPU gets
// its input back byte for byte; one that asks gets the same edits
// nvbind-runtime would make. Nothing is written on failure.
func Precreate(in io.Reader, out io.Writer, cfg *config.Config, log *logrus.Logger) error {
	data, err := ReadProposedSpec(in)
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 || userns.RunningInUserNS() {
		// Rootless Podman runs hooks as the user, or as root of the user's
		// namespace: the user's rights either way.
		cfg = readOnlyCDI(cfg)
	}
	res, err := door.Edit(door.Call{Door: door.Precreate, Spec: data, Source: "proposed config.json"}, cfg, log)
	if err != nil {
		if why := unreadableSpec(cfg); why != "" {
			return fmt.Errorf("%w (%s)", err, why)
		}
		return err
	}
	if res != nil {
		if data, err = res.Doc.Marshal(); err != nil {
			return err
		}
	}
	_, err = out.Write(data)
	return err
}

// ReadProposedSpec reads the spec a precreate hook gets on stdin.
func ReadProposedSpec(in io.Reader) ([]byte, error) {
	return readLimited(in, hook.MaxConfigSize, "proposed config.json on stdin")
}

// readLimited reads all of r, refusing more than max bytes or nothing.
func readLimited(r io.Reader, max int64, what string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", what, max)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("no %s", what)
	}
	return data, nil
}

// readOnlyCDI is cfg for a hook running as an unprivileged user (rootless
// Podman runs hooks as the user): the just-in-time spec's dir is still
// read, but no spec is ever written, as nothing outside what the user owns
// may be.
func readOnlyCDI(cfg *config.Config) *config.Config {
	c := *cfg
	if c.CDI.JITSpec != "" {
		dirs := append([]string(nil), c.CDI.SpecDirs...)
		jitDir := filepath.Dir(c.CDI.JITSpec)
		found := false
		for _, d := range dirs {
			found = found || filepath.Clean(d) == jitDir
		}
		if !found {
			dirs = append(dirs, jitDir)
		}
		c.CDI.SpecDirs = dirs
		c.CDI.JITSpec = ""
	}
	return &c
}

// unreadableSpec names the first CDI spec (or spec dir) this user cannot
// read, with the fix; "" when all can be read. A rootless user's request
// otherwise looks like a GPU that does not exist.
func unreadableSpec(cfg *config.Config) string {
	for _, dir := range cfg.CDI.SpecDirs {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Sprintf("CDI spec dir %s is not readable by uid %d: make it world-readable (chmod 755)", dir, os.Geteuid())
		}
		for _, e := range entries {
			if ext := filepath.Ext(e.Name()); e.IsDir() || (ext != ".json" && ext != ".yaml") {
				continue
			}
			p := filepath.Join(dir, e.Name())
			f, err := os.Open(p)
			if err != nil {
				return fmt.Sprintf("CDI spec %s is not readable by uid %d: make it world-readable (chmod 644)", p, os.Geteuid())
			}
			f.Close()
		}
	}
	return ""
}
