#!/bin/bash
# Filling a secondary with the whole archive, on loopback (lo) and through
# the relay that adds 20 ms of round trip (wan), page cache dropped
# first: dvrfs with replicate,depth=2h until every segment is verified in
# its store (and dvrfs-status -j agrees), against rsync -a from an rsync
# daemon and rclone copy over HTTP (nginx). Neither peer syncs: their
# clock stops with the copy in the page cache, while dvrfs counts only
# files made durable (fdatasync) in its store. So rsync is also timed
# until a sync of the copy's file system returns (fill_rsync_synced), the
# finish line dvrfs has. After the loopback fill: the dvrfs daemon's
# memory (VmRSS, VmHWM), and nginx serving the filled mount against nginx
# serving the native folder (one timed pass over every segment with 8
# parallel curls from a dropped page cache, then wrk, BENCH_CONNS (64)
# connections, medians of BENCH_ROUNDS alternating runs). Targets: fill
# >= 1.2x rsync + sync, and at 20 ms >= 1.5x rclone copy; memory <= 64 MiB + 200 B
# per segment; nginx over the mount >= 0.8x nginx over the native folder.
. "$(dirname "$0")/lib.sh"

need "$BENCH_ORIGIN" "$BIN/dvrfs" "$BIN/dvrfs-status"
drop_caches || { echo "skip: fills need root to drop the page cache"; exit 0; }

nfiles=$(find "$BENCH_ARCHIVE" -type f | wc -l)
mib=$(du -sm "$BENCH_ARCHIVE" | cut -f1)
start_nginx "$BENCH_ARCHIVE" || { echo "skip: nginx did not start"; exit 0; }
start_origin "$BENCH_ARCHIVE" || { echo "skip: m4f-origin did not start"; exit 0; }
# The origin hashes the archive once, before anything is measured.
origin_hash_all || note "the origin's recursive listing failed"
if command -v rsync >/dev/null; then
	start_rsyncd
else
	RSYNC_PORT=$(free_port)
fi
nginx_lo=$NGINX_PORT origin_lo=$ORIGIN_PORT rsync_lo=$RSYNC_PORT
start_relay "$NGINX_PORT" && nginx_wan=$RELAY_PORT || exit 1
start_relay "$ORIGIN_PORT" && origin_wan=$RELAY_PORT || exit 1
start_relay "$RSYNC_PORT" && rsync_wan=$RELAY_PORT || exit 1
note "$nfiles segments, $mib MiB"

# fill_dvrfs PORT DIR: mounts with replicate and waits for the crawler to
# finish (at most BENCH_FILL_MAX (600) s); prints the seconds. The clock
# stops when every segment sits verified in STORE/data (only verified
# files are ever there); dvrfs-status -j then has to agree (it measures
# a rate over a second, too slow a probe for the clock).
fill_dvrfs() {
	local t0 n done
	rm -rf "$W/store"
	t0=$(now)
	mount_dvrfs "$1" "$2" "$W/store" replicate,depth=2h || return 1
	n=$(wait_filled "$W/store" "$nfiles")
	since "$t0"
	done=$("$BIN/dvrfs-status" -j "$2" | python3 -c 'import json, sys
t = json.load(sys.stdin)["total"]
print(t["segments_done"] if t["percent"] >= 100 else 0)')
	[ "${done:-0}" -ge "$nfiles" ] || note "dvrfs: $n of $nfiles segments in the store, dvrfs-status says ${done:-none} done"
}

# same DIR: the copy under DIR names every segment with the right size.
same() {
	local a b
	a=$(cd "$BENCH_ARCHIVE" && find . -type f -printf '%s %P\n' | sort | md5sum)
	b=$(cd "$1" && find . -type f -printf '%s %P\n' | sort | md5sum)
	[ "$a" = "$b" ] || note "$1: the copy differs from the archive"
}

for net in lo wan; do
	eval "np=\$nginx_$net op=\$origin_$net rp=\$rsync_$net"
	declare -A t=()
	if command -v rsync >/dev/null; then
		rm -rf "$W/copy"
		drop_caches
		t0=$(now)
		rsync -a "rsync://127.0.0.1:$rp/archive/" "$W/copy/" || note "rsync failed"
		t[rsync]=$(since "$t0")
		sync -f "$W/copy"
		t[synced]=$(since "$t0")
		same "$W/copy"
		result "fill_rsync_$net" "$(rate "$mib" "${t[rsync]}")" MiB/s
		result "fill_rsync_synced_$net" "$(rate "$mib" "${t[synced]}")" MiB/s
	fi
	if command -v rclone >/dev/null; then
		rm -rf "$W/copy"
		drop_caches
		t0=$(now)
		rclone copy --config /dev/null \
		    --http-url "http://127.0.0.1:$np$BENCH_ARCHIVE/" :http: "$W/copy" ||
		    note "rclone copy failed"
		t[rclone]=$(since "$t0")
		same "$W/copy"
		result "fill_rclone_$net" "$(rate "$mib" "${t[rclone]}")" MiB/s
	fi
	rm -rf "$W/copy"
	m=$W/mnt-$net
	drop_caches
	s=$(fill_dvrfs "$op" "$m") || { note "dvrfs did not mount"; continue; }
	same "$W/store/data"
	r=$(rate "$mib" "$s")
	[ -n "${t[rsync]:-}" ] && result "fill_dvrfs_$net" "$r" MiB/s "$(rate "$mib" "${t[rsync]}")" rsync
	[ -n "${t[synced]:-}" ] && result "fill_dvrfs_vs_synced_$net" "$r" MiB/s "$(rate "$mib" "${t[synced]}")" "rsync + sync, target>=1.2"
	[ -n "${t[rclone]:-}" ] && result "fill_dvrfs_vs_rclone_$net" "$r" MiB/s "$(rate "$mib" "${t[rclone]}")" "rclone copy$([ $net = wan ] && echo ', target>=1.5')"
	if [ $net = lo ]; then
		# fill_dvrfs ran in a subshell: the daemon's pid from its store.
		DVRFS_PID=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["pid"])' "$W/store/dvrfs.json")
		rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$DVRFS_PID/status")
		hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$DVRFS_PID/status")
		budget=$(awk -v n="$nfiles" 'BEGIN { printf "%.1f", 64 + n * 200 / 1048576 }')
		result dvrfs_vmrss "$(rate "$rss" 1024)" MiB "$budget" "target<=64MiB+200B/segment"
		result dvrfs_vmhwm "$(rate "$hwm" 1024)" MiB "$budget" "target<=64MiB+200B/segment"
		# nginx over the filled mount against nginx over the archive.
		segment_paths "$BENCH_ARCHIVE" >"$W/paths"
		sed "s|^$BENCH_ARCHIVE|$m|" "$W/paths" >"$W/mpaths"
		start_nginx "$m" || { note "nginx on the mount did not start"; unmount "$m"; continue; }
		mport=$NGINX_PORT
		p=$(sed -n 1p "$W/paths") q=$(sed -n 1p "$W/mpaths")
		[ "$(curl -sf "http://127.0.0.1:$nginx_lo$p" | md5sum)" = \
		  "$(curl -sf "http://127.0.0.1:$mport$q" | md5sum)" ] ||
		    note "nginx over the mount returns other bytes"
		# One pass over every segment first, 8 at a time, timed, each
		# side from a dropped page cache: the mount's first pass goes
		# through the daemon, later ones come from the kernel's cache,
		# as the native folder's do.
		first_pass() {
			local t0
			t0=$(now)
			sed "s|.*|url = \"http://127.0.0.1:$1&\"\noutput = \"/dev/null\"|" "$2" |
			    curl -s --no-progress-meter -Z --parallel-max 8 --config - ||
			    note "first pass on $1 failed"
			rate "$mib" "$(since "$t0")"
		}
		drop_caches
		a=$(first_pass "$nginx_lo" "$W/paths")
		drop_caches
		b=$(first_pass "$mport" "$W/mpaths")
		result nginx_native_first "$a" MiB/s
		result nginx_mount_first "$b" MiB/s "$a" "nginx native, first pass"
		nat=() mnt=()
		for ((r = 1; r <= ${BENCH_ROUNDS:-3}; r++)); do
			nat+=("$(wrk_paths "$nginx_lo" "$W/paths" 2>/dev/null | cut -d' ' -f2)")
			mnt+=("$(wrk_paths "$mport" "$W/mpaths" 2>/dev/null | cut -d' ' -f2)")
		done
		note "MiB/s per round: native ${nat[*]}, mount ${mnt[*]}"
		a=$(median "${nat[@]}") b=$(median "${mnt[@]}")
		result nginx_native "$a" MiB/s
		result nginx_mount "$b" MiB/s "$a" "nginx native, target>=0.8"
	fi
	unmount "$m"
	rm -rf "$W/store"
done
