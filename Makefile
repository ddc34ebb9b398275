# dvrfs — see README.md. `make` builds bin/, `make check` runs every test.

PREFIX	?= /usr/local
SBINDIR	?= /sbin
MANDIR	?= $(PREFIX)/share/man
UNITDIR	?= $(PREFIX)/lib/systemd/system
DATADIR	?= $(PREFIX)/share/dvrfs
DESTDIR	?=

CC	?= cc
# Each library and program names the pkg-config packages it uses, and is
# given only those.
PKGS_COMMON := libcrypto jansson
PKGS_INDEX := sqlite3 libcrypto
PKGS_FETCHER := libcurl libcrypto
PKGS_FUSEFS := fuse3
PKGS_ORIGIN := libmicrohttpd sqlite3
PKGS	:= fuse3 libcurl libcrypto sqlite3 libmicrohttpd jansson
pkg_cflags = $(shell pkg-config --cflags $(1) 2>/dev/null)
pkg_libs = $(shell pkg-config --libs $(sort $(1)) 2>/dev/null)
PKG_CFLAGS := $(call pkg_cflags,$(PKGS))
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null)

CFLAGS	?= -O2 -g
WARN	:= -Wall -Wextra -Wshadow -Wmissing-prototypes -Wformat=2 \
	   -Wstrict-prototypes -Wno-unused-parameter
CPPFLAGS += -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -Icommon -Iindex -Ifetcher \
	    -Ifusefs
ALL_CFLAGS = -std=c11 $(WARN) $(CFLAGS) $(PKG_CFLAGS) -pthread -MMD -MP
LDLIBS	+= -pthread -lm

B	:= build

# One flat object list per library. common/ is what every program
# links: logging, the M4F wire protocol, DVR path times, mount options.
COMMON_OBJS := $(B)/common/log.o $(B)/common/m4f.o $(B)/common/answer.o \
	$(B)/common/dvrpath.o $(B)/common/opts.o $(B)/common/clock.o \
	$(B)/common/jsonget.o
INDEX_OBJS := $(B)/index/bitmap.o \
	      $(B)/index/store_sql.o $(B)/index/store_data.o \
	      $(B)/index/store_ns.o $(B)/index/store_expire.o $(B)/index/store.o
FETCHER_OBJS := $(B)/fetcher/job.o $(B)/fetcher/verify.o \
	$(B)/fetcher/bundle.o $(B)/fetcher/feed.o $(B)/fetcher/xfer.o \
	$(B)/fetcher/read.o $(B)/fetcher/fetcher.o $(B)/fetcher/rates.o \
	$(B)/fetcher/crawler.o $(B)/fetcher/relist.o
FUSEFS_OBJS := $(B)/fusefs/options.o $(B)/fusefs/fs.o $(B)/fusefs/daemon.o \
	$(B)/fusefs/status.o $(B)/fusefs/playback.o $(B)/fusefs/vfile.o

LIBCOMMON := $(B)/libcommon.a
LIBINDEX := $(B)/libindex.a
LIBFETCHER := $(B)/libfetcher.a
LIBFUSEFS := $(B)/libfusefs.a
LIBS	:= $(LIBFUSEFS) $(LIBFETCHER) $(LIBINDEX) $(LIBCOMMON)
LIBS_PKGS := $(PKGS_FUSEFS) $(PKGS_FETCHER) $(PKGS_INDEX) $(PKGS_COMMON)

# Programs: one folder each under tools/, its objects and its libraries.
ORIGIN_OBJS := $(B)/tools/origin/m4f-origin.o $(B)/tools/origin/origin_http.o \
	$(B)/tools/origin/origin_req.o $(B)/tools/origin/origin_fs.o \
	$(B)/tools/origin/origin_hash.o $(B)/tools/origin/origin_feed.o \
	$(B)/tools/origin/origin_metrics.o $(B)/tools/origin/origin_hasher.o
FAKE_OBJS := $(B)/tools/dvr-fake/dvr-fake.o $(B)/tools/dvr-fake/tswriter.o
STATUS_LIB_OBJS := $(B)/tools/status/status_scan.o \
	$(B)/tools/status/status_info.o $(B)/tools/status/status_fmt.o \
	$(B)/tools/status/status_report.o $(B)/tools/status/status_text.o \
	$(B)/tools/status/status_json.o $(B)/tools/status/status_prom.o \
	$(B)/tools/status/status_html.o
STATUS_OBJS := $(B)/tools/status/dvrfs-status.o $(STATUS_LIB_OBJS)
DVRFS_OBJS := $(B)/fusefs/main.o
# dvrfs-restore: the gap rule, the plan and the local folder are
# testable without the network.
RESTORE_LIB_OBJS := $(B)/tools/restore/gaps.o $(B)/tools/restore/plan.o \
	$(B)/tools/restore/batch.o $(B)/tools/restore/local.o
RESTORE_OBJS := $(B)/tools/restore/dvrfs-restore.o \
	$(B)/tools/restore/peer.o $(B)/tools/restore/copy.o \
	$(RESTORE_LIB_OBJS)
PKGS_RESTORE := libcurl libcrypto

PROGS	:= bin/m4f-origin bin/dvr-fake bin/dvrfs bin/dvrfs-status \
	bin/dvrfs-restore

# Unit tests: tests/check_NAME.c, one per module.
UNIT_TESTS := m4f jsonget answer options bitmap store fetcher status \
	playback restore

# Integration tests, run in this order.
IT_TESTS := tests/it_layers.sh tests/it_origin.sh tests/it_origin_harden.sh \
	tests/it_origin_hash.sh tests/it_dvr_fake.sh \
	tests/it_store_crash.sh \
	tests/it_store_enospc.sh tests/it_mount.sh tests/it_listing.sh \
	tests/it_relist.sh tests/it_replicate.sh \
	tests/it_status.sh tests/it_observe.sh tests/it_playback.sh \
	tests/it_fuzz_replay.sh tests/it_scaleout.sh tests/it_demo.sh \
	tests/it_fresh_clone.sh
# Fault tests (docs/reliability.md).
IT_TESTS += tests/it_faults_kill.sh tests/it_faults_link.sh \
	tests/it_faults_corrupt.sh tests/it_faults_key.sh tests/it_faults_load.sh
IT_TESTS += tests/it_faults_liar.sh tests/it_faults_diskfull.sh \
	tests/it_faults_forge.sh
IT_TESTS += tests/it_restore.sh
# Files of no known hash, large files, signed answers (docs/security.md).
IT_TESTS += tests/it_hash.sh

MANPAGES := docs/man/dvr-fake.1 docs/man/dvrfs-status.1 \
	docs/man/mount.dvrfs.8 docs/man/m4f-origin.8 docs/man/dvrfs-restore.8

.PHONY: all check unit integration mancheck deps bench install uninstall clean
.PHONY: fuzz check-asan check-valgrind demo depcheck
all: $(PROGS) bin/mount.dvrfs

# mount(8) runs /sbin/mount.dvrfs for -t dvrfs: the same program.
bin/mount.dvrfs: bin/dvrfs
	ln -sf dvrfs $@

$(B)/%.o: %.c | depcheck
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

$(LIBCOMMON): $(COMMON_OBJS)
$(LIBINDEX): $(INDEX_OBJS)
$(LIBFETCHER): $(FETCHER_OBJS)
$(LIBFUSEFS): $(FUSEFS_OBJS)
$(LIBS):
	@mkdir -p $(@D)
	rm -f $@
	$(AR) rcs $@ $^

bin/m4f-origin: $(ORIGIN_OBJS) $(LIBCOMMON)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ \
	    $(call pkg_libs,$(PKGS_ORIGIN) $(PKGS_COMMON)) $(LDLIBS)
bin/dvr-fake: $(FAKE_OBJS) $(LIBCOMMON)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)
bin/dvrfs: $(DVRFS_OBJS) $(LIBS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(call pkg_libs,$(LIBS_PKGS)) \
	    $(LDLIBS)
bin/dvrfs-status: $(STATUS_OBJS) $(LIBINDEX) $(LIBCOMMON)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ \
	    $(call pkg_libs,$(PKGS_INDEX) $(PKGS_COMMON)) $(LDLIBS)
bin/dvrfs-restore: $(RESTORE_OBJS) $(LIBCOMMON)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ \
	    $(call pkg_libs,$(PKGS_RESTORE) $(PKGS_COMMON)) $(LDLIBS)

# Stops a build on a machine without the build dependencies with the
# packages to install, before the compiler fails on a missing header.
DEP_PKGS := fuse3:libfuse3-dev libcurl:libcurl4-openssl-dev \
	libcrypto:libssl-dev sqlite3:libsqlite3-dev \
	libmicrohttpd:libmicrohttpd-dev jansson:libjansson-dev check:check
depcheck:
	@missing=""; command -v pkg-config >/dev/null || missing=" pkg-config"; \
	for d in $(DEP_PKGS); do pkg-config --exists $${d%%:*} 2>/dev/null || \
	    missing="$$missing $${d#*:}"; done; \
	if [ -n "$$missing" ]; then \
	    echo "dvrfs: missing build dependencies (Debian packages):$$missing" >&2; \
	    echo "dvrfs: run 'make deps' as root to install them" >&2; exit 1; fi

# Drivers of the store's crash, full-disk and speed tests, and the
# store filler of bench/case_week.sh.
STORE_DRIVERS := $(B)/tests/store_crasher $(B)/bench/store_bench \
	$(B)/bench/week_fill
$(B)/tests/store_crasher: tests/store_crasher.c $(LIBINDEX) $(LIBCOMMON)
$(B)/bench/store_bench: bench/store_bench.c $(LIBINDEX) $(LIBCOMMON)
$(B)/bench/week_fill: bench/week_fill.c $(LIBINDEX) $(LIBCOMMON)
$(STORE_DRIVERS):
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LIBINDEX) \
	    $(LIBCOMMON) $(call pkg_libs,$(PKGS_INDEX) $(PKGS_COMMON)) $(LDLIBS)

# dvrfs-status: a store filled through the store API, and its unit test.
$(B)/tests/status_fill: tests/status_fill.c $(LIBINDEX) $(LIBCOMMON)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LIBINDEX) \
	    $(LIBCOMMON) $(call pkg_libs,$(PKGS_INDEX) $(PKGS_COMMON)) $(LDLIBS)
$(B)/tests/check_status: tests/check_status.c $(STATUS_LIB_OBJS) $(LIBS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Itools/status $(ALL_CFLAGS) $(CHECK_CFLAGS) \
	    $(LDFLAGS) -o $@ $< $(STATUS_LIB_OBJS) $(LIBS) \
	    $(call pkg_libs,$(LIBS_PKGS)) $(LDLIBS) $(CHECK_LIBS)

$(B)/tests/check_restore: tests/check_restore.c $(RESTORE_LIB_OBJS) $(LIBCOMMON)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Itools/restore $(ALL_CFLAGS) $(CHECK_CFLAGS) \
	    $(LDFLAGS) -o $@ $< $(RESTORE_LIB_OBJS) $(LIBCOMMON) \
	    $(call pkg_libs,$(PKGS_COMMON)) $(LDLIBS) $(CHECK_LIBS)

UNIT_BINS := $(UNIT_TESTS:%=$(B)/tests/check_%)
# check_fetcher puts the fault proxy between the fetcher and the origin.
$(B)/tests/check_fetcher: $(B)/tests/faultproxy
$(B)/tests/check_%: tests/check_%.c $(LIBS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(CHECK_CFLAGS) $(LDFLAGS) -o $@ $< \
	    $(LIBS) $(call pkg_libs,$(LIBS_PKGS)) $(LDLIBS) $(CHECK_LIBS)

# Fuzzing (tests/fuzz/): libFuzzer harnesses built with clang, and the
# same harnesses built with a plain driver that feeds each corpus file
# once (tests/it_fuzz_replay.sh). `make fuzz` runs each harness for
# FUZZ_SECONDS; new inputs go to $(B)/fuzz/corpus-NAME.
FUZZ_CC	?= clang
FUZZ_SECONDS ?= 30
FUZZ_FLAGS := -g -O1 -fno-omit-frame-pointer \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_NAMES := listing feed origin options dvrpath sizes playback digest
FUZZ_M4F := common/m4f.c common/jsonget.c
FUZZ_SRC_listing := $(FUZZ_M4F)
FUZZ_SRC_feed := $(FUZZ_M4F)
FUZZ_SRC_origin := $(FUZZ_M4F) common/log.c tools/origin/origin_req.c \
	tools/origin/origin_fs.c tools/origin/origin_hash.c \
	tools/origin/origin_feed.c tools/origin/origin_hasher.c
FUZZ_SRC_options := fusefs/options.c common/opts.c $(FUZZ_M4F)
FUZZ_SRC_dvrpath := common/dvrpath.c
FUZZ_SRC_sizes := $(FUZZ_M4F)
FUZZ_SRC_playback := fusefs/playback.c
FUZZ_SRC_digest := common/answer.c $(FUZZ_M4F)
REPLAY_OBJS_origin := $(B)/tools/origin/origin_req.o \
	$(B)/tools/origin/origin_fs.o $(B)/tools/origin/origin_hash.o \
	$(B)/tools/origin/origin_feed.o $(B)/tools/origin/origin_hasher.o
FUZZ_LIBS := $(call pkg_libs,$(LIBS_PKGS) $(PKGS_ORIGIN))
FUZZ_BINS := $(FUZZ_NAMES:%=$(B)/fuzz/fuzz_%)
FUZZ_REPLAYS := $(FUZZ_NAMES:%=$(B)/tests/replay_%)

$(FUZZ_BINS): $(B)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_fail.c \
    tests/fuzz/fuzz.h $(sort $(foreach n,$(FUZZ_NAMES),$(FUZZ_SRC_$(n))))
	@mkdir -p $(@D)
	$(FUZZ_CC) $(CPPFLAGS) -Itools/origin -Itests/fuzz -std=c11 $(FUZZ_FLAGS) \
	    $(PKG_CFLAGS) -pthread -o $@ $< tests/fuzz/fuzz_fail.c \
	    $(FUZZ_SRC_$*) $(FUZZ_LIBS) $(LDLIBS)

$(FUZZ_REPLAYS): $(B)/tests/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c \
    tests/fuzz/fuzz_fail.c tests/fuzz/fuzz.h $(REPLAY_OBJS_origin) $(LIBS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Itools/origin -Itests/fuzz $(ALL_CFLAGS) $(LDFLAGS) \
	    -o $@ $< tests/fuzz/replay.c tests/fuzz/fuzz_fail.c \
	    $(REPLAY_OBJS_$*) $(LIBS) $(FUZZ_LIBS) $(LDLIBS)

fuzz:
	@sh packaging/deps.sh --fuzz
	@$(MAKE) --no-print-directory $(FUZZ_BINS)
	@for n in $(FUZZ_NAMES); do \
	    mkdir -p $(B)/fuzz/corpus-$$n; \
	    echo "fuzz_$$n: $(FUZZ_SECONDS) s"; \
	    $(B)/fuzz/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix=$(B)/fuzz/$$n- \
		$$(test -f tests/fuzz/$$n.dict && echo -dict=tests/fuzz/$$n.dict) \
		$(B)/fuzz/corpus-$$n tests/fuzz/corpus/$$n \
		2>$(B)/fuzz/$$n.log || { tail -60 $(B)/fuzz/$$n.log; exit 1; }; \
	    grep -E '^stat::number_of_executed_units' $(B)/fuzz/$$n.log; \
	done

# Every program and test built with ASan and UBSan in a copy of the tree
# ($(B)-asan), then the unit tests and the quick integration tests.
check-asan:
	@tests/fuzz/sanitizers.sh

# The unit tests under valgrind memcheck.
check-valgrind: all $(UNIT_BINS)
	@tests/fuzz/valgrind.sh $(UNIT_BINS)

deps:
	@sh packaging/deps.sh

# A primary, a secondary and nginx on this machine; see README.md.
demo: deps
	@$(MAKE) --no-print-directory all
	@packaging/demo.sh

check: deps
	@$(MAKE) -j2 --no-print-directory all $(UNIT_BINS) $(FUZZ_REPLAYS)
	@tests/run.sh $(UNIT_BINS) $(IT_TESTS) mancheck:"$(MANPAGES)"

unit: all $(UNIT_BINS)
	@tests/run.sh $(UNIT_BINS)

integration: all
	@tests/run.sh $(IT_TESTS)

bench: deps all $(B)/bench/relay $(B)/bench/viewers $(B)/bench/week_fill
	@sh packaging/deps.sh --bench
	@bench/run.sh

# The fault-injecting proxy of the tests/it_faults_*.sh tests.
$(B)/tests/faultproxy: tests/faultproxy.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $<

# A FUSE filesystem slow to list, the slow disk of tests/it_origin_harden.sh.
$(B)/tests/slowfs: tests/slowfs.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< \
	    $(call pkg_libs,fuse3)

$(B)/bench/relay: bench/relay.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< -pthread

# The paced HTTP viewers of bench/case_viewers.sh.
$(B)/bench/viewers: bench/viewers.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< \
	    $(call pkg_libs,libcurl)

# Programs to PREFIX/bin, mount.dvrfs (a link to dvrfs) to SBINDIR, man
# pages to MANDIR, m4f-origin.service and dvrfs-restore@.service to
# UNITDIR, the example mount unit
# and nginx site to DATADIR. uninstall removes exactly these.
INSTALLED := $(PROGS:bin/%=$(PREFIX)/bin/%) $(SBINDIR)/mount.dvrfs \
	$(foreach m,$(MANPAGES),$(MANDIR)/man$(subst .,,$(suffix $(m)))/$(notdir $(m))) \
	$(UNITDIR)/m4f-origin.service $(UNITDIR)/dvrfs-restore@.service \
	$(DATADIR)/mnt-dvr.mount \
	$(DATADIR)/nginx-dvrfs.conf

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(SBINDIR) \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DATADIR)
	install -m 755 $(PROGS) $(DESTDIR)$(PREFIX)/bin/
	ln -sf $(PREFIX)/bin/dvrfs $(DESTDIR)$(SBINDIR)/mount.dvrfs
	for m in $(MANPAGES); do s=$${m##*.}; \
	    install -m 644 $$m $(DESTDIR)$(MANDIR)/man$$s/ || exit 1; done
	sed 's|/usr/local/bin/|$(PREFIX)/bin/|' packaging/m4f-origin.service \
	    >$(DESTDIR)$(UNITDIR)/m4f-origin.service
	chmod 644 $(DESTDIR)$(UNITDIR)/m4f-origin.service
	sed 's|/usr/local/bin/|$(PREFIX)/bin/|' packaging/dvrfs-restore@.service \
	    >'$(DESTDIR)$(UNITDIR)/dvrfs-restore@.service'
	chmod 644 '$(DESTDIR)$(UNITDIR)/dvrfs-restore@.service'
	install -m 644 packaging/mnt-dvr.mount packaging/nginx-dvrfs.conf \
	    $(DESTDIR)$(DATADIR)/

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	rmdir $(DESTDIR)$(DATADIR) 2>/dev/null || true

clean:
	rm -rf $(B) bin

-include $(shell find $(B) -name '*.d' 2>/dev/null)
