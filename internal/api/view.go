// Package api is `nvbind serve`: a read-only HTTP API over the GPU ledger
// (/v1/gpus, /v1/containers, /v1/events as server-sent events) and
// Prometheus metrics (/metrics), for GUI front ends, scripts and
// Prometheus. It also builds the view `nvbind ps` prints. It never runs on
// the runtime's hot path: it learns of creates and deletes by watching the
// ledger directory and reading the audit log.
package api

import (
	"sort"
	"strconv"
	"time"

	"github.com/nvbind/nvbind/internal/gpu"
	"github.com/nvbind/nvbind/internal/ledger"
)

// APIVersion is the path prefix of the JSON endpoints.
const APIVersion = "v1"

// Holder is a container holding a GPU.
type Holder struct {
	Container string    `json:"container"`
	Tenant    string    `json:"tenant"`
	Profile   string    `json:"profile,omitempty"`
	Exclusive bool      `json:"exclusive,omitempty"`
	Since     time.Time `json:"since"`
}

// GPU is one GPU or MIG device and who holds it.
type GPU struct {
	Index  string `json:"index"`
	UUID   string `json:"uuid,omitempty"`
	Name   string `json:"name,omitempty"`
	MIG    bool   `json:"mig,omitempty"`
	Parent string `json:"parent,omitempty"`
	// Known is false for a device a container holds that discovery did
	// not find (a CDI spec of another generator, a GPU gone).
	Known   bool     `json:"known"`
	Free    bool     `json:"free"`
	Holders []Holder `json:"holders"`
}

// Container is one live container with GPUs.
type Container struct {
	ID      string          `json:"id"`
	Tenant  string          `json:"tenant"`
	Profile string          `json:"profile,omitempty"`
	Rule    string          `json:"rule,omitempty"`
	Bundle  string          `json:"bundle"`
	Runtime string          `json:"runtime"`
	Root    string          `json:"root"`
	Since   time.Time       `json:"since"`
	GPUs    []ledger.Device `json:"gpus"`
}

// View is the ledger joined with the host's GPUs.
type View struct {
	GPUs       []GPU       `json:"gpus"`
	Containers []Container `json:"containers"`
	// Free lists the free GPUs and MIG devices by index.
	Free []string `json:"free"`
}

// BuildView joins live (ledger entries) with inv (nil: the ledger alone).
func BuildView(inv *gpu.Inventory, live []ledger.Entry) *View {
	v := &View{GPUs: []GPU{}, Containers: []Container{}, Free: []string{}}
	byKey := map[string]int{}
	add := func(g GPU) {
		g.Holders = []Holder{}
		byKey[key(g.UUID, g.Index)] = len(v.GPUs)
		if g.UUID != "" && g.Index != "" {
			byKey[key("", g.Index)] = len(v.GPUs)
		}
		v.GPUs = append(v.GPUs, g)
	}
	if inv != nil {
		for _, g := range inv.GPUs {
			idx := strconv.Itoa(g.Index)
			add(GPU{Index: idx, UUID: g.UUID, Name: g.Name, Known: true})
			for _, m := range g.MIGDevices {
				add(GPU{Index: idx + ":" + strconv.Itoa(m.Index), UUID: m.UUID, Name: m.Profile, MIG: true, Parent: g.UUID, Known: true})
			}
		}
	}
	for _, e := range live {
		c := Container{ID: e.ID, Tenant: e.Tenant, Profile: e.Profile, Rule: e.Rule, Bundle: e.Bundle,
			Runtime: e.Runtime, Root: e.Root, Since: e.Created, GPUs: e.Devices}
		if c.GPUs == nil {
			c.GPUs = []ledger.Device{}
		}
		v.Containers = append(v.Containers, c)
		for _, d := range e.Devices {
			i, ok := byKey[key(d.UUID, d.Index)]
			if !ok && d.UUID == "" {
				i, ok = byKey[key("", d.Index)]
			}
			if !ok {
				add(GPU{Index: d.Index, UUID: d.UUID, MIG: d.MIG, Parent: d.Parent})
				i = len(v.GPUs) - 1
			}
			v.GPUs[i].Holders = append(v.GPUs[i].Holders, Holder{Container: e.ID, Tenant: e.Tenant,
				Profile: e.Profile, Exclusive: d.Exclusive, Since: e.Created})
		}
	}
	for i := range v.GPUs {
		g := &v.GPUs[i]
		g.Free = len(g.Holders) == 0
		if g.Free {
			v.Free = append(v.Free, g.Index)
		}
	}
	sort.SliceStable(v.Containers, func(i, j int) bool { return v.Containers[i].ID < v.Containers[j].ID })
	return v
}

// key identifies a device by UUID when it has one, else by index.
func key(uuid, index string) string {
	if uuid != "" {
		return "u:" + uuid
	}
	return "i:" + index
}
