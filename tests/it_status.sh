#!/bin/bash
# dvrfs-status over a store built through the store API (stopped mode):
# exact bytes, segments, percent, gaps, oldest/newest, the depth and the
# stream list from dvrfs.json, text mode, errors, -w until SIGTERM; then
# over a real mount (live mode): counters and the mount found both ways.
. "$(dirname "$0")/lib.sh"
ST=$BIN/dvrfs-status
make -s -C "$TOP" build/tests/status_fill >/dev/null ||
	{ nok "build status_fill"; finish; }

S=$T/store
BASE=$(( ($(date +%s) - 1000) / 10 * 10 ))
"$TOP/build/tests/status_fill" "$S" $BASE || { nok "status_fill"; finish; }
cat >"$S/dvrfs.json" <<J
{"spec": "primary:/storage", "mountpoint": "$T/nowhere", "depth": 3600,
 "replicate": true, "streams": ["news", "sport"], "pid": 1}
J

"$ST" -j "$S" >"$T/j" 2>"$T/err"; rc=$?
check "-j on a store exits 0" test $rc -eq 0
check "-j prints nothing on stderr" test ! -s "$T/err"
J=$T/j
is "not mounted" $J 'd["mounted"]' false
is "depth from dvrfs.json" $J 'd["depth_s"]' 3600
is "only the configured streams" $J 'sorted(d["streams"])' '["news", "sport"]'
is "total bytes done/total" $J '[d["total"]["bytes_done"], d["total"]["bytes_total"]]' '[66153, 70190]'
is "total segments done/total" $J '[d["total"]["segments_done"], d["total"]["segments_total"]]' '[26, 30]'
is "total percent" $J 'd["total"]["percent"]' 94.2
is "news bytes (old hour outside the depth left out)" $J \
	'[d["streams"]["news"]["bytes_done"], d["streams"]["news"]["bytes_total"]]' '[16153, 20190]'
is "news segments" $J \
	'[d["streams"]["news"]["segments_done"], d["streams"]["news"]["segments_total"]]' '[16, 20]'
is "news percent" $J 'd["streams"]["news"]["percent"]' 80.0
is "news gaps: a hole, and the live edge ending at its mtime" $J \
	'd["streams"]["news"]["gaps"]' \
	"[{\"end\": $((BASE + 16)), \"start\": $((BASE + 10))}, {\"end\": $((BASE + 40)), \"start\": $((BASE + 38))}]"
is "news oldest/newest replicated" $J \
	'[d["streams"]["news"]["oldest"], d["streams"]["news"]["newest"]]' "[$BASE, $((BASE + 36))]"
is "news live lag" $J 'd["streams"]["news"]["live_lag_s"]' 2
is "sport complete: 100%, no gaps, eta 0, lag 0" $J \
	'[d["streams"]["sport"][k] for k in ("percent", "gaps", "eta_s", "live_lag_s", "bytes_done", "segments_total")]' \
	'[100.0, [], 0, 0, 50000, 10]'
is "no rate, no eta when stopped" $J \
	'[d["total"]["rate_bps"], d["total"]["eta_s"], d["streams"]["news"]["rate_bps"]]' '[null, null, null]'
is "no read counters when stopped" $J '"reads" in d' false
is "total oldest/newest/lag" $J \
	'[d["total"]["oldest"], d["total"]["newest"], d["total"]["live_lag_s"]]' "[$BASE, $((BASE + 36)), 2]"

# Without dvrfs.json: every top-level folder, the default depth (7 days).
mv "$S/dvrfs.json" "$T/dvrfs.json"
"$ST" -j "$S" >"$T/j2"; rc=$?
check "-j without dvrfs.json exits 0" test $rc -eq 0
is "all streams" $T/j2 'sorted(d["streams"])' '["extra", "news", "sport"]'
is "default depth 7 days" $T/j2 'd["depth_s"]' 604800
is "news with the older hour inside the depth" $T/j2 \
	'[d["streams"]["news"][k] for k in ("bytes_done", "bytes_total", "segments_total", "oldest")]' \
	"[18853, 22890, 23, $((BASE - 7200))]"
is "a stream with nothing here" $T/j2 \
	'[d["streams"]["extra"][k] for k in ("bytes_done", "bytes_total", "percent", "oldest", "newest", "live_lag_s", "gaps")]' \
	"[0, 1400, 0.0, null, null, null, [{\"end\": $((BASE + 4)), \"start\": $BASE}]]"
mv "$T/dvrfs.json" "$S/dvrfs.json"

# Text mode: rsync-like table with the streams and their percentages.
"$ST" "$S" >"$T/txt"; rc=$?
check "text mode exits 0" test $rc -eq 0
check "text mode: news at 80.0%" grep -Eq '^news .* 80\.0% ' "$T/txt"
check "text mode: sport at 100.0%" grep -Eq '^sport .* 100\.0% ' "$T/txt"
check "text mode: total at 94.2%" grep -Eq '^total .* 94\.2% ' "$T/txt"
check "text mode: the gap's times" grep -q \
	"$(date -u -d @$((BASE + 10)) +%FT%TZ) .. $(date -u -d @$((BASE + 16)) +%FT%TZ)" "$T/txt"
check "text mode: not the unconfigured stream" bash -c "! grep -q '^extra' '$T/txt'"

# Errors: one line, exit 1.
"$ST" "$T" >"$T/out" 2>"$T/err"; rc=$?
check "a plain folder: exit 1" test $rc -eq 1
check "a plain folder: one line on stderr" test "$(wc -l <"$T/err")" -eq 1
check "a plain folder: nothing on stdout" test ! -s "$T/out"
"$ST" "$T/nonexistent" 2>"$T/err"; rc=$?
check "a missing path: exit 1, one line" test $rc -eq 1 -a "$(wc -l <"$T/err")" -eq 1
"$ST" -x "$S" 2>"$T/err"; rc=$?
check "unknown flag: usage, exit 1" test $rc -eq 1
check "usage is the synopsis" grep -qF 'usage: dvrfs-status [-jptw] [-H file | -o file] MOUNTPOINT|STORE' "$T/err"
"$ST" 2>/dev/null; rc=$?
check "no argument: exit 1" test $rc -eq 1

# -w to a pipe: plain lines every second, exit 0 on SIGTERM.
"$ST" -w "$S" >"$T/w" 2>"$T/werr" &
WP=$!
for ((i = 0; i < 100; i++)); do
	[ "$(grep -c '^total ' "$T/w")" -ge 2 ] && break
	sleep 0.1
done
kill -TERM $WP
wait $WP; rc=$?
check "-w stops on SIGTERM with exit 0" test $rc -eq 0
check "-w printed at least two frames" test "$(grep -c '^total ' "$T/w")" -ge 2
check "-w lines: no escape sequences on a pipe" bash -c "! grep -q $'\e' '$T/w'"
check "-w line per stream with bytes and percent" \
	grep -Eq '^news +16153 +80\.0% ' "$T/w"
check "-w prints nothing on stderr" test ! -s "$T/werr"

# watch_first SIG OUT ARG: dvrfs-status -w -j ARG until its first frame is
# out, then SIG; its first line to OUT, its exit status in rc.
watch_first() {
	local wp i
	"$ST" -w -j "$3" >"$2.all" &
	wp=$!
	for ((i = 0; i < 100; i++)); do [ -s "$2.all" ] && break; sleep 0.1; done
	kill -"$1" $wp
	wait $wp; rc=$?
	head -1 "$2.all" >"$2"
}
watch_first INT "$T/wj1" "$S"
check "-w -j stops on SIGINT with exit 0" test $rc -eq 0
is "-w -j: one JSON object per line" "$T/wj1" \
	'[d["total"]["bytes_done"], d["streams"]["news"]["segments_done"]]' '[66153, 16]'

# Live mode: a real mount of a real origin (no crawler: an on-demand
# cache reading 3 segments ahead), five news segments read through it.
P=$T/primary/storage
MNT=$T/mnt
LS=$T/livestore
mkdir -p "$P" "$MNT"
"$BIN/dvr-fake" -r "$P" -s news -s sport -b 2m -d 2 -S 100k ||
	{ nok "dvr-fake"; finish; }
PORT=$(free_port)
bg "$BIN/m4f-origin" -r "$P" -l 127.0.0.1:$PORT -c "$T/hash.db" 2>"$T/origin.log"
wait_port $PORT
if ! "$BIN/dvrfs" 127.0.0.1:"$P" "$MNT" -o store="$LS",port=$PORT,timeout=5,readahead=3 \
    2>"$T/mount.err"; then
	nok "mount for live mode"; cat "$T/mount.err"; finish
fi
add_mount "$MNT"
find "$MNT" -type f >/dev/null		# the store learns the whole tree
first=$(cd "$P/news" && find . -type f | sort | head -1)
for f in $(cd "$P/news" && find . -type f | sort | head -5); do
	cat "$MNT/news/$f" >/dev/null
done
SEG=$(stat -c %s "$P/news/$first")
T0=$(date -u -d "$(echo "${first#./}" | sed -E \
	's|^([0-9]+)/([0-9]+)/([0-9]+)/([0-9]+)/([0-9]+)/([0-9]+)\.ts$|\1-\2-\3 \4:\5:\6|')" +%s)
sleep 1

"$ST" -j "$MNT" >"$T/lj" 2>"$T/err"; rc=$?
check "live: -j on the mount point exits 0" test $rc -eq 0
L=$T/lj
is "live: mounted, the mount point and the store" $L \
	'[d["mounted"], d["mountpoint"], d["store"]]' \
	"[true, \"$(realpath "$MNT")\", \"$(realpath "$LS")\"]"
is "live: depth and spec from dvrfs.json" $L '[d["depth_s"], d["spec"]]' \
	"[604800, \"127.0.0.1:$P\"]"
is "live: every segment of the primary known" $L \
	'[d["streams"][s]["segments_total"] for s in ("news", "sport")]' '[60, 60]'
is "live: totals are the primary's bytes" $L 'd["total"]["bytes_total"]' \
	"$(find "$P" -type f -printf '%s\n' | awk '{ n += $1 } END { print n }')"
is "live: the segments read are complete (plus read-ahead)" $L \
	'5 <= d["streams"]["news"]["segments_done"] <= 8' true
is "live: complete bytes are whole segments" $L \
	"d[\"streams\"][\"news\"][\"bytes_done\"] == d[\"streams\"][\"news\"][\"segments_done\"] * $SEG" true
is "live: oldest is the first segment read" $L 'd["streams"]["news"]["oldest"]' $T0
is "live: nothing of sport" $L \
	'[d["streams"]["sport"][k] for k in ("segments_done", "oldest", "live_lag_s")]' \
	'[0, null, null]'
is "live: a measured rate" $L \
	'[type(d["total"]["rate_bps"]).__name__, type(d["streams"]["news"]["rate_bps"]).__name__]' \
	'["int", "int"]'
is "live: read counters, none failed" $L \
	'[d["reads"]["failed"], d["reads"]["local"] + d["reads"]["fetched"] >= 5]' '[0, true]'
is "live: the daemon's counters" $L \
	'[d["counters"]["fetcher"]["connected"], d["counters"]["hash_failures"]]' '[true, 0]'

"$ST" -j "$LS" >"$T/lj2"; rc=$?
check "live: the store folder finds its mount" test $rc -eq 0
is "live: same mount through the store folder" $T/lj2 \
	'[d["mounted"], d["mountpoint"]]' "[true, \"$(realpath "$MNT")\"]"
"$ST" "$MNT" >"$T/ltxt"; rc=$?
check "live: text mode shows the read counters" \
	grep -Eq '^reads: [0-9]+ local, [0-9]+ fetched, 0 failed' "$T/ltxt"

fusermount3 -u "$MNT"
"$ST" -j "$LS" >"$T/lj3"; rc=$?
check "after unmount: -j on the store exits 0" test $rc -eq 0
is "after unmount: not mounted, segments kept" $T/lj3 \
	'[d["mounted"], d["streams"]["news"]["segments_done"] >= 5, "reads" in d]' \
	'[false, true, false]'
"$ST" "$MNT" 2>"$T/err"; rc=$?
check "after unmount: the empty mount point is an error" \
	test $rc -eq 1 -a "$(wc -l <"$T/err")" -eq 1

# A replicating mount says how fast it copies each stream: dvrfs-status
# reads that rate from the mount instead of measuring one itself.
LS2=$T/fillstore
if ! "$BIN/dvrfs" 127.0.0.1:"$P" "$MNT" \
    -o store="$LS2",port=$PORT,timeout=5,replicate,bwlimit=512k,streams=news \
    2>"$T/mount2.err"; then
	nok "mount for the fill"; cat "$T/mount2.err"; finish
fi
add_mount "$MNT"
for ((i = 0; i < 100; i++)); do
	python3 -c 'import os,sys; sys.stdout.buffer.write(os.getxattr(sys.argv[1], "user.dvrfs.status"))' \
	    "$MNT" >"$T/x" 2>/dev/null
	python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["crawler"]["rates"].get("news", 0) > 0 else 1)' \
	    "$T/x" 2>/dev/null && break
	sleep 0.1
done
is "fill: the mount reports the rate of the stream it copies" "$T/x" \
	'[0 < d["crawler"]["rates"]["news"] <= 2 * 524288, "sport" in d["crawler"]["rates"]]' \
	'[true, false]'
"$ST" -j "$MNT" >"$T/fj" 2>"$T/err"; rc=$?
check "fill: -j on the mount exits 0" test $rc -eq 0
is "fill: the stream's rate is the mount's, bounded by bwlimit" "$T/fj" \
	'[0 < d["streams"]["news"]["rate_bps"] <= 2 * 524288, sorted(d["streams"])]' \
	'[true, ["news"]]'
# -w takes the mount's rates too: its first frame has one already.
watch_first TERM "$T/fw1" "$MNT"
check "fill: -w -j on the mount stops with exit 0" test $rc -eq 0
is "fill: -w's first frame has the mount's rate, bounded by bwlimit" \
	"$T/fw1" '0 < d["streams"]["news"]["rate_bps"] <= 2 * 524288' true
fusermount3 -u "$MNT"

finish
