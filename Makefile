# Kurma: a minimal OS that runs containers.
#
#   make image   build/kurma/{vmlinuz,vmlinux,initrd.img,cmdline}
#   make run     build the image and boot it in QEMU on this terminal
#   make test    unit, privileged and end-to-end tests (QEMU boots)
#   make bench   the performance table (boot, pod start and memory)
#
# scripts/setup (run by make when needed) installs every tool and fetches
# the pinned kernel.

SHELL := /bin/bash
include scripts/versions.env

GO        ?= go
PROFILE   ?= qemu
KDIR      := build/kernel/$(KERNEL_RELEASE)
OUT       := build/kurma
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
GOBUILD   := CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w -buildid='
SETUP     := build/.setup-done

.PHONY: all setup image run test test-unit test-privileged test-e2e bench vet clean

all: image

# Setup runs again when its script or the pinned versions change.
$(SETUP): scripts/setup scripts/versions.env
	scripts/setup
	@mkdir -p build && touch $@

setup: $(SETUP)

build/bin/%: FORCE
	@mkdir -p build/bin
	$(GOBUILD) -o $@ ./cmd/$*

image: $(SETUP) build/bin/kurma-init build/bin/kurma-build
	@mkdir -p $(OUT)
	cp $(KDIR)/vmlinuz $(OUT)/vmlinuz
	ln -f $(KDIR)/vmlinux $(OUT)/vmlinux 2>/dev/null || cp $(KDIR)/vmlinux $(OUT)/vmlinux
	build/bin/kurma-build initrd -o $(OUT)/initrd.img -init build/bin/kurma-init \
		-kernel-dir $(KDIR) -release $(KERNEL_RELEASE) -profile $(PROFILE) \
		-version $(VERSION)
	echo "console=tty0 console=ttyS0,115200n8 loglevel=4" > $(OUT)/cmdline

run: image
	scripts/run-qemu

vet: $(SETUP)
	$(GO) vet ./...

test-unit: $(SETUP)
	$(GO) test ./...

# Tests that need root (namespaces, mounts, cgroups) run when enabled.
test-privileged: $(SETUP)
	KURMA_TEST_PRIVILEGED=1 $(GO) test -count=1 ./...

test-e2e: image
	KURMA_E2E=1 KURMA_IMAGE=$(CURDIR)/$(OUT) $(GO) test -count=1 -timeout 30m -v ./tests/e2e/ 2>&1 | tee build/e2e.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|\s+\S+_test.go)'; exit $${PIPESTATUS[0]}

test: vet test-unit test-privileged test-e2e

# Pod start (create to exited) and memory per pod beside runc, crun and
# containerd's shim, measured in the same run (root needed), then boot.
bench: image
	KURMA_BENCH=1 $(GO) test -count=1 -run '^$$' -bench StartToExit -benchtime 50x ./containers/pod/
	KURMA_BENCH=1 $(GO) test -count=1 -run '^$$' -bench PodMemory -benchtime 1x ./containers/pod/
	KURMA_E2E=1 KURMA_IMAGE=$(CURDIR)/$(OUT) $(GO) test -run '^$$' -bench . -benchtime 3x ./tests/e2e/

clean:
	rm -rf build/bin build/kurma

FORCE:
