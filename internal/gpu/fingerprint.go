package gpu

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// fingerprint.go tells when the GPUs a spec was made for are no longer the
// ones the driver has, with the same driver: a GPU added or removed, or
// MIG reconfigured. A spec's index names ("1", "0:2") would then point at
// another GPU or MIG instance than the one asked for.

// DevicesEnv records, in the common env of the specs nvbind makes, the
// fingerprint of the devices they were made from (beside DriverVersionEnv).
const DevicesEnv = "NVBIND_DEVICES"

// DeviceFingerprint sums what procfs lists under root: the GPUs of
// proc/driver/nvidia/gpus (by PCI bus) and, per GPU, the MIG GPU and
// compute instances of proc/driver/nvidia/capabilities. It reads only
// directory listings, so the runtime can afford it on every GPU create.
// It fails when procfs has no GPU list (no driver, or WSL).
func DeviceFingerprint(root string) (string, error) {
	proc := filepath.Join(procRoot(cleanRoot(root)), "proc/driver/nvidia")
	gpus, err := os.ReadDir(filepath.Join(proc, "gpus"))
	if err != nil {
		return "", fmt.Errorf("device fingerprint: %w", err)
	}
	var parts []string
	for _, g := range gpus {
		parts = append(parts, "gpu "+strings.ToLower(g.Name()))
	}
	caps, err := os.ReadDir(filepath.Join(proc, "capabilities"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("device fingerprint: %w", err)
	}
	for _, c := range caps {
		if !strings.HasPrefix(c.Name(), "gpu") {
			continue
		}
		mig := filepath.Join(proc, "capabilities", c.Name(), "mig")
		gis, _ := os.ReadDir(mig)
		for _, gi := range gis {
			if !strings.HasPrefix(gi.Name(), "gi") {
				continue
			}
			parts = append(parts, c.Name()+"/"+gi.Name())
			cis, _ := os.ReadDir(filepath.Join(mig, gi.Name()))
			for _, ci := range cis {
				if strings.HasPrefix(ci.Name(), "ci") {
					parts = append(parts, c.Name()+"/"+gi.Name()+"/"+ci.Name())
				}
			}
		}
	}
	sort.Strings(parts)
	sum := sha256.Sum256([]byte(strings.Join(parts, "\n")))
	return hex.EncodeToString(sum[:8]), nil
}

// specBytesEnv returns the value of the common env entry name in an nvbind
// spec file's bytes ("" when none) without decoding the spec: nvbind
// writes it in YAML and JSON as one token.
func specBytesEnv(data []byte, name string) string {
	key := append([]byte(name), '=')
	i := bytes.Index(data, key)
	if i < 0 {
		return ""
	}
	rest := data[i+len(key):]
	end := bytes.IndexAny(rest, "\"'\n\r\t ,]")
	if end < 0 {
		end = len(rest)
	}
	return string(rest[:end])
}
