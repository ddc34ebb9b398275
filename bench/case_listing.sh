#!/bin/bash
# Listing a day again: a primary of LISTING_STREAMS (3) streams x
# LISTING_HOURS (24) of 2 s segments (129,600 files of 752 bytes, written
# by dvr-fake for this case), mounted by dvrfs on loopback. Whole-tree
# finds: the native folder cold (page cache dropped) and again (second);
# the mount's first walk on first contact (fresh origin that never listed
# or hashed the day, empty store, page cache dropped), then its first
# walk with a fresh store on the origin that has listed the day once, and
# the second walk of that mount. Target: the mount's second walk <= 2x
# the native second walk (the kernel keeps closed folders' listings).
# First walks: ratio = how many times faster than the native first walk.
#
# Alone: BENCH_TOP=$PWD bash bench/case_listing.sh (LISTING_HOURS=1 for a
# short run).
BENCH_TOP=${BENCH_TOP:-$(cd "$(dirname "$0")/.." && pwd)}
BENCH_ARCHIVE=${BENCH_ARCHIVE:-}
. "$BENCH_TOP/bench/lib.sh"

need "$BENCH_ORIGIN" "$BIN/dvrfs" "$BIN/dvr-fake"
drop_caches || { echo "skip: cold walks need root to drop the page cache"; exit 0; }

ns=${LISTING_STREAMS:-3} hours=${LISTING_HOURS:-24}
streams=()
for ((s = 0; s < ns; s++)); do streams+=(-s "day$s"); done
# The mount serves this tree, not the bench's archive.
BENCH_ARCHIVE=$W/day
t0=$(now)
"$BIN/dvr-fake" -r "$BENCH_ARCHIVE" "${streams[@]}" -b "${hours}h" -d 2 \
    -S 752 || { echo "skip: dvr-fake failed"; exit 0; }
chmod 755 "$W"
nfiles=$(find "$BENCH_ARCHIVE" -type f | wc -l)
note "$ns streams x ${hours}h: $nfiles segments written in $(since "$t0")s"

drop_caches
native_cold=$(walk "$BENCH_ARCHIVE" "$nfiles")
native=$(walk "$BENCH_ARCHIVE" "$nfiles")
result listing_native_first "$native_cold" s
result listing_native_second "$native" s

start_origin "$BENCH_ARCHIVE" || { echo "skip: m4f-origin did not start"; exit 0; }
for run in contact known; do
	rm -rf "$W/store"
	mount_dvrfs "$ORIGIN_PORT" "$W/mnt" "$W/store" ||
	    { echo "skip: dvrfs did not mount"; exit 0; }
	drop_caches
	first=$(walk "$W/mnt" "$nfiles")
	if [ $run = contact ]; then
		faster listing_dvrfs_first_contact "$first" s "$native_cold" \
		    "native first"
		unmount "$W/mnt"
		continue
	fi
	second=$(walk "$W/mnt" "$nfiles")
	unmount "$W/mnt"
	faster listing_dvrfs_first "$first" s "$native_cold" "native first"
	result listing_dvrfs_second "$second" s "$native" \
	    "native second, target<=2"
done
