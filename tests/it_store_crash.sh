#!/bin/bash
# The store survives kill -9 at random moments: after each restart every
# block marked present reads back exactly, every complete file in data/
# matches its hash and is known complete, nothing is left in tmp/.
. "$(dirname "$0")/lib.sh"

make -s -C "$TOP" build/tests/store_crasher >/dev/null || { nok "build store_crasher"; finish; }
DRV=$TOP/build/tests/store_crasher
S=$T/store
ROUNDS=${CRASH_ROUNDS:-60}

bad=0 verified=0
for ((i = 1; i <= ROUNDS; i++)); do
	"$DRV" write "$S" "$i" 2>"$T/write.err" &
	pid=$!
	# 20..400 ms of work, then the kill.
	sleep "0.$(printf '%03d' $((20 + RANDOM % 380)))"
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	if ! "$DRV" verify "$S" >"$T/verify.out" 2>&1; then
		bad=$((bad + 1))
		echo "# round $i:"; sed 's/^/#   /' "$T/verify.out" | tail -5
	else
		verified=$((verified + 1))
	fi
done
check "$ROUNDS kill -9 rounds leave a consistent store" [ "$bad" -eq 0 ]
tail -1 "$T/verify.out" | sed 's/^/# last: /'

# The writer made progress across the crashes: something is complete.
n=$(find "$S/data" -type f | wc -l)
check "complete files survive crashes ($n in data/)" [ "$n" -gt 0 ]
check "tmp/ is empty after recovery" [ -z "$(ls -A "$S/tmp")" ]
finish
