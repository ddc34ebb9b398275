#!/bin/bash
# Files whose hash the primary does not know, and large files, through
# the fake origin (tests/fake_origin.py -d: the digests of
# docs/protocol.md): every byte served is verified against a digest the
# origin computed, a read fetches and holds only the blocks it touches, a
# read never waits past timeout=, wrong or missing digests are never
# served, signed answers are checked, the daemon stops at once with a read
# in flight, and links are shown as links.
#
# Memory bound: the daemon's VmHWM stays under HWM_MB (64 MiB of baseline
# and caps plus 16 blocks of 1 MiB) whatever the size of the file read.
. "$(dirname "$0")/lib.sh"

HWM_MB=${HWM_MB:-80}
ROOT=$T/primary/storage
MNT=$T/mnt
STORE=$T/store
CTL=$T/fake.ctl
FAKE=$TOP/tests/fake_origin.py
TIB=$((1 << 40))
# huge.ts is listed with a hash (never checked whole: its blocks are).
ZERO=0000000000000000000000000000000000000000000000000000000000000000
mkdir -p "$ROOT/news" "$ROOT/lie" "$MNT"
: >"$CTL"

"$BIN/dvr-fake" -r "$ROOT" -s lie -b 1m -d 1 -S 100k >/dev/null ||
	{ nok "dvr-fake"; finish; }
(cd "$ROOT" && find lie -type f | sort) >"$T/lie"
# A 5 GiB sparse file with data at three places and at its end; a 100 MiB
# one of no known hash under lie.
truncate -s 5G "$ROOT/news/big.ts"
for off in 0 1234567890 4000000000 5368709000; do
	head -c 120 /dev/urandom | dd of="$ROOT/news/big.ts" bs=1 seek=$off \
		conv=notrunc status=none
done
truncate -s 100M "$ROOT/lie/large.ts"
head -c 4096 /dev/urandom | dd of="$ROOT/lie/large.ts" bs=1 seek=70000000 \
	conv=notrunc status=none
ln -s news "$ROOT/alias"

# start_fake ARGS...: the fake origin on FPORT, bytes sent in $T/sent.
start_fake() {
	FPORT=$(free_port)
	bg python3 "$FAKE" -r "$ROOT" -p "$FPORT" -c "$CTL" -d -M $((64 << 20)) \
		-g huge.ts:$TIB:$ZERO -S "$T/sent" "$@" 2>>"$T/fake.log"
	FPID=$!
	wait_port "$FPORT"
}
stop_fake() { kill "$FPID"; wait "$FPID" 2>/dev/null; }
lie() { echo "$1" >"$CTL"; }
sent() { awk '{ print $4 }' "$T/sent" 2>/dev/null || echo 0; }
hwm_kb() { awk '/^VmHWM/ { print $2 }' "/proc/$DPID/status"; }
add_mount "$MNT"
up() { rm -rf "$STORE"; fg_mount "$FPORT" "$1"; }
down() { fg_unmount; }
bad_answers() {
	"$BIN/dvrfs-status" -j "$MNT" 2>/dev/null | python3 -c 'import json, sys
print(json.load(sys.stdin)["counters"]["fetcher"]["bad_answers"])' 2>/dev/null
}
# expect_bytes FILE OFF N: the N bytes at OFF of the generated huge.ts.
gen_bytes() {
	python3 -c 'import sys; sys.path.insert(0, sys.argv[1])
import fake_origin
sys.stdout.buffer.write(fake_origin.gen_bytes(int(sys.argv[2]), int(sys.argv[3])))' \
		"$TOP/tests" "$1" "$2"
}
# read_at FILE OFF N: N bytes at OFF through the mount into $T/got;
# prints the ms it took; fails like dd.
read_at() {
	local t0 rc
	t0=$(date +%s%N)
	timeout 60 dd if="$MNT/$1" of="$T/got" bs=65536 count="$3" skip="$2" \
		iflag=skip_bytes,count_bytes status=none 2>"$T/err"
	rc=$?
	echo $((($(date +%s%N) - t0) / 1000000))
	return $rc
}

start_fake

# (a) A 1 TiB listed file, read for 4 KiB: data or an error within
# timeout + 1 s, and memory in proportion to the read, not to the file.
up "timeout=3" || { nok "mount"; finish; }
before=$(sent)
ms=$(read_at huge.ts 5000000000 4096)
rc=$?
gen_bytes 5000000000 4096 >"$T/want"
check "1 TiB file: 4 KiB read in ${ms} ms (rc $rc) within timeout + 1 s" test "$ms" -lt 4000
check "1 TiB file: the bytes are right" cmp -s "$T/got" "$T/want"
ms=$(read_at huge.ts $((TIB - 4)) 4)
gen_bytes $((TIB - 4)) 4 >"$T/want"
check "1 TiB file: its last 4 bytes right (${ms} ms)" cmp -s "$T/got" "$T/want"
got=$(($(sent) - before))
check "1 TiB file: $got bytes fetched for two reads (at most 4 blocks)" \
	test "$got" -le $((4 << 20))
kb=$(hwm_kb)
check "1 TiB file: daemon VmHWM $((kb / 1024)) MiB < $HWM_MB MiB" test "$kb" -lt $((HWM_MB * 1024))

# (b) A 5 GiB file (sparse, no hash listed: bigger than the origin hashes
# to list): its last 4 bytes fetch at most two blocks; reads of 64 KiB at
# three offsets fetch only what they touch.
before=$(sent)
read_at news/big.ts $((5368709120 - 4)) 4 >/dev/null
tail -c 4 "$ROOT/news/big.ts" >"$T/want"
check "5 GiB file: last 4 bytes right" cmp -s "$T/got" "$T/want"
got=$(($(sent) - before))
check "5 GiB file: $got bytes fetched for the last 4 (at most two blocks)" \
	test "$got" -le $((2 << 20))
before=$(sent)
wrong=0
for off in 41060 1234567800 3999990000; do
	read_at news/big.ts $off 65536 >/dev/null
	dd if="$ROOT/news/big.ts" bs=65536 skip=$off count=65536 \
		iflag=skip_bytes,count_bytes status=none >"$T/want"
	cmp -s "$T/got" "$T/want" || wrong=$((wrong + 1))
done
got=$(($(sent) - before))
check "5 GiB file: three 64 KiB reads right ($wrong wrong)" test $wrong -eq 0
check "5 GiB file: $got bytes fetched for them (the 3 blocks they touch, 4 at most)" \
	test "$got" -le $((4 << 20))
kb=$(hwm_kb)
check "5 GiB file: daemon VmHWM $((kb / 1024)) MiB < $HWM_MB MiB" test "$kb" -lt $((HWM_MB * 1024))
echo "# figure: VmHWM after 1 TiB and 5 GiB reads: $((kb / 1024)) MiB"

# (c) Links are links: shown as such, not counted twice.
check "alias is a symbolic link to news" test "$(stat -c %F "$MNT/alias")" = "symbolic link" -a \
	"$(readlink "$MNT/alias")" = news
check "alias leads to news through the mount" test -e "$MNT/alias/big.ts"
check "find over the mount does not descend into alias" \
	test "$(find "$MNT" -name big.ts | wc -l)" -eq 1
down || nok "unmount"

# (d) Files of no known hash: whole files verified against Repr-Digest,
# blocks against Content-Digest; right digests serve, wrong or missing
# ones never do.
# read_all LIST: cats each file through the mount; RD_OK, RD_WRONG, RD_EIO.
read_all() {
	local f
	RD_OK=0 RD_WRONG=0 RD_EIO=0
	while read -r f; do
		if timeout 30 cat "$MNT/$f" >"$T/got" 2>/dev/null; then
			if cmp -s "$T/got" "$ROOT/$f"; then RD_OK=$((RD_OK + 1))
			else RD_WRONG=$((RD_WRONG + 1)); fi
		else
			RD_EIO=$((RD_EIO + 1))
		fi
	done <"$1"
}
echo lie/large.ts >"$T/large"
n=$(wc -l <"$T/lie")
lie nullhash
up "timeout=10" || nok "mount nullhash"
read_all "$T/lie"
check "null hash: $n files read right through their digests ($RD_WRONG wrong, $RD_EIO EIO)" \
	test "$RD_OK" -eq "$n"
read_all "$T/large"
check "null hash: a 100 MiB file read block by block right ($RD_WRONG wrong, $RD_EIO EIO)" \
	test "$RD_OK" -eq 1
f=$(head -1 "$T/lie")
sleep 1
check "null hash: the verified hash is recorded on the entry ($f)" \
	test "$(sha256sum <"$STORE/data/$f" | cut -d' ' -f1)" = "$(sha256sum <"$ROOT/$f" | cut -d' ' -f1)"
down
for mode in baddigest nulldigest nullflip; do
	lie $mode
	up "timeout=5" || { nok "mount $mode"; continue; }
	read_all "$T/lie"
	check "$mode: $n files of no known hash, $RD_WRONG wrong, $RD_OK served, $RD_EIO EIO" \
		test "$RD_WRONG" -eq 0 -a "$RD_OK" -eq 0 -a "$RD_EIO" -eq "$n"
	read_all "$T/large"
	check "$mode: its 100 MiB file by blocks: $RD_WRONG wrong, $RD_OK served, $RD_EIO EIO" \
		test "$RD_WRONG" -eq 0 -a "$RD_OK" -eq 0
	check "$mode: counted (bad_answers $(bad_answers))" test "$(bad_answers)" -gt 0
	check "$mode: nothing of lie in the store" \
		test "$(find "$STORE/data/lie" -type f 2>/dev/null | wc -l)" -eq 0
	down
done
grep -q "no Content-Digest for a file whose hash is not known\|no Repr-Digest" "$T"/dvrfs.*.log
check "a file with no digest at all: a clear log line" test $? -eq 0
lie honest

# (e) 503 with Retry-After: waited out, the reads succeed.
lie busy
up "timeout=10" || nok "mount busy"
read_all "$T/lie"
check "busy origin: $RD_OK of $n reads served after Retry-After ($RD_EIO EIO)" test "$RD_OK" -eq "$n"
down
lie honest

# (f) Signed answers: with the origin's key they are served; answers
# signed with another key (a consistent substitution by someone without
# the key) are refused.
printf 'k3y\n' >"$T/key"
printf 'other\n' >"$T/badkey"
stop_fake
start_fake -k "$T/key"
up "timeout=5,cluster_key_file=$T/key" || nok "mount key"
read_all "$T/lie"
check "signed: $RD_OK of $n read right" test "$RD_OK" -eq "$n"
down
stop_fake
start_fake -k "$T/badkey"
rm -rf "$STORE"
"$BIN/dvrfs" 127.0.0.1:"$ROOT" "$MNT" -o store="$STORE",port=$FPORT,timeout=3,cluster_key_file="$T/key" \
	>"$T/badkey.out" 2>&1
rc=$?
check "wrongly signed: the mount is refused (rc $rc: $(head -c 100 "$T/badkey.out"))" \
	grep -q "not signed with the cluster key" "$T/badkey.out"
mountpoint -q "$MNT" && fusermount3 -u "$MNT"
stop_fake
start_fake

# (g) SIGTERM with a read in flight (the origin stopped mid-answer, a
# long timeout): the daemon is gone within 2 s.
up "timeout=60" || nok "mount stop"
kill -STOP "$FPID"
timeout 70 dd if="$MNT/huge.ts" of=/dev/null bs=4k count=1 skip=777777 status=none 2>/dev/null &
rd=$!
sleep 1
t0=$(date +%s%N)
kill -TERM "$DPID"
for ((i = 0; i < 100; i++)); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.05; done
ms=$((($(date +%s%N) - t0) / 1000000))
check "SIGTERM with a read in flight: the daemon exits in ${ms} ms" test "$ms" -lt 2000
kill -CONT "$FPID"
wait $rd 2>/dev/null
fusermount3 -u -z "$MNT" 2>/dev/null
finish
