#!/bin/bash
# Listing the whole tree: find over a fresh mount (empty store or cache,
# page cache dropped) of dvrfs, rclone mount (http backend on nginx) and
# httpdirfs (on nginx), on loopback (lo) and through the relay that adds
# 20 ms of round trip (wan); the native folder for scale. Every listing
# must name every segment. Target: dvrfs >= 10x faster than the best peer
# at 20 ms.
. "$(dirname "$0")/lib.sh"

need "$BENCH_ORIGIN" "$BIN/dvrfs"
drop_caches || { echo "skip: cold listings need root to drop the page cache"; exit 0; }

start_nginx "$BENCH_ARCHIVE" || { echo "skip: nginx did not start"; exit 0; }
start_origin "$BENCH_ARCHIVE" || { echo "skip: m4f-origin did not start"; exit 0; }
# The origin hashes the archive once, before anything is measured.
origin_hash_all || note "the origin's recursive listing failed"
nginx_lo=$NGINX_PORT origin_lo=$ORIGIN_PORT
start_relay "$NGINX_PORT" && nginx_wan=$RELAY_PORT || exit 1
start_relay "$ORIGIN_PORT" && origin_wan=$RELAY_PORT || exit 1
nfiles=$(find "$BENCH_ARCHIVE" -type f | wc -l)

# list DIR: prints the seconds a cold find over DIR takes.
list() {
	drop_caches
	walk "$1" "$nfiles"
}

result list_native "$(list "$BENCH_ARCHIVE")" s
for net in lo wan; do
	eval "np=\$nginx_$net op=\$origin_$net"
	best="" best_name=""
	for tool in rclone httpdirfs dvrfs; do
		command -v $tool >/dev/null || [ $tool = dvrfs ] ||
		    { note "$tool is missing"; continue; }
		m=$W/mnt-$tool-$net
		rm -rf "$W/store" "$W/cache"
		case $tool in
		dvrfs) mount_dvrfs "$op" "$m" "$W/store" ;;
		rclone) mount_rclone "$np" "$m" "$W/cache" ;;
		httpdirfs) mount_httpdirfs "$np" "$m" "$W/cache" ;;
		esac || { note "$tool did not mount"; continue; }
		t=$(list "$m")
		unmount "$m"
		if [ $tool = dvrfs ]; then
			faster "list_dvrfs_$net" "$t" s "$best" "best peer $best_name"
		else
			result "list_${tool}_$net" "$t" s
			if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN { exit !(a < b) }'; then
				best=$t best_name=$tool
			fi
		fi
	done
done
