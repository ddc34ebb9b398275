#!/bin/bash
# A week of ten channels: a primary of WEEK_STREAMS (10) streams x
# WEEK_DAYS (7) of 2 s segments (3,024,000 files of 752 bytes, dvr-fake)
# and a store filled with all of it by bench/week_fill (the store API, as
# a replicating mount leaves it: every folder listed, every segment
# verified in STORE/data; without fsyncs, one sync at the end). Figures:
# mount ready (until dvrfs returns) with the store filled, target < 1 s;
# dvrfs-status of the mount (the rates are the mount's own) and of the
# store unmounted, target < 1 s; the daemon's VmRSS after a
# whole-tree find, target <= 64 MiB + 200 B per segment; the mount's
# first walk (first contact: page cache dropped, fresh mount) and second
# walk against the native folder's, target second <= 2x native second;
# a day's playlist of one stream (archive-FROM-86400.m3u8, 43,200
# segments) through the mount, twice, target 100 ms; retention of a day (432,000 files: remounted with a depth one day
# shorter): the p99 of a paced reader (500 files/s, each file read once,
# files of the days kept) during the deletion against the same reader on
# the mount with nothing to delete, target <= 2x idle. Needs about
# 9 KiB of free disk per segment (27 GB at full size) or says skip; takes
# about 20 minutes at full size (WEEK_DAYS=2 WEEK_STREAMS=2 for a short
# run).
#
# Alone: BENCH_TOP=$PWD bash bench/case_week.sh
BENCH_TOP=${BENCH_TOP:-$(cd "$(dirname "$0")/.." && pwd)}
BENCH_ARCHIVE=${BENCH_ARCHIVE:-}
. "$BENCH_TOP/bench/lib.sh"

need "$BENCH_ORIGIN" "$BIN/dvrfs" "$BIN/dvrfs-status" "$BIN/dvr-fake"
make -s -C "$BENCH_TOP" build/bench/week_fill >/dev/null ||
    { echo "skip: build/bench/week_fill does not build"; exit 0; }
drop_caches || { echo "skip: cold walks need root to drop the page cache"; exit 0; }

ns=${WEEK_STREAMS:-10} days=${WEEK_DAYS:-7}
((days >= 2)) || { echo "skip: WEEK_DAYS must be 2 or more"; exit 0; }
nfiles=$((ns * days * 43200))
need_kb=$((nfiles * 9 + 2 * 1048576))
avail_kb=$(df -Pk "$W" | awk 'NR == 2 { print $4 }')
if ((avail_kb < need_kb)); then
	echo "skip: $((avail_kb / 1048576)) GiB free under $W, $((need_kb / 1048576)) GiB needed for $nfiles segments"
	exit 0
fi

# The primary's tree.
streams=()
for ((s = 0; s < ns; s++)); do streams+=(-s "ch$s"); done
BENCH_ARCHIVE=$W/week
chmod 755 "$W"
t0=$(now)
"$BIN/dvr-fake" -r "$BENCH_ARCHIVE" "${streams[@]}" -b "${days}d" -d 2 \
    -S 752 || { echo "skip: dvr-fake failed"; exit 0; }
note "$ns streams x ${days}d: $nfiles segments written in $(since "$t0")s"

# The store, filled from the same files.
# WEEK_FILL_SYNC=1: with every fsync, as the crawler installs (slower).
nosync=(-n)
[ -n "${WEEK_FILL_SYNC:-}" ] && nosync=()
"$BENCH_TOP/build/bench/week_fill" "${nosync[@]}" "$W/store" "$BENCH_ARCHIVE" \
    >"$W/fill" 2>"$W/fill.err" ||
    { echo "skip: week_fill failed: $(tail -1 "$W/fill.err")"; exit 0; }
note "store filled: $(tr '\n' ' ' <"$W/fill")($(du -sm "$W/store/index.db" | cut -f1) MB of index)"

start_origin "$BENCH_ARCHIVE" || { echo "skip: m4f-origin did not start"; exit 0; }

drop_caches
native_first=$(walk "$BENCH_ARCHIVE" "$nfiles")
native=$(walk "$BENCH_ARCHIVE" "$nfiles")
result week_walk_native_first "$native_first" s
result week_walk_native_second "$native" s

# Nothing ages out at first: one hour more than the archive.
keep=depth=$((days * 24 + 1))h
drop_caches
t0=$(now)
mount_dvrfs "$ORIGIN_PORT" "$W/mnt" "$W/store" "$keep" ||
    { echo "skip: dvrfs did not mount"; exit 0; }
result week_mount_ready "$(since "$t0")" s 1 "target<=1s"
t0=$(now)
"$BIN/dvrfs-status" "$W/mnt" >"$W/status" || note "dvrfs-status of the mount failed"
result week_status_mount "$(since "$t0")" s 1 "target<=1s"
tail -1 "$W/status" | sed 's/^/# /'

first=$(walk "$W/mnt" "$nfiles")
faster week_walk_dvrfs_first "$first" s "$native_first" "native first"
rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$DVRFS_PID/status")
budget=$(awk -v n="$nfiles" 'BEGIN { printf "%.1f", 64 + n * 200 / 1048576 }')
result week_vmrss "$(rate "$rss" 1024)" MiB "$budget" "target<=64MiB+200B/segment"
second=$(walk "$W/mnt" "$nfiles")
result week_walk_dvrfs_second "$second" s "$native" "native second, target<=2"

# A day's playlist of one stream (43,200 segments), through the mount
# that has listed the week, twice: a new file at each lookup, so the
# second is gathered again from the store.
from=$(($(date +%s) - 86400 - 600))
for run in first second; do
	t0=$(now)
	n=$(grep -c '\.ts$' "$W/mnt/ch0/archive-$from-86400.m3u8")
	result "week_day_playlist_$run" "$(since "$t0")" s 0.1 \
	    "target<=100ms ($n segments)"
done

# The reader's files: two disjoint shuffled sets (idle, deletion) of the
# segments that stay, the newest days - 1 days less an hour.
python3 - "$BENCH_ARCHIVE" "$W" $(((days - 1) * 86400 - 3600)) <<-'EOF'
import calendar, os, random, sys, time
top, w, keep = sys.argv[1], sys.argv[2], int(sys.argv[3])
cut = time.time() - keep
ok = []
for d, _, fs in os.walk(top):
    rel = os.path.relpath(d, top)
    for f in fs:
        p = (rel + "/" + f).split("/")
        if f.startswith(".") or len(p) != 7:
            continue
        t = calendar.timegm(tuple(int(x) for x in p[1:6]) + (int(p[6][:2]), 0, 0, 0))
        if t >= cut:
            ok.append(rel + "/" + f)
ok.sort()
random.Random(7).shuffle(ok)
n = min(len(ok) // 2, 200000)
open(w + "/read.idle", "w").write("\n".join(ok[:n]) + "\n")
open(w + "/read.del", "w").write("\n".join(ok[n:2 * n]) + "\n")
EOF

# reader LIST OUT: reads the files of LIST under the mount, one every
# 2 ms, until the list ends or $W/stop exists; one millisecond figure per
# read (open, read, close) to OUT.
reader() {
	python3 - "$W/mnt" "$1" "$2" "$W/stop" <<-'EOF'
	import os, sys, time
	mnt, lst, out, stop = sys.argv[1:5]
	ms = []
	due = time.monotonic()
	for p in open(lst).read().split():
	    if os.path.exists(stop):
	        break
	    t = time.perf_counter()
	    fd = os.open(os.path.join(mnt, p), os.O_RDONLY)
	    os.read(fd, 65536)
	    os.close(fd)
	    ms.append((time.perf_counter() - t) * 1000)
	    due += 0.002
	    d = due - time.monotonic()
	    if d > 0:
	        time.sleep(d)
	open(out, "w").write("".join("%.3f\n" % x for x in ms))
	EOF
}
p99() { sort -g "$1" | awk '{ v[NR] = $1 } END { k = int(NR * 0.99 + 0.999999); if (k < 1) k = 1; printf "%.2f", (NR ? v[k] : 0) }'; }

# Idle: a fresh mount, nothing to delete.
unmount "$W/mnt"
drop_caches
mount_dvrfs "$ORIGIN_PORT" "$W/mnt" "$W/store" "$keep" || exit 1
rm -f "$W/stop"
reader "$W/read.idle" "$W/ms.idle" &
rpid=$!
sleep "${WEEK_IDLE:-10}"
touch "$W/stop"
wait "$rpid"
unmount "$W/mnt"
# Not mounted, dvrfs-status reads the store alone (no rate window).
t0=$(now)
"$BIN/dvrfs-status" "$W/store" >/dev/null || note "dvrfs-status of the store failed"
result week_status_store "$(since "$t0")" s 1 "target<=1s"

# Deletion: remounted with a day less of depth, the crawler drops a day
# at once; the reader runs from the mount until the pass is over.
drop_caches
rm -f "$W/stop"
t0=$(now)
mount_dvrfs "$ORIGIN_PORT" "$W/mnt" "$W/store" "depth=$((days - 1))d" || exit 1
note "remounted with depth=$((days - 1))d in $(since "$t0")s"
reader "$W/read.del" "$W/ms.del" &
rpid=$!
expired=0
for ((i = 0; i < ${WEEK_DELETE_MAX:-600} * 5; i++)); do
	expired=$(status_counter "$W/mnt" crawler expired 2>/dev/null || echo 0)
	[ "${expired:-0}" -gt 0 ] && break
	sleep 0.2
done
del_s=$(since "$t0")
touch "$W/stop"
wait "$rpid"
unmount "$W/mnt"
note "retention dropped $expired files in ${del_s}s; reads: $(wc -l <"$W/ms.idle") idle, $(wc -l <"$W/ms.del") during"
[ "${expired:-0}" -gt 0 ] || note "no retention pass ended within ${WEEK_DELETE_MAX:-600}s"
idle=$(p99 "$W/ms.idle")
result week_read_p99_idle "$idle" ms
result week_read_p99_retention "$(p99 "$W/ms.del")" ms "$idle" "idle p99, target<=2"
result week_retention_files "$expired" files
