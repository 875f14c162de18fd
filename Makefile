# jit — just-in-time root elevation. See README.md.
#
# Everything the build and the tests need beyond Go and gcc comes from
# Debian's packages; `make deps` installs what is missing (as root).

GO      ?= go
BUILD   := $(CURDIR)/build
CFLAGS  ?= -O2 -g -Wall -Wextra -Werror -fPIC
# The version jitd and the sudo plugin report (jitd -version, sudo -V), and
# the packages' version.
JIT_VERSION ?= 0.1.0
GOFLAGS_BUILD := -trimpath -ldflags "-X main.version=$(JIT_VERSION)"
TEST_TIMEOUT ?= 15m

# Debian packages the build, the tests and the demo use.
DEB_PACKAGES := libpam0g-dev sudo pamtester openssh-server openssh-client \
	systemd util-linux bsdutils procps

GO_SOURCES := $(shell find . -name '*.go' -not -path './build/*') go.mod go.sum

.PHONY: all build deps test unit e2e vet fmt clean demo bench

all: build

build: $(BUILD)/jitd $(BUILD)/jitctl $(BUILD)/jit_sudo.so $(BUILD)/pam_jit.so $(BUILD)/pam_jit_core.so

$(BUILD)/jitd: $(GO_SOURCES)
	$(GO) build $(GOFLAGS_BUILD) -o $@ ./jitd/cmd/jitd

$(BUILD)/jitctl: $(GO_SOURCES)
	$(GO) build $(GOFLAGS_BUILD) -o $@ ./jitd/cmd/jitctl

# The sudo plugin: policy and I/O plugins in one cgo c-shared library.
$(BUILD)/jit_sudo.so: $(GO_SOURCES) $(wildcard sudoplugin/*.c sudoplugin/*.h)
	$(GO) build $(GOFLAGS_BUILD) -buildmode=c-shared -o $@ ./sudoplugin
	rm -f $(BUILD)/jit_sudo.h
	@# sudo loads a plugin only if it is not writable by group or others.
	chmod 0644 $@

# The PAM module: a small C loader and the Go core it loads beside itself.
$(BUILD)/pam_jit.so: $(wildcard pammod/*.c pammod/*.h)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -shared -o $@ pammod/loader.c -ldl -lpam

$(BUILD)/pam_jit_core.so: $(GO_SOURCES) $(wildcard pammod/core/*.c pammod/core/*.h)
	$(GO) build $(GOFLAGS_BUILD) -buildmode=c-shared -o $@ ./pammod/core
	rm -f $(BUILD)/pam_jit_core.h

# deps installs the Debian packages that are missing, running apt-get update
# once first. It needs root; without missing packages it changes nothing.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "make deps: installing$$missing"; \
		if [ "$$(id -u)" != 0 ]; then echo "make deps: missing packages:$$missing; run as root" >&2; exit 1; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null || \
			{ echo "make deps: apt-get could not install:$$missing" >&2; exit 1; }; \
	fi

vet:
	$(GO) vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi

fmt:
	gofmt -w $$(git ls-files '*.go')

# test: unit, integration and end-to-end tests. End-to-end tests run as root
# inside a private mount and pid namespace (package sandbox) and leave the
# host unchanged; under CI=true a missing prerequisite fails them.
test: deps build vet
	JIT_BUILD=$(BUILD) $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

unit:
	$(GO) test -count=1 -short $$($(GO) list ./... | grep -v -e /e2e -e /sandbox)

e2e: deps build
	JIT_BUILD=$(BUILD) $(GO) test -count=1 -timeout $(TEST_TIMEOUT) -v ./e2e/

# bench: every comparison side by side in one run, as a markdown table
# against the targets; raw figures in build/bench.json. Takes several
# minutes; run it on an otherwise idle machine.
bench: deps build
	JIT_BUILD=$(BUILD) $(GO) run ./bench -out $(BUILD)/bench.json

clean:
	rm -rf $(BUILD)

# ---------------------------------------------------------------------------
# install, package, demo
#
# make install [DESTDIR=…] [PREFIX=/usr]: the built artifacts, units, PAM
# service jit-sudo, catalogs, man pages and completions. It never touches
# /etc/sudo.conf or any other file in /etc/pam.d, and never overwrites an
# existing /etc/jitd/jitd.hcl: enabling is `jitctl setup sudo|pam --enable`.

PREFIX     ?= /usr
SBINDIR    ?= $(PREFIX)/sbin
BINDIR     ?= $(PREFIX)/bin
LIBEXECDIR ?= $(PREFIX)/libexec
DATADIR    ?= $(PREFIX)/share
MANDIR     ?= $(DATADIR)/man
SYSCONFDIR ?= /etc
# systemd and PAM look in fixed places whatever PREFIX is.
UNITDIR    ?= $(shell pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || echo /usr/lib/systemd/system)
CATALOGDIR ?= /usr/lib/systemd/catalog
# The distribution's PAM module directory: what pam.pc says (Debian:
# /lib/x86_64-linux-gnu), else Debian's multiarch dir, else /usr/lib64.
PAMDIR     ?= $(shell d=$$(pkg-config --variable=libdir pam 2>/dev/null) && [ -n "$$d" ] && echo $$d/security || \
	{ d=$$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null) && echo /lib/$$d/security; } || echo /usr/lib64/security)
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
ZSHCOMPDIR  ?= $(DATADIR)/zsh/vendor-completions

# Packaging: nfpm, pinned, run through the Go module proxy (not a module
# dependency of jit). SOURCE_DATE_EPOCH (default: the last commit's time)
# fixes every timestamp in the packages, so the same tree gives the same
# bytes.
NFPM_VERSION ?= v2.44.0
NFPM         ?= $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 1700000000)
PKGROOT      := $(BUILD)/pkgroot
DEB_ARCH     ?= $(shell $(GO) env GOARCH)

.PHONY: install package

install: build
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBEXECDIR)/jit $(DESTDIR)$(PAMDIR) \
		$(DESTDIR)$(SYSCONFDIR)/jitd $(DESTDIR)$(SYSCONFDIR)/pam.d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(CATALOGDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) \
		$(DESTDIR)$(DATADIR)/doc/jit/examples
	install -m 0755 $(BUILD)/jitd $(DESTDIR)$(SBINDIR)/jitd
	install -m 0755 $(BUILD)/jitctl $(DESTDIR)$(BINDIR)/jitctl
	@# sudo and pam_jit's loader load only root-owned files nobody else may write.
	install -m 0644 $(BUILD)/jit_sudo.so $(DESTDIR)$(LIBEXECDIR)/jit/jit_sudo.so
	install -m 0644 $(BUILD)/pam_jit.so $(DESTDIR)$(PAMDIR)/pam_jit.so
	install -m 0644 $(BUILD)/pam_jit_core.so $(DESTDIR)$(PAMDIR)/pam_jit_core.so
	sed 's|/usr/sbin/jitd|$(SBINDIR)/jitd|' contrib/systemd/jitd.service > $(DESTDIR)$(UNITDIR)/jitd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/jitd.service
	install -m 0644 contrib/systemd/jitd.socket contrib/systemd/run-jitd-spool.mount $(DESTDIR)$(UNITDIR)/
	install -m 0644 contrib/jitd.catalog $(DESTDIR)$(CATALOGDIR)/jitd.catalog
	install -m 0644 contrib/pam_jit.catalog $(DESTDIR)$(CATALOGDIR)/pam_jit.catalog
	install -m 0644 contrib/pam.d/jit-sudo $(DESTDIR)$(SYSCONFDIR)/pam.d/jit-sudo
	@# The policy is the administrator's: an existing one is never replaced.
	[ -e $(DESTDIR)$(SYSCONFDIR)/jitd/jitd.hcl ] || install -m 0644 contrib/jitd.hcl $(DESTDIR)$(SYSCONFDIR)/jitd/jitd.hcl
	install -m 0644 contrib/man/jitctl.1 $(DESTDIR)$(MANDIR)/man1/jitctl.1
	install -m 0644 contrib/man/jitd.8 contrib/man/jit_sudo.8 contrib/man/pam_jit.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 contrib/completion/jitctl.bash $(DESTDIR)$(BASHCOMPDIR)/jitctl
	install -m 0644 contrib/completion/_jitctl $(DESTDIR)$(ZSHCOMPDIR)/_jitctl
	install -m 0644 contrib/jitd.hcl contrib/examples/*.hcl contrib/sudo.conf contrib/pam.d/sshd.snippet \
		contrib/pam.d/jit-login.pam-config $(DESTDIR)$(DATADIR)/doc/jit/examples/

# package: .deb and .rpm in build/ from a staged `make install`.
package: build
	rm -rf $(PKGROOT)
	@# Staged with neutral directories; packaging/nfpm.yaml maps them to
	@# each distribution's (PAM modules: Debian /lib/<triplet>/security,
	@# RPM /usr/lib64/security).
	$(MAKE) --no-print-directory install DESTDIR=$(PKGROOT) PREFIX=/usr SYSCONFDIR=/etc \
		PAMDIR=/pam UNITDIR=/units CATALOGDIR=/catalog >/dev/null
	@# Identical trees give identical packages: fixed mtimes.
	find $(PKGROOT) -exec touch -h -d @$(SOURCE_DATE_EPOCH) {} +
	JIT_VERSION=$(JIT_VERSION) DEB_ARCH=$(DEB_ARCH) PKGROOT=$(PKGROOT) SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) \
		DEB_TRIPLET=$$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu) \
		sh -c '$(NFPM) package --config packaging/nfpm.yaml --packager deb --target $(BUILD)/ && \
		       $(NFPM) package --config packaging/nfpm.yaml --packager rpm --target $(BUILD)/'

# demo: the README's first command. Builds, then walks through jit on the
# real sudo and journald inside a private namespace (see demo/main.go).
$(BUILD)/jitdemo: $(GO_SOURCES)
	$(GO) build $(GOFLAGS_BUILD) -o $@ ./demo

demo: deps build $(BUILD)/jitdemo
	@if [ "$$(id -u)" != 0 ]; then echo "make demo: run as root (it creates private mount and pid namespaces; nothing on the host changes)" >&2; exit 1; fi
	JIT_BUILD=$(BUILD) $(BUILD)/jitdemo
