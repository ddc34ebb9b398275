#!/bin/bash
# dvrfs mounted for real over a real m4f-origin: the tree byte for byte,
# coalesced fetches, a dead primary, nginx on top, the store's invariant,
# and clear errors for bad command lines.
. "$(dirname "$0")/lib.sh"

P=$T/primary
ROOT=$P/storage
MNT=$T/mnt
STORE=$T/store
mkdir -p "$ROOT" "$MNT"
chmod 755 "$T"		# nginx's workers read the mount as nobody

# A 20-minute archive of two streams, 200 KB segments.
"$BIN/dvr-fake" -r "$ROOT" -s news -s sport -b 20m -d 2 -S 200k ||
	{ nok "dvr-fake"; finish; }
# A few larger files whose blocks the coalescing case counts.
mkdir -p "$ROOT/big"
for i in 1 2 3; do
	head -c $((3 * 1024 * 1024 + 12345)) /dev/urandom >"$ROOT/big/f$i.bin"
done

PORT=$(free_port)
start_origin() {
	bg "$BIN/m4f-origin" -r "$ROOT" -l 127.0.0.1:$PORT -c "$T/hash.db" -v \
		2>>"$T/origin.log"
	ORIGIN=$!
	wait_port $PORT
}
start_origin

"$BIN/dvrfs" 127.0.0.1:"$ROOT" "$MNT" -o store="$STORE",port=$PORT,timeout=3 \
	2>"$T/mount.err"
rc=$?
check "mount returns 0 once usable" test $rc -eq 0
add_mount "$MNT"
check "mount prints nothing" test ! -s "$T/mount.err"
check "mounted read-only as fuse.dvrfs" \
	grep -q " $MNT fuse.dvrfs ro," /proc/mounts

# Names, types and sizes equal the primary's.
tree() { (cd "$1" && find . -printf '%y %s %P\n' | grep -v '^d' | sort); }
dirs() { (cd "$1" && find . -type d -printf '%P\n' | sort); }
check "file names and sizes equal the primary's" \
	test "$(tree "$ROOT")" = "$(tree "$MNT")"
check "folders equal the primary's" test "$(dirs "$ROOT")" = "$(dirs "$MNT")"
# The export's own folder has no listing of its own: its times are the
# mount's, never 1970 ("ls -la" in a stream folder shows "..").
now=$(date +%s)
rt=$(stat -c %Y "$MNT/news/..")
check "the mount's root is dated now, not 1970 (saw $rt)" \
	test "$rt" -ge $((now - 60)) -a "$rt" -le $((now + 5))
check "mtimes equal the primary's" test \
	"$(cd "$ROOT/news" && find . -type f -printf '%T@ %P\n' | sed 's/\.0* / /' | sort)" = \
	"$(cd "$MNT/news" && find . -type f -printf '%T@ %P\n' | sed 's/\.0* / /' | sort)"

# 16 readers of the same three uncached files: every block crosses once.
readers=()
for i in $(seq 16); do
	(for f in 1 2 3; do cmp -s "$ROOT/big/f$f.bin" "$MNT/big/f$f.bin" ||
		echo "f$f" >>"$T/coalesce.bad"; done) &
	readers+=($!)
done
wait "${readers[@]}"
check "16 concurrent readers see every byte right" test ! -e "$T/coalesce.bad"
sleep 0.5
for f in 1 2 3; do
	n=$(grep -c "GET $ROOT/big/f$f.bin" "$T/origin.log")
	check "f$f: 4 blocks fetched in at most 4 requests (saw $n)" \
		test "$n" -ge 1 -a "$n" -le 4
done

# Every file of the archive reads back byte-identical through the mount.
bad=0
while read -r f; do
	cmp -s "$ROOT/$f" "$MNT/$f" || { bad=$((bad + 1)); echo "differs: $f"; }
done < <(cd "$ROOT" && find news sport -type f | sort)
check "every segment byte-identical through the mount" test $bad -eq 0

# The store holds only complete files, each hash-equal to the primary's.
sleep 1
n_data=$(find "$STORE/data" -type f | wc -l)
check "files are in the store (got $n_data)" test "$n_data" -gt 1000
bad=0
while read -r f; do
	[ "$(sha256sum <"$STORE/data/$f")" = "$(sha256sum <"$ROOT/$f")" ] ||
		{ bad=$((bad + 1)); echo "bad in store: $f"; }
done < <(cd "$STORE/data" && find . -type f)
check "every file in STORE/data matches the primary's SHA-256" test $bad -eq 0
check "nothing temporary in STORE/data" \
	test -z "$(find "$STORE/data" -name '.*' -o -name '*.tmp' -o -name '*.part')"

# nginx over the mount: ranges included, equal to the origin's answers.
NPORT=$(free_port)
nginx_start $NPORT "	sendfile on;
	types { video/mp2t ts; }
	server { listen 127.0.0.1:$NPORT; root $MNT; }"
seg=$(cd "$ROOT" && find sport -type f -name '*.ts' | sort | sed -n 100p)
o_url="http://127.0.0.1:$PORT$ROOT/$seg"
n_url="http://127.0.0.1:$NPORT/$seg"
for r in "" "0-0" "1000-5000" "-188" "100000-"; do
	a=$(curl -s ${r:+-r $r} "$o_url" | sha256sum)
	b=$(curl -s ${r:+-r $r} "$n_url" | sha256sum)
	check "nginx over the mount equals the origin, range '${r:-whole}'" \
		test "$a" = "$b"
done
check "a range past the end is 416 through nginx" \
	test "$(curl -s -o /dev/null -w '%{http_code}' -r 99999999- "$n_url")" = 416
curl -s "http://127.0.0.1:$NPORT/$(cd "$ROOT" && find news -name '*.ts' | sort | tail -1)" -o "$T/probe.ts"
check "ffprobe reads a segment served by nginx" \
	sh -c "ffprobe -v error -show_entries format=duration -of csv=p=0 '$T/probe.ts' |
		awk '{ exit !(\$1 > 1.9 && \$1 < 2.1) }'"

# A dead primary: local data still reads, missing data fails with EIO
# within timeout + 2 s, and reads work again once it is back.
kill "$ORIGIN"; wait "$ORIGIN" 2>/dev/null
local_f=$(cd "$ROOT" && find news -type f | sort | head -1)
check "complete segment still reads with the primary down" \
	cmp -s "$ROOT/$local_f" "$MNT/$local_f"
# A file the mount knows of but never read: drop it from the store first.
miss=big/f1.bin
rm -f "$STORE/data/$miss"
umount_remount() {
	fusermount3 -u "$MNT" && "$BIN/dvrfs" 127.0.0.1:"$ROOT" "$MNT" \
		-o store="$STORE",port=$PORT,timeout=3 2>>"$T/mount.err"
}
check "remount with the primary down serves the local store" umount_remount
check "a complete segment reads after that remount" \
	cmp -s "$ROOT/$local_f" "$MNT/$local_f"
start=$(date +%s.%N)
out=$(cat "$MNT/$miss" 2>&1 >/dev/null)
end=$(date +%s.%N)
check "a missing file fails with EIO ($out)" \
	grep -q "Input/output error" <<<"$out"
check "within timeout + 2 s" awk -v a="$start" -v b="$end" 'BEGIN { exit !(b - a < 5) }'
start_origin
sleep 1
check "reads work again once the primary is back, no remount" \
	cmp -s "$ROOT/$miss" "$MNT/$miss"

# Bad command lines and unusable primaries: one clear line, exit 32.
mkdir -p "$T/m2"
mount_err() {	# NAME EXPECTED-TEXT ARGS...
	local name=$1 want=$2 rc
	shift 2
	"$BIN/dvrfs" "$@" 2>"$T/err"; rc=$?
	if [ $rc -eq 32 ] && [ "$(wc -l <"$T/err")" -eq 1 ] &&
		grep -q -- "$want" "$T/err"; then
		ok "$name: $(cat "$T/err")"
	else
		nok "$name: rc=$rc, said: $(cat "$T/err")"
		fusermount3 -u "$T/m2" 2>/dev/null
	fi
}
mount_err "bad option" "frobnicate" 127.0.0.1:/x "$T/m2" -o store=$T/s2,frobnicate
mount_err "bad SPEC" "HOST:/PATH" nohost "$T/m2" -o store=$T/s2
mount_err "bad depth" "depth=7w" 127.0.0.1:/x "$T/m2" -o store=$T/s2,depth=7w
mount_err "unreachable primary" "cannot reach" 127.0.0.1:/x "$T/m2" \
	-o store=$T/s2,port=$(free_port),timeout=2
mount_err "no such export" "does not export" 127.0.0.1:/nope "$T/m2" \
	-o store=$T/s2,port=$PORT
KPORT=$(free_port)
echo secret >"$T/key"
bg "$BIN/m4f-origin" -r "$ROOT" -l 127.0.0.1:$KPORT -c "$T/hash2.db" -k "$T/key" 2>/dev/null
wait_port $KPORT
mount_err "wrong cluster key" "cluster key" 127.0.0.1:"$ROOT" "$T/m2" \
	-o store=$T/s3,port=$KPORT,cluster_key=wrong
"$BIN/dvrfs" 127.0.0.1:"$ROOT" "$T/m2" -o store=$T/s4,port=$KPORT,cluster_key_file=$T/key &&
	add_mount "$T/m2"
f=$(cd "$ROOT" && find sport -type f | head -1)
check "the right cluster key mounts and reads" cmp -s "$ROOT/$f" "$T/m2/$f"

# Writes are refused.
check "writing is refused" sh -c "! touch '$MNT/news/x' 2>/dev/null"

# A clean unmount ends the daemon.
pid=$(sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' "$STORE/dvrfs.json")
check "dvrfs.json names the running daemon" kill -0 "$pid"
check "umount" fusermount3 -u "$MNT"
gone() { local i; for ((i = 0; i < 50; i++)); do
	kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; return 1; }
check "the daemon exits after umount" gone "$pid"
finish
