# berth — build and test. `make` builds bin/berth (and the bin/berth-runtime link).
GO      ?= go
BIN     ?= bin
# A static binary: no dynamic loader to run at every container start (init
# is this binary too), and one file that runs in the test VM as it is.
TAGS    ?= netgo,osusergo
LDFLAGS ?= -s -w -linkmode external -extldflags -static

.PHONY: all berth test test-vm demo bench conformance clean

all: berth

berth:
	$(GO) build -trimpath -tags "$(TAGS)" -ldflags "$(LDFLAGS)" -o $(BIN)/berth ./cmd/berth
	ln -sf berth $(BIN)/berth-runtime

# The whole suite, as root, on this machine's cgroups; then the cgroup v2
# tests inside the VM of ../shared/vm when it is available.
test: berth
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 30m ./...
	./hack/test-vm.sh

test-vm: berth
	./hack/test-vm.sh

# Import a busybox image and run containers from it, offline.
demo: berth
	./hack/demo.sh

bench: berth
	./bench/run.sh

conformance: berth
	./conformance/compare.sh $(CURDIR)/bin/berth-runtime

clean:
	rm -rf bin
