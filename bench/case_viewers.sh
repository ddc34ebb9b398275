#!/bin/bash
# Many viewers: VIEWERS (100) concurrent viewers through nginx over a
# dvrfs mount (bench/viewers.c, libcurl, one keep-alive connection each),
# each reading its own stretch of one stream (viewers spread over every
# stream and over each stream's recording) segment after segment at twice
# real time, for VIEWERS_SECONDS (15) of play each (300 gives the full
# 10-minute stretch at 2 s segments). First contact (first_lo): a fresh
# mount with an empty store and a dropped page cache, on an origin that
# has never read or hashed the segments. Then, the origin having served
# them once: cold (a fresh mount, empty store, page cache dropped) and
# warm (the same again on the same mount), on loopback (lo) and through
# the relay that adds 20 ms of round trip between the mount and
# m4f-origin (wan); nginx over the primary's own folder, cold and warm, is
# the baseline. Then, on loopback, the cold run once more on a mount that
# replicates the whole archive at full speed meanwhile (fill; only
# requests asked before the fill ended count). Figures: aggregate MiB/s, p99 time to the first byte
# of a segment, failed requests. Targets: warm >= 0.8x native; cold p99
# first byte <= 2 x RTT + 50 ms; p99 during the fill <= 1.5x idle cold;
# 0 failures.
#
# VIEWERS_PHASES runs only the phases it names, of native, first, lo,
# wan and fill (default all; fill's ratio needs lo); VIEWERS_KEEP=DIR
# keeps each run's per-request log there (log.LABEL).
#
# Alone: BENCH_TOP=$PWD BENCH_ARCHIVE=... BENCH_STREAMS="bench1 bench2"
# BENCH_SEGDUR=2 BENCH_RELAY=build/bench/relay bash bench/case_viewers.sh
# (or bench/run.sh viewers).
. "$(dirname "$0")/lib.sh"

VIEWERS_BIN=$BENCH_TOP/build/bench/viewers
need "$BENCH_ORIGIN" "$BIN/dvrfs"
make -s -C "$BENCH_TOP" build/bench/viewers >/dev/null ||
    { echo "skip: build/bench/viewers does not build"; exit 0; }
drop_caches || { echo "skip: cold runs need root to drop the page cache"; exit 0; }

N=${VIEWERS:-100}
PHASES=" ${VIEWERS_PHASES:-native first lo wan fill} "
phase() { [[ $PHASES == *" $1 "* ]]; }
SECS=${VIEWERS_SECONDS:-15}
segdur=${BENCH_SEGDUR:-2}
pace=$((segdur * 1000 / 2))
# A 10-minute stretch, cut to what VIEWERS_SECONDS of play at twice real
# time reads.
stretch=$((600 / segdur))
((SECS * 1000 / pace < stretch)) && stretch=$((SECS * 1000 / pace))
read -ra streams <<<"$BENCH_STREAMS"
ns=${#streams[@]}
per=$(((N + ns - 1) / ns))

# The viewers' lists, one file each: viewer v watches stream v % ns from
# an offset spread evenly over that stream's segments (wrapping round).
mkdir -p "$W/lists"
overlap=0
for ((s = 0; s < ns; s++)); do
	(cd "$BENCH_ARCHIVE" && find "${streams[s]}" -type f -name '*.ts' |
	    sort) >"$W/segs.$s"
	nseg=$(wc -l <"$W/segs.$s")
	[ "$nseg" -gt 0 ] || { echo "skip: no segments in ${streams[s]}"; exit 0; }
	((per * stretch > nseg)) && overlap=1
	for ((k = 0; k < per && k * ns + s < N; k++)); do
		awk -v o=$((k * nseg / per)) -v n="$stretch" -v t="$nseg" '
		    { p[NR - 1] = $0 }
		    END { for (i = 0; i < n; i++) print p[(o + i) % t] }' \
		    "$W/segs.$s" >"$W/lists/$(printf %05d $((k * ns + s)))"
	done
done
want=$(cat "$W"/lists/* | (cd "$BENCH_ARCHIVE" && xargs du -cb) |
    awk 'END { print $1 }')
nreq=$(cat "$W"/lists/* | wc -l)
note "$N viewers over $ns streams, $stretch segments each, one every" \
    "${pace} ms: $nreq requests, $((want / 1048576)) MiB"
((overlap)) && note "stretches overlap (the archive is short for $N viewers):" \
    "some cold reads find segments another viewer read"

start_nginx "$BENCH_ARCHIVE" || { echo "skip: nginx did not start"; exit 0; }
native_port=$NGINX_PORT
start_nginx "$W/mnt" || { echo "skip: nginx did not start"; exit 0; }
mnt_port=$NGINX_PORT
start_origin "$BENCH_ARCHIVE" || { echo "skip: m4f-origin did not start"; exit 0; }
origin_lo=$ORIGIN_PORT
start_relay "$ORIGIN_PORT" && origin_wan=$RELAY_PORT || exit 1
nfiles=$(find "$BENCH_ARCHIVE" -type f | wc -l)

# view LABEL BASE: one run of every viewer against BASE (a URL ending in
# "/"); leaves "name value" lines in $W/v.LABEL and the per-request log
# in $W/log.LABEL. Notes failures and missing bytes.
view() {
	"$VIEWERS_BIN" -p "$pace" -T $((SECS * 4 + 60)) -o "$W/log.$1" \
	    "$2" "$W"/lists/* >"$W/v.$1" 2>"$W/err.$1" ||
	    note "$1: viewers failed: $(tail -1 "$W/err.$1")"
	note "$1: $(tr '\n' ' ' <"$W/v.$1")"
	[ "$(val "$1" bytes)" = "$want" ] ||
	    note "$1: $(val "$1" bytes) bytes received, not $want"
	[ -z "${VIEWERS_KEEP:-}" ] || cp "$W/log.$1" "$VIEWERS_KEEP/"
}
val() { awk -v k="$2" '$1 == k { print $2 }' "$W/v.$1"; }

# figures LABEL NAME [BASELABEL BASENAME [TTFB_TARGET_MS]]: the result
# lines of run LABEL, MiB/s against run BASELABEL and the p99 first byte
# against TTFB_TARGET_MS, or else against BASELABEL's (how many times
# faster).
figures() {
	local l=$1 n=$2
	if [ $# -lt 4 ]; then
		result "${n}_mibps" "$(val "$l" mibps)" MiB/s
		result "${n}_ttfb_p99" "$(val "$l" ttfb_p99_ms)" ms
	else
		result "${n}_mibps" "$(val "$l" mibps)" MiB/s \
		    "$(val "$3" mibps)" "$4"
		if [ -n "${5:-}" ]; then
			result "${n}_ttfb_p99" "$(val "$l" ttfb_p99_ms)" ms \
			    "$5" "target<=${5}ms"
		else
			faster "${n}_ttfb_p99" "$(val "$l" ttfb_p99_ms)" ms \
			    "$(val "$3" ttfb_p99_ms)" "${3//_/ } p99"
		fi
	fi
	result "${n}_failures" "$(val "$l" failures)" requests
}

if phase native; then
	drop_caches
	view native_cold "http://127.0.0.1:$native_port$BENCH_ARCHIVE/"
	view native_warm "http://127.0.0.1:$native_port$BENCH_ARCHIVE/"
	figures native_cold viewers_native_cold
	figures native_warm viewers_native_warm
fi

# First contact of the whole system: the origin has never hashed or read
# these segments (a fresh hash cache), the store is empty, the page cache
# dropped.
if phase first; then
	mount_dvrfs "$origin_lo" "$W/mnt" "$W/store" ||
	    { echo "skip: dvrfs did not mount"; exit 0; }
	drop_caches
	view first_lo "http://127.0.0.1:$mnt_port$W/mnt/"
	unmount "$W/mnt"
	figures first_lo viewers_dvrfs_first_lo native_cold "native cold" 50
fi

# Cold store from here on: the origin has served the stretches once.
for net in lo wan; do
	phase $net || continue
	eval "op=\$origin_$net"
	rtt=0
	[ $net = wan ] && rtt=20
	rm -rf "$W/store"
	mount_dvrfs "$op" "$W/mnt" "$W/store" || { note "dvrfs did not mount"; continue; }
	drop_caches
	view "${net}_cold" "http://127.0.0.1:$mnt_port$W/mnt/"
	view "${net}_warm" "http://127.0.0.1:$mnt_port$W/mnt/"
	unmount "$W/mnt"
	figures "${net}_cold" "viewers_dvrfs_cold_$net" native_cold \
	    "native cold" $((2 * rtt + 50))
	figures "${net}_warm" "viewers_dvrfs_warm_$net" native_warm \
	    "native warm, target>=0.8"
done

# The cold run again while the same mount replicates the whole archive:
# the clock of the fill stops when every segment is in STORE/data.
phase fill || exit 0
rm -rf "$W/store"
drop_caches
t0=$(now)
if mount_dvrfs "$origin_lo" "$W/mnt" "$W/store" replicate,depth=366d; then
	(
		n=$(wait_filled "$W/store" "$nfiles" $((SECS * 4 + 60)))
		echo "$(since "$t0") $n" >"$W/filled"
	) &
	poller=$!
	view fill "http://127.0.0.1:$mnt_port$W/mnt/"
	wait "$poller"
	unmount "$W/mnt"
	read -r fill_s filled <"$W/filled"
	mib=$(du -sm "$BENCH_ARCHIVE" | cut -f1)
	note "fill: $filled of $nfiles segments in ${fill_s}s" \
	    "($(rate "$mib" "$fill_s") MiB/s) under the viewers"
	# Only the requests asked while the fill ran.
	awk -v end="$(awk -v s="$fill_s" 'BEGIN { print s * 1000 }')" \
	    '$1 < end && $4 == 1 { print $2 }' "$W/log.fill" | sort -g >"$W/during"
	during=$(wc -l <"$W/during")
	p99=$(awk '{ v[NR] = $1 } END { k = int(NR * 0.99 + 0.999999); if (k < 1) k = 1; printf "%.1f", (NR ? v[k] : 0) }' "$W/during")
	note "fill: $during of $(wc -l <"$W/log.fill") requests asked during the fill"
	result viewers_fill_mibps "$(val fill mibps)" MiB/s "$(val lo_cold mibps)" "idle cold"
	result viewers_fill_ttfb_p99 "$p99" ms "$(val lo_cold ttfb_p99_ms)" \
	    "idle cold p99, target<=1.5"
	result viewers_fill_failures "$(val fill failures)" requests
else
	note "dvrfs did not mount with replicate"
fi
