# uasyncio in C. `make demo` runs the demo, `make test` every test: the
# suite against an AddressSanitizer + UBSan build, short fuzz runs, the core
# tests on every other CPython >= 3.10 found (pyenv's), then the suite itself
# (its summary line comes last).
PYTHON ?= /usr/bin/python3
PYTEST_ARGS ?=
# A PYTHON without pytest (pyenv's) runs Debian's, from build/testpath.
PYTEST = $(PYTHON) -m pytest
ifneq ($(shell $(PYTHON) -c 'import pytest' 2>/dev/null && echo y),y)
PYTEST = PYTHONPATH="$$(/usr/bin/python3 scripts/pythons.py --testpath)" $(PYTHON) -m pytest
endif
SAN_FLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
# MicroPython's unix port: the reference uasyncio.v3 is compared with
# (tests/test_v3_differential.py, make conformance). Found beside the
# project if not given.
MICROPYTHON ?= $(wildcard $(abspath ../shared/micropython/micropython))
export MICROPYTHON

.PHONY: all build deps testdeps demo test check soak-tests pythons faults asan asan-build refleak valgrind bench chart fuzz load load-asan conformance clean

all: build

deps:
	@scripts/install-deps.sh

# What the suite needs besides (Chromium, openssl, mypy, pip): installed
# here, before any test runs, never by a test.
testdeps:
	@scripts/install-deps.sh test

# The extension, in place, for $(PYTHON), with the interpreter's own
# sysconfig flags (scripts/build_ext.py). Fails loudly.
build:
	@$(PYTHON) scripts/build_ext.py
	@$(PYTHON) -c 'import sys; sys.path.insert(0, "."); import uasyncio._uasyncio'

demo: deps build
	$(PYTHON) examples/demo.py
	$(PYTHON) -m uasyncio.v3 examples/v3/demo.py

test: deps testdeps build
	@scripts/install-deps.sh fuzz
	@echo "== the test suite under AddressSanitizer + UBSan"
	@$(MAKE) --no-print-directory asan
	@echo "== fuzzing: regressions, then 10 s per target"
	@$(MAKE) --no-print-directory -C fuzz ci
	@echo "== the core tests on the other CPythons"
	@$(MAKE) --no-print-directory pythons
	@echo "== the test suite"
	@$(MAKE) --no-print-directory check

# The suite alone, on the regular build.
check: deps testdeps build
	$(PYTEST) -q -rs -p no:cacheprovider $(PYTEST_ARGS) tests

# The suite N times over, each in another random order (UA_TEST_SHUFFLE) and
# on one CPU (taskset -c 0), as on a loaded machine; then every test that
# failed even once. Logs in build/soak/.
N ?= 5
soak-tests: deps testdeps build
	@mkdir -p build/soak; rm -f build/soak/*.log; \
	for i in $$(seq $(N)); do \
	    seed=$$i$$$$; echo "== soak run $$i of $(N) (UA_TEST_SHUFFLE=$$seed)"; \
	    UA_TEST_SHUFFLE=$$seed taskset -c 0 $(PYTEST) -q -rfE -p no:cacheprovider \
	        $(PYTEST_ARGS) tests > build/soak/run-$$i.log 2>&1; \
	    grep -E '(passed|failed|error)' build/soak/run-$$i.log | tail -1; \
	done; \
	failed="$$(grep -hE '^(FAILED|ERROR) ' build/soak/*.log | sort | uniq -c)"; \
	if [ -n "$$failed" ]; then echo "$$failed"; \
	    echo "soak-tests: tests failed (counts above; logs in build/soak/)"; exit 1; \
	fi; echo "soak-tests: $(N) runs, no test failed"

# The suite's core files (scheduling, streams, one file per subpackage) on
# every other CPython >= 3.10 found (pyenv's), each on its own build.
pythons: deps testdeps
	/usr/bin/python3 scripts/pythons.py

# Only the fault-injection tests and the stream model (part of check).
faults: deps build
	$(PYTEST) -q -p no:cacheprovider $(PYTEST_ARGS) tests/test_faults.py tests/test_stream_model.py

# The whole suite against a build with AddressSanitizer and UBSan (and the
# C core's unit tests built the same way).
# Python runs the sanitizer build of the package from build/asan, with
# PYTHONMALLOC=malloc so that every Python object and task record comes from
# malloc, where ASan watches it (pymalloc's arenas it cannot see into).
SAN_RUN = UA_PKG_DIR=build/asan UA_SANITIZE=address,undefined PYTHONMALLOC=malloc \
    LD_PRELOAD="$$(cc -print-file-name=libasan.so):$$(cc -print-file-name=libubsan.so)" \
    ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# The thread stress test runs 30 s here (UA_STRESS_SECONDS; 5 s in check).
asan: testdeps asan-build
	$(SAN_RUN) UA_STRESS_SECONDS=$${UA_STRESS_SECONDS:-30} $(PYTEST) -q -rs -p no:cacheprovider $(PYTEST_ARGS) tests

asan-build: deps
	UA_CFLAGS="$(SAN_FLAGS) -O1 -g" UA_LDFLAGS="$(SAN_FLAGS)" \
	    $(PYTHON) scripts/build_ext.py --build-lib build/asan --build-temp build/asan-tmp

# Reference leaks, with Debian's debug CPython: the suite, then repeated
# scenarios whose total reference count must not grow. (Not the two-instance
# network tests: their runner's time limits are for a release interpreter.)
refleak: testdeps
	@scripts/install-deps.sh dbg
	/usr/bin/python3-dbg scripts/build_ext.py --build-lib build/dbg --build-temp build/dbg-tmp
	UA_PKG_DIR=build/dbg /usr/bin/python3-dbg -m pytest -q -p no:cacheprovider \
	    --deselect tests/test_v3_multinet.py $(PYTEST_ARGS) tests
	UA_PKG_DIR=build/dbg /usr/bin/python3-dbg tests/refleak.py

# The C core's unit tests under valgrind (memcheck, every leak an error).
valgrind:
	@scripts/install-deps.sh valgrind
	UA_VALGRIND=1 $(PYTEST) -q -p no:cacheprovider tests/test_c_core.py

# Coverage-guided fuzzing of the C line buffer and WebSocket parser
# (libFuzzer): FUZZ_SECONDS per target; see fuzz/README.md.
FUZZ_SECONDS ?= 60
fuzz:
	@scripts/install-deps.sh fuzz
	$(MAKE) -C fuzz run SECONDS=$(FUZZ_SECONDS)

# The long load runs (reliability/load.py): 10,000 echo connections held at
# once, then 1,000,000 ab requests; RSS and fds before and after.
# LOAD_ARGS="--only conns", "--only http" or "--quick" (a short smoke run).
LOAD_ARGS ?=
load: deps build
	@scripts/install-deps.sh bench
	$(PYTHON) reliability/load.py $(LOAD_ARGS)

# The same with the server on the sanitizer build (RSS not judged there).
load-asan: asan-build
	@scripts/install-deps.sh bench
	$(SAN_RUN) $(PYTHON) reliability/load.py --sanitized $(LOAD_ARGS)

# The benchmarks (medians of BENCH_REPEAT runs), their JSON in bench/results/,
# then the chart of their ratios (docs/bench.svg, shown in the README).
BENCH_REPEAT ?= 3
bench: deps build
	@scripts/install-deps.sh bench
	@mkdir -p bench/results
	$(PYTHON) bench/run.py --repeat $(BENCH_REPEAT) --json bench/results/core.json
	$(PYTHON) bench/run.py --v3 --repeat $(BENCH_REPEAT) --json bench/results/core-v3.json
	$(PYTHON) bench/net.py --repeat $(BENCH_REPEAT) --json bench/results/net.json
	$(PYTHON) bench/framework.py --repeat $(BENCH_REPEAT) --json bench/results/framework.json
	$(PYTHON) bench/chart.py

# Redraw docs/bench.svg from the JSON in bench/results/ (no benchmark run).
chart:
	@scripts/install-deps.sh bench
	$(PYTHON) bench/chart.py

# uasyncio.v3 against MicroPython (MICROPYTHON): its asyncio tests, its
# two-instance network tests in three pairings (ours both sides, ours
# against it each way), then CONFORMANCE_PROGRAMS random programs
# (tests/conformance/).
CONFORMANCE_PROGRAMS ?= 2000
conformance:
	@if [ -z "$(MICROPYTHON)" ]; then echo "make conformance: point MICROPYTHON at MicroPython's unix port" \
	    "(make conformance MICROPYTHON=/path/to/micropython; its tests/ folder beside it)"; exit 2; fi
	@$(MAKE) --no-print-directory build
	$(PYTHON) tests/conformance/suite.py --programs $(CONFORMANCE_PROGRAMS)

clean:
	rm -rf build uasyncio/*.so
