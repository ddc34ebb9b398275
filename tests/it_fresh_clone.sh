#!/bin/bash
# The README's quick start works from a fresh clone of the committed tree:
# `make demo` (short: DEMO_SECONDS) and `make check` (a subset: one unit
# test and one integration test, so that it neither recurses into this
# test nor takes long; the full target is resolved with make -n).
. "$(dirname "$0")/lib.sh"

C=$T/clone
check "git clone of the committed tree" git clone -q "$TOP" "$C"
[ -f "$C/Makefile" ] || finish
check "the README's quick start names make demo and make check" \
	sh -c "sed -n '/^## Quick start/,/^## /p' '$C/README.md' |
		grep -q '^    make demo\$' &&
	sed -n '/^## Quick start/,/^## /p' '$C/README.md' |
		grep -q '^    make check\$'"

# make demo: installs packages when missing, builds, runs, stops cleanly.
export MAKEFLAGS=-j$(nproc)
DEMO_SECONDS=${FRESH_DEMO_SECONDS:-20} make -C "$C" demo >"$T/demo.log" 2>&1
rc=$?
check "make demo exits 0 (rc $rc)" test $rc -eq 0
check "it built the programs" test -x "$C/bin/dvrfs" -a -x "$C/bin/m4f-origin" \
	-a -x "$C/bin/dvr-fake" -a -x "$C/bin/dvrfs-status" -a -L "$C/bin/mount.dvrfs"
check "it mounted the secondary" grep -q '^demo: secondary: mount -t dvrfs' "$T/demo.log"
check "it served through nginx" grep -q '^demo: nginx: http://127.0.0.1:' "$T/demo.log"
check "it printed the final status" grep -q '^demo: final status:' "$T/demo.log"
check "it stopped everything" grep -q '^demo: stopped$' "$T/demo.log"
check "nothing of the clone is mounted" sh -c "! grep -q ' /tmp/dvrfs-demo' /proc/mounts"
none_left() { ! pgrep -af "$C/bin/" >&2; }
check "no process of the clone's demo is left" none_left

# make check, on a subset; the whole target must resolve.
mk_n() { make -C "$C" --no-print-directory -n check >"$T/make-n.log" 2>&1; }
check "make -n check resolves every test" mk_n
make -C "$C" --no-print-directory check UNIT_TESTS=options IT_TESTS=tests/it_origin.sh \
	>"$T/check.log" 2>&1
rc=$?
check "make check on a subset exits 0 (rc $rc)" test $rc -eq 0
check "make check reports nothing failed ($(tail -1 "$T/check.log"))" \
	grep -Eq '^[1-9][0-9]* passed, 0 failed' "$T/check.log"
if [ $_fails -gt 0 ]; then
	grep -v '^\(news\|sport\|testsrc\|total\) ' "$T/demo.log" | tail -30
	tail -30 "$T/check.log"
fi
finish
