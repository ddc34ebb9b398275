#!/bin/bash
# The primary's cost: CPU seconds (user + system, /proc/PID/stat) of
# m4f-origin per GiB replicated by a dvrfs mount (replicate, empty store,
# page cache dropped, on loopback) until every segment is in the store,
# against the rsync daemon's (its per-connection child, counted from the
# daemon's reaped children) for rsync -a of the same archive; and the
# origin's bytes read from disk (/proc/PID/io read_bytes) per byte it sent
# (its /metrics). First contact (first): a fresh origin that has never
# read or hashed the archive; then again with a fresh store on the same
# origin (second: its hash cache knows the archive). Targets: CPU per GiB
# <= 0.5x the rsync daemon's; <= 1.05 bytes read per byte sent.
#
# Alone: BENCH_TOP=$PWD BENCH_ARCHIVE=... bash bench/case_primary.sh
. "$(dirname "$0")/lib.sh"

need "$BENCH_ORIGIN" "$BIN/dvrfs"
command -v rsync >/dev/null || { echo "skip: rsync is not installed"; exit 0; }
drop_caches || { echo "skip: needs root to drop the page cache"; exit 0; }

nfiles=$(find "$BENCH_ARCHIVE" -type f | wc -l)
bytes=$(du -sb "$BENCH_ARCHIVE" | cut -f1)
gib=$(awk -v b="$bytes" 'BEGIN { printf "%.4f", b / 1073741824 }')
note "$nfiles segments, $gib GiB"

# rsync first: its daemon serves the archive to one rsync -a.
start_rsyncd || { echo "skip: the rsync daemon did not start"; exit 0; }
rsyncd=${_pids[-1]}
drop_caches
c0=$(proc_cpu "$rsyncd" children)
s0=$(proc_cpu "$rsyncd")
rsync -a "rsync://127.0.0.1:$RSYNC_PORT/archive/" "$W/copy/" || note "rsync failed"
# The daemon reaps its connection's child after the client is gone.
for ((i = 0; i < 100; i++)); do
	pgrep -P "$rsyncd" >/dev/null || break
	sleep 0.05
done
pgrep -P "$rsyncd" >/dev/null && note "the rsync daemon's child is still running"
rsync_cpu=$(awk -v a="$c0" -v b="$(proc_cpu "$rsyncd" children)" \
    -v c="$s0" -v d="$(proc_cpu "$rsyncd")" -v g="$gib" \
    'BEGIN { printf "%.2f", (b - a + d - c) / g }')
rm -rf "$W/copy"
result primary_rsyncd_cpu "$rsync_cpu" s/GiB

start_origin "$BENCH_ARCHIVE" || { echo "skip: m4f-origin did not start"; exit 0; }
origin=${_pids[-1]}

# sent: the body bytes the origin has sent so far, by its /metrics.
sent() {
	curl -sf "http://127.0.0.1:$ORIGIN_PORT/metrics" |
	    awk '/^m4f_origin_sent_bytes_total/ { s += $NF } END { printf "%.0f\n", s }'
}

for run in first second; do
	rm -rf "$W/store"
	drop_caches
	c0=$(proc_cpu "$origin") r0=$(proc_read_bytes "$origin") b0=$(sent)
	t0=$(now)
	mount_dvrfs "$ORIGIN_PORT" "$W/mnt" "$W/store" replicate,depth=366d ||
	    { note "dvrfs did not mount"; continue; }
	n=$(wait_filled "$W/store" "$nfiles")
	t=$(since "$t0")
	unmount "$W/mnt"
	[ "$n" -ge "$nfiles" ] || note "$run: $n of $nfiles segments in the store"
	cpu=$(awk -v a="$c0" -v b="$(proc_cpu "$origin")" -v g="$gib" \
	    'BEGIN { printf "%.2f", (b - a) / g }')
	read_b=$(($(proc_read_bytes "$origin") - r0))
	sent_b=$(($(sent) - b0))
	note "$run: filled in ${t}s; origin read $read_b bytes, sent $sent_b"
	result "primary_origin_cpu_$run" "$cpu" s/GiB "$rsync_cpu" \
	    "rsync daemon, target<=0.5"
	result "primary_read_per_sent_$run" "$(awk -v r="$read_b" -v s="$sent_b" \
	    'BEGIN { printf "%.3f", (s > 0 ? r / s : 0) }')" bytes/byte 1.05 \
	    "target<=1.05"
done
