package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/nvbind/nvbind/internal/api"
	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/engines"
	"github.com/nvbind/nvbind/internal/gpu"
	"github.com/nvbind/nvbind/internal/gpu/nvmlgpu"
	"github.com/nvbind/nvbind/internal/ledger"
	"github.com/nvbind/nvbind/internal/policy"
)

// serve.go: `nvbind serve`, the read-only API and metrics over the ledger
// (internal/api); docs/api.md describes it.

func init() { addCommand(newServeCmd) }

type serveOptions struct {
	listen string
	disc   discoveryFlags
	debug  bool
}

func newServeCmd(stdout, stderr io.Writer) *cobra.Command {
	var o serveOptions
	c := &cobra.Command{
		Use:   "serve",
		Short: "serve the GPU ledger as a read-only JSON API, live events and Prometheus metrics",
		Long: `Serves which container holds which GPU: /v1/gpus, /v1/containers,
/v1/events (server-sent events of creates, deletes and policy refusals) and
/metrics (Prometheus; per-GPU NVML readings unless --no-nvml). Read-only.
The unix socket is made 0660, group "nvbind" when that group exists.
See docs/api.md.`,
		Args: noArgs(stderr),
		RunE: func(c *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return code(runServe(ctx, o, stdout, stderr))
		},
	}
	f := c.Flags()
	f.StringVar(&o.listen, "listen", api.DefaultListen, "where to listen: unix:///PATH or tcp://HOST:PORT")
	f.BoolVar(&o.debug, "debug", false, "log debug messages")
	o.disc.register(f, "")
	return c
}

func runServe(ctx context.Context, o serveOptions, stdout, stderr io.Writer) int {
	cfg, err := config.Load()
	if err != nil {
		return failTo(stderr, 1, "serve: %v", err)
	}
	if cfg.Ledger.Dir == "" {
		return failTo(stderr, 1, "serve: the ledger is off (ledger.dir is empty): nothing to serve")
	}
	log := logrus.New()
	log.SetOutput(stderr)
	if o.debug {
		log.SetLevel(logrus.DebugLevel)
	}
	d := o.disc.withDefault(cfg.Driver.Root)
	opts := api.Options{Ledger: ledger.Open(cfg.Ledger.Dir), Log: log,
		Inventory: func() (*gpu.Inventory, error) {
			return gpu.Discover(gpu.DiscoverOptions{DriverRoot: d.root, NVML: d.nvml()})
		}}
	if !d.noNVML {
		opts.Stats = nvmlgpu.ForRoot(d.root)
	}
	if p, err := policy.Load(cfg); err == nil && !p.Off {
		opts.AuditLog = p.AuditLog
	}
	l, cleanup, err := api.Listen(o.listen)
	if err != nil {
		return failTo(stderr, 1, "serve: %v", err)
	}
	defer cleanup()
	fmt.Fprintf(stdout, "nvbind serve: listening on %s (ledger %s)\n", o.listen, cfg.Ledger.Dir)
	if err := api.New(opts).Serve(ctx, l); err != nil {
		return failTo(stderr, 1, "serve: %v", err)
	}
	return 0
}

// addServeCheck reports in `nvbind doctor` whether nvbind serve answers
// at addr, and what the ledger holds.
func addServeCheck(r *engines.Report, cfg *config.Config, addr string) {
	add := func(c engines.Check) {
		r.Checks = append(r.Checks, c)
		if r.Summary == nil {
			r.Summary = map[engines.Status]int{}
		}
		r.Summary[c.Status]++
	}
	if cfg.Ledger.Dir == "" {
		add(engines.Check{Name: "ledger", Status: engines.Warn, Message: "off (ledger.dir is empty): no quotas, no exclusive GPUs, no nvbind ps",
			Fix: "set [ledger] dir = \"/run/nvbind/ledger\""})
	} else if live, err := ledger.Open(cfg.Ledger.Dir).List(); err != nil {
		add(engines.Check{Name: "ledger", Status: engines.Warn, Message: err.Error(), Fix: "check the permissions of " + cfg.Ledger.Dir})
	} else {
		add(engines.Check{Name: "ledger", Status: engines.Pass, Message: fmt.Sprintf("%s: %d live container(s) hold GPUs (nvbind ps)", cfg.Ledger.Dir, len(live))})
	}
	c := engines.Check{Name: "serve"}
	if err := probeServe(addr); err != nil {
		reason := err.Error() // the innermost cause: "connection refused"
		if i := strings.LastIndex(reason, ": "); i >= 0 {
			reason = reason[i+2:]
		}
		c.Status, c.Message = engines.Skip, fmt.Sprintf("not running at %s (%s); optional: the API and metrics for GUIs and Prometheus", addr, reason)
		c.Fix = "systemctl enable --now nvbind-serve.service"
	} else {
		c.Status, c.Message = engines.Pass, "running at "+addr
	}
	add(c)
}

// probeServe asks the API at addr for /v1/gpus.
func probeServe(addr string) error {
	u, err := url.Parse(addr)
	if err != nil {
		return err
	}
	network, target := u.Scheme, u.Host
	if network == "unix" {
		target = u.Path
	}
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, target)
		}}}
	resp, err := client.Get("http://nvbind/" + api.APIVersion + "/gpus")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /%s/gpus: %s", api.APIVersion, resp.Status)
	}
	return nil
}
