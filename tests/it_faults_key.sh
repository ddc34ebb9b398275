#!/bin/bash
# A wrong cluster key: a clear log line, auth_failed in the status, and a
# backoff instead of a retry storm at the origin.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/faults_lib.sh"

make_archive -s news -b 2m -d 2 -S 100k
echo right >"$T/key"
start_origin -k "$T/key"
start_proxy
# A mount with the right key, then the primary's key changes under it.
mount_dvrfs replicate,depth=1h,timeout=2,cluster_key=right || { nok "mount"; finish; }
add_mount "$MNT"
wait_full 30
pid=$(dvrfs_pid)
kill "$ORIGIN"; wait "$ORIGIN" 2>/dev/null
echo changed >"$T/key"
start_origin -k "$T/key"
n0=$(grep -c 'GET\|HEAD' "$T/origin.log")
# Something to fetch: a new segment on the primary.
f=$(cd "$ROOT" && find news -name '*.ts' | head -1)
mkdir -p "$ROOT/news/extra" && head -c 100000 /dev/urandom >"$ROOT/news/extra/x.ts"
rm -f "$STORE/data/$f"
cat "$MNT/news/extra/x.ts" >/dev/null 2>&1
sleep 20
n1=$(grep -c 'GET\|HEAD' "$T/origin.log")
reqs=$((n1 - n0))
check "no retry storm: $reqs requests at the origin in 20 s" test $reqs -lt 20
check "auth_failed is true in dvrfs-status -j" test "$(status 'd["counters"]["fetcher"]["auth_failed"]')" = true
check "auth_failed in user.dvrfs.status" \
	python3 -c 'import os, sys; sys.exit(b"\"auth_failed\":true" not in os.getxattr(sys.argv[1], "user.dvrfs.status").replace(b" ", b""))' "$MNT"
check "the daemon is alive and the mount answers" sh -c "kill -0 $pid && ls '$MNT/news' >/dev/null"
out=$(cat "$MNT/$f" 2>&1 >/dev/null)
check "a read needing the primary fails with EIO ($out)" grep -q "Input/output error" <<<"$out"
# Foreground run: the log line.
fusermount3 -u "$MNT"
timeout 8 "$BIN/dvrfs" -f 127.0.0.1:"$ROOT" "$MNT" \
	-o store="$STORE",port=$PPORT,replicate,depth=1h,timeout=2,cluster_key=right \
	>"$T/fg.log" 2>&1 &
fg=$!
sleep 6
check "a clear log line in the foreground: $(grep -im1 'key\|401\|auth' "$T/fg.log")" \
	grep -qi 'cluster key' "$T/fg.log"
fusermount3 -u "$MNT" 2>/dev/null
wait $fg 2>/dev/null
echo "# figure: requests_in_20s=$reqs"
finish
