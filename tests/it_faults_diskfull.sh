#!/bin/bash
# A full disk on the secondary: the store on a 64 MB tmpfs, an archive of
# about 240 MB, replicate. The fill runs into ENOSPC: the daemon stays up,
# says so, keeps nothing corrupt, serves what it has and fails clearly
# for what it lacks. Grown to 512 MB, the fill completes. Then max_size=
# on a roomy disk: the store keeps under the cap.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/faults_lib.sh"

DISK=$T/disk
STORE=$DISK/store
mkdir -p "$DISK"
if ! mount -t tmpfs -o size=64m tmpfs "$DISK" 2>/dev/null; then
	skip "cannot mount a tmpfs (needs root)"
	finish
fi
add_mount "$DISK"

make_archive -s news -s sport -b 20m -d 2 -S 200k
(cd "$ROOT" && find . -type f -printf '%P\n' | sort) >"$T/files"
nfiles=$(wc -l <"$T/files")
start_origin

# up OPTIONS: dvrfs in the foreground (lib.sh: fg_mount). down: unmount.
up() { fg_mount "$OPORT" "$1"; }
down() { fg_unmount; }
add_mount "$MNT"
done_count() { status 'd["total"]["segments_done"]'; }
local_files() { find "$STORE/data" -type f 2>/dev/null | wc -l; }

up replicate,depth=1h,transfers=4 || { nok "mount"; finish; }

# The fill until the disk is full and nothing more comes in for 5 s.
last=-1 still=0
for ((i = 0; i < 240 && still < 10; i++)); do
	sleep 0.5
	n=$(local_files)
	if [ "$n" = "$last" ]; then still=$((still + 1)); else still=0; fi
	last=$n
done
nfull=$(local_files)
avail=$(df --output=avail "$DISK" | tail -1)
echo "# figure: the fill stopped at $nfull of $nfiles files, ${avail} KiB free; status $(status '[d["total"][k] for k in ("segments_done", "segments_total", "percent")]')"
check "the fill stopped short of the archive ($nfull of $nfiles files)" \
	test "$nfull" -gt 0 -a "$nfull" -lt "$nfiles"
check "the disk is full (less than 1 MiB free: $avail KiB)" test "$avail" -lt 1024
pid=$(dvrfs_pid)
check "the daemon is alive and the mount answers" \
	eval 'kill -0 "$pid" && timeout 10 stat "$MNT" >/dev/null &&
	timeout 10 "$BIN/dvrfs-status" -j "$MNT" >/dev/null'
check "the log says the disk is full ($(grep -m1 -i 'no space' "$LOG" | head -c 100))" \
	grep -qi 'no space' "$LOG"
fetched() { status 'd["counters"]["fetcher"]["bytes_backfill"] + d["counters"]["fetcher"]["bytes_live"]'; }
b0=$(fetched); sleep 5; b1=$(fetched)
echo "# figure: while the disk is full the crawler still fetches $(( (b1 - b0) / 5 / 1024 )) KiB/s; ENOSPC lines in the log: $(grep -ci 'no space' "$LOG")"
bad=$(store_bad)
check "every file in STORE/data is sha256-equal to the primary's, nothing temporary" \
	test -z "$bad"
[ -n "$bad" ] && echo "$bad" | head | sed 's/^/# /'

# Readers: complete files read right; missing ones are served right or fail
# (EIO), never wrong, never hang.
(cd "$STORE/data" && find . -type f -printf '%P\n' | shuf -n 20 --random-source=/dev/zero) >"$T/have"
comm -23 "$T/files" <(cd "$STORE/data" && find . -type f -printf '%P\n' | sort) |
	head -5 >"$T/miss"
ok_reads=0; head -3 "$T/have" | sed "s/^/# have: /"
while read -r f; do
	if timeout 30 cat "$MNT/$f" 2>"$T/err" | cmp -s - "$ROOT/$f"; then ok_reads=$((ok_reads + 1)); else echo "# complete file $f: $(cat "$T/err")"; fi
done <"$T/have"
check "complete files read right through the mount ($ok_reads of $(wc -l <"$T/have"))" \
	test "$ok_reads" -eq "$(wc -l <"$T/have")"
[ "$ok_reads" -eq "$(wc -l <"$T/have")" ] || grep -v 'No space left on device (fetcher/xfer' "$LOG" | tail -5 | sed 's/^/# log: /'

eio=0 wrong=0 hung=0 served=0 other=0
while read -r f; do
	s=$SECONDS
	timeout 30 cat "$MNT/$f" >"$T/got" 2>"$T/err"
	rc=$?
	if [ $rc -eq 124 ]; then hung=$((hung + 1))
	elif [ $rc -eq 0 ]; then
		if cmp -s "$T/got" "$ROOT/$f"; then served=$((served + 1)); else wrong=$((wrong + 1)); fi
	elif grep -q 'Input/output error' "$T/err"; then eio=$((eio + 1))
	else other=$((other + 1)); sed 's/^/# /' "$T/err"; fi
	echo "# missing file $f: rc $rc in $((SECONDS - s)) s"
done <"$T/miss"
# A file verified whole in memory is served even when it cannot be kept.
check "reads of missing files: $eio EIO, $served served right, $wrong wrong, $hung hung, $other other" \
	test "$wrong" -eq 0 -a "$hung" -eq 0 -a "$other" -eq 0 -a \
	"$((eio + served))" -eq "$(wc -l <"$T/miss")"
check "still no corruption after the reads" test -z "$(store_bad)"

# More room: the fill resumes and completes.
mount -o remount,size=512m "$DISK"
check "the fill completes once the disk has room" wait_full 150
bad=$(store_bad)
check "every file in STORE/data is sha256-equal to the primary's" test -z "$bad"
check "all files are in the store ($(local_files) of $nfiles)" \
	test "$(local_files)" -eq "$nfiles"
check "the daemon is alive after the full disk" kill -0 "$(dvrfs_pid)"
down || nok "unmount"

# max_size=32M on a roomy disk: retention keeps the store under the cap.
rm -rf "$STORE"
up replicate,depth=1h,transfers=4,max_size=32M || { nok "mount max_size"; finish; }
peak=0
for ((i = 0; i < 40; i++)); do
	sleep 0.5
	b=$(du -sk "$STORE/data" 2>/dev/null | cut -f1)
	[ "${b:-0}" -gt "$peak" ] && peak=$b
done
# Retention runs every 10 s: give it a few passes.
for ((i = 0; i < 40; i++)); do
	b=$(du -sk "$STORE/data" | cut -f1)
	[ "$b" -le $((32 * 1024)) ] && break
	sleep 1
done
echo "# figure: max_size=32M: STORE/data peaked at $peak KiB, $b KiB after ${i} s more; $(local_files) files; evicted so far: $(status 'd["counters"]' | head -c 200)"
check "max_size=32M: the fill stops at the cap (peak $peak KiB)" \
	test "$peak" -le $((32 * 1024))
check "max_size=32M: STORE/data under the cap after retention passes ($b KiB)" \
	test "$b" -le $((32 * 1024))
check "max_size=32M: what is kept is right" test -z "$(store_bad)"
down || nok "unmount max_size"
# max_size keeps what viewers read again: a file read from the store
# (spliced from its data file) counts as read, so the files read once
# since then go first.
rm -rf "$STORE"
up depth=1h,max_size=1M || { nok "mount max_size=1M"; finish; }
mapfile -t lru < <(grep '^news/' "$T/files" | head -9)
cat "$MNT/${lru[0]}" >/dev/null
sleep 1.1
for f in "${lru[@]:1}"; do cat "$MNT/$f" >/dev/null; done
sleep 1.1
echo 3 >/proc/sys/vm/drop_caches
cmp -s "$MNT/${lru[0]}" "$ROOT/${lru[0]}" ||
	nok "max_size=1M: the first file read again"
for ((i = 0; i < 30; i++)); do
	[ "$(local_files)" -le 5 ] && break
	sleep 1
done
kept=$(local_files)
check "max_size=1M: retention dropped files ($kept of 9 kept)" test "$kept" -le 5
check "max_size=1M: the file read again from the store is kept" \
	test -f "$STORE/data/${lru[0]}"
check "max_size=1M: the oldest of the files read once went first" \
	test ! -f "$STORE/data/${lru[1]}"
down || nok "unmount max_size=1M"
finish
