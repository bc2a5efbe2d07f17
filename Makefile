# certfleet - build, test, demo and benchmarks.
#
#   make            build build/certfleet
#   make test       install what is missing, start the local stack, run every test, stop the stack
#   make demo       install what is missing, start the local stack, run a demo fleet of 200 names
#   make unit       unit tests only (no services needed)
#   make asan       build and run the unit tests under AddressSanitizer + UBSan (build-asan/)
#   make tsan       build under ThreadSanitizer (build-tsan/)
#   make faults     build-faults/certfleet, whose fault points the durability tests arm
#   make sanitize   the unit tests under ASan+UBSan, then test_issue and test_durable under ASan+UBSan
#                   and under TSan (what .ci/run adds to make test)
#   make fuzz       build the fuzz targets with libFuzzer (clang) and run each FUZZ_SECONDS [30]
#   make bench      throughput at defaults and tuned (5 fresh stacks each), CPU, memory, a 10,000-order
#                   hold test, beside lego and uacme

CC      ?= cc
BUILD   ?= build
PKGS     = libcurl openssl libpq jansson libidn2 ldns libmicrohttpd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN     = -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes -Wformat=2
CFLAGS  ?= -O2 -g
CPPFLAGS += -D_GNU_SOURCE -Icommon -Ilib -Iproviders -Iworkers -Iorchestrator
ALL_CFLAGS = -std=c11 $(WARN) $(CFLAGS) $(SANFLAGS) $(FAULTFLAGS) $(PKG_CFLAGS) -pthread -MMD -MP
LDLIBS   = $(PKG_LIBS) -pthread -lm

LIB_SRCS  = $(wildcard common/*.c lib/*.c providers/*.c workers/*.c) \
            $(filter-out orchestrator/main.c, $(wildcard orchestrator/*.c))
LIB_OBJS  = $(LIB_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/gen/migrations.o
SQL_FILES = $(sort $(wildcard sql/[0-9]*.sql))
MAIN_OBJ  = $(BUILD)/orchestrator/main.o
TEST_SRCS = $(wildcard tests/unit/test_*.c)
TEST_BINS = $(TEST_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRCS = $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS = $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)

.PHONY: all unit test demo bench asan tsan faults sanitize fuzz clean deps

all: $(BUILD)/certfleet $(TEST_BINS) $(FUZZ_BINS) $(BUILD)/bench_crypto $(BUILD)/bench_queue

$(BUILD)/libcertfleet.a: $(LIB_OBJS)
	@mkdir -p $(dir $@)
	@$(AR) rcs $@ $^

$(BUILD)/certfleet: $(MAIN_OBJ) $(BUILD)/libcertfleet.a
	@echo "CCLD $@"
	@$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/gen/migrations.c: $(SQL_FILES) scripts/embed-sql.sh
	@mkdir -p $(dir $@)
	scripts/embed-sql.sh $@ $(SQL_FILES)

$(BUILD)/gen/migrations.o: $(BUILD)/gen/migrations.c
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "CC $<"
	@$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libcertfleet.a
	@mkdir -p $(dir $@)
	@echo "CCLD $@"
	@$(CC) $(CPPFLAGS) -Itests/unit $(ALL_CFLAGS) -o $@ $< $(BUILD)/libcertfleet.a $(LDLIBS)

# Fuzz targets built with a main that replays their corpus (tests/fuzz/corpus/NAME/), so the seeds
# guard against regressions in every `make test`, with or without libFuzzer.
$(BUILD)/fuzz/%: tests/fuzz/%.c $(BUILD)/libcertfleet.a
	@mkdir -p $(dir $@)
	@echo "CCLD $@"
	@$(CC) $(CPPFLAGS) -DFUZZ_REPLAY_MAIN $(ALL_CFLAGS) -o $@ $< $(BUILD)/libcertfleet.a $(LDLIBS)

$(BUILD)/bench_%: bench/bench_%.c $(BUILD)/libcertfleet.a
	@echo "CCLD $@"
	@$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libcertfleet.a $(LDLIBS)

unit: all
	BUILD=$(BUILD) tests/run.sh --unit-only

deps:
	scripts/install-deps.sh

test: deps
	$(MAKE) all faults
	BUILD=$(BUILD) CERTFLEET_FAULT_BIN=$(CURDIR)/build-faults/certfleet tests/run.sh

demo: deps
	$(MAKE) all
	BUILD=$(BUILD) scripts/demo.sh

bench: deps
	$(MAKE) all
	CERTFLEET_BIN=$(CURDIR)/$(BUILD)/certfleet bench/bench.sh

asan:
	$(MAKE) BUILD=build-asan SANFLAGS="$(ASAN_FLAGS)" unit

tsan:
	$(MAKE) BUILD=build-tsan SANFLAGS="$(TSAN_FLAGS)" all

ASAN_FLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
TSAN_FLAGS = -fsanitize=thread -fno-sanitize-recover=all
SAN_TESTS ?= test_issue test_durable test_validations

# The sanitizer builds on the integration tests that drive the most threads: a finding fails the
# run (UBSan and ASan abort; TSan exits 66 at its first report).
sanitize: asan
	$(MAKE) BUILD=build-asan SANFLAGS="$(ASAN_FLAGS)" all
	ASAN_OPTIONS=detect_leaks=1 BUILD=build-asan CERTFLEET_TESTS="$(SAN_TESTS)" tests/run.sh
	$(MAKE) BUILD=build-tsan SANFLAGS="$(TSAN_FLAGS)" all
	TSAN_OPTIONS="halt_on_error=1 exitcode=66" BUILD=build-tsan CERTFLEET_TESTS="$(SAN_TESTS)" tests/run.sh

# The binary of the tests that kill a run at a chosen moment (common/fault.h); never installed.
faults:
	$(MAKE) BUILD=build-faults FAULTFLAGS=-DCF_FAULT_POINTS build-faults/certfleet

# libFuzzer builds of tests/fuzz/fuzz_*.c (build-fuzz/), each run FUZZ_SECONDS from its seed
# corpus; new inputs go to build-fuzz/corpus/NAME, never into the repository. A finding stops the
# run with the crashing input saved as build-fuzz/crash-NAME-*.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 30
FUZZ_NAMES    = $(FUZZ_SRCS:tests/fuzz/fuzz_%.c=%)

fuzz:
	$(MAKE) BUILD=build-fuzz CC=$(FUZZ_CC) \
	    SANFLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
	    build-fuzz/libcertfleet.a
	@set -e; for n in $(FUZZ_NAMES); do \
	    echo "CCLD build-fuzz/libfuzzer/fuzz_$$n"; mkdir -p build-fuzz/libfuzzer build-fuzz/corpus/$$n; \
	    $(FUZZ_CC) $(CPPFLAGS) -std=c11 $(WARN) -O1 -g -fsanitize=fuzzer,address,undefined \
	        -fno-sanitize-recover=all -fno-omit-frame-pointer $(PKG_CFLAGS) -pthread \
	        -o build-fuzz/libfuzzer/fuzz_$$n tests/fuzz/fuzz_$$n.c build-fuzz/libcertfleet.a $(LDLIBS); \
	done
	@FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh build-fuzz $(FUZZ_NAMES)

clean:
	rm -rf build build-asan build-tsan build-faults build-fuzz

-include $(LIB_OBJS:.o=.d) $(MAIN_OBJ:.o=.d)

# --- Packaging: man pages, install, the Debian package, the image check --------------------------
#
#   make man          build/man/certfleet.1 and certfleet-COMMAND.1, from the --help text
#   make install      binary, man pages and examples under $(DESTDIR)$(PREFIX)
#   make deb          the Debian package (dpkg-buildpackage), written to build/deb/
#   make image-check  the Dockerfile's stages in Debian 12 root file systems, and the .deb installed
#                     in one, the man pages (test_image.sh, test_deb.sh, test_man.sh on a stack of their own)

VERSION ?= $(shell sed -n '1s/[^0-9]*\([0-9][^-]*\)-.*/\1/p' debian/changelog)
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
DOCDIR  ?= $(PREFIX)/share/doc/certfleet

# The link honours LDFLAGS (e.g. dpkg-buildflags' hardening: -z relro -z now).
LDLIBS += $(LDFLAGS)

# pkg-config prints nothing when a library's .pc file is missing, and the compile then fails far
# from the cause: say which packages are missing instead.
PKG_MISSING = $(shell pkg-config --print-errors --exists $(PKGS) 2>&1 | head -n 3)
ifeq ($(strip $(PKG_LIBS)),)
ifneq ($(filter-out clean deps test demo bench,$(or $(MAKECMDGOALS),all)),)
$(error pkg-config found no flags for $(PKGS): $(PKG_MISSING) - install the packages in packaging/deps/build.txt with scripts/install-deps.sh)
endif
endif

.PHONY: man install image-check deb

man: $(BUILD)/man/certfleet.1

$(BUILD)/man/certfleet.1: $(BUILD)/certfleet scripts/man.sh
	@rm -rf $(BUILD)/man
	scripts/man.sh $(BUILD)/certfleet $(BUILD)/man $(VERSION)

install: $(BUILD)/certfleet $(BUILD)/man/certfleet.1
	install -D -m 0755 $(BUILD)/certfleet $(DESTDIR)$(BINDIR)/certfleet
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(DOCDIR)/examples
	install -m 0644 $(BUILD)/man/*.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 packaging/providers.example packaging/certfleet.env $(DESTDIR)$(DOCDIR)/examples/

# Built from a copy of the tree, since dpkg-buildpackage writes its output next to the source folder.
deb:
	scripts/build-deb.sh $(BUILD)/deb

image-check: $(BUILD)/certfleet
	CERTFLEET_TESTS="test_image test_deb test_man" BUILD=$(BUILD) tests/run.sh
