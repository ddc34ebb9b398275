# dvrfs — see README.md. `make` builds bin/, `make check` runs every test.

PREFIX	?= /usr/local
SBINDIR	?= /sbin
MANDIR	?= $(PREFIX)/share/man
DESTDIR	?=

CC	?= cc
PKGS	:= fuse3 libcurl libcrypto sqlite3 libmicrohttpd jansson
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null)

CFLAGS	?= -O2 -g
WARN	:= -Wall -Wextra -Wshadow -Wmissing-prototypes -Wformat=2 \
	   -Wstrict-prototypes -Wno-unused-parameter
CPPFLAGS += -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -Iindex -Ifetcher -Ifusefs
ALL_CFLAGS = -std=c11 $(WARN) $(CFLAGS) $(PKG_CFLAGS) -pthread -MMD -MP
LDLIBS	+= $(PKG_LIBS) -pthread -lm

B	:= build

# One flat object list per library.
INDEX_OBJS := $(B)/index/log.o $(B)/index/bitmap.o $(B)/index/dvrpath.o \
	      $(B)/index/store.o $(B)/index/store_data.o $(B)/index/store_expire.o
FETCHER_OBJS := $(B)/fetcher/m4f.o $(B)/fetcher/fetcher.o $(B)/fetcher/xfer.o \
	$(B)/fetcher/feed.o $(B)/fetcher/crawler.o
FUSEFS_OBJS := $(B)/fusefs/options.o $(B)/fusefs/fs.o $(B)/fusefs/daemon.o \
	$(B)/fusefs/status.o

LIBINDEX := $(B)/libindex.a
LIBFETCHER := $(B)/libfetcher.a
LIBFUSEFS := $(B)/libfusefs.a
LIBS	:= $(LIBFUSEFS) $(LIBFETCHER) $(LIBINDEX)

# Programs: name and its own objects.
ORIGIN_OBJS := $(B)/tools/m4f-origin.o $(B)/tools/origin_http.o \
	$(B)/tools/origin_fs.o $(B)/tools/origin_hash.o $(B)/tools/origin_feed.o
FAKE_OBJS := $(B)/tools/dvr-fake.o $(B)/tools/tswriter.o

DVRFS_OBJS := $(B)/fusefs/main.o
STATUS_LIB_OBJS := $(B)/tools/status_scan.o $(B)/tools/status_info.o \
	$(B)/tools/status_fmt.o
STATUS_OBJS := $(B)/tools/dvrfs-status.o $(STATUS_LIB_OBJS)

PROGS	:= bin/m4f-origin bin/dvr-fake bin/dvrfs bin/dvrfs-status

# Unit tests: tests/check_NAME.c, one per module.
UNIT_TESTS := m4f options bitmap store fetcher status

# Integration tests, run in this order.
IT_TESTS := tests/it_origin.sh tests/it_dvr_fake.sh tests/it_store_crash.sh \
	tests/it_store_enospc.sh tests/it_mount.sh tests/it_status.sh

MANPAGES := docs/man/dvr-fake.1 docs/man/dvrfs-status.1 \
	docs/man/mount.dvrfs.8 docs/man/m4f-origin.8

.PHONY: all check unit integration mancheck deps bench install uninstall clean
all: $(PROGS) bin/mount.dvrfs

# mount(8) runs /sbin/mount.dvrfs for -t dvrfs: the same program.
bin/mount.dvrfs: bin/dvrfs
	ln -sf dvrfs $@

$(B)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

$(LIBINDEX): $(INDEX_OBJS)
$(LIBFETCHER): $(FETCHER_OBJS)
$(LIBFUSEFS): $(FUSEFS_OBJS)
$(LIBS):
	@mkdir -p $(@D)
	rm -f $@
	$(AR) rcs $@ $^

bin/m4f-origin: $(ORIGIN_OBJS) $(LIBS)
bin/dvr-fake: $(FAKE_OBJS) $(LIBS)
bin/dvrfs: $(DVRFS_OBJS) $(LIBS)
bin/dvrfs-status: $(STATUS_OBJS) $(LIBS)
$(PROGS):
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBS) $(LDLIBS)

# Drivers of the store's crash, full-disk and speed tests.
STORE_DRIVERS := $(B)/tests/store_crasher $(B)/bench/store_bench
$(B)/tests/store_crasher: tests/store_crasher.c $(LIBINDEX)
$(B)/bench/store_bench: bench/store_bench.c $(LIBINDEX)
$(STORE_DRIVERS):
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LIBINDEX) $(LDLIBS)

# dvrfs-status: a store filled through the store API, and its unit test.
$(B)/tests/status_fill: tests/status_fill.c $(LIBINDEX)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LIBINDEX) $(LDLIBS)
$(B)/tests/check_status: tests/check_status.c $(STATUS_LIB_OBJS) $(LIBS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Itools $(ALL_CFLAGS) $(CHECK_CFLAGS) $(LDFLAGS) \
	    -o $@ $< $(STATUS_LIB_OBJS) $(LIBS) $(LDLIBS) $(CHECK_LIBS)

UNIT_BINS := $(UNIT_TESTS:%=$(B)/tests/check_%)
$(B)/tests/check_%: tests/check_%.c $(LIBS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(CHECK_CFLAGS) $(LDFLAGS) -o $@ $< \
	    $(LIBS) $(LDLIBS) $(CHECK_LIBS)

deps:
	@sh packaging/deps.sh

check: deps
	@$(MAKE) --no-print-directory all $(UNIT_BINS)
	@tests/run.sh $(UNIT_BINS) $(IT_TESTS) mancheck:"$(MANPAGES)"

unit: all $(UNIT_BINS)
	@tests/run.sh $(UNIT_BINS)

integration: all
	@tests/run.sh $(IT_TESTS)

bench: deps all $(B)/bench/relay
	@sh packaging/deps.sh --bench
	@bench/run.sh

$(B)/bench/relay: bench/relay.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< -pthread

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(SBINDIR)
	install -m 755 $(PROGS) $(DESTDIR)$(PREFIX)/bin/

uninstall:
	rm -f $(PROGS:bin/%=$(DESTDIR)$(PREFIX)/bin/%)

clean:
	rm -rf $(B) bin

-include $(shell find $(B) -name '*.d' 2>/dev/null)
