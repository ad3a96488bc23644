package policy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/nvbind/nvbind/internal/request"
)

// CacheParam is the profile parameter that names a host cache directory;
// with a policy on, the container gets <cache-dir>/<tenant> instead, so
// that one tenant cannot poison another's shader or CUDA JIT cache.
const CacheParam = "cache-dir"

// TenantCache returns the directory the container's cache-dir parameter
// is pointed at ("" when the request has none or the policy is off).
func (p *Policy) TenantCache(d *Decision) string {
	if p.Off || d.facts == nil || d.Outcome == Refused {
		return ""
	}
	for _, pf := range d.facts.Params {
		if pf.Name == CacheParam && pf.Value != "/" {
			return filepath.Join(pf.Value, d.Tenant.Key)
		}
	}
	return ""
}

// PrepareCaches points req's cache-dir parameter at the tenant's
// sub-directory. It creates that directory (0700, owned by the container's
// user) only when its base exists as a real directory owned by root, made
// by an administrator; without a base the profile's optional mount is
// skipped, as before. A tenant directory that exists must be a directory
// of mode 0700, not a link: nvbind made it.
func (p *Policy) PrepareCaches(d *Decision, req *request.Request) error {
	dir := p.PointCaches(d, req)
	if dir == "" {
		return nil
	}
	base := filepath.Dir(dir)
	fi, err := os.Lstat(base)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cache directory %s: %w", base, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || st.Uid != 0 {
		return fmt.Errorf("cache directory %s: not a directory owned by root; per-tenant caches are made only under one an administrator created", base)
	}
	uid, gid := int(d.Identity.ProcessUID), int(d.Identity.ProcessGID)
	if err := os.Mkdir(dir, 0o700); err == nil {
		if err := os.Lchown(dir, uid, gid); err != nil {
			os.Remove(dir)
			if os.IsPermission(err) {
				return d.skipCache(dir, err)
			}
			return fmt.Errorf("tenant cache %s: %w", dir, err)
		}
		return nil
	} else if os.IsPermission(err) {
		// A caller that may not write the base (rootless Podman under a
		// root-owned cache) goes without the cache, as when the base is
		// missing.
		return d.skipCache(dir, err)
	} else if !os.IsExist(err) {
		return fmt.Errorf("tenant cache %s: %w", dir, err)
	}
	fi, err = os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("tenant cache %s: %w", dir, err)
	}
	if !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		return fmt.Errorf("tenant cache %s exists but is not a 0700 directory nvbind made", dir)
	}
	return nil
}

// PointCaches sets req's cache-dir parameter to the tenant's directory
// without touching the disk (what `nvbind policy check` shows) and
// returns it ("" when there is none).
func (p *Policy) PointCaches(d *Decision, req *request.Request) string {
	dir := p.TenantCache(d)
	if dir == "" {
		return ""
	}
	if req.ProfileParams == nil {
		req.ProfileParams = map[string]string{}
	}
	req.ProfileParams[CacheParam] = dir
	d.Granted.Params = map[string]string{}
	for k, v := range req.ProfileParams {
		d.Granted.Params[k] = v
	}
	return dir
}

// skipCache notes that the tenant cache cannot be made: the parameter
// keeps pointing at the missing directory, so the optional mount is
// skipped.
func (d *Decision) skipCache(dir string, err error) error {
	d.Notes = append(d.Notes, fmt.Sprintf("tenant cache %s not made (%v): cache mount skipped", dir, errors.Unwrap(err)))
	if d.Outcome == Allowed {
		d.Outcome = Narrowed
	}
	return nil
}
