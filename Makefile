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
        e2e demo bench fuzz format tidy clean

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

# Everything CI checks: unit, integration against a real API server, local e2e.
test: deps build
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

e2e: deps build
	ctest --test-dir $(BUILD) --output-on-failure -L e2e

demo: deps build
	bash e2e/demo.sh

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
	git ls-files 'operator/*.cpp' 'controllers/*.cpp' 'dataplane/*.cpp' | xargs clang-tidy -p $(BUILD) --quiet

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_TSAN)
