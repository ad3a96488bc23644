package ledger

import (
	"fmt"
	"sort"
	"strings"
)

// Holder is a live container that holds a device.
type Holder struct {
	Entry  *Entry
	Device Device
}

// Holders maps device keys to the live containers holding them.
func Holders(live []Entry) map[string][]Holder {
	out := map[string][]Holder{}
	for i := range live {
		for _, d := range live[i].Devices {
			out[d.Key()] = append(out[d.Key()], Holder{Entry: &live[i], Device: d})
		}
	}
	return out
}

// Conflict says why e may not be recorded beside live ("" when it may):
// a device another container holds exclusively, a device e wants
// exclusively that another holds, or more devices than maxGPUs (0: no
// quota) for e's tenant. Entries of e's own id are ignored (a create
// retried with the same id).
func Conflict(live []Entry, e *Entry, maxGPUs int) string {
	others := make([]Entry, 0, len(live))
	for _, x := range live {
		if x.ID != e.ID {
			others = append(others, x)
		}
	}
	holders := Holders(others)
	for _, d := range e.Devices {
		for _, h := range holders[d.Key()] {
			switch {
			case h.Device.Exclusive:
				return fmt.Sprintf("%s is held exclusively by container %s (tenant %s)", d.Describe(), h.Entry.ID, h.Entry.Tenant)
			case d.Exclusive:
				return fmt.Sprintf("%s is exclusive under this rule and already held by container %s (tenant %s)", d.Describe(), h.Entry.ID, h.Entry.Tenant)
			}
		}
	}
	if maxGPUs <= 0 {
		return ""
	}
	held := map[string]bool{}
	var byContainer []string
	for _, x := range others {
		if x.Tenant != e.Tenant || len(x.Devices) == 0 {
			continue
		}
		var names []string
		for _, d := range x.Devices {
			held[d.Key()] = true
			names = append(names, d.Short())
		}
		byContainer = append(byContainer, x.ID+": "+strings.Join(names, ","))
	}
	more := 0
	for _, d := range e.Devices {
		if !held[d.Key()] {
			more++
		}
	}
	if len(held)+more <= maxGPUs {
		return ""
	}
	sort.Strings(byContainer)
	what := "nothing"
	if len(byContainer) > 0 {
		what = fmt.Sprintf("%d (%s)", len(held), strings.Join(byContainer, "; "))
	}
	return fmt.Sprintf("tenant %s is over its quota max-gpus=%d: holds %s and asks for %d more", e.Tenant, maxGPUs, what, more)
}

// Short names a device for one-line messages: its index, else its UUID.
func (d Device) Short() string {
	switch {
	case d.Index != "" && d.MIG:
		return "MIG " + d.Index
	case d.Index != "":
		return "GPU " + d.Index
	case d.UUID != "":
		return d.UUID
	}
	return d.Name
}

// Describe names a device with its index and UUID.
func (d Device) Describe() string {
	if d.UUID != "" && d.Index != "" {
		return d.Short() + " (" + d.UUID + ")"
	}
	return d.Short()
}
