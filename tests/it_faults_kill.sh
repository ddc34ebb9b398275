#!/bin/bash
# kill -9 of dvrfs at random moments of a fill, remounting each time: the
# final store is hash-equal to the primary and 100 % filled, and readers
# comparing every byte with the primary's never see a wrong one.
# ROUNDS (default 50; DVRFS_LONG=1: 200) kills.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/faults_lib.sh"

ROUNDS=${ROUNDS:-50}
[ "${DVRFS_LONG:-0}" = 1 ] && ROUNDS=200
# Two streams of 10 minutes, 200 KB segments: 600 files, 120 MB.
make_archive -s news -s sport -b 10m -d 2 -S 200k
(cd "$ROOT" && find . -type f -printf '%P\n') >"$T/files"
start_origin
start_proxy
# The fill must outlast the kills: 2 MB/s through the proxy.
proxy rate=2000000
OPTS=replicate,depth=1h,timeout=3

mount_dvrfs $OPTS || { nok "first mount"; finish; }
add_mount "$MNT"
start_readers 2 "$T/files"
start=$SECONDS
kills=0 mfail=0
for ((r = 0; r < ROUNDS; r++)); do
	sleep "$(awk -v s=$RANDOM 'BEGIN { srand(s); printf "%.2f", 0.05 + rand() * 1.2 }')"
	pid=$(dvrfs_pid)
	kill -9 "$pid" 2>/dev/null && kills=$((kills + 1))
	fusermount3 -u -z "$MNT" 2>/dev/null
	mount_dvrfs $OPTS || mfail=$((mfail + 1))
done
elapsed=$((SECONDS - start))
[ $mfail -gt 0 ] && sed 's/^/# mount: /' "$T/mount.err" | tail -5
check "$kills kill -9 in $elapsed s, every remount succeeded ($mfail failed)" \
	test $kills -eq $ROUNDS -a $mfail -eq 0
before=$(status 'd["total"]["percent"]')
proxy ""
check "the fill completes after the kills (was at $before %)" wait_full 120
stop_readers
check "readers: $R_READS reads, $R_ERRORS errors ($R_ERRNOS), $R_SHORT short, $R_WRONG wrong" \
	test "$R_WRONG" -eq 0 -a "$R_READS" -gt 0
bad=$(store_bad)
check "every file in STORE/data is sha256-equal to the primary's" test -z "$bad"
[ -n "$bad" ] && echo "$bad" | head | sed 's/^/# /'
n=$(find "$STORE/data" -type f | wc -l)
check "all $(wc -l <"$T/files") files are in STORE/data ($n)" test "$n" -eq "$(wc -l <"$T/files")"
check "no wrong byte through the mount after the fill" \
	bash -c "cd '$ROOT' && while read -r f; do cmp -s \"\$f\" '$MNT'/\"\$f\" || exit 1; done <'$T/files'"
echo "# figure: rounds=$kills seconds=$elapsed reads=$R_READS errors=$R_ERRORS short=$R_SHORT wrong=$R_WRONG"
finish
