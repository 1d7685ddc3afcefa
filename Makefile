# The README's two commands: `make demo` and `make test`.
# Both install missing Debian 12 packages first (apt-get; root or sudo).

BUILD      ?= build
BUILD_SAN  ?= build-sanitize
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo
EXAMPLE    := $(BUILD)/example

DEB_PACKAGES := build-essential cmake pkg-config libfaiss-dev libopenblas-dev libzstd-dev zlib1g-dev \
                libcsv-dev libcjson-dev libxxhash-dev libcmocka-dev valgrind \
                redis-server redis-tools man-db libmicrohttpd-dev python3-prometheus-client \
                python3-dev python3-numpy python3-pandas python3-distributed python3-pytest

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
	$(BUILD)/ann-build $(EXAMPLE)/items.csv $(EXAMPLE)/movies.dat -o $(EXAMPLE)/ml1m-users.annb \
	    --users $(EXAMPLE)/users.csv --interactions $(EXAMPLE)/ratings.dat
	$(BUILD)/ann-query $(EXAMPLE)/ml1m-users.annb --user 10 --exclude-seen --genre Comedy -k 10
	$(BUILD)/ann-query $(EXAMPLE)/ml1m-users.annb --similar-users 10 -k 5
	$(BUILD)/ann-build $(EXAMPLE)/items.csv $(EXAMPLE)/movies.dat -o $(EXAMPLE)/ml1m-graph.annb \
	    --index graph --users $(EXAMPLE)/users.csv
	$(BUILD)/ann-query $(EXAMPLE)/ml1m-graph.annb --user-vec $(EXAMPLE)/users.csv:10 -k 10
	PYTHONPATH=$(BUILD)/python /usr/bin/python3 examples/notebook.py $(EXAMPLE)

clean:
	rm -rf $(BUILD) $(BUILD_SAN) $(BUILD_TSAN) $(BUILD_DEB)

# libFuzzer harnesses (tests/fuzz/README.md), clang + ASan + UBSan, each run
# for FUZZ_SECONDS on a copy of its checked-in corpus (new inputs and crash
# artifacts go to $(BUILD_FUZZ)/run/NAME/, never into tests/fuzz/corpus/).
# Needs clang; installs clang's fuzzer runtime and OpenMP, which Debian's
# clang only recommends. ASAN_OPTIONS defaults to malloc_context_size=0: ASan
# then records no allocation stacks, which through the frame-pointer-less
# libfaiss.a are garbage that fills its stack depot (RSS > 1 GB in 10 min)
# and cost 3x the speed; rerun a crash input alone to get them.
BUILD_FUZZ   ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_DEB_PACKAGES := libclang-rt-dev libomp-dev
# harness:corpus:max_len
FUZZ_HARNESSES := bundle:bundle:65536 bundle_repair:bundle:65536 embeddings:embeddings:8192 \
                  catalog:catalog:8192

# The thread tests (one bundle, many threads, per-call search effort) under
# ThreadSanitizer, with no suppressions. OMP_NUM_THREADS=1: libgomp and
# libfaiss.a are not instrumented, so TSan cannot see OpenMP's barriers and
# would report Faiss's parallel regions (the tests' threads are pthreads).
BUILD_TSAN ?= build-tsan
TSAN_TESTS ?= test_threads
.PHONY: tsan
tsan: deps
	cmake -S . -B $(BUILD_TSAN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DANNB_SANITIZE=thread
	env -u MAKEFLAGS -u MFLAGS cmake --build $(BUILD_TSAN) -j $(JOBS) --target $(TSAN_TESTS)
	OMP_NUM_THREADS=1 TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 $${TSAN_OPTIONS-}" \
	  ctest --test-dir $(BUILD_TSAN) --output-on-failure -R '^($(shell echo $(TSAN_TESTS) | tr ' ' '|'))$$'

.PHONY: fuzz
fuzz: deps
	@command -v clang >/dev/null && command -v clang++ >/dev/null || \
	  { echo "make fuzz needs clang and clang++ (apt-get install clang)" >&2; exit 1; }
	@$(MAKE) --no-print-directory deps DEB_PACKAGES='$(FUZZ_DEB_PACKAGES)'
	cmake -S . -B $(BUILD_FUZZ) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
	  -DCMAKE_CXX_COMPILER=clang++ -DANNB_SANITIZE=address,undefined -DANNB_FUZZ=ON
	env -u MAKEFLAGS -u MFLAGS cmake --build $(BUILD_FUZZ) -j $(JOBS) --target \
	  $(foreach h,$(FUZZ_HARNESSES),fuzz_$(word 1,$(subst :, ,$(h))))
	@set -e; for spec in $(FUZZ_HARNESSES); do \
	  name=$${spec%%:*}; rest=$${spec#*:}; corpus=$${rest%%:*}; max_len=$${rest#*:}; \
	  run=$(BUILD_FUZZ)/run/$$name; rm -rf $$run; mkdir -p $$run/corpus; \
	  cp tests/fuzz/corpus/$$corpus/* $$run/corpus/; \
	  echo "fuzz_$$name: $(FUZZ_SECONDS) s, -max_len=$$max_len, log in $$run/log"; \
	  if ! ASAN_OPTIONS=$${ASAN_OPTIONS-malloc_context_size=0} OMP_NUM_THREADS=1 \
	      $(BUILD_FUZZ)/tests/fuzz_$$name -max_len=$$max_len -max_total_time=$(FUZZ_SECONDS) \
	      -print_final_stats=1 -artifact_prefix=$$run/ $$run/corpus >$$run/log 2>&1; then \
	    tail -n 40 $$run/log; \
	    echo "fuzz_$$name: FAILED; input saved in $$run/; full stacks:" \
	      "$(BUILD_FUZZ)/tests/fuzz_$$name $$run/crash-..." >&2; \
	    exit 1; \
	  fi; \
	  grep -E '^stat::(number_of_executed_units|peak_rss_mb)' $$run/log | sed "s/^/  /"; \
	done

# Benchmarks: tests/bench/run.sh writes $(BUILD)/bench-results.md (how to read
# it: docs/benchmarks.md). Half an hour or more at the default 1M x 64 items
# (docs/benchmarks.md gives the last run's time), data and ground truth
# cached in $(BUILD)/bench-data; `make bench BENCH_N=200000` or
# BENCH_INDEXES="flat ivf" for a quicker run. Never part of `make test`.
.PHONY: bench
bench: build
	@$(MAKE) --no-print-directory deps DEB_PACKAGES='python3-faiss python3-pandas'
	BUILD=$(BUILD) tests/bench/run.sh

# The Debian packages, split as Debian splits a library (cmake/deb.cmake):
#   libannb0      libannb.so.0
#   libannb-dev   annb.h, libannb.so, libannb.a, annb.pc, the CMake package
#   annb-tools    ann-build, ann-query, ann-inspect, ann-serve, man pages, completion
#   python3-annb  the Python package annb
# `make deb` builds them (a build configured for /usr, so the library goes to
# the multiarch libdir, with Debian's compiler and linker flags from
# dpkg-buildflags, hardening=+all) and runs lintian on them: any error or
# warning (LINTIAN_FAIL_ON) fails it. The tags annb keeps are overridden in
# cmake/deb/<package>.lintian-overrides, each with its reason.
# `make deb-check` then installs libannb0 and annb-tools alone with dpkg -i
# and runs the tools (no -dev package needed), removes them, installs all
# four with one dpkg -i and tries each package's part: the tools and a man
# page; a program built with pkg-config and with find_package(annb); import
# annb. It purges the four again, also when a step fails. CI runs it after
# `make test`. Root or sudo; refuses to run when one of the four (or the
# single package annb of earlier builds) is installed already, which it
# would otherwise remove.
# dpkg-dev (dpkg-shlibdeps, dpkg-buildflags) and file are what cpack uses to
# work out the packages' Depends.
BUILD_DEB ?= build-deb
DEB_CHECK_PACKAGES := dpkg-dev file man-db lintian
DEB_NAMES := libannb0 libannb-dev annb-tools python3-annb
LINTIAN_FAIL_ON ?= error,warning
DEB_FLAGS = DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get
.PHONY: deb deb-check
deb: deps
	@$(MAKE) --no-print-directory deps DEB_PACKAGES='$(DEB_CHECK_PACKAGES)'
	cmake -S . -B $(BUILD_DEB) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
	  -DANNB_BUILD_TESTS=OFF \
	  -DCMAKE_C_FLAGS="$$($(DEB_FLAGS) CPPFLAGS) $$($(DEB_FLAGS) CFLAGS)" \
	  -DCMAKE_CXX_FLAGS="$$($(DEB_FLAGS) CPPFLAGS) $$($(DEB_FLAGS) CXXFLAGS)" \
	  -DCMAKE_EXE_LINKER_FLAGS="$$($(DEB_FLAGS) LDFLAGS)" \
	  -DCMAKE_SHARED_LINKER_FLAGS="$$($(DEB_FLAGS) LDFLAGS)" \
	  -DCMAKE_MODULE_LINKER_FLAGS="$$($(DEB_FLAGS) LDFLAGS)"
	env -u MAKEFLAGS -u MFLAGS cmake --build $(BUILD_DEB) -j $(JOBS)
	rm -f $(BUILD_DEB)/*.deb
	cd $(BUILD_DEB) && cpack -G DEB
	@for p in $(DEB_NAMES); do dpkg-deb --field $(BUILD_DEB)/$${p}_*.deb Package Version Depends; echo; done
	lintian --fail-on $(LINTIAN_FAIL_ON) --display-info --pedantic --info $(BUILD_DEB)/*.deb

deb-check: deb
	@set -e; w=$(BUILD_DEB)/deb-check; all='$(DEB_NAMES)'; \
	SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	ma=$$(dpkg-architecture -qDEB_HOST_MULTIARCH); \
	debs() { for p in "$$@"; do ls $(BUILD_DEB)/$${p}_*.deb; done; }; \
	for p in $$all annb; do \
	  case "$$(dpkg-query -W -f='$${db:Status-Abbrev}' $$p 2>/dev/null | cut -c2)" in \
	    ""|n|c) ;; \
	    *) echo "deb-check: the package $$p is installed already; remove it first" >&2; exit 1;; \
	  esac; \
	done; \
	trap '$$SUDO dpkg --purge $$all >/dev/null 2>&1 || true' EXIT; \
	deb_install() { echo "+ dpkg -i $$*"; \
	  $$SUDO dpkg -i --path-include='/usr/share/man/*' --path-include='/usr/share/doc/*' $$(debs "$$@"); }; \
	tools() { \
	  echo "+ ann-query --version (annb-tools)"; /usr/bin/ann-query --version; \
	  echo "+ man ann-query | head (annb-tools)"; man ann-query >$$w/man.txt; head $$w/man.txt; \
	  grep -q '^NAME' $$w/man.txt; \
	  echo "+ ann-build, ann-inspect --verify, ann-query --item (annb-tools, libannb0)"; \
	  lib=$$(ldd /usr/bin/ann-query | sed -n 's/.*libannb\.so\.0 => \(.*\) (0x.*/\1/p'); \
	  test "$$(readlink -f "$$lib")" = "$$(readlink -f /usr/lib/$$ma/libannb.so.0)"; \
	  /usr/bin/ann-build tests/data/cli/items.csv tests/data/cli/movies.dat -o $$w/cli.annb; \
	  /usr/bin/ann-inspect $$w/cli.annb --verify >/dev/null; \
	  /usr/bin/ann-query $$w/cli.annb --item 2571 -k 5; }; \
	rm -rf $$w; mkdir -p $$w; \
	deb_install libannb0 annb-tools; \
	tools; \
	echo "+ no development files without libannb-dev"; \
	test ! -e /usr/include/annb.h; \
	if pkg-config --exists annb; then echo "deb-check: annb.pc without libannb-dev" >&2; exit 1; fi; \
	echo "+ dpkg --purge annb-tools libannb0"; $$SUDO dpkg --purge annb-tools libannb0; \
	deb_install $$all; \
	tools; \
	echo "+ a program built with pkg-config (libannb-dev), libannb.so.0 from the loader's cache"; \
	dpkg -S "$$(pkg-config --variable=pcfiledir annb)/annb.pc" | grep -q '^libannb-dev:'; \
	cc -o $$w/search examples/search_example.c $$(pkg-config --cflags --libs annb); \
	$$w/search $$w/cli.annb 2571 5 >$$w/search.txt; \
	cmp tests/install/expected-search.txt $$w/search.txt; \
	for t in annb annb_static; do \
	  echo "+ a program built with find_package(annb), annb::$$t (libannb-dev)"; \
	  cmake -S tests/install/consumer -B $$w/cmake-$$t -DANNB_TARGET=annb::$$t \
	    -DANNB_CONSUMER_SOURCE=$(CURDIR)/examples/search_example.c >$$w/cmake-$$t.log 2>&1 && \
	  cmake --build $$w/cmake-$$t >>$$w/cmake-$$t.log 2>&1 || { cat $$w/cmake-$$t.log; exit 1; }; \
	  grep -qx "annb_DIR:PATH=/usr/lib/$$ma/cmake/annb" $$w/cmake-$$t/CMakeCache.txt; \
	  $$w/cmake-$$t/search $$w/cli.annb 2571 5 >$$w/search-$$t.txt; \
	  cmp tests/install/expected-search.txt $$w/search-$$t.txt; \
	done; \
	echo "+ import annb from /usr/lib/python3/dist-packages, similar items (python3-annb)"; \
	env -u PYTHONPATH /usr/bin/python3 -c 'import sys, annb; \
	  assert annb.__file__.startswith("/usr/lib/python3/dist-packages/annb/"), annb.__file__; \
	  print(annb.open(sys.argv[1]).similar_items(2571, 5)[0])' $$w/cli.annb; \
	echo "+ dpkg --purge $$all"; $$SUDO dpkg --purge $$all; trap - EXIT; \
	for f in /usr/bin/ann-query /usr/include/annb.h /usr/lib/$$ma/libannb.so.0 \
	    /usr/lib/python3/dist-packages/annb; do \
	  if [ -e $$f ]; then echo "deb-check: $$f left behind" >&2; exit 1; fi; \
	done; \
	echo "deb-check: ok"

# The graph-index benchmark (docs/benchmarks.md, "Graph index"): annb's
# --index graph against Debian's python3-hnswlib, hnswlib-node and usearch on
# both data sets, unfiltered and filtered; writes $(BUILD)/bench-graph.md and
# $(BUILD)/bench-graph.jsonl. BENCH_N (200000), BENCH_Q (2000), BENCH_DATASET.
.PHONY: bench-graph
bench-graph: build
	@$(MAKE) --no-print-directory deps DEB_PACKAGES='python3-hnswlib python3-numpy'
	BUILD=$(BUILD) tests/bench/graph.sh

# The Python package's benchmark (docs/benchmarks.md, "Python package"):
# per-call cost against C, python3-faiss and python3-hnswlib, batch search,
# Dask against one process, the notebook flow. A few minutes; not a test.
.PHONY: bench-python
bench-python: build
	@$(MAKE) --no-print-directory deps DEB_PACKAGES='python3-faiss python3-hnswlib'
	PYTHONPATH=$(BUILD)/python /usr/bin/python3 tests/bench/python.py --build $(BUILD)

# ann-serve under wrk beside --serve-stdin and Redis, and 10 swaps under load
# (docs/benchmarks.md, "ann-serve over HTTP"); writes $(BUILD)/bench-serve.md.
# BENCH_SERVE_SECONDS (10), BENCH_SERVE_THREADS (the cores).
.PHONY: bench-serve
bench-serve: build
	@$(MAKE) --no-print-directory deps DEB_PACKAGES='wrk curl redis-server redis-tools python3'
	tests/bench/serve.sh $(BUILD)

# Every user's exact top k against the CPU's peak multiply rate
# (docs/benchmarks.md, "Exact batches"): bench_peak, the library call on
# annb's tiles and on the BLAS path, ann-query --all-users as a process;
# writes $(BUILD)/bench-exact.md. BENCH_N (1000000), BENCH_USERS (2000),
# BENCH_K (100), BENCH_OLD_BUILD (a build of another tree, measured beside).
# A few minutes at 1M (generating the data the first time: half a minute).
.PHONY: bench-exact
bench-exact: build
	BUILD=$(BUILD) tests/bench/exact_batch.sh
