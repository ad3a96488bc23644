# nvbind — build, test and try a GPU container runtime shim.
# `make demo` and `make test` do all set-up on a fresh Debian machine.

PREFIX  ?= /usr/local
DESTDIR ?=
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BINS    := nvbind nvbind-runtime nvbind-hook

# Packages: version 0.1.<commits> (monotonic, valid for dpkg, rpm and
# pacman), built with nfpm from the Go module proxy into .tools/.
PKG_VERSION ?= 0.1.$(shell git rev-list --count HEAD 2>/dev/null || echo 0)
PKG_ARCH    ?= $(shell $(GO) env GOARCH)
DIST        ?= dist
STAGE       := build/package
TOOLS       := $(CURDIR)/.tools/bin
NFPM        := $(TOOLS)/nfpm
NFPM_VERSION := v2.45.2

# Debian packages the tests and the demo drive (command:package).
DEPS := runc:runc busybox:busybox-static podman:podman dockerd:docker.io \
        containerd:containerd gcc:gcc ldconfig:libc-bin rpm:rpm zstd:zstd \
        udevadm:udev systemd-analyze:systemd man:man-db

# Fuzz targets run for a short bounded time by `make test` (package:target).
FUZZ_TIME ?= 5s
FUZZ := ./internal/request:FuzzParse ./internal/oci:FuzzParseArgs ./internal/oci:FuzzLoadSpec ./internal/oci:FuzzLeafCodec \
        ./internal/inject:FuzzDecodeEdits ./internal/ldcache:FuzzParse ./internal/hook:FuzzInspectLibrary \
        ./internal/recipes:FuzzParseExpr ./internal/recipes:FuzzParseVersion ./internal/recipes:FuzzParseNCCL \
        ./internal/policy:FuzzParse ./internal/policy:FuzzMatch ./internal/jsonwrite:FuzzAppendString \
        ./internal/config:FuzzParseFast

# Go-built tools the tests drive (helm for the chart, nfpm for the
# packages), in .tools/bin.
HELM_VERSION ?= v3.22.0
HELM         := $(TOOLS)/helm
# The node image (`make image`) and the packaged chart (`make chart`).
CHART        := deploy/helm/nvbind
CHART_APP    := $(shell sed -n 's/^appVersion: *"*\([^"]*\)"*/\1/p' $(CHART)/Chart.yaml)
IMAGE        ?= nvbind/nvbind:$(CHART_APP)

.PHONY: all build test unit integration fuzz bench install uninstall deps demo lint clean image chart \
        man completions stage package install-package

all: build

# The runtime and the hook are static (fast start, no loader to subvert); the
# CLI links libc so that go-nvml can dlopen libnvidia-ml.
build:
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/nvbind-runtime ./cmd/nvbind-hook
	CGO_ENABLED=1 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/nvbind

# Unit and integration tests (integration needs root: real runc and engines;
# the packaging test builds the packages with nfpm and installs the .deb).
test: deps lint build
	$(GO) test -count=1 -timeout 30m ./...
	@$(MAKE) --no-print-directory fuzz

unit:
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /test/)

integration: build
	$(GO) test -count=1 -timeout 30m -v ./test/integration/

fuzz:
	@sh scripts/fuzz.sh $(GO) $(FUZZ_TIME) $(FUZZ)

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

# Builds the node image from the local binaries (no registry needed).
image: build
	./deploy/image/build-image.sh bin $(IMAGE)

# Packages the chart (bin/nvbind-<version>.tgz) for bundles and offline installs.
chart: $(HELM)
	$(HELM) lint --strict $(CHART)
	$(HELM) package $(CHART) -d bin

$(HELM):
	GOBIN=$(TOOLS) $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

# Installs the Debian packages the tests drive, only those missing, and
# builds helm from the Go module proxy.
deps: $(HELM) $(NFPM)
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

# Man pages and shell completions, generated from the CLI's command tree.
man: build
	@rm -rf build/man && mkdir -p build/man
	bin/nvbind man --dir build/man >/dev/null

completions: build
	@mkdir -p build/completions
	bin/nvbind completion bash >build/completions/nvbind.bash
	bin/nvbind completion zsh >build/completions/_nvbind
	bin/nvbind completion fish >build/completions/nvbind.fish

# What the packages hold, staged under build/package: the config with its
# keys commented out (the built-in defaults apply until the admin sets one,
# and a later version's defaults reach a machine whose file was kept).
stage: build man completions
	@rm -rf $(STAGE) && mkdir -p $(STAGE)/bin $(STAGE)/man
	cp $(addprefix bin/,$(BINS)) $(STAGE)/bin/
	cp -r build/completions $(STAGE)/completions
	for f in build/man/*.1; do gzip -9n <$$f >$(STAGE)/man/$$(basename $$f).gz; done
	sed -E 's/^([A-Za-z0-9_-]+ *=|\[\[)/# &/' config.toml.example >$(STAGE)/config.toml

$(NFPM):
	GOBIN=$(TOOLS) $(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)

# .deb, .rpm and Arch .pkg.tar.zst in $(DIST)/.
package: stage $(NFPM)
	@mkdir -p $(DIST)
	for p in deb rpm archlinux; do \
		VERSION=$(PKG_VERSION) ARCH=$(PKG_ARCH) $(NFPM) package --config packaging/nfpm.yaml --packager $$p --target $(DIST)/ || exit 1; done

# The packages' file layout under DESTDIR (the AUR PKGBUILD uses it).
install-package: stage
	install -Dm755 -t $(DESTDIR)/usr/bin $(addprefix $(STAGE)/bin/,$(BINS))
	install -Dm644 $(STAGE)/config.toml $(DESTDIR)/etc/nvbind/config.toml
	install -Dm644 -t $(DESTDIR)/usr/lib/systemd/system packaging/systemd/nvbind-cdi-refresh.service packaging/systemd/nvbind-cdi-refresh.path packaging/systemd/nvbind-serve.service
	install -Dm644 -t $(DESTDIR)/usr/lib/udev/rules.d packaging/udev/70-nvbind.rules
	install -Dm644 -t $(DESTDIR)/usr/share/libalpm/hooks packaging/arch/nvbind-cdi.hook
	install -Dm644 $(STAGE)/completions/nvbind.bash $(DESTDIR)/usr/share/bash-completion/completions/nvbind
	install -Dm644 $(STAGE)/completions/_nvbind $(DESTDIR)/usr/share/zsh/site-functions/_nvbind
	install -Dm644 $(STAGE)/completions/nvbind.fish $(DESTDIR)/usr/share/fish/vendor_completions.d/nvbind.fish
	install -Dm644 -t $(DESTDIR)/usr/share/man/man1 $(STAGE)/man/*.1.gz
	install -Dm644 -t $(DESTDIR)/usr/share/doc/nvbind README.md config.toml.example LICENSE
	install -Dm644 -t $(DESTDIR)/usr/share/nvbind/scripts packaging/scripts/*.sh

clean:
	rm -rf bin demo build dist .tools
