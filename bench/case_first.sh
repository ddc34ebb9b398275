#!/bin/bash
# First contact: a fresh m4f-origin (empty hash cache) over a never-hashed
# archive of BENCH_FIRST_HOURS (3) hours of 2 streams of 1 MiB segments
# (10.5 GiB, its own, written here), page cache dropped. Through the
# origin's API (curl): the newest hour of a stream listed, the first byte
# of its newest segment, the whole tree listed, the origin's disk reads
# during that listing (% of the archive; target <= 1 %) and per byte sent
# while a fill reads the newest hour (target <= 1.1). Then the same first
# figures through a fresh dvrfs mount: until mount returns, the newest
# hour lists, the first byte of the newest segment, the whole tree lists
# (targets: 1 s, 1 s, 1 s, 2 s).
. "$(dirname "$0")/lib.sh"

HOURS=${BENCH_FIRST_HOURS:-3}
need "$BENCH_ORIGIN" "$BIN/dvr-fake"
drop_caches || { echo "skip: first contact needs root to drop the page cache"; exit 0; }
A=$W/first
"$BIN/dvr-fake" -r "$A" -s first1 -s first2 -b "${HOURS}h" -d 2 -S 1M \
    >/dev/null || { echo "skip: dvr-fake failed"; exit 0; }
bytes=$(du -sb "$A" | cut -f1)
nfiles=$(find "$A" -type f | wc -l)
note "archive: $nfiles segments, $((bytes >> 20)) MiB"
newest_hour=$(cd "$A" && ls -d first1/*/*/*/* | sort | tail -1)
newest_seg=$(cd "$A" && find "$newest_hour" -type f | sort | tail -1)
api() { echo "http://127.0.0.1:$ORIGIN_PORT/m4f/v1/$1$A${2:+/$2}"; }
read_bytes() { awk '/^read_bytes/ { print $2 }' "/proc/$1/io"; }
origin_pid() { echo "${_pids[-1]}"; }

# --- the origin alone, through its API
start_origin "$A" || { echo "skip: m4f-origin did not start"; exit 0; }
OPID=$(origin_pid)
drop_caches
t0=$(now)
curl -sf -o "$W/hour.json" "$(api list "$newest_hour")?recursive=1" ||
    note "newest hour: listing failed"
result first_api_newest_hour_list "$(since "$t0")" s
t0=$(now)
curl -sf -o /dev/null -r 0-0 "http://127.0.0.1:$ORIGIN_PORT$A/$newest_seg" ||
    note "newest segment: GET failed"
result first_api_newest_segment_byte "$(since "$t0")" s
drop_caches
r0=$(read_bytes "$OPID")
t0=$(now)
curl -sf -o "$W/tree.json" "$(api list)?recursive=1&limit=100000" ||
    note "whole tree: listing failed"
t=$(since "$t0")
r1=$(read_bytes "$OPID")
listed=$(python3 -c 'import json, sys
print(sum(1 for e in json.load(open(sys.argv[1]))["entries"] if e["type"] == "f"))' "$W/tree.json")
[ "$listed" = "$nfiles" ] || note "whole tree: $listed files listed, not $nfiles"
result first_api_tree_list "$t" s
note "origin read $((r1 - r0)) bytes for the whole-tree listing"
result first_list_read_pct "$(awk -v r=$((r1 - r0)) -v b="$bytes" \
    'BEGIN { printf "%.4f", 100 * r / b }')" "%"

# A fill of the newest hour of first1, file by file, cold.
drop_caches
r0=$(read_bytes "$OPID")
sent=0
t0=$(now)
while read -r f; do
	n=$(curl -sf -o /dev/null -w '%{size_download}' \
	    "http://127.0.0.1:$ORIGIN_PORT$A/$newest_hour/$f") || continue
	sent=$((sent + n))
done < <(python3 -c 'import json, sys
for e in json.load(open(sys.argv[1]))["entries"]:
    if e["type"] == "f": print(e["name"])' "$W/hour.json")
t=$(since "$t0")
r1=$(read_bytes "$OPID")
note "fill of the newest hour: sent $sent bytes in $t s, read $((r1 - r0))"
result first_fill_read_per_sent "$(awk -v r=$((r1 - r0)) -v s="$sent" \
    'BEGIN { printf "%.3f", (s > 0 ? r / s : 0) }')" "x"
kill "$OPID" 2>/dev/null
sleep 0.5

# --- a fresh dvrfs mount over a fresh origin
[ -x "$BIN/dvrfs" ] || { note "dvrfs is not built"; exit 0; }
rm -f "$W"/hashcache.*
start_origin "$A" || { note "m4f-origin did not start again"; exit 0; }
drop_caches
m=$W/mnt
mkdir -p "$m"
t0=$(now)
if ! timeout 60 "$BIN/dvrfs" "127.0.0.1:$A" "$m" \
    -o "store=$W/store,port=$ORIGIN_PORT,timeout=10" 2>>"$W/dvrfs.log"; then
	note "dvrfs did not mount: $(tail -1 "$W/dvrfs.log")"
	exit 0
fi
_mounts+=("$m")
result first_mount "$(since "$t0")" s
# A figure counts only when the mount gave the right answer.
t0=$(now)
n=$(find "$m/$newest_hour" -type f 2>>"$W/find.err" | wc -l)
t=$(since "$t0")
if [ "$n" -gt 0 ]; then result first_newest_hour_list "$t" s
else note "newest hour: nothing listed ($(head -1 "$W/find.err"))"; fi
t0=$(now)
if head -c 1 "$m/$newest_seg" 2>>"$W/find.err" | cmp -s - <(head -c 1 "$A/$newest_seg"); then
	result first_newest_segment_byte "$(since "$t0")" s
else
	note "newest segment: read failed"
fi
t0=$(now)
n=$(find "$m" -type f 2>>"$W/find.err" | wc -l)
t=$(since "$t0")
if [ "$n" = "$nfiles" ]; then result first_tree_list "$t" s
else note "whole tree through the mount: $n files, not $nfiles ($(head -1 "$W/find.err"))"; fi
unmount "$m"
