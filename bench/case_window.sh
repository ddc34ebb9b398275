#!/bin/bash
# On-demand reads of a 10-minute window (the newest BENCH_WINDOW (300)
# segments of one stream), each case on loopback (lo) and through the
# relay that adds 20 ms of round trip (wan): cold sequential read with an
# empty store/cache and a dropped page cache, through dvrfs, rclone mount
# (--vfs-cache-mode full, http backend on nginx), httpdirfs --cache (on
# nginx), one curl fetching the files in turn, 8 parallel curls, and the
# native folder; the warm re-read of the same window; the cold time to the
# first byte of a file once its folder is listed (median of 9 files); and
# 200 random 64 KiB reads through dvrfs, counting the bytes fetched from
# the origin against the blocks the reads touch. Targets: cold window
# on loopback <= 1.6x the native cold read, at 20 ms <= 1.5x the time
# of 8 parallel curls; warm >= 0.9x native; random reads fetch only the blocks
# they touch (ratio <= 1).
. "$(dirname "$0")/lib.sh"

need "$BENCH_ORIGIN" "$BIN/dvrfs"
drop_caches || { echo "skip: cold reads need root to drop the page cache"; exit 0; }

N=${BENCH_WINDOW:-300}
stream=${BENCH_STREAMS%% *}
(cd "$BENCH_ARCHIVE" && find "$stream" -type f -name '*.ts' | sort | tail -n "$N") >"$W/win"
mib=$(cd "$BENCH_ARCHIVE" && xargs -a "$W/win" du -cb | awk 'END { printf "%.1f", $1 / 1048576 }')
# 9 files spread over the whole archive for the first-byte figures.
(cd "$BENCH_ARCHIVE" && find . -type f -name '*.ts' | sort | sed 's|^\./||') >"$W/all"
awk -v n="$(wc -l <"$W/all")" 'NR % int(n / 9 + 1) == 1' "$W/all" >"$W/ttfb"
note "window: $(wc -l <"$W/win") segments of $stream, $mib MiB"

start_nginx "$BENCH_ARCHIVE" || { echo "skip: nginx did not start"; exit 0; }
start_origin "$BENCH_ARCHIVE" || { echo "skip: m4f-origin did not start"; exit 0; }
# The origin hashes the archive once, before anything is measured.
origin_hash_all || note "the origin's recursive listing failed"
nginx_lo=$NGINX_PORT origin_lo=$ORIGIN_PORT
start_relay "$NGINX_PORT" && nginx_wan=$RELAY_PORT || exit 1
start_relay "$ORIGIN_PORT" && origin_wan=$RELAY_PORT || exit 1
have_rclone=1 have_httpdirfs=1
command -v rclone >/dev/null || { have_rclone=0; note "rclone is missing"; }
command -v httpdirfs >/dev/null || { have_httpdirfs=0; note "httpdirfs is missing"; }

# read_window DIR: reads the window's files in turn under DIR; prints the
# seconds it took. Fails on a read error.
read_window() {
	local t0
	t0=$(now)
	(cd "$1" && xargs -a "$W/win" cat) >/dev/null 2>"$W/read.err" ||
	    { note "read errors under $1: $(head -1 "$W/read.err")"; return 1; }
	since "$t0"
}

# warm DIR: the best of two re-reads of the window under DIR, in MiB/s.
warm() {
	local a b
	a=$(read_window "$1") b=$(read_window "$1")
	rate "$mib" "$(median "$a" "$b")"
}

# ttfb DIR: lists the folders of the first-byte files, drops the page
# cache, then prints the median milliseconds from open() to the first
# byte read over those files.
ttfb() {
	(cd "$1" && xargs -a "$W/ttfb" -n1 dirname | sort -u | xargs ls >/dev/null)
	drop_caches
	python3 - "$1" "$W/ttfb" <<-'EOF'
	import os, sys, time
	ms = []
	for p in open(sys.argv[2]).read().split():
	    t = time.perf_counter()
	    fd = os.open(os.path.join(sys.argv[1], p), os.O_RDONLY)
	    if len(os.read(fd, 1)) != 1:
	        sys.exit("short read: " + p)
	    ms.append((time.perf_counter() - t) * 1000)
	    os.close(fd)
	ms.sort()
	print("%.1f" % ms[len(ms) // 2])
	EOF
}

# curl_urls PORT: a curl config fetching the window from 127.0.0.1:PORT.
curl_urls() {
	sed "s|.*|url = \"http://127.0.0.1:$1$BENCH_ARCHIVE/&\"\noutput = \"/dev/null\"|" "$W/win"
}

# fresh_mount TOOL PORT DIR: mounts TOOL (dvrfs, rclone, httpdirfs) with
# an empty store or cache.
fresh_mount() {
	rm -rf "$W/store" "$W/cache"
	case $1 in
	dvrfs) mount_dvrfs "$2" "$3" "$W/store" ;;
	rclone) mount_rclone "$2" "$3" "$W/cache" ;;
	httpdirfs) mount_httpdirfs "$2" "$3" "$W/cache" ;;
	esac
}

# random_reads DIR: 200 random 64 KiB reads of the window's files;
# prints the bytes of the 1 MiB blocks they touch.
random_reads() {
	python3 - "$1" "$W/win" <<-'EOF'
	import os, random, sys
	random.seed(7)
	B = 1 << 20
	files = open(sys.argv[2]).read().split()
	blocks = {}
	for _ in range(200):
	    p = random.choice(files)
	    path = os.path.join(sys.argv[1], p)
	    size = os.stat(path).st_size
	    off = random.randrange(0, max(1, size - 65536))
	    fd = os.open(path, os.O_RDONLY)
	    # Random access: no kernel read-ahead past the 64 KiB.
	    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
	    os.pread(fd, 65536, off)
	    os.close(fd)
	    for b in range(off // B, (off + 65535) // B + 1):
	        blocks[(p, b)] = min(B, size - b * B)
	print(sum(blocks.values()))
	EOF
}

fetched() {
	echo $(($(status_counter "$1" fetcher bytes_viewer) + \
	    $(status_counter "$1" fetcher bytes_live) + \
	    $(status_counter "$1" fetcher bytes_backfill)))
}

drop_caches
t=$(read_window "$BENCH_ARCHIVE")
native_cold=$t
result window_native "$t" s
native_warm=$(warm "$BENCH_ARCHIVE")
result warm_native "$native_warm" MiB/s
native_ttfb=$(ttfb "$BENCH_ARCHIVE")
result ttfb_native "$native_ttfb" ms

for net in lo wan; do
	eval "np=\$nginx_$net op=\$origin_$net"
	drop_caches
	t0=$(now)
	curl -s --config <(curl_urls "$np") || note "curl failed"
	t=$(since "$t0")
	result "window_curl_$net" "$t" s
	drop_caches
	t0=$(now)
	curl -s --no-progress-meter -Z --parallel-max 8 --config <(curl_urls "$np") || note "curl -Z failed"
	curl8=$(since "$t0")
	result "window_curl8_$net" "$curl8" s
	ms=()
	for f in $(head -n 9 "$W/ttfb"); do
		drop_caches >/dev/null
		ms+=("$(curl -s -o /dev/null -r 0-0 -w '%{time_starttransfer}' \
		    "http://127.0.0.1:$np$BENCH_ARCHIVE/$f" |
		    awk '{ printf "%.1f", $1 * 1000 }')")
	done
	result "ttfb_curl_$net" "$(median "${ms[@]}")" ms

	best=""
	for tool in rclone httpdirfs dvrfs; do
		eval "[ \"\${have_$tool:-1}\" = 1 ]" || continue
		port=$np
		[ $tool = dvrfs ] && port=$op
		m=$W/mnt-$tool-$net
		fresh_mount $tool "$port" "$m" || { note "$tool did not mount"; continue; }
		drop_caches
		if ! t=$(read_window "$m") ||
		    ! (cd "$m" && xargs -a "$W/win" -I{} cmp -s "$BENCH_ARCHIVE/{}" {}); then
			echo "skip: $tool on $net: reads fail or bytes differ"
			unmount "$m"
			continue
		fi
		wm=$(warm "$m")
		if [ $tool = dvrfs ]; then
			faster "window_dvrfs_$net" "$t" s "$best" "best peer $best_name"
			result "window_dvrfs_vs_curl8_$net" "$t" s "$curl8" "8 curls, target<=1.5"
			[ $net = lo ] && result window_dvrfs_vs_native_lo "$t" s \
			    "$native_cold" "native cold read, target<=1.6"
			result "warm_dvrfs_$net" "$wm" MiB/s "$native_warm" "native, target>=0.9"
		else
			result "window_${tool}_$net" "$t" s
			result "warm_${tool}_$net" "$wm" MiB/s "$native_warm" native
			if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN { exit !(a < b) }'; then
				best=$t best_name=$tool
			fi
		fi
		unmount "$m"
		fresh_mount $tool "$port" "$m" || continue
		tt=$(ttfb "$m")
		result "ttfb_${tool}_$net" "$tt" ms
		if [ $tool = dvrfs ]; then
			unmount "$m"
			fresh_mount $tool "$port" "$m" || continue
			(cd "$m" && xargs -a "$W/win" -n1 dirname | sort -u | xargs ls >/dev/null)
			before=$(fetched "$m")
			touched=$(random_reads "$m")
			sleep 1
			got=$(($(fetched "$m") - before))
			result "random_fetched_$net" "$got" bytes "$touched" "bytes of touched blocks, target<=1"
		fi
		unmount "$m"
	done
done
