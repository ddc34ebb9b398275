#!/bin/bash
# Restoring a gap: the local folder is the archive (hard links) less a
# third of bench1's recording; dvrfs-restore fills it from an m4f-origin
# over the archive, against rsync --ignore-existing from an rsync daemon
# filling the same gap, on loopback (lo) and through the relay that adds
# 20 ms of round trip (wan), page cache dropped first. dvrfs-restore
# fsyncs each file and its folder before it counts it; rsync does not, so
# it is also timed until a sync of the copy's file system returns
# (restore_vs_synced). Target: at least rsync's rate, as a dvrfs fill.
. "$(dirname "$0")/lib.sh"

need "$BENCH_ORIGIN" "$BIN/dvrfs-restore"
command -v rsync >/dev/null || { echo "skip: rsync is not installed"; exit 0; }
drop_caches || { echo "skip: needs root to drop the page cache"; exit 0; }

first=${BENCH_STREAMS%% *}
# The gap: the middle third of the first stream's segments.
find "$BENCH_ARCHIVE/$first" -type f -name '*.ts' | sort >"$W/segs"
n=$(wc -l <"$W/segs")
sed -n "$((n / 3 + 1)),$((2 * n / 3))p" "$W/segs" >"$W/gap"
ngap=$(wc -l <"$W/gap")
mib=$(xargs du -cm <"$W/gap" | tail -1 | cut -f1)
note "gap: $ngap segments, $mib MiB of $n in $first"

# fresh: the local folder again, with the gap.
fresh() {
	rm -rf "$W/local"
	cp -al "$BENCH_ARCHIVE" "$W/local"
	sed "s|^$BENCH_ARCHIVE|$W/local|" "$W/gap" | xargs rm -f
}
# filled: the gap is back, byte-equal.
filled() {
	local f
	while read -r f; do
		cmp -s "$f" "$W/local${f#"$BENCH_ARCHIVE"}" ||
			{ note "not restored: $f"; return 1; }
	done <"$W/gap"
}

start_origin "$BENCH_ARCHIVE" || { echo "skip: m4f-origin did not start"; exit 0; }
origin_hash_all || note "the origin's recursive listing failed"
start_rsyncd || { echo "skip: the rsync daemon did not start"; exit 0; }
origin_lo=$ORIGIN_PORT rsync_lo=$RSYNC_PORT
start_relay "$ORIGIN_PORT" && origin_wan=$RELAY_PORT || exit 1
start_relay "$RSYNC_PORT" && rsync_wan=$RELAY_PORT || exit 1

for net in lo wan; do
	eval "op=\$origin_$net rp=\$rsync_$net"
	fresh
	drop_caches
	t0=$(now)
	rsync -a --ignore-existing "rsync://127.0.0.1:$rp/archive/" \
	    "$W/local/" || note "rsync failed"
	t_rsync=$(since "$t0")
	sync -f "$W/local"
	t_synced=$(since "$t0")
	filled
	result "restore_rsync_$net" "$(rate "$mib" "$t_rsync")" MiB/s

	fresh
	drop_caches
	t0=$(now)
	"$BIN/dvrfs-restore" -o port="$op",depth=366d \
	    "127.0.0.1:$BENCH_ARCHIVE" "$W/local" >"$W/restore.$net" 2>&1 ||
	    note "dvrfs-restore failed: $(tail -1 "$W/restore.$net")"
	t=$(since "$t0")
	filled
	note "$(tail -1 "$W/restore.$net")"
	result "restore_dvrfs_$net" "$(rate "$mib" "$t")" MiB/s \
	    "$(rate "$mib" "$t_rsync")" "rsync --ignore-existing"
	result "restore_dvrfs_vs_synced_$net" "$(rate "$mib" "$t")" MiB/s \
	    "$(rate "$mib" "$t_synced")" "rsync --ignore-existing + sync"
done
