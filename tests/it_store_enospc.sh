#!/bin/bash
# A full disk: writes fail cleanly with ENOSPC, everything the store says
# it has reads back right, and after expiry writing goes on.
. "$(dirname "$0")/lib.sh"

make -s -C "$TOP" build/tests/store_crasher >/dev/null || { nok "build store_crasher"; finish; }
DRV=$TOP/build/tests/store_crasher
M=$T/mnt
mkdir -p "$M"
if ! mount -t tmpfs -o size=64m tmpfs "$M" 2>/dev/null; then
	skip "cannot mount a tmpfs (needs root)"
	finish
fi
add_mount "$M"
S=$M/store
export STORE_SCALE=64

"$DRV" fill "$S" 1 >"$T/fill1" 2>"$T/fill1.err"
rc=$?
check "writes stop with ENOSPC" grep -q '^enospc after [1-9]' "$T/fill1"
check "the writer did not fail otherwise (rc $rc)" [ $rc -eq 0 ]
check "the disk is really full (less than one file free)" [ "$(df --output=avail "$M" | tail -1)" -lt 6144 ]
"$DRV" verify "$S" >"$T/v1" 2>&1
check "no corruption at ENOSPC: $(tail -1 "$T/v1")" grep -q ' 0 errors$' "$T/v1"
check "something was stored" grep -qv '^verified 0 complete files, 0 blocks' "$T/v1"
check "nothing left in tmp/" [ -z "$(ls -A "$S/tmp")" ]

"$DRV" expire "$S" >"$T/exp" 2>&1
check "expiry frees space: $(cat "$T/exp")" grep -q '^expired [1-9]' "$T/exp"
check "space is back" [ "$(df --output=avail "$M" | tail -1)" -gt 20000 ]

"$DRV" fill "$S" 2 >"$T/fill2" 2>"$T/fill2.err"
check "writing goes on after expiry: $(cat "$T/fill2")" grep -q '^enospc after [1-9]' "$T/fill2"
"$DRV" verify "$S" >"$T/v2" 2>&1
check "no corruption after the second fill: $(tail -1 "$T/v2")" grep -q ' 0 errors$' "$T/v2"
finish
