package engines

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Engine is what Detect found out about one container engine.
type Engine struct {
	Name string `json:"name"`
	// Installed: its daemon or CLI binary is on PATH.
	Installed bool   `json:"installed"`
	Binary    string `json:"binary,omitempty"`
	Version   string `json:"version,omitempty"`
	// ConfigPath is the file that registers nvbind (or would).
	ConfigPath string `json:"configPath"`
	Registered bool   `json:"registered"`
	// RuntimePath is the nvbind-runtime path the config names.
	RuntimePath string `json:"runtimePath,omitempty"`
	// Error says why the config could not be read.
	Error string `json:"error,omitempty"`
}

// engineBinaries are the programs whose presence means the engine is
// installed: the daemon for Docker (the docker CLI talks to remote daemons
// too), the one binary for the others.
var engineBinaries = map[string]string{
	Docker:     "dockerd",
	Containerd: "containerd",
	Podman:     "podman",
	CRIO:       "crio",
}

// Detect reports docker, containerd, podman and crio, in that order, from
// their binaries and config files. It reads files and runs `<binary>
// --version`; it talks to no daemon.
func Detect() []Engine {
	out := make([]Engine, 0, len(Names))
	for _, name := range Names {
		out = append(out, detectOne(name))
	}
	return out
}

func detectOne(name string) Engine {
	e := Engine{Name: name}
	if bin, err := exec.LookPath(engineBinaries[name]); err == nil {
		e.Installed, e.Binary = true, bin
		e.Version = binaryVersion(bin)
	}
	var path string
	var err error
	switch name {
	case Docker:
		e.ConfigPath = DockerConfig
		var data []byte
		var exists bool
		if data, exists, err = readConfig(DockerConfig); err == nil && exists {
			path, err = dockerRegistered(data)
		}
	case Containerd:
		e.ConfigPath = ContainerdConfig
		path, err = containerdRegistered(ContainerdConfig)
	case Podman:
		files := defaultPodmanFiles()
		var file string
		path, file, err = podmanRegistered(files)
		e.ConfigPath = file
		if file == "" {
			e.ConfigPath = files.DropInDir + "/" + podmanDropIn
		}
	case CRIO:
		e.ConfigPath = CRIOConfig
		path, err = crioRegistered(CRIOConfig, CRIODropInDir)
	}
	if err != nil {
		e.Error = err.Error()
	}
	e.RuntimePath = path
	e.Registered = path != ""
	return e
}

var versionRe = regexp.MustCompile(`\d+\.\d+(\.\d+)?`)

// binaryVersion runs `bin --version` and returns the first version number
// it prints ("" when it cannot tell).
func binaryVersion(bin string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--version")
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	// "containerd github.com/containerd/containerd 1.6.20~ds1 ..." and
	// "Docker version 20.10.24+dfsg1, build ..." both carry it first.
	return versionRe.FindString(string(out))
}

// major returns the major number of a version ("" gives 0).
func major(v string) int {
	n, _ := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
	return n
}
