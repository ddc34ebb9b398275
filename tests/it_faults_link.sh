#!/bin/bash
# The link to the primary cut for 30 s (then stalled for 10 s) in the
# middle of a fill: readers of
# local data never notice, readers of missing data get EIO within the
# timeout + 2 s and never hang, and the fill completes once the link is back.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/faults_lib.sh"

CUT=${CUT:-30}
make_archive -s news -s sport -b 10m -d 2 -S 200k
(cd "$ROOT" && find . -type f -printf '%P\n' | sort) >"$T/files"
start_origin
start_proxy
proxy rate=3000000
mount_dvrfs replicate,depth=1h,timeout=3 || { nok "mount"; finish; }
add_mount "$MNT"
for ((i = 0; i < 100; i++)); do
	[ "$(find "$STORE/data" -type f 2>/dev/null | wc -l)" -ge 100 ] && break
	sleep 0.1
done
(cd "$STORE/data" && find . -type f -printf '%P\n' | sort) >"$T/local"
comm -23 "$T/files" "$T/local" >"$T/missing"
check "mid-fill: $(wc -l <"$T/local") files local, $(wc -l <"$T/missing") missing" \
	test -s "$T/local" -a -s "$T/missing"

# cut MODE SECONDS: the link in MODE (down: connections reset; stall:
# accepted, nothing forwarded) while local and missing files are read.
cut() {
	local mode=$1 secs=$2 t0 a err rc ms f
	start_readers 2 "$T/local"
	proxy $mode=1
	t0=$SECONDS slow=0 eio=0 other=0 n=0 worst=0
	while [ $((SECONDS - t0)) -lt "$secs" ]; do
		f=$(shuf -n 1 "$T/missing")
		[ -e "$STORE/data/$f" ] && continue
		a=$(date +%s%N)
		err=$(timeout 20 cat "$MNT/$f" 2>&1 >/dev/null)
		rc=$?
		ms=$((($(date +%s%N) - a) / 1000000))
		n=$((n + 1))
		[ $ms -gt $worst ] && worst=$ms
		if [ $rc -eq 124 ] || [ $ms -gt 5000 ]; then slow=$((slow + 1))
		elif grep -q "Input/output error" <<<"$err"; then eio=$((eio + 1))
		else other=$((other + 1)); echo "# $f: rc $rc: $err"; fi
	done
	proxy rate=3000000
	stop_readers
	check "$mode ${secs}s: local readers: $R_READS reads, no error, no wrong byte" \
		test "$R_ERRORS" -eq 0 -a "$R_WRONG" -eq 0 -a "$R_SHORT" -eq 0 -a "$R_READS" -gt 0
	check "$mode ${secs}s: missing data: $eio of $n reads EIO, $other otherwise" \
		test $eio -eq $n -a $n -gt 0
	check "$mode ${secs}s: every EIO within timeout + 2 s (slowest $worst ms, $slow later)" \
		test $slow -eq 0
	echo "# figure: $mode=${secs}s missing_reads=$n eio=$eio slowest_ms=$worst local_reads=$R_READS"
}
cut down "$CUT"
refused=$(proxy_stat refused)
check "the proxy refused connections during the cut ($refused)" test "${refused:-0}" -gt 0
cut stall 10
proxy ""
check "the fill completes after the cut" wait_full 120
bad=$(store_bad)
check "every file in STORE/data is sha256-equal to the primary's" test -z "$bad"
check "all files are in the store" \
	test "$(find "$STORE/data" -type f | wc -l)" -eq "$(wc -l <"$T/files")"
f=$(head -1 "$T/missing")
check "a file missing during the cut reads right now" cmp -s "$ROOT/$f" "$MNT/$f"
finish
