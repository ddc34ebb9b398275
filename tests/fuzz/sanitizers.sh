#!/bin/bash
# make check-asan: builds every program and test with AddressSanitizer and
# UndefinedBehaviorSanitizer in a copy of the tree (build/asan/src, so that
# bin/ and build/ stay as they are), runs the unit tests and the quick
# integration tests there, and fails if any sanitizer wrote a report.
# Reports go to files (log_path): the FUSE daemon and the origin run in the
# background, where stderr is lost. ASAN_TESTS overrides the test list.
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
DIR=${ASAN_DIR:-$TOP/build/asan}
SRC=$DIR/src
LOGS=$DIR/reports

cd "$TOP" || exit 1
mkdir -p "$SRC" "$LOGS"
# rsync keeps the copy's build incremental; without it, a fresh copy.
if command -v rsync >/dev/null; then
	rsync -a --delete --exclude '/build*' --exclude '/bin' \
	    --exclude '/.git' ./ "$SRC/" || exit 1
else
	rm -rf "$SRC" && mkdir -p "$SRC" &&
	    tar --exclude=./build --exclude=./bin --exclude=./.git -cf - . |
	    tar -C "$SRC" -xf - || exit 1
fi
rm -f "$LOGS"/*

SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
export CFLAGS="-O1 -g $SAN" LDFLAGS="$SAN"
units=$(sed -n 's/^UNIT_TESTS[ \t]*:=[ \t]*//p' Makefile)
bins=""
for u in $units; do bins="$bins build/tests/check_$u"; done
replays=""
for n in listing feed origin options dvrpath sizes playback digest; do
	replays="$replays build/tests/replay_$n"
done
echo "check-asan: building in $SRC"
make -s -C "$SRC" -j"$(nproc)" all $bins $replays >"$DIR/build.log" 2>&1 || {
	tail -40 "$DIR/build.log"; exit 1; }

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:log_path=$LOGS/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$LOGS/ubsan"
export LSAN_OPTIONS="suppressions=$SRC/tests/fuzz/lsan.supp"
export CK_DEFAULT_TIMEOUT=300 IT_TIMEOUT=600
tests=${ASAN_TESTS:-tests/it_origin.sh tests/it_dvr_fake.sh tests/it_mount.sh tests/it_status.sh tests/it_fuzz_replay.sh}
cd "$SRC" || exit 1
TEST_LOGDIR=$DIR/test-logs tests/run.sh $bins $tests
rc=$?
if [ -n "$(ls -A "$LOGS")" ]; then
	echo "check-asan: sanitizer reports:"
	for f in "$LOGS"/*; do echo "---- $f"; head -60 "$f"; done
	rc=1
else
	echo "check-asan: no sanitizer reports"
fi
exit $rc
