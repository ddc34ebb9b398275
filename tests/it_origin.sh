#!/bin/bash
# m4f-origin against real curl: bytes, ranges, listings, hashes and their
# cache, hidden and escaping paths, authentication, the feed, many clients,
# two listen addresses and a clean stop.
. "$(dirname "$0")/lib.sh"

S=$T/storage			# the export
mkdir -p "$S"/news/2026/11/27/07/13 "$S"/news/2026/11/27/07/14 \
    "$S"/sport/a "$S"/sport/b "$T"/outside
i=0
for f in news/2026/11/27/07/13/00.ts news/2026/11/27/07/13/02.ts \
    news/2026/11/27/07/14/00.ts sport/a/1.ts sport/b/big.ts sport/top.bin; do
	i=$((i + 1))
	dd if=/dev/urandom of="$S/$f" bs=1k count=$((i * 37 + 1)) 2>/dev/null
done
dd if=/dev/urandom of="$S/sport/b/big.ts" bs=1M count=3 2>/dev/null
: >"$S/news/empty.ts"
echo partial >"$S/news/.x"
echo partial >"$S/news/y.tmp"
echo secret >"$T/outside/secret"
ln -s ../../outside/secret "$S/sport/evil"
ln -s a/1.ts "$S/sport/good"

P=$(free_port)
U=http://127.0.0.1:$P
BASE=$U$S			# files are served under their absolute path
API=$U/m4f/v1
DB=$T/hashes.db
start() { origin_start "$S" "$P" "$DB" "$@"; }
stop() { origin_stop; }
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

start

# --- file bytes
all_equal=1
while read -r f; do
	curl -sf "$BASE/$f" -o "$T/got" && cmp -s "$T/got" "$S/$f" ||
	    { all_equal=0; echo "differs: $f"; }
done < <(cd "$S" && find . -type f ! -name '.*' ! -name '*.tmp' | sed 's|^\./||')
check "every file's bytes equal the disk" [ $all_equal = 1 ]
check "0-byte file is 200 and empty" [ "$(curl -s -w '%{http_code}:%{size_download}' \
    -o /dev/null "$BASE/news/empty.ts")" = "200:0" ]

# --- ranges
F=sport/b/big.ts
SZ=$(stat -c %s "$S/$F")
range_ok() {	# range_ok CURL_RANGE SKIP COUNT EXPECTED_CONTENT_RANGE
	local h
	curl -s -D "$T/h" -r "$1" "$BASE/$F" -o "$T/r" || return 1
	grep -q '^HTTP/1.1 206' "$T/h" || return 1
	h=$(grep -i '^content-range:' "$T/h" | tr -d '\r' | cut -d' ' -f2-)
	[ "$h" = "$4" ] || { echo "Content-Range $h, want $4"; return 1; }
	dd if="$S/$F" bs=1 skip="$2" count="$3" 2>/dev/null | cmp -s - "$T/r"
}
check "range: first byte" range_ok 0-0 0 1 "bytes 0-0/$SZ"
check "range: middle" range_ok 1000-1999 1000 1000 "bytes 1000-1999/$SZ"
check "range: suffix" range_ok -188 $((SZ - 188)) 188 \
    "bytes $((SZ - 188))-$((SZ - 1))/$SZ"
check "range: open" range_ok $((SZ - 5000))- $((SZ - 5000)) 5000 \
    "bytes $((SZ - 5000))-$((SZ - 1))/$SZ"
check "range: whole as a range" range_ok 0-$((SZ + 100)) 0 "$SZ" \
    "bytes 0-$((SZ - 1))/$SZ"
curl -s -D "$T/h" -o "$T/r" -r "$SZ-" "$BASE/$F"
check "range past the end: 416" grep -q '^HTTP/1.1 416' "$T/h"
check "416 carries Content-Range bytes */SIZE" \
    grep -qi "^content-range: bytes \*/$SZ" "$T/h"
curl -s -D "$T/h" -o "$T/r" -r 0-1,5-6 "$BASE/$F"
check "multi-range: 200 whole file" eval \
    'grep -q "^HTTP/1.1 200" "$T/h" && cmp -s "$T/r" "$S/$F"'
curl -s -D "$T/h" -o "$T/r" -H 'Range: bytes=x-y' "$BASE/$F"
check "malformed range: 416" grep -q '^HTTP/1.1 416' "$T/h"
rng() {	# rng RAW_RANGE_VALUE: "STATUS CONTENT-RANGE" (bytes in $T/r)
	curl -s -D "$T/h" -o "$T/r" -m 5 -H "Range: $1" "$BASE/$F"
	echo "$(head -1 "$T/h" | cut -d' ' -f2)" \
	    "$(grep -i '^content-range:' "$T/h" | tr -d '\r' | cut -d' ' -f2-)"
}
check "range bytes=18446744073709551615-: 416" \
    [ "$(rng 'bytes=18446744073709551615-')" = "416 bytes */$SZ" ]
check "range bytes=18446744073709551616-: 416" \
    [ "$(rng 'bytes=18446744073709551616-')" = "416 bytes */$SZ" ]
check "range bytes=0-99999999999999999999: 206 whole" eval \
    '[ "$(rng "bytes=0-99999999999999999999")" = "206 bytes 0-$((SZ - 1))/$SZ" ] &&
     cmp -s "$T/r" "$S/$F"'
check "range 'bytes=-1 ' (trailing space): 206 last byte" eval \
    '[ "$(rng "bytes=-1 ")" = "206 bytes $((SZ - 1))-$((SZ - 1))/$SZ" ] &&
     tail -c 1 "$S/$F" | cmp -s - "$T/r"'
check "range bytes=0-5x: 416" [ "$(rng 'bytes=0-5x')" = "416 bytes */$SZ" ]

# --- several files of a folder in one answer
M=$S/news/2026/11/27/07/13
FU=$API/files$S/news/2026/11/27/07/13
curl -s -D "$T/h" -o "$T/r" "$FU?name=02.ts&name=00.ts"
check "files: 200, the files back to back in the order asked" eval \
    'grep -q "^HTTP/1.1 200" "$T/h" && cat "$M/02.ts" "$M/00.ts" | cmp -s - "$T/r"'
check "files: X-M4F-Sizes in the same order" \
    grep -qi "^x-m4f-sizes: $(stat -c %s "$M/02.ts"),$(stat -c %s "$M/00.ts")" "$T/h"
# Sent from mappings of the files: an empty one among them maps nothing.
: >"$M/03.ts"
curl -s -D "$T/h" -o "$T/r" "$FU?name=02.ts&name=03.ts&name=00.ts"
check "files: an empty file among them, bytes and sizes right" eval \
    'grep -q "^HTTP/1.1 200" "$T/h" && cat "$M/02.ts" "$M/00.ts" | cmp -s - "$T/r" &&
     grep -qi "^x-m4f-sizes: $(stat -c %s "$M/02.ts"),0,$(stat -c %s "$M/00.ts")" "$T/h"'
curl -s -o "$T/r" "$FU?name=03.ts"
check "files: one empty file, an empty body" [ -f "$T/r" -a ! -s "$T/r" ]
rm -f "$M/03.ts"
# A file truncated while its mapping is sent ends that answer short; the
# origin goes on (no SIGBUS reaches it: the kernel's copy fails instead).
dd if=/dev/urandom of="$M/40.ts" bs=1M count=24 2>/dev/null
curl -s -o /dev/null "$FU?name=40.ts"		# hashed: sent from the mapping next
curl -s --limit-rate 2M -o "$T/r" "$FU?name=00.ts&name=40.ts" &
cp=$!
sleep 1
truncate -s 4096 "$M/40.ts"
wait $cp
check "files: a file truncated while sent ends the answer short" \
    [ "$(stat -c %s "$T/r")" -lt $((24 << 20)) ]
check "files: the origin lives on after a file truncated while sent" eval \
    'kill -0 $ORIGIN && curl -sf "$FU?name=00.ts" | cmp -s - "$M/00.ts"'
rm -f "$M/40.ts"
check "files: a missing name fails the whole request (404)" \
    [ "$(code "$FU?name=00.ts&name=nope.ts")" = 404 ]
check "files: a name with a slash is refused (400)" \
    [ "$(code "$FU?name=..%2F14%2F00.ts")" = 400 ]
check "files: a folder as a name is refused (400)" \
    [ "$(code "$API/files$S/news/2026/11/27/07?name=13")" = 400 ]
check "files: no name is refused (400)" [ "$(code "$FU")" = 400 ]
check "files: 65 names are refused (400)" \
    [ "$(code "$FU?$(printf 'name=00.ts&%.0s' $(seq 65))name=02.ts")" = 400 ]
check "files: hidden names are not served (404)" \
    [ "$(code "$API/files$S/news?name=.x")" = 404 ]

# --- HEAD and headers
curl -s -I "$BASE/$F" | tr -d '\r' >"$T/h"
check "HEAD: 200, Content-Length, X-M4F-Mtime" eval \
    'grep -q "^HTTP/1.1 200" "$T/h" &&
     grep -qi "^content-length: $SZ\$" "$T/h" &&
     grep -qi "^x-m4f-mtime: $(stat -c %Y "$S/$F")\$" "$T/h" &&
     grep -qi "^content-type: video/mp2t\$" "$T/h" &&
     grep -qi "^accept-ranges: bytes\$" "$T/h"'
check "POST: 405" [ "$(code -X POST "$BASE/$F")" = 405 ]

# --- listings
# One line per entry: name type size mtime (size "-" for folders).
json_lines() {
	python3 -c '
import json, sys
d = json.load(sys.stdin)
for e in d["entries"]:
    print(e["name"], e["type"], e.get("size", "-"), e["mtime"], e.get("sha256", "-"))
'
}
ls_lines() {	# the same from the disk, for folder $1, without hashes
	(cd "$1" && find . -mindepth 1 -maxdepth 1 ! -name '.*' ! -name '*.tmp' \
	    \( -type f -o -type d \) -printf '%P %y %s %T@\n' | LC_ALL=C sort |
	    awk '{ split($4, t, "."); print $1, $2, ($2 == "d" ? "-" : $3), t[1] }')
}
curl -sf "$API/list$S/news/2026/11/27/07/13" | json_lines | cut -d' ' -f1-4 >"$T/l1"
ls_lines "$S/news/2026/11/27/07/13" >"$T/l2"
check "folder listing equals ls (names, sizes, mtimes)" cmp -s "$T/l1" "$T/l2"
curl -sf "$API/list$S/news" | json_lines >"$T/l1"
check "listing hides .x and y.tmp" eval '! grep -qE "^(\.x|y\.tmp) " "$T/l1" &&
    grep -q "^empty.ts f 0 " "$T/l1"'
check "listing: hidden files 404 on GET" eval \
    '[ "$(code "$BASE/news/.x")" = 404 ] && [ "$(code "$BASE/news/y.tmp")" = 404 ]'
curl -s -D "$T/lh" -o "$T/lb" "$API/list$S?recursive=1"
check "a listing's X-M4F-SHA256 is the SHA-256 of its body" [ \
    "$(sed -n 's/^[Xx]-[Mm]4[Ff]-[Ss][Hh][Aa]256: *\([0-9a-f]*\).*/\1/p' "$T/lh")" = \
    "$(sha256sum <"$T/lb" | cut -d' ' -f1)" ]
check "listing a file: 400" [ "$(code "$API/list$S/$F")" = 400 ]
check "listing a missing folder: 404" [ "$(code "$API/list$S/nope")" = 404 ]
check "not exported: 404" [ "$(code "$U/etc/passwd")" = 404 ]

# Recursive, paged by 3: must give every entry exactly once, in order.
curl -sf "$API/list$S?recursive=1" | json_lines >"$T/full"
: >"$T/paged"
after= pages=0
while :; do
	q="recursive=1&limit=3${after:+&after=$after}"
	curl -sf "$API/list$S?$q" >"$T/page" || break
	json_lines <"$T/page" >>"$T/paged"
	pages=$((pages + 1))
	after=$(python3 -c 'import json,sys,urllib.parse as u
n = json.load(open(sys.argv[1]))["next"]; print(u.quote(n) if n else "")' "$T/page")
	[ -z "$after" ] && break
	[ $pages -gt 100 ] && break
done
# Files and folders, plus the one symlink that stays inside.
expect=$(cd "$S" && find . -mindepth 1 ! -name '.*' ! -name '*.tmp' \
    \( -type f -o -type d \) | wc -l)
expect=$((expect + 1))
check "recursive listing pages through everything ($pages pages)" eval \
    '[ $pages -gt 3 ] && cmp -s "$T/full" "$T/paged" &&
     [ "$(wc -l <"$T/full")" -eq $expect ]'
check "evil symlink is not listed, good one is, as a link" eval \
    '! grep -q "^sport/evil " "$T/full" && grep -q "^sport/good l " "$T/full"'

# Every file was read whole above: the listing knows each hash now.
hashes_ok=1
while read -r name type size mtime sha; do
	[ "$type" = f ] || continue
	[ "$(sha256sum <"$S/$name" | cut -d' ' -f1)" = "$sha" ] ||
	    { hashes_ok=0; echo "hash differs: $name"; }
done <"$T/full"
check "listing sha256 equals sha256sum" [ $hashes_ok = 1 ]

# --- paths that escape
check "/../ refused with 400" [ "$(code --path-as-is "$BASE/../outside/secret")" = 400 ]
check "%2F in a component refused" [ "$(code "$BASE/sport%2Fa/1.ts")" = 400 ]
check "symlink outside the export: 403" [ "$(code "$BASE/sport/evil")" = 403 ]
curl -sf "$BASE/sport/good" -o "$T/got"
check "symlink inside the export works" cmp -s "$T/got" "$S/sport/a/1.ts"

# --- hash cache across a restart, new hash after a change
stop
rows=$(python3 -c 'import sqlite3,sys
print(sqlite3.connect(sys.argv[1]).execute("select count(*) from hashes").fetchone()[0])' "$DB")
check "hash cache holds a row per file ($rows)" [ "$rows" -ge 8 ]
dd if=/dev/urandom of="$S/sport/a/1.ts" bs=1k count=5 conv=notrunc 2>/dev/null
touch -d '2001-01-01' "$S/sport/a/1.ts"
start
curl -sf "$API/list$S/sport/a" | json_lines >"$T/l1"
check "changed file: its old hash is not listed after restart" \
    grep -q " None\$" "$T/l1"
curl -sf "$BASE/sport/a/1.ts" -o /dev/null
curl -sf "$API/list$S/sport/a" | json_lines >"$T/l1"
check "changed file gets its new hash once read" \
    grep -q " $(sha256sum <"$S/sport/a/1.ts" | cut -d' ' -f1)\$" "$T/l1"
stop

# --- authentication
KEY=k3y-$RANDOM
printf '%s\n' "$KEY" >"$T/key"
start -k "$T/key"
sign() {	# sign METHOD TARGET T [KEY]
	printf '%s\n%s\n%s' "$1" "$2" "$3" |
	    openssl dgst -sha256 -hmac "${4:-$KEY}" -r | cut -d' ' -f1
}
p=$S/$F
now=$(date +%s)
auth() { echo "Authorization: M4F-HMAC-SHA256 t=$1,sig=$2"; }
check "key: no header 401" [ "$(code "$U$p")" = 401 ]
check "key: one-line body" [ "$(curl -s "$U$p")" = "401 missing or malformed signature" ]
check "key: wrong key 401" [ "$(code -H "$(auth "$now" "$(sign GET "$p" "$now" nope)")" \
    "$U$p")" = 401 ]
old=$((now - 400))
check "key: expired t 401" [ "$(code -H "$(auth $old "$(sign GET "$p" $old)")" "$U$p")" = 401 ]
check "key: signature of another path 401" [ "$(code -H \
    "$(auth "$now" "$(sign GET "$S/sport/a/1.ts" "$now")")" "$U$p")" = 401 ]
check "key: malformed header 401" [ "$(code -H "Authorization: M4F-HMAC-SHA256 t=$now" \
    "$U$p")" = 401 ]
curl -sf -H "$(auth "$now" "$(sign GET "$p" "$now")")" "$U$p" -o "$T/got"
check "key: signed GET succeeds, bytes equal" cmp -s "$T/got" "$S/$F"
q="/m4f/v1/list$S/news?recursive=1"
check "key: signed listing succeeds" [ "$(code -H "$(auth "$now" "$(sign GET "$q" "$now")")" \
    "$U$q")" = 200 ]
stop
echo "" >"$T/emptykey"
"$BIN"/m4f-origin -r "$S" -l 127.0.0.1:"$P" -c "$DB" -k "$T/emptykey" 2>/dev/null
check "empty key file: refuses to start" [ $? -ne 0 ]
"$BIN"/m4f-origin -r "$S" -l 127.0.0.1:"$P" -c "$DB" -k "$T/nokey" 2>/dev/null
check "missing key file: refuses to start" [ $? -ne 0 ]

# --- feed, 64 clients, two addresses
P2=$(free_port)
start -l 127.0.0.1:"$P2"
feed_json() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
seq0=$(curl -sf "$API/feed$S" | feed_json 'd["seq"]')
curl -sf "$API/feed$S?since=$seq0&wait=30" -o "$T/feed1" &
fpid=$!
sleep 0.5
dd if=/dev/urandom of="$S/news/2026/11/27/07/14/.02.ts" bs=1k count=77 2>/dev/null
mv "$S/news/2026/11/27/07/14/.02.ts" "$S/news/2026/11/27/07/14/02.ts"
SECONDS=0
wait $fpid
took=$SECONDS
want=$(sha256sum <"$S/news/2026/11/27/07/14/02.ts" | cut -d' ' -f1)
check "feed: add event with size and sha256, before wait (${took}s)" eval \
    '[ $took -lt 25 ] && [ "$(feed_json "[(e[\"op\"], e[\"name\"], e[\"size\"], e[\"sha256\"]) for e in d[\"events\"]]" <"$T/feed1")" = \
    "[('"'"'add'"'"', '"'"'news/2026/11/27/07/14/02.ts'"'"', 78848, '"'"'$want'"'"')]" ]'
seq1=$(feed_json 'd["seq"]' <"$T/feed1")
curl -sf "$API/feed$S?since=$seq1&wait=30" -o "$T/feed2" &
fpid=$!
sleep 0.5
rm "$S/news/2026/11/27/07/13/00.ts"
wait $fpid
check "feed: del event" [ "$(feed_json '[(e["op"], e["name"]) for e in d["events"]]' \
    <"$T/feed2")" = "[('del', 'news/2026/11/27/07/13/00.ts')]" ]
check "feed: empty answer after wait" [ "$(curl -sf "$API/feed$S?since=$(feed_json \
    'd["seq"]' <"$T/feed2")&wait=1" | feed_json 'len(d["events"])')" = 0 ]
check "feed: future since resets" [ "$(curl -sf "$API/feed$S?since=999999&wait=1" |
    feed_json 'd["reset"]')" = True ]
check "feed: bad wait is 400" [ "$(code "$API/feed$S?since=1&wait=61")" = 400 ]

(cd "$S" && find . -type f ! -name '.*' ! -name '*.tmp' | sed 's|^\./||') >"$T/files"
for c in $(seq 1 64); do
	(
		mkdir -p "$T/c$c"
		n=0
		while read -r f; do
			n=$((n + 1))
			curl -sf "$BASE/$f" -o "$T/c$c/$n" &&
			    cmp -s "$T/c$c/$n" "$S/$f" || echo "client $c: $f" >>"$T/bad"
			rm -f "$T/c$c/$n"
		done <"$T/files"
	) &
done
wait_clients=$(jobs -p | grep -v "^$ORIGIN\$")
# A long-poll in flight must not hold anyone up.
seq2=$(feed_json 'd["seq"]' <"$T/feed2")
curl -sf "$API/feed$S?since=$seq2&wait=60" -o /dev/null &
poll=$!
for j in $wait_clients; do wait "$j"; done
check "64 concurrent clients read every byte right" [ ! -s "$T/bad" ]
kill $poll 2>/dev/null
curl -sf "http://127.0.0.1:$P2$S/$F" -o "$T/got"
check "second listen address serves" cmp -s "$T/got" "$S/$F"
kill -TERM "$ORIGIN"
wait "$ORIGIN"
check "SIGTERM: exit 0" [ $? = 0 ]
grep -E 'warning|error' "$T/origin.log" | head -20
finish
