# sluice -- one plain GNU make build.
#
# Knobs (override on the command line or in the environment):
CC      ?= cc
CLANG   ?= clang
PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build
CFLAGS  ?= -O2 -g
LDFLAGS ?=
# Which test suites `make check` runs, and an optional name filter (substring).
SUITES  ?= unit fuzz integration boot
T       ?=
FUZZ_SECONDS ?= 60

.DEFAULT_GOAL := all
SHELL := /bin/bash

PKGS := tss2-esys tss2-tctildr tss2-mu tss2-rc libcurl libcbor libarchive openssl \
        jansson libmicrohttpd sqlite3

WARN   := -std=c11 -Wall -Wextra -Wshadow -Wformat=2 -Wvla -Wswitch-enum -Werror
HARDEN ?= -D_FORTIFY_SOURCE=3 -fstack-protector-strong -fPIE
DEFS   := -D_GNU_SOURCE
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
ALL_CFLAGS  = $(WARN) $(CFLAGS) $(HARDEN) $(DEFS) -I. $(PKG_CFLAGS) -MMD -MP
ALL_LDFLAGS = -pie -Wl,-z,relro,-z,now $(LDFLAGS)

# Libraries: one per folder, every .c in it. The services' and the agent's
# non-main code is archived too, so unit tests can link against it.
LIBDIRS := merkle measure quote bundle scrapi
APPDIRS := agent transparency verifier
lib_srcs = $(wildcard $(1)/*.c)
app_srcs = $(filter-out $(1)/main.c,$(wildcard $(1)/*.c))
objs     = $(patsubst %.c,$(BUILD)/%.o,$(1))

$(foreach d,$(LIBDIRS),$(eval $(BUILD)/lib$(d).a: $(call objs,$(call lib_srcs,$(d)))))
$(foreach d,$(APPDIRS),$(eval $(BUILD)/lib$(d).a: $(call objs,$(call app_srcs,$(d)))))

# Link order: applications first, then the libraries they compose.
LINKLIBS := $(BUILD)/libagent.a $(BUILD)/libtransparency.a $(BUILD)/libverifier.a \
            $(BUILD)/libscrapi.a $(BUILD)/libbundle.a $(BUILD)/libquote.a $(BUILD)/libmeasure.a $(BUILD)/libmerkle.a

BINS := $(BUILD)/sluice $(BUILD)/sluice-ts $(BUILD)/sluice-verifier

UNIT_SRCS  := $(wildcard tests/unit/*.c)
UNIT_BINS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRCS))
FUZZ_SRCS  := $(filter-out tests/fuzz/replay.c,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_REPLAY := $(patsubst tests/fuzz/%.c,$(BUILD)/tests/fuzz/%,$(FUZZ_SRCS))
HELPER_SRCS := $(wildcard tests/helpers/*.c)
HELPER_BINS := $(patsubst tests/helpers/%.c,$(BUILD)/tests/helpers/%,$(HELPER_SRCS))

.PHONY: all check unit asan fuzz bench install demo deps clean test-bins
all: $(BINS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/lib%.a:
	@mkdir -p $(dir $@)
	@rm -f $@
	$(AR) rcs $@ $^

# sluice (the initramfs agent) links the real libarchive statically: the shared one pulls in libxml2
# and ICU (33 MB of the initramfs) for the xar format, which sluice never uses; --gc-sections drops
# the unreferenced writers (xar among them) so -lxml2 is not needed. Trade-off in docs/boot.md.
SLUICE_LIBS = $(shell pkg-config --libs $(filter-out libarchive,$(PKGS)) 2>/dev/null) -Wl,--gc-sections \
              -Wl,-Bstatic -larchive -Wl,-Bdynamic \
              $(filter-out -larchive -lxml2,$(shell pkg-config --static --libs libarchive 2>/dev/null)) -lpthread -lm
$(BUILD)/sluice: $(BUILD)/agent/main.o $(LINKLIBS)
	$(CC) $(ALL_LDFLAGS) $(CFLAGS) -o $@ $< $(LINKLIBS) $(SLUICE_LIBS)
$(BUILD)/sluice-ts: $(BUILD)/transparency/main.o $(LINKLIBS)
	$(CC) $(ALL_LDFLAGS) $(CFLAGS) -o $@ $< $(LINKLIBS) $(PKG_LIBS)
$(BUILD)/sluice-verifier: $(BUILD)/verifier/main.o $(LINKLIBS)
	$(CC) $(ALL_LDFLAGS) $(CFLAGS) -o $@ $< $(LINKLIBS) $(PKG_LIBS)

$(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(LINKLIBS)
	$(CC) $(ALL_LDFLAGS) $(CFLAGS) -o $@ $< $(LINKLIBS) $(PKG_LIBS)
$(BUILD)/tests/helpers/%: $(BUILD)/tests/helpers/%.o $(LINKLIBS)
	$(CC) $(ALL_LDFLAGS) $(CFLAGS) -o $@ $< $(LINKLIBS) $(PKG_LIBS)
# Fuzz targets built with a plain main() that replays a corpus (no clang needed).
$(BUILD)/tests/fuzz/%: $(BUILD)/tests/fuzz/%.o $(BUILD)/tests/fuzz/replay.o $(LINKLIBS)
	$(CC) $(ALL_LDFLAGS) $(CFLAGS) -o $@ $< $(BUILD)/tests/fuzz/replay.o $(LINKLIBS) $(PKG_LIBS)

test-bins: $(BINS) $(UNIT_BINS) $(FUZZ_REPLAY) $(HELPER_BINS)

# make deps: install the Debian packages in deps.txt that are missing (no-op when all are there).
deps:
	@missing=$$(for p in $$(sed 's/#.*//' deps.txt); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "deps: installing" $$missing; \
	    if [ "$$(id -u)" != 0 ]; then echo "deps: run as root (or install: $$missing)" >&2; exit 1; fi; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
	      || { echo "deps: apt-get install failed" >&2; exit 1; }; \
	else echo "deps: all present"; fi
	@# npm ships inside NodeSource's nodejs but is a separate package in Debian's own archive.
	@command -v npm >/dev/null || { echo "deps: installing npm"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null; }

# The unit tests (and fuzz replays) only: fast, no TPM, no network.
unit: test-bins
	BUILD=$(BUILD) T='$(T)' tests/run.sh unit fuzz

JOBS ?= $(shell nproc 2>/dev/null || echo 2)

# Everything, then the unit suites again under sanitizers; the last line adds both up.
check: deps
	$(MAKE) -j$(JOBS) test-bins
	@rc=0; sum=$(BUILD)/check-summary; rm -f $$sum; mkdir -p $(BUILD); \
	SUMMARY_FILE=$$PWD/$$sum BUILD=$(BUILD) T='$(T)' tests/run.sh $(SUITES) || rc=1; \
	$(MAKE) --no-print-directory asan T='$(T)' SUMMARY_FILE=$$PWD/$$sum || rc=1; \
	[ -s $$sum ] || { echo "check: no test ran" >&2; rc=1; }; \
	echo; awk '{p+=$$1; f+=$$2} END {printf "check: %d passed, %d failed\n", p, f}' $$sum 2>/dev/null; \
	exit $$rc

# The unit tests and fuzz replays under AddressSanitizer + UndefinedBehaviorSanitizer.
asan:
	$(MAKE) --no-print-directory BUILD=build/asan CFLAGS='-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all' \
	    HARDEN='-fPIE' LDFLAGS='-fsanitize=address,undefined' -j$(JOBS) test-bins
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    BUILD=build/asan T='$(T)' SLUICE_SUITE_LABEL=asan SUMMARY_FILE='$(SUMMARY_FILE)' tests/run.sh unit fuzz

# Coverage-guided fuzzing with libFuzzer (clang), FUZZ_SECONDS per target; new inputs land in build/fuzz/corpus.
fuzz:
	$(MAKE) --no-print-directory BUILD=build/fuzz CC=$(CLANG) \
	    CFLAGS='-O1 -g -fsanitize=fuzzer-no-link,address,undefined' HARDEN='-fPIE' LDFLAGS='-fsanitize=address,undefined' \
	    $(patsubst tests/fuzz/%.c,build/fuzz/tests/fuzz/%.o,$(FUZZ_SRCS)) $(subst $(BUILD)/,build/fuzz/,$(LINKLIBS))
	@set -e; for src in $(FUZZ_SRCS); do n=$$(basename $$src .c); \
	    $(CLANG) -fsanitize=fuzzer,address,undefined -o build/fuzz/$$n build/fuzz/tests/fuzz/$$n.o \
	        $(subst $(BUILD)/,build/fuzz/,$(LINKLIBS)) $(PKG_LIBS); \
	    mkdir -p build/fuzz/corpus/$$n; \
	    echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
	    build/fuzz/$$n -max_total_time=$(FUZZ_SECONDS) -max_len=65536 build/fuzz/corpus/$$n tests/fuzz/corpus/$$n; \
	done

bench: all
	@set -e; for b in bench/*.sh; do echo "== $$b"; BUILD=$(BUILD) bash $$b; done

demo: deps
	$(MAKE) all
	BUILD=$(BUILD) bash examples/demo.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	@for m in docs/*.1; do [ -e "$$m" ] && install -m 0644 $$m $(DESTDIR)$(PREFIX)/share/man/man1/ || true; done

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
