#!/bin/bash
# bwlimit: a replicating dvrfs mount with bwlimit=20M and then 100M on
# loopback, empty store, page cache dropped; the crawler's bytes from the
# primary (the mount's own counters, fetcher bytes_live + bytes_backfill)
# over BWLIMIT_SECONDS (10) after a 2 s start. Target: within 5 % of the
# limit (ratio between 0.95 and 1.05).
#
# Alone: BENCH_TOP=$PWD BENCH_ARCHIVE=... bash bench/case_bwlimit.sh
. "$(dirname "$0")/lib.sh"

need "$BENCH_ORIGIN" "$BIN/dvrfs"
drop_caches || { echo "skip: needs root to drop the page cache"; exit 0; }
start_origin "$BENCH_ARCHIVE" || { echo "skip: m4f-origin did not start"; exit 0; }

secs=${BWLIMIT_SECONDS:-10}
got() {
	echo $(($(status_counter "$W/mnt" fetcher bytes_live) +
	    $(status_counter "$W/mnt" fetcher bytes_backfill)))
}
for mib in 20 100; do
	rm -rf "$W/store"
	drop_caches
	mount_dvrfs "$ORIGIN_PORT" "$W/mnt" "$W/store" \
	    "replicate,depth=366d,bwlimit=${mib}M" || { echo "skip: dvrfs did not mount"; exit 0; }
	sleep 2
	b0=$(got) t0=$(now)
	sleep "$secs"
	b1=$(got) dt=$(since "$t0")
	r=$(awk -v b=$((b1 - b0)) -v s="$dt" 'BEGIN { printf "%.1f", b / s / 1048576 }')
	result "bwlimit_${mib}m" "$r" MiB/s "$mib" "bwlimit=${mib}M, target 0.95-1.05"
	unmount "$W/mnt"
done
