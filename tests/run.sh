#!/bin/bash
# Runs unit test binaries (Check), integration scripts (tests/it_*.sh) and
# the man page check, counts their cases and ends with the line
# "N passed, N failed". Exits non-zero when anything failed.
#
# Integration scripts print "ok - NAME" or "not ok - NAME" per case (see
# tests/lib.sh) and exit non-zero when any case failed.
set -u
pass=0 fail=0 skip=0
failed=()
logdir=${TEST_LOGDIR:-build/test-logs}
mkdir -p "$logdir"

run_one() {
	local t=$1 name log rc p f
	name=$(basename "$t")
	log=$logdir/$name.log
	printf '%-28s ' "$name"
	local start=$SECONDS
	if [[ $t == *.sh ]]; then
		timeout -k 10 ${IT_TIMEOUT:-600} bash "$t" >"$log" 2>&1; rc=$?
		p=$(grep -c '^ok - ' "$log")
		f=$(grep -c '^not ok - ' "$log")
		s=$(grep -c '^skip - ' "$log")
		skip=$((skip + s))
		if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
	else
		CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-120} timeout -k 10 600 "$t" >"$log" 2>&1; rc=$?
		local line
		line=$(grep -E '^[0-9]+%: Checks: ' "$log" | tail -1)
		if [ -n "$line" ]; then
			local n fl er
			n=$(sed -E 's/.*Checks: ([0-9]+).*/\1/' <<<"$line")
			fl=$(sed -E 's/.*Failures: ([0-9]+).*/\1/' <<<"$line")
			er=$(sed -E 's/.*Errors: ([0-9]+).*/\1/' <<<"$line")
			f=$((fl + er)); p=$((n - f))
		else
			p=0; f=1
		fi
		if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
	fi
	pass=$((pass + p)); fail=$((fail + f))
	if [ "$f" -eq 0 ]; then
		echo "ok   ($p cases, $((SECONDS - start))s)"
	else
		echo "FAIL ($f of $((p + f)) cases failed, $((SECONDS - start))s; log: $log)"
		failed+=("$log")
	fi
}

mancheck() {
	local m out
	for m in $1; do
		printf '%-28s ' "$(basename "$m")"
		if out=$(groff -mdoc -ww -z "$m" 2>&1) && [ -z "$out" ]; then
			echo ok; pass=$((pass + 1))
		else
			echo "FAIL"; echo "$out" | sed 's/^/    /'; fail=$((fail + 1))
		fi
	done
}

for t in "$@"; do
	case $t in
	mancheck:*) mancheck "${t#mancheck:}" ;;
	*) run_one "$t" ;;
	esac
done
for l in "${failed[@]}"; do
	echo "---- $l (last 40 lines)"
	tail -40 "$l"
done
if [ $skip -gt 0 ]; then
	echo "$pass passed, $fail failed, $skip skipped"
else
	echo "$pass passed, $fail failed"
fi
[ $fail -eq 0 ]
