# Kurma: a minimal OS that runs containers.
#
#   make image   build/kurma/{vmlinuz,vmlinux,initrd.img,cmdline}
#   make iso     build/kurma/kurma.iso: hybrid ISO, BIOS and UEFI, CD-ROM and USB
#   make disk    build/kurma/kurma.img and kurma.qcow2: GPT disk, BIOS and UEFI
#   make uki     build/kurma/kurma.efi: Unified Kernel Image (UEFI)
#   make pxe     build/kurma/pxe/: iPXE script, kernel, initrd, iPXE loaders
#   make media   all four
#   make serve-pxe  serve build/kurma/pxe over TFTP and HTTP (docs/booting.md)
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
GOBUILD   := CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w -buildid= -X main.version=$(VERSION)'
SETUP     := build/.setup-done

# Boot media are dated at the last commit, so a build is reproducible.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 1704067200)
export SOURCE_DATE_EPOCH
MEDIA     := build/bin/kurma-build
MEDIAARGS  = -image $(OUT) -version $(VERSION)
# The blank KURMA_DATA partition of make disk, in MiB (0: none).
DATA_MIB  ?= 256
# The config URL the iPXE script passes (kurma.config.url); iPXE expands
# ${mac} to the booting NIC's MAC and ${next-server} to the TFTP server.
# Empty: none. Read with $(value ...), so make leaves ${...} alone.
PXE_CONFIG_URL ?= http://${next-server}:8080/config/${mac}
PXE_TFTP  ?= :69
PXE_HTTP  ?= :8080
# The per-machine configurations serve-pxe serves at /config/ (files
# named by MAC address); empty: build/kurma/pxe/config.
PXE_CONFIG_DIR ?=

.PHONY: all setup image iso disk uki pxe media serve-pxe run test test-unit test-privileged test-fuzz test-e2e bench vet clean generate

all: image

# Setup runs again when its script or the pinned versions change.
$(SETUP): scripts/setup scripts/versions.env
	scripts/setup
	@mkdir -p build && touch $@

setup: $(SETUP)

build/bin/%: FORCE
	@mkdir -p build/bin
	$(GOBUILD) -o $@ ./cmd/$*

# Userland trees the initrd ships, assembled from Debian packages.
TREES := build/buildroot/e2fsprogs build/buildroot/fstools build/buildroot/cni

build/buildroot/%/.done: buildroot/recipes/%.yaml $(SETUP) build/bin/kurma-build
	build/bin/kurma-build buildroot -recipe $* -o build/buildroot/$*
	@touch $@

# Images the initrd ships (imported at boot from /usr/share/kurma/images):
# kurma/busybox, and kurma/console, the console service (docs/bootstrap.md).
IMAGES := busybox

build/buildroot/%.aci: buildroot/recipes/%.yaml $(SETUP) build/bin/kurma-build
	build/bin/kurma-build buildroot -recipe $* -o build/buildroot/$*-image -aci $@ -version $(VERSION)

# The binaries of the image: kurma (PID 1 as /init, the runtime and
# CLI as /bin/kurma, one program) and the pods' small init.
BINARIES := kurma kurma-stage

image: $(SETUP) $(BINARIES:%=build/bin/%) build/bin/kurma-build $(TREES:%=%/.done) $(IMAGES:%=build/buildroot/%.aci)
	@mkdir -p $(OUT)
	cp $(KDIR)/vmlinuz $(OUT)/vmlinuz
	ln -f $(KDIR)/vmlinux $(OUT)/vmlinux 2>/dev/null || cp $(KDIR)/vmlinux $(OUT)/vmlinux
	build/bin/kurma-build initrd -o $(OUT)/initrd.img -init build/bin/kurma \
		-kernel-dir $(KDIR) -release $(KERNEL_RELEASE) -profile $(PROFILE) \
		-version $(VERSION) $(TREES:%=-tree %) -config initrd/base-config.yaml \
		-symlink /bin/kurma=/init -file /bin/kurma-stage=build/bin/kurma-stage \
		$(foreach i,$(IMAGES),-file /usr/share/kurma/images/$(i).aci=build/buildroot/$(i).aci)
	echo "console=tty0 console=ttyS0,115200n8 loglevel=4" > $(OUT)/cmdline
	@for f in $(IMAGES:%=build/buildroot/%.aci) $(OUT)/initrd.img; do \
		printf 'size: %-32s %6.1f MiB\n' "$$f" "$$(stat -c %s "$$f" | awk '{print $$1/1048576}')"; done

iso: image
	$(MEDIA) iso $(MEDIAARGS) -o $(OUT)/kurma.iso

disk: image
	$(MEDIA) disk $(MEDIAARGS) -data-mib $(DATA_MIB) -o $(OUT)/kurma.img -qcow2 $(OUT)/kurma.qcow2

uki: image
	$(MEDIA) uki $(MEDIAARGS) -o $(OUT)/kurma.efi

pxe: image
	$(MEDIA) pxe $(MEDIAARGS) -config-url '$(value PXE_CONFIG_URL)' -o $(OUT)/pxe

media: iso disk uki pxe

serve-pxe: pxe
	$(MEDIA) serve-pxe -dir $(OUT)/pxe -config '$(PXE_CONFIG_DIR)' -tftp '$(PXE_TFTP)' -http '$(PXE_HTTP)'

run: image
	scripts/run-qemu

vet: $(SETUP)
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
		if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...

test-unit: $(SETUP)
	$(GO) test ./...

# Tests that need root (namespaces, mounts, cgroups) run when enabled.
test-privileged: $(SETUP)
	KURMA_TEST_PRIVILEGED=1 $(GO) test -count=1 ./...

test-e2e: image
	KURMA_E2E=1 KURMA_IMAGE=$(CURDIR)/$(OUT) $(GO) test -count=1 -timeout 30m -v ./tests/e2e/ 2>&1 | tee build/e2e.log | grep --line-buffered -E '^(=== RUN|--- |PASS|FAIL|ok|\s+\S+_test.go)'; \
		rc=$${PIPESTATUS[0]}; if [ $$rc -ne 0 ]; then scripts/e2e-consoles build/e2e.log; fi; exit $$rc

# Every fuzz target runs briefly on top of its seed corpus (the seeds
# themselves run in test-unit). The budget is a count of executions, not
# a duration: Go 1.26's fuzz coordinator can fail a duration-bounded run
# at its deadline with "context deadline exceeded" and no crasher
# (golang/go#75804, fixed in Go 1.27).
FUZZTIME ?= 3000x
FUZZ_TARGETS := \
	./config:FuzzParse ./config:FuzzParseCmdline ./config/volume:FuzzOpen \
	./containers/aci:FuzzParseManifest ./containers/aci:FuzzUnpack \
	./containers/apiserver:FuzzRequestDecoding ./init/uevent:FuzzParse

test-fuzz: $(SETUP)
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s $$pkg \
			> build/fuzz-$$fn.log 2>&1 || { cat build/fuzz-$$fn.log; exit 1; }; \
	done

test: vet test-unit test-privileged test-fuzz test-e2e

# Pod start (create to exited) and memory per pod beside runc, crun and
# containerd's shim, measured in the same run (root needed), then boot.
bench: image
	KURMA_BENCH=1 $(GO) test -count=1 -run '^$$' -bench StartToExit -benchtime 50x ./containers/pod/
	KURMA_BENCH=1 $(GO) test -count=1 -run '^$$' -bench PodMemory -benchtime 1x ./containers/pod/
	KURMA_E2E=1 KURMA_IMAGE=$(CURDIR)/$(OUT) $(GO) test -run '^$$' -bench . -benchtime 3x ./tests/e2e/

# The API's generated code is committed; this regenerates it with the
# protoc of Debian (scripts/setup) and the Go plugins pinned in go.mod.
generate: $(SETUP)
	$(GO) build -o build/bin/protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go
	$(GO) build -o build/bin/protoc-gen-connect-go connectrpc.com/connect/cmd/protoc-gen-connect-go
	protoc -I api -I /usr/include \
		--plugin=protoc-gen-go=build/bin/protoc-gen-go --go_out=api --go_opt=paths=source_relative \
		--plugin=protoc-gen-connect-go=build/bin/protoc-gen-connect-go --connect-go_out=api --connect-go_opt=paths=source_relative \
		api/kurma/v1/*.proto

clean:
	rm -rf build/bin build/kurma

FORCE:
