package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/nvbind/nvbind/internal/audit"
	"github.com/nvbind/nvbind/internal/ledger"
)

// events.go: /v1/events. The runtime never talks to the server (nothing
// on its hot path): the server watches the ledger directory with inotify
// (an entry written is a create, an entry removed a delete, whether by
// `delete` or by a reclaim) and tails the audit log for refusals.

// Event is one server-sent event.
type Event struct {
	// Type is create, delete or refusal.
	Type      string          `json:"type"`
	Time      time.Time       `json:"time"`
	Container string          `json:"container"`
	Tenant    string          `json:"tenant,omitempty"`
	Profile   string          `json:"profile,omitempty"`
	GPUs      []ledger.Device `json:"gpus,omitempty"`
	// Rule and Reason: a refusal's.
	Rule   string `json:"rule,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// broker fans events out to subscribers; a slow one loses events rather
// than holding the others up.
type broker struct {
	mu     sync.Mutex
	subs   map[chan Event]bool
	closed bool
}

func newBroker() *broker { return &broker{subs: map[chan Event]bool{}} }

func (b *broker) subscribe() chan Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	ch := make(chan Event, 64)
	if b.closed {
		close(ch)
		return ch
	}
	b.subs[ch] = true
	return ch
}

func (b *broker) unsubscribe(ch chan Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.subs[ch] {
		delete(b.subs, ch)
		close(ch)
	}
}

func (b *broker) publish(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- e:
		default:
		}
	}
}

func (b *broker) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for ch := range b.subs {
		delete(b.subs, ch)
		close(ch)
	}
}

// heartbeat keeps proxies from closing an idle stream.
const heartbeat = 15 * time.Second

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "streaming not supported")
		return
	}
	ch := s.events.subscribe()
	defer s.events.unsubscribe(ch)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, ": nvbind events\n\n")
	fl.Flush()
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			io.WriteString(w, ": keep-alive\n\n")
			fl.Flush()
		case e, ok := <-ch:
			if !ok {
				return
			}
			data, _ := json.Marshal(e)
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.Type, data)
			fl.Flush()
		}
	}
}

// watch feeds the broker until ctx ends.
func (s *Server) watch(ctx context.Context) {
	dir := s.opts.Ledger.Dir()
	w, err := fsnotify.NewWatcher()
	if err != nil {
		s.opts.Log.Errorf("events: %v", err)
		return
	}
	defer w.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.opts.Log.Errorf("events: %v", err)
	}
	if err := w.Add(dir); err != nil {
		s.opts.Log.Errorf("events: watch %s: %v", dir, err)
	}
	// What each entry file held, to describe its delete.
	known := map[string]*ledger.Entry{}
	if live, err := s.opts.Ledger.List(); err == nil {
		for i := range live {
			for _, n := range s.entryNames(live[i].ID) {
				known[n] = &live[i]
			}
		}
	}
	tail := newTail(s.opts.AuditLog)
	poll := time.NewTicker(250 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			name := filepath.Base(ev.Name)
			if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".json") {
				continue
			}
			switch {
			case ev.Has(fsnotify.Create) || ev.Has(fsnotify.Write):
				e, err := readEntryFile(ev.Name)
				if err != nil || known[name] != nil {
					continue
				}
				known[name] = e
				s.events.publish(Event{Type: "create", Time: e.Created, Container: e.ID, Tenant: e.Tenant, Profile: e.Profile, GPUs: e.Devices})
			case ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename):
				e := known[name]
				delete(known, name)
				if e != nil {
					s.events.publish(Event{Type: "delete", Time: time.Now().UTC(), Container: e.ID, Tenant: e.Tenant, Profile: e.Profile, GPUs: e.Devices})
				}
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			s.opts.Log.Warnf("events: %v", err)
		case <-poll.C:
			for _, rec := range tail.read() {
				if rec.Decision != "refused" {
					continue
				}
				t, _ := time.Parse(time.RFC3339Nano, rec.Time)
				s.events.publish(Event{Type: "refusal", Time: t, Container: rec.Container, Tenant: rec.Tenant.Key,
					Profile: rec.Profile, Rule: rec.Rule, Reason: rec.Reason})
			}
		}
	}
}

// entryNames lists the entry files of container id in the ledger dir.
func (s *Server) entryNames(id string) []string {
	ents, _ := os.ReadDir(s.opts.Ledger.Dir())
	var out []string
	for _, e := range ents {
		n := e.Name()
		if strings.HasSuffix(n, ".json") && !strings.HasPrefix(n, ".") {
			if ent, err := readEntryFile(filepath.Join(s.opts.Ledger.Dir(), n)); err == nil && ent.ID == id {
				out = append(out, n)
			}
		}
	}
	return out
}

func readEntryFile(p string) (*ledger.Entry, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var e ledger.Entry
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// tail reads the lines appended to the audit log since the last read,
// starting at its end; a rotated log (another inode, or shorter) is read
// from its start.
type tail struct {
	path   string
	ino    uint64
	offset int64
}

func newTail(path string) *tail {
	t := &tail{path: path}
	if fi, err := os.Stat(path); err == nil {
		t.ino, t.offset = inode(fi), fi.Size()
	}
	return t
}

func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

func (t *tail) read() []audit.Record {
	if t.path == "" {
		return nil
	}
	f, err := os.Open(t.path)
	if err != nil {
		return nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil
	}
	if inode(fi) != t.ino || fi.Size() < t.offset {
		t.ino, t.offset = inode(fi), 0
	}
	if fi.Size() == t.offset {
		return nil
	}
	if _, err := f.Seek(t.offset, io.SeekStart); err != nil {
		return nil
	}
	var out []audit.Record
	r := bufio.NewReaderSize(f, 64<<10)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			break // a partial last line is read next time
		}
		t.offset += int64(len(line))
		var rec audit.Record
		if json.Unmarshal(line, &rec) == nil {
			out = append(out, rec)
		}
	}
	return out
}
