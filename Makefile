# jit — just-in-time root elevation. See README.md.
#
# Everything the build and the tests need beyond Go and gcc comes from
# Debian's packages; `make deps` installs what is missing (as root).

GO      ?= go
BUILD   := $(CURDIR)/build
CFLAGS  ?= -O2 -g -Wall -Wextra -Werror -fPIC
GOFLAGS_BUILD := -trimpath
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

clean:
	rm -rf $(BUILD)
