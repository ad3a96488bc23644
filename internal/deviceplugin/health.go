package deviceplugin

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultIgnoredXIDs are the Xid errors that do not make a GPU unhealthy,
// as in NVIDIA's device plugin: they are caused by the application, not the
// GPU (13 graphics engine exception, 31 GPU memory page fault, 43 GPU
// stopped processing, 45 preemptive cleanup, 68 video processor exception,
// 109 context switch timeout).
var DefaultIgnoredXIDs = []uint64{13, 31, 43, 45, 68, 109}

// ParseXIDs parses a comma-separated list of Xid numbers.
func ParseXIDs(s string) ([]uint64, error) {
	var out []uint64
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("xid %q is not a number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// HealthEvent says a GPU (by UUID) had an error that makes it unhealthy.
type HealthEvent struct {
	UUID   string
	Reason string
}

// HealthMonitor watches GPUs for critical errors and probes them again.
// NVMLHealth implements it with NVML events.
type HealthMonitor interface {
	// Watch sends an event for every critical error on one of the GPUs
	// until ctx ends. An error means health cannot be watched at all.
	Watch(ctx context.Context, uuids []string, events chan<- HealthEvent) error
	// Probe says whether the GPU is usable again (nil) or why not.
	Probe(uuid string) error
}

// health is the health of every GPU, shared by the node's resources. A GPU
// made unhealthy by an event is probed every interval once the interval
// has passed since its last event, and healthy again when a probe passes.
type health struct {
	mu        sync.Mutex
	unhealthy map[string]time.Time // GPU UUID -> last event
	reasons   map[string]string
	changed   chan struct{} // closed and replaced on every change
}

func newHealth() *health {
	return &health{unhealthy: map[string]time.Time{}, reasons: map[string]string{}, changed: make(chan struct{})}
}

// healthy says whether the GPU is healthy.
func (h *health) healthy(uuid string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, bad := h.unhealthy[uuid]
	return !bad
}

// watch returns a channel closed at the next change.
func (h *health) watch() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.changed
}

func (h *health) notifyLocked() {
	close(h.changed)
	h.changed = make(chan struct{})
}

func (h *health) markUnhealthy(ev HealthEvent, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, was := h.unhealthy[ev.UUID]
	h.unhealthy[ev.UUID] = now
	h.reasons[ev.UUID] = ev.Reason
	if !was {
		h.notifyLocked()
	}
	return !was
}

func (h *health) markHealthy(uuid string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.unhealthy[uuid]; ok {
		delete(h.unhealthy, uuid)
		delete(h.reasons, uuid)
		h.notifyLocked()
	}
}

// due lists the unhealthy GPUs whose last event is older than quiet.
func (h *health) due(now time.Time, quiet time.Duration) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for u, t := range h.unhealthy {
		if now.Sub(t) >= quiet {
			out = append(out, u)
		}
	}
	sort.Strings(out)
	return out
}

// run applies the monitor's events and probes unhealthy GPUs every interval
// until ctx ends.
func (h *health) run(ctx context.Context, mon HealthMonitor, uuids []string, interval time.Duration, log Logger) {
	events := make(chan HealthEvent, 16)
	go func() {
		if err := mon.Watch(ctx, uuids, events); err != nil && ctx.Err() == nil {
			log.Warnf("GPU health is not watched: %v", err)
		}
	}()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-events:
			if h.markUnhealthy(ev, time.Now()) {
				log.Warnf("GPU %s is unhealthy: %s", ev.UUID, ev.Reason)
			}
		case now := <-tick.C:
			for _, u := range h.due(now, interval) {
				if err := mon.Probe(u); err != nil {
					log.Debugf("GPU %s still unhealthy: %v", u, err)
					continue
				}
				log.Infof("GPU %s passed its health probe: healthy again", u)
				h.markHealthy(u)
			}
		}
	}
}

// Logger is the little the plugin logs through (logrus fits).
type Logger interface {
	Debugf(format string, args ...any)
	Infof(format string, args ...any)
	Warnf(format string, args ...any)
}

// CriticalXID says whether an Xid error makes a GPU unhealthy: every Xid
// but the ignored ones.
func CriticalXID(xid uint64, ignored []uint64) bool {
	for _, i := range ignored {
		if xid == i {
			return false
		}
	}
	return true
}
