# nvbind — build, test and try a GPU container runtime shim.
# `make demo` and `make test` do all set-up on a fresh Debian machine.

PREFIX  ?= /usr/local
DESTDIR ?=
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BINS    := nvbind nvbind-runtime nvbind-hook

# Debian packages the tests and the demo drive (command:package).
DEPS := runc:runc busybox:busybox-static podman:podman dockerd:docker.io \
        containerd:containerd gcc:gcc ldconfig:libc-bin

# Fuzz targets run for a short bounded time by `make test` (package:target).
FUZZ_TIME ?= 5s
FUZZ := ./internal/request:FuzzParse ./internal/oci:FuzzParseArgs ./internal/oci:FuzzLoadSpec ./internal/oci:FuzzLeafCodec \
        ./internal/inject:FuzzDecodeEdits ./internal/ldcache:FuzzParse ./internal/hook:FuzzInspectLibrary \
        ./internal/recipes:FuzzParseExpr ./internal/recipes:FuzzParseVersion ./internal/recipes:FuzzParseNCCL

.PHONY: all build test unit integration fuzz bench install uninstall deps demo lint clean

all: build

# The runtime and the hook are static (fast start, no loader to subvert); the
# CLI links libc so that go-nvml can dlopen libnvidia-ml.
build:
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/nvbind-runtime ./cmd/nvbind-hook
	CGO_ENABLED=1 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/nvbind

# Unit and integration tests (integration needs root: real runc and engines).
test: deps lint build
	$(GO) test -count=1 -timeout 30m ./...
	@$(MAKE) --no-print-directory fuzz

unit:
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /test/)

integration: build
	$(GO) test -count=1 -timeout 30m -v ./test/integration/

fuzz:
	@set -e; for t in $(FUZZ); do pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$pkg $$fn ($(FUZZ_TIME))"; \
		$(GO) test -run='^$$' -fuzz="^$$fn\$$" -fuzztime=$(FUZZ_TIME) $$pkg; done

bench: build
	$(GO) test -run='^$$' -bench=. -benchmem -count=1 ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...

install: build
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(addprefix bin/,$(BINS)) $(DESTDIR)$(PREFIX)/bin/
	install -d $(DESTDIR)/etc/nvbind
	install -m 0644 config.toml.example $(DESTDIR)/etc/nvbind/config.toml.example

uninstall:
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/bin/,$(BINS))

# Installs the Debian packages the tests drive, only those missing.
deps:
	@missing=""; for d in $(DEPS); do cmd=$${d%%:*}; pkg=$${d##*:}; \
		command -v $$cmd >/dev/null 2>&1 || [ -x /usr/sbin/$$cmd ] || [ -x /sbin/$$cmd ] || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" != 0 ]; then echo "make deps: run as root to install:$$missing" >&2; exit 1; fi; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

# Builds, makes a simulated GPU driver root when the host has none, and runs
# a container through nvbind-runtime on real runc.
demo: deps build
	./scripts/demo.sh

clean:
	rm -rf bin demo
