#!/bin/bash
# make check-valgrind: runs each unit test binary named on the command
# line under valgrind memcheck, in one process (CK_FORK=no) so that
# valgrind sees every case. Fails on any memory error or definite leak.
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
LOGS=${VALGRIND_LOGDIR:-$TOP/build/valgrind}
mkdir -p "$LOGS"
export CK_FORK=no CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-600}
fail=0
for t in "$@"; do
	name=$(basename "$t")
	printf '%-28s ' "$name"
	valgrind --tool=memcheck --leak-check=full \
	    --errors-for-leak-kinds=definite --error-exitcode=99 \
	    --track-fds=no --log-file="$LOGS/$name.vg.%p" \
	    "$t" >"$LOGS/$name.out" 2>&1
	rc=$?
	errs=$(grep -h 'ERROR SUMMARY' "$LOGS/$name".vg.* 2>/dev/null |
	    awk '{s += $4} END {print s + 0}')
	if [ $rc -eq 0 ] && [ "$errs" -eq 0 ]; then
		echo "ok ($(grep -E 'Checks:' "$LOGS/$name.out" | tail -1))"
	else
		echo "FAIL (rc $rc, $errs errors; logs: $LOGS/$name.*)"
		fail=1
	fi
done
exit $fail
