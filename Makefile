# The README's two commands: `make demo` and `make test`.
# Both install missing Debian 12 packages first (apt-get; root or sudo).

BUILD      ?= build
BUILD_SAN  ?= build-sanitize
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo
EXAMPLE    := $(BUILD)/example

DEB_PACKAGES := build-essential cmake pkg-config libfaiss-dev libopenblas-dev libzstd-dev \
                libcsv-dev libcjson-dev libxxhash-dev libcmocka-dev valgrind

.PHONY: all deps build test sanitize demo clean

all: build

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	  done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) $(CMAKE_ARGS)

build: deps $(BUILD)/CMakeCache.txt
	env -u MAKEFLAGS -u MFLAGS cmake --build $(BUILD) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer.
sanitize: deps
	cmake -S . -B $(BUILD_SAN) -DCMAKE_BUILD_TYPE=Debug -DANNB_SANITIZE=address,undefined
	env -u MAKEFLAGS -u MFLAGS cmake --build $(BUILD_SAN) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1 ctest --test-dir $(BUILD_SAN) --output-on-failure -j $(JOBS)

demo: build
	$(BUILD)/annb-example-gen $(EXAMPLE)
	$(BUILD)/ann-build $(EXAMPLE)/items.csv $(EXAMPLE)/movies.dat -o $(EXAMPLE)/ml1m.annb
	$(BUILD)/ann-inspect $(EXAMPLE)/ml1m.annb --verify
	$(BUILD)/ann-query $(EXAMPLE)/ml1m.annb --user-vec $(EXAMPLE)/users.csv:10 -k 10
	$(BUILD)/ann-query $(EXAMPLE)/ml1m.annb --item 2571 -k 10
	$(BUILD)/annb-example-search $(EXAMPLE)/ml1m.annb 260 5

clean:
	rm -rf $(BUILD) $(BUILD_SAN)
