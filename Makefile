# pemn — top-level build (GNU make).
#
# Objects go under build/<variant>/ so sanitized and normal objects never mix:
#   make                 release build (build/release)
#   make test            build + every test under tests/, ends with "N passed, N failed"
#   make asan            unit tests + corpus replay under ASan+UBSan (build/asan)
#   make valgrind        unit tests under valgrind (build/debug)
#   make fuzz            libFuzzer targets with clang (build/fuzz)
#   make bench           benchmarks; ratios recorded in docs/BENCHMARKS.md
#   make run             install missing packages, build, start pemnd on ./var/pemn.db
#   make install         PREFIX=/usr/local DESTDIR= ; headers, libpemn.{a,so}, pemn.pc, binaries,
#                        the web console (share/pemn/ui)
#   make format | format-check | lint
#
# Sources are found by wildcard: a new .c file in a module folder is built without
# touching this file. Libraries:
#   libpemn        proto/ + client/         (public, installed; sodium, jansson, curl)
#   libpemn_store  storage/                 (internal; sqlite, libpq)
#   libpemn_srv    server/                  (internal; microhttpd)
#   libpemn_train  train/                   (internal; openblas, zlib)

VARIANT ?= release
BUILD   := build/$(VARIANT)
PREFIX  ?= /usr/local
DESTDIR ?=
VERSION := 0.1.0
SOVER   := 0

CC      ?= cc
ifeq ($(CC),cc)
CC := gcc
endif

PKGS       := libmicrohttpd sqlite3 libpq libsodium jansson libcurl zlib openblas
DEP_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
DEP_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
TEST_LIBS  := $(shell pkg-config --libs cmocka 2>/dev/null || echo -lcmocka)

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wno-unused-parameter -Wformat=2 -Wvla
CSTD    := -std=c11 -D_GNU_SOURCE
INCS    := -Iinclude -I.

ifeq ($(VARIANT),release)
OPT := -O2 -g
else ifeq ($(VARIANT),asan)
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
SAN_LDFLAGS := -fsanitize=address,undefined
else ifeq ($(VARIANT),debug)
OPT := -O0 -g
else ifeq ($(VARIANT),fuzz)
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined
SAN_LDFLAGS := -fsanitize=address,undefined
else ifeq ($(VARIANT),cov)
OPT := -O0 -g --coverage
SAN_LDFLAGS := --coverage
endif

CFLAGS_ALL := $(CSTD) $(WARN) $(OPT) $(INCS) $(DEP_CFLAGS) -fPIC -MMD -MP $(EXTRA_CFLAGS)
LDFLAGS_ALL := $(SAN_LDFLAGS) $(EXTRA_LDFLAGS)

# ---- sources ---------------------------------------------------------------------------
LIB_SRC    := $(wildcard proto/*.c client/*.c)
STORE_SRC  := $(wildcard storage/*.c)
SRV_SRC    := $(wildcard server/*.c)
TRAIN_SRC  := $(wildcard train/*.c)
PEMN_SRC   := $(wildcard cli/pemn/*.c)
PEMND_SRC  := $(wildcard cli/pemnd/*.c)
TCOMMON_SRC:= $(wildcard tests/common/*.c)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
BENCH_SRC  := $(wildcard bench/bench_*.c)
TOOL_SRC   := $(wildcard tests/tools/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIB_OBJ    := $(call obj,$(LIB_SRC))
STORE_OBJ  := $(call obj,$(STORE_SRC))
SRV_OBJ    := $(call obj,$(SRV_SRC))
TRAIN_OBJ  := $(call obj,$(TRAIN_SRC))
PEMN_OBJ   := $(call obj,$(PEMN_SRC))
PEMND_OBJ  := $(call obj,$(PEMND_SRC))
TCOMMON_OBJ:= $(call obj,$(TCOMMON_SRC))

LIBPEMN_A  := $(BUILD)/lib/libpemn.a
LIBPEMN_SO := $(BUILD)/lib/libpemn.so.$(VERSION)
STORE_A    := $(BUILD)/lib/libpemn_store.a
SRV_A      := $(BUILD)/lib/libpemn_srv.a
TRAIN_A    := $(BUILD)/lib/libpemn_train.a
# link order: higher layers first
INTERNAL_A := $(if $(SRV_OBJ),$(SRV_A)) $(if $(STORE_OBJ),$(STORE_A)) \
              $(if $(TRAIN_OBJ),$(TRAIN_A)) $(LIBPEMN_A)

PEMN_BIN   := $(if $(PEMN_OBJ),$(BUILD)/bin/pemn)
PEMND_BIN  := $(if $(PEMND_OBJ),$(BUILD)/bin/pemnd)
UNIT_BINS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
REPLAY_BINS:= $(patsubst tests/fuzz/%.c,$(BUILD)/tests/replay_%,$(FUZZ_SRC))
BENCH_BINS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))
TOOL_BINS  := $(patsubst tests/tools/%.c,$(BUILD)/tests/tools/%,$(TOOL_SRC))

.PHONY: all lib bins tests deps test unit asan valgrind fuzz fuzzers bench run install uninstall \
        format format-check lint clean results demo

all: lib bins

lib: $(LIBPEMN_A) $(LIBPEMN_SO)
bins: $(PEMN_BIN) $(PEMND_BIN)
tests: $(UNIT_BINS) $(REPLAY_BINS) $(TOOL_BINS) $(BENCH_BINS) bins

# ---- compile ---------------------------------------------------------------------------
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

# SIMD kernels: compiled for their instruction set, chosen at run time.
$(BUILD)/obj/%_avx2.o: %_avx2.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -mavx2 -mfma -mbmi2 -c $< -o $@

# ---- libraries -------------------------------------------------------------------------
$(LIBPEMN_A): $(LIB_OBJ)
$(STORE_A): $(STORE_OBJ)
$(SRV_A): $(SRV_OBJ)
$(TRAIN_A): $(TRAIN_OBJ)
$(BUILD)/lib/%.a:
	@mkdir -p $(dir $@)
	@rm -f $@
	ar rcs $@ $^

$(LIBPEMN_SO): $(LIB_OBJ) deploy/libpemn.map
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libpemn.so.$(SOVER) -Wl,--version-script=deploy/libpemn.map \
	    $(LDFLAGS_ALL) -o $@ $(LIB_OBJ) \
	    $(shell pkg-config --libs libsodium jansson libcurl) -lm
	ln -sf libpemn.so.$(VERSION) $(BUILD)/lib/libpemn.so.$(SOVER)
	ln -sf libpemn.so.$(VERSION) $(BUILD)/lib/libpemn.so

# ---- programs --------------------------------------------------------------------------
$(BUILD)/bin/pemn: $(PEMN_OBJ) $(INTERNAL_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $(PEMN_OBJ) $(INTERNAL_A) $(DEP_LIBS)

$(BUILD)/bin/pemnd: $(PEMND_OBJ) $(INTERNAL_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $(PEMND_OBJ) $(INTERNAL_A) $(DEP_LIBS)

# ---- tests -----------------------------------------------------------------------------
$(BUILD)/tests/test_%: $(BUILD)/obj/tests/unit/test_%.o $(TCOMMON_OBJ) $(INTERNAL_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $< $(TCOMMON_OBJ) $(INTERNAL_A) $(DEP_LIBS) $(TEST_LIBS)

# Helper programs for shell tests and benchmarks (tests/tools/*.c), e.g. pemn_mkpkg.
$(BUILD)/tests/tools/%: $(BUILD)/obj/tests/tools/%.o $(INTERNAL_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $< $(INTERNAL_A) $(DEP_LIBS)

# Fuzz targets built with gcc and a standalone driver that replays a corpus folder.
$(BUILD)/tests/replay_%: $(BUILD)/obj/tests/fuzz/%.o $(BUILD)/obj/tests/fuzz/replay_main.o \
                         $(INTERNAL_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $< $(BUILD)/obj/tests/fuzz/replay_main.o $(INTERNAL_A) $(DEP_LIBS)

deps:
	@bash deploy/install-deps.sh

test: deps
	@$(MAKE) --no-print-directory tests
	@BUILD=$(BUILD) bash tests/run.sh all

unit: tests
	@BUILD=$(BUILD) bash tests/run.sh unit

asan: deps
	@$(MAKE) --no-print-directory VARIANT=asan tests
	@BUILD=build/asan ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 bash tests/run.sh unit

valgrind: deps
	@$(MAKE) --no-print-directory VARIANT=debug tests
	@BUILD=build/debug PEMN_VALGRIND=1 bash tests/run.sh unit

# libFuzzer builds: the same objects compiled by clang with coverage instrumentation.
# Run one: build/fuzz/bin/fuzz_pkg tests/fuzz/corpus/pkg -max_total_time=60
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/bin/%,$(FUZZ_SRC))
$(BUILD)/bin/fuzz_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(INTERNAL_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -fsanitize=fuzzer -o $@ $< $(INTERNAL_A) $(DEP_LIBS)
fuzzers: $(FUZZ_BINS)
fuzz: deps
	@$(MAKE) --no-print-directory VARIANT=fuzz CC=clang fuzzers
	@echo "fuzzers in build/fuzz/bin; corpora in tests/fuzz/corpus/<target>/"

# ---- benchmarks ------------------------------------------------------------------------
$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(INTERNAL_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $< $(INTERNAL_A) $(DEP_LIBS)

bench: deps
	@$(MAKE) --no-print-directory all $(BENCH_BINS) $(TOOL_BINS)
	@BUILD=$(BUILD) bash bench/run.sh

results: deps all
	@BUILD=$(BUILD) bash bench/results.sh

# ---- run -------------------------------------------------------------------------------
run: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) bash deploy/run.sh

# offline demo: keygen, pack, verify, inspect, expand a sample network (deploy/demo.sh)
demo: deps
	@$(MAKE) --no-print-directory all $(BUILD)/tests/test_pack
	@BUILD=$(BUILD) bash deploy/demo.sh

# ---- install ---------------------------------------------------------------------------
install: all
	install -d $(DESTDIR)$(PREFIX)/include/pemn $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	    $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/pemn/*.h $(DESTDIR)$(PREFIX)/include/pemn/
	install -m 644 $(LIBPEMN_A) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(LIBPEMN_SO) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libpemn.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libpemn.so.$(SOVER)
	ln -sf libpemn.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libpemn.so
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' deploy/pemn.pc.in \
	    > $(DESTDIR)$(PREFIX)/lib/pkgconfig/pemn.pc
	$(if $(PEMN_BIN),install -m 755 $(PEMN_BIN) $(DESTDIR)$(PREFIX)/bin/)
	$(if $(PEMND_BIN),install -m 755 $(PEMND_BIN) $(DESTDIR)$(PREFIX)/bin/)
	install -d $(DESTDIR)$(PREFIX)/share/pemn/ui
	install -m 644 ui/* $(DESTDIR)$(PREFIX)/share/pemn/ui/

uninstall:
	rm -rf $(DESTDIR)$(PREFIX)/include/pemn $(DESTDIR)$(PREFIX)/lib/libpemn.* \
	    $(DESTDIR)$(PREFIX)/lib/pkgconfig/pemn.pc $(DESTDIR)$(PREFIX)/bin/pemn \
	    $(DESTDIR)$(PREFIX)/bin/pemnd $(DESTDIR)$(PREFIX)/share/pemn/ui

# ---- style -----------------------------------------------------------------------------
STYLE_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(STYLE_FILES)
format-check:
	@clang-format --dry-run --Werror $(STYLE_FILES) && echo "format-check: ok"
lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr \
	    --suppress=missingIncludeSystem -Iinclude -I. $(STYLE_FILES)

clean:
	rm -rf build

# Keep the objects of pattern-built programs (tests, fuzz replays, benchmarks, tools). Not a
# bare .SECONDARY: that would make library objects intermediate too, and a newly added source
# older than an existing archive would then be silently left out of it.
.SECONDARY: $(call obj,$(UNIT_SRC) $(FUZZ_SRC) $(BENCH_SRC) $(TOOL_SRC) tests/fuzz/replay_main.c)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
