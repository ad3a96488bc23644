package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"

	"github.com/nvbind/nvbind/internal/gpu"
	"github.com/nvbind/nvbind/internal/ledger"
)

// DefaultListen is where `nvbind serve` listens unless told otherwise.
const DefaultListen = "unix:///run/nvbind/api.sock"

// SocketGroup owns the unix socket when it exists: its members may read
// the API without root.
const SocketGroup = "nvbind"

// Options configure a Server.
type Options struct {
	Ledger *ledger.Ledger
	// Inventory discovers the host's GPUs (nil: the ledger alone). It is
	// called at most every InventoryTTL.
	Inventory func() (*gpu.Inventory, error)
	// Stats reads NVML's live statistics (nil: no per-GPU readings).
	Stats gpu.StatsSource
	// AuditLog is the policy's audit log, tailed for refusals ("": none).
	AuditLog string
	// ProcRoot is where /proc/<pid>/cgroup is read ("" = "/proc").
	ProcRoot string
	Log      *logrus.Logger
}

// InventoryTTL is how long a discovered inventory is reused.
const InventoryTTL = 30 * time.Second

// Server is the API.
type Server struct {
	opts   Options
	events *broker

	invMu   sync.Mutex
	inv     *gpu.Inventory
	invTime time.Time
}

// New makes a server; Run starts its event sources.
func New(opts Options) *Server {
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	if opts.Log == nil {
		opts.Log = logrus.New()
	}
	return &Server{opts: opts, events: newBroker()}
}

// Handler serves the API's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /"+APIVersion+"/gpus", s.handleGPUs)
	mux.HandleFunc("GET /"+APIVersion+"/containers", s.handleContainers)
	mux.HandleFunc("GET /"+APIVersion+"/events", s.handleEvents)
	reg := prometheus.NewRegistry()
	reg.MustRegister(&collector{s: s})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: s.opts.Log}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writeError(w, http.StatusMethodNotAllowed, "the API is read-only: GET only")
			return
		}
		writeError(w, http.StatusNotFound, "no such endpoint (try /v1/gpus, /v1/containers, /v1/events, /metrics)")
	})
	return mux
}

// view is the ledger joined with the host's GPUs, now.
func (s *Server) view() (*View, error) {
	live, err := s.opts.Ledger.List()
	if err != nil {
		return nil, err
	}
	return BuildView(s.inventory(), live), nil
}

// inventory is the cached discovery result (nil when none).
func (s *Server) inventory() *gpu.Inventory {
	if s.opts.Inventory == nil {
		return nil
	}
	s.invMu.Lock()
	defer s.invMu.Unlock()
	if s.inv == nil || time.Since(s.invTime) > InventoryTTL {
		inv, err := s.opts.Inventory()
		if err != nil {
			s.opts.Log.Warnf("GPU discovery: %v", err)
			return s.inv
		}
		s.inv, s.invTime = inv, time.Now()
	}
	return s.inv
}

// GPUsResponse is GET /v1/gpus.
type GPUsResponse struct {
	GPUs []GPU    `json:"gpus"`
	Free []string `json:"free"`
}

// ContainersResponse is GET /v1/containers.
type ContainersResponse struct {
	Containers []Container `json:"containers"`
}

func (s *Server) handleGPUs(w http.ResponseWriter, r *http.Request) {
	v, err := s.view()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, GPUsResponse{GPUs: v.GPUs, Free: v.Free})
}

func (s *Server) handleContainers(w http.ResponseWriter, r *http.Request) {
	v, err := s.view()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, ContainersResponse{Containers: v.Containers})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// Listen opens addr: unix:///path (the socket made 0660, group nvbind
// when that group exists, a stale socket replaced) or tcp://host:port.
// The returned cleanup removes the socket.
func Listen(addr string) (net.Listener, func(), error) {
	u, err := url.Parse(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("--listen %q: %w", addr, err)
	}
	switch u.Scheme {
	case "tcp":
		if u.Host == "" || u.Path != "" {
			return nil, nil, fmt.Errorf("--listen %q: want tcp://HOST:PORT", addr)
		}
		l, err := net.Listen("tcp", u.Host)
		if err != nil {
			return nil, nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		return l, func() {}, nil
	case "unix":
		path := u.Path
		if u.Host != "" || !filepath.IsAbs(path) {
			return nil, nil, fmt.Errorf("--listen %q: want unix:///ABSOLUTE/PATH", addr)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		if fi, err := os.Lstat(path); err == nil {
			if fi.Mode()&os.ModeSocket == 0 {
				return nil, nil, fmt.Errorf("listen %s: %s exists and is not a socket", addr, path)
			}
			if c, err := net.Dial("unix", path); err == nil {
				c.Close()
				return nil, nil, fmt.Errorf("listen %s: another server is listening there", addr)
			}
			os.Remove(path)
		}
		l, err := net.Listen("unix", path)
		if err != nil {
			return nil, nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		gid := -1
		if g, err := user.LookupGroup(SocketGroup); err == nil {
			gid, _ = strconv.Atoi(g.Gid)
		}
		if err := os.Chmod(path, 0o660); err == nil && gid >= 0 {
			err = os.Chown(path, 0, gid)
		}
		if err != nil {
			l.Close()
			return nil, nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		return l, func() { os.Remove(path) }, nil
	}
	return nil, nil, fmt.Errorf("--listen %q: want unix:///PATH or tcp://HOST:PORT", addr)
}

// Serve runs the API on l until ctx ends.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go s.watch(ctx)
	go func() {
		<-ctx.Done()
		sctx, done := context.WithTimeout(context.Background(), 2*time.Second)
		defer done()
		s.events.close()
		srv.Shutdown(sctx)
	}()
	err := srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
