# Sluice build entry points. `make demo` runs the main job; `make test` passes the tests.
SHELL := /bin/bash
BUILD ?= build
BUILD_ASAN ?= build-asan
BUILD_TSAN ?= build-tsan
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
GENERATOR := $(shell command -v ninja >/dev/null 2>&1 && echo -G Ninja)

# Test cluster binaries (kube-apiserver, etcd, kwok, ...) are built from Go modules and cached by
# version outside the build tree; see e2e/cluster/.
export SLUICE_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/sluice
export SLUICE_K8S_BIN ?= $(shell bash e2e/cluster/bin-dir.sh 2>/dev/null)

.PHONY: all deps deps-apt deps-cluster build test test-unit test-integration test-asan test-tsan \
        e2e demo bench fuzz format tidy clean images images-from-source node-up node-down node-smoke

all: build

deps: deps-apt deps-cluster

deps-apt:
	bash e2e/scripts/install-deps.sh

deps-cluster:
	bash e2e/cluster/build.sh

$(BUILD)/build.ninja $(BUILD)/Makefile:
	cmake -S . -B $(BUILD) $(GENERATOR) $(CMAKE_FLAGS)

build: $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

# Everything CI checks: unit, integration against a real API server, local e2e (the scenario on a
# real node runs the images, so they are built first).
test: deps build images
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS) --timeout 900

test-unit: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS) -L unit

test-integration: deps build
	ctest --test-dir $(BUILD) --output-on-failure -L integration

# AddressSanitizer + UndefinedBehaviorSanitizer over the whole suite.
test-asan: deps
	cmake -S . -B $(BUILD_ASAN) $(GENERATOR) -DCMAKE_BUILD_TYPE=Debug -DSLUICE_SANITIZE=address $(CMAKE_FLAGS)
	cmake --build $(BUILD_ASAN) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(BUILD_ASAN) --output-on-failure -j $(JOBS) --timeout 1200

# ThreadSanitizer over the concurrent parts (work queue, informer, batcher): ctest label `tsan`.
test-tsan: deps
	cmake -S . -B $(BUILD_TSAN) $(GENERATOR) -DCMAKE_BUILD_TYPE=Debug -DSLUICE_SANITIZE=thread $(CMAKE_FLAGS)
	cmake --build $(BUILD_TSAN) -j $(JOBS)
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	  ctest --test-dir $(BUILD_TSAN) --output-on-failure -L tsan --timeout 1200

# Container images as OCI archives in $(BUILD)/images (buildah, no daemon; e2e/images/README.md):
# sluice-operator (with kubectl-sluice) and sluice-dataplane from the host build's binaries, and
# the node's pause image.
images: deps-cluster $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS) --target sluice-operator kubectl-sluice sluice-server sluice-router sluice-materialize
	BUILD=$(BUILD) bash e2e/images/build.sh

# The same images compiled by the Dockerfiles' build stage, as `docker build` does elsewhere.
images-from-source: deps-cluster
	JOBS=2 BUILD=$(BUILD) bash e2e/images/build.sh --from-source $(BUILD)/images-from-source

# A local cluster with a real node (kubelet, containerd, kube-proxy) running the images; root.
NODE_DIR ?= $(BUILD)/node
node-up: images
	bash e2e/cluster/node-up.sh $(NODE_DIR)

node-down:
	bash e2e/cluster/node-down.sh $(NODE_DIR)

# The real node's quick proof (about 45 s): a sluice-server pod from the image serves predictions
# through its Service; the host is checked to be as it was afterwards. `make test` runs the whole
# scenario on the node (ctest real_node_e2e).
node-smoke: images
	bash e2e/cluster/node-smoke.sh

e2e: deps build images
	ctest --test-dir $(BUILD) --output-on-failure -L e2e

demo: deps build images
	BUILD=$(BUILD) bash e2e/demo.sh

# bench/run.sh builds what it measures itself, in Release (bench/.work/build-release).
bench:
	bash bench/run.sh

# Exploratory fuzzing with a random seed, FUZZ_SECONDS per target; a crash leaves its reproducer
# in $(BUILD)/fuzz-clang/artifacts, to be fixed and added to fuzz/corpus/.
FUZZ_SECONDS ?= 300
fuzz:
	bash fuzz/run.sh build $(BUILD)/fuzz-clang
	for t in v2_request v2_binary; do \
	  bash fuzz/run.sh run $(BUILD)/fuzz-clang fuzz_$$t $(FUZZ_SECONDS) fuzz/corpus/$$t || exit 1; \
	done

format:
	git ls-files '*.h' '*.cpp' | xargs clang-format -i

tidy: $(BUILD)/build.ninja
	git ls-files 'lib/*.cpp' 'operator/*.cpp' 'controllers/*.cpp' 'dataplane/*.cpp' | xargs clang-tidy -p $(BUILD) --quiet

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_TSAN)
