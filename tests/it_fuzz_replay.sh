#!/bin/bash
# The fuzz corpora (tests/fuzz/corpus/NAME) as regression inputs: each
# harness, built with a plain driver instead of libFuzzer, runs once on
# every file of its corpus. A crash or a broken property fails the case.
. "$(dirname "$0")/lib.sh"
RB=${REPLAY_DIR:-$TOP/build/tests}

for n in listing feed origin options dvrpath sizes playback digest; do
	if [ ! -x "$RB/replay_$n" ]; then
		nok "replay $n: $RB/replay_$n not built (make $RB/replay_$n)"
		continue
	fi
	out=$("$RB/replay_$n" "$TOP/tests/fuzz/corpus/$n" 2>&1)
	rc=$?
	count=$(ls "$TOP/tests/fuzz/corpus/$n" | wc -l)
	if [ $rc -eq 0 ] && [ "$out" = "$count inputs replayed" ]; then
		ok "replay $n ($count inputs)"
	else
		echo "$out" | tail -20 | sed 's/^/# /'
		nok "replay $n (rc $rc)"
	fi
done
finish
