package config

// Policy is the [policy] table: who may ask for which GPU, profile and
// host path. Its values are checked by internal/policy, which also fills
// in the defaults of a table that leaves keys out.
type Policy struct {
	// Preset is "workstation" (default) or "server".
	Preset string `toml:"preset"`
	// AnnotationPrefixes are CDI annotation prefixes read besides
	// cdi.k8s.io/.
	AnnotationPrefixes []string `toml:"annotation-prefixes"`
	// AuditLog is the hash-chained JSON-lines audit log.
	AuditLog string `toml:"audit-log"`
	// AuditMaxSize rotates the log when it grows past this size.
	AuditMaxSize string `toml:"audit-max-size"`
	// AuditKeep is how many rotated files are kept.
	AuditKeep int `toml:"audit-keep"`
	// Rules are tried in order before the preset's; the first that
	// matches decides.
	Rules []PolicyRule `toml:"rules"`
}

// PolicyRule is one [[policy.rules]] entry.
type PolicyRule struct {
	Name  string      `toml:"name"`
	Match PolicyMatch `toml:"match"`
	Allow PolicyAllow `toml:"allow"`
}

// PolicyMatch says which requests a rule is for; every key given must
// match (a list matches when one of its entries does).
type PolicyMatch struct {
	Namespaces   []string          `toml:"namespaces"`
	Pods         []string          `toml:"pods"`
	CallerUIDs   []string          `toml:"caller-uids"`
	CallerGroups []string          `toml:"caller-groups"`
	ProcessUIDs  []string          `toml:"process-uids"`
	ProcessGIDs  []string          `toml:"process-gids"`
	Privileged   *bool             `toml:"privileged"`
	Engines      []string          `toml:"engines"`
	Annotations  map[string]string `toml:"annotations"`
}

// PolicyAllow is what a matching request may have; a key left out takes
// the preset's default.
type PolicyAllow struct {
	Devices      []string `toml:"devices"`
	MaxDevices   *int     `toml:"max-devices"`
	Kinds        []string `toml:"kinds"`
	Capabilities []string `toml:"capabilities"`
	Profiles     []string `toml:"profiles"`
	Params       []string `toml:"params"`
	EnvRequests  *bool    `toml:"env-requests"`
	PathPrefixes []string `toml:"path-prefixes"`
	DeviceParams *bool    `toml:"device-params"`
	// MaxGPUs is the tenant's quota across its live containers (0: none).
	MaxGPUs *int `toml:"max-gpus"`
	// Exclusive lists the devices (or "all") a live container holds alone.
	Exclusive []string `toml:"exclusive"`
}

// AnnotationPrefixes are the CDI annotation prefixes [policy] adds to
// cdi.k8s.io/ (none without a [policy] table).
func (c *Config) AnnotationPrefixes() []string {
	if c.Policy == nil {
		return nil
	}
	return c.Policy.AnnotationPrefixes
}
