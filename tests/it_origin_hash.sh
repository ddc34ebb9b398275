#!/bin/bash
# m4f-origin never hashes to answer a listing or the feed, and reads each
# byte once: digests come from the bytes it sends (Repr-Digest,
# Content-Digest, X-M4F-Digests) and go into its hash cache; new files are
# hashed as they appear; answers are signed with -k; symbolic links are
# listed as links. Disk reads are counted with /proc/PID/io read_bytes
# after dropping the page cache (root only; skipped otherwise).
. "$(dirname "$0")/lib.sh"

S=$T/storage
mkdir -p "$S/big"
truncate -s 5G "$S/big/huge.bin"
"$BIN"/dvr-fake -r "$S" -s news -s sport -b 10m -d 2 -S 4M >/dev/null ||
    { echo "dvr-fake failed"; exit 1; }
ln -s news "$S/news2"
ln -s /etc "$S/etc"
ln -s ../../../../../../.. "$S/news/up"
echo outside >"$T/outside"
mkdir -p "$S/fat"	# two files of 40 MiB, unknown to a fresh origin
head -c $((40 << 20)) /dev/urandom >"$S/fat/a"
head -c $((40 << 20)) /dev/urandom >"$S/fat/b"
ARCHIVE=$(du -scb "$S/news" "$S/sport" "$S/fat" | tail -1 | cut -f1)

P=$(free_port)
U=http://127.0.0.1:$P
API=$U/m4f/v1
DB=$T/hashes.db
start() { origin_start "$S" "$P" "$DB" "$@"; }
stop() { origin_stop; }
can_drop=0
[ -w /proc/sys/vm/drop_caches ] && can_drop=1
drop_caches() { sync; [ $can_drop = 1 ] && echo 3 >/proc/sys/vm/drop_caches; }
read_bytes() { awk '/^read_bytes/ { print $2 }' "/proc/$ORIGIN/io"; }
hdr() {	# hdr FILE NAME: a header's value from curl -D output
	tr -d '\r' <"$1" | awk -v n="$2" 'BEGIN { n = tolower(n) }
	    { i = index($0, ":"); if (tolower(substr($0, 1, i - 1)) == n) {
	      print substr($0, i + 2); exit } }'
}
b64sha() { sha256sum | cut -c1-64 | xxd -r -p | base64; }
jq_py() { python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

# --- a fresh origin over a never-hashed archive
start
drop_caches		# what it read at start (folders to watch) too
r0=$(read_bytes)
SECONDS=0
t0=$(date +%s.%N)
curl -sf "$API/list$S?recursive=1" -o "$T/full"
t1=$(date +%s.%N)
r1=$(read_bytes)
nfiles=$(jq_py 'sum(1 for e in d["entries"] if e["type"] == "f")' <"$T/full")
nnull=$(jq_py 'sum(1 for e in d["entries"] if e["type"] == "f" and e["sha256"] is None)' <"$T/full")
echo "# whole tree: $nfiles files, $((ARCHIVE >> 20)) MiB, listed in" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }') s," \
    "origin read $((r1 - r0)) bytes"
check "first listing of a fresh origin: every file's sha256 null" \
    [ "$nfiles" -gt 600 -a "$nfiles" = "$nnull" ]
if [ $can_drop = 1 ]; then
	check "the whole-tree listing reads < 1 % of the archive" \
	    [ $(((r1 - r0) * 100)) -lt "$ARCHIVE" ]
else
	skip "read_bytes of the listing (not root)"
fi
t0=$(date +%s.%N)
curl -sf "$API/list$S/big" -o "$T/big"
t1=$(date +%s.%N)
check "a folder with a 5 GiB file lists at once, sha256 null" eval \
    '[ "$(jq_py "[(e[\"name\"], e[\"size\"], e[\"sha256\"]) for e in d[\"entries\"]]" <"$T/big")" = \
    "[('"'"'huge.bin'"'"', 5368709120, None)]" ] &&
    awk -v a="$t0" -v b="$t1" "BEGIN { exit !(b - a < 0.5) }"'

# --- symbolic links
check "a stream alias is listed as a link to its target" \
    [ "$(jq_py '[(e["type"], e.get("target"), "size" in e, "sha256" in e) for e in d["entries"] if e["name"] == "news2"]' <"$T/full")" = \
    "[('l', 'news', False, False)]" ]
check "links out of the export are not listed" \
    [ "$(jq_py '[e["name"] for e in d["entries"] if e["name"] in ("etc", "news/up")]' <"$T/full")" = "[]" ]
check "nothing is listed beneath a link" \
    [ "$(jq_py 'sum(1 for e in d["entries"] if e["name"].startswith("news2/"))' <"$T/full")" = 0 ]
F=$(jq_py '[e["name"] for e in d["entries"] if e["type"] == "f" and e["name"].startswith("news/")][-1]' <"$T/full")
curl -sf "$U$S/news2/${F#news/}" -o "$T/got"
check "a GET through a listed link serves what it points to" cmp -s "$T/got" "$S/$F"

# --- digests of what is sent, kept for the next listing
curl -s -D "$T/h" -o "$T/got" "$U$S/$F"
check "GET: Repr-Digest is the SHA-256 of the file" \
    [ "$(hdr "$T/h" Repr-Digest)" = "sha-256=:$(b64sha <"$S/$F"):" ]
check "GET: the bytes equal the file" cmp -s "$T/got" "$S/$F"
d=$(dirname "$F")
curl -sf "$API/list$S/$d" | jq_py "[e['sha256'] for e in d['entries'] if e['name'] == '$(basename "$F")']" >"$T/l"
check "the next listing carries the hash the GET computed" \
    [ "$(cat "$T/l")" = "['$(sha256sum <"$S/$F" | cut -c1-64)']" ]
G=$(jq_py '[e["name"] for e in d["entries"] if e["type"] == "f" and e["name"].startswith("sport/")][0]' <"$T/full")
curl -s -I "$U$S/$G" | tr -d '\r' >"$T/h"
check "HEAD of an unread file: no Repr-Digest" eval '! grep -qi "^repr-digest" "$T/h"'
curl -s -I "$U$S/$F" >"$T/h"
check "HEAD of a file read before: Repr-Digest" \
    [ "$(hdr "$T/h" Repr-Digest)" = "sha-256=:$(b64sha <"$S/$F"):" ]
curl -s -D "$T/h" -o "$T/got" -r 1000-300999 "$U$S/$G"
check "range: 206, Content-Digest of exactly those bytes" eval \
    '[ "$(head -1 "$T/h" | cut -d" " -f2)" = 206 ] &&
     [ "$(hdr "$T/h" Content-Digest)" = "sha-256=:$(b64sha <"$T/got"):" ] &&
     [ "$(dd if="$S/$G" bs=1000 skip=1 count=300 2>/dev/null | b64sha)" = "$(b64sha <"$T/got")" ]'
check "range of a file whose hash is unknown: no Repr-Digest" eval \
    '[ -z "$(hdr "$T/h" Repr-Digest)" ]'
curl -s -D "$T/h" -o "$T/got" -r 0-99 "$U$S/$F"
check "range of a file whose hash is known: Repr-Digest too" \
    [ "$(hdr "$T/h" Repr-Digest)" = "sha-256=:$(b64sha <"$S/$F"):" ]
curl -s -D "$T/h" -o "$T/got" -r -4 "$U$S/big/huge.bin"
check "last 4 bytes of the 5 GiB file: 206 with their Content-Digest" eval \
    '[ "$(head -1 "$T/h" | cut -d" " -f2)" = 206 ] &&
     [ "$(hdr "$T/h" Content-Range)" = "bytes 5368709116-5368709119/5368709120" ] &&
     [ "$(hdr "$T/h" Content-Digest)" = "sha-256=:$(head -c 4 /dev/zero | b64sha):" ]'
curl -s -I "$U$S/big/huge.bin" >"$T/h"
check "HEAD of the 5 GiB file answers without hashing" \
    [ -z "$(hdr "$T/h" Repr-Digest)" ]
big_range=$(curl -s -o /dev/null -D - -r 0-$(((64 << 20)))  "$U$S/big/huge.bin" | tr -d '\r')
check "a range over 64 MiB goes without Content-Digest" eval \
    '! grep -qi "^content-digest" <<<"$big_range" && grep -q " 206" <<<"$big_range"'
dir=$(dirname "$G")
names=$(cd "$S/$dir" && ls | head -3)
q=$(for n in $names; do printf 'name=%s&' "$n"; done)
curl -s -D "$T/h" -o "$T/got" "$API/files$S/$dir?${q%&}"
want=$(for n in $names; do sha256sum <"$S/$dir/$n" | cut -c1-64; done | paste -sd,)
check "files: X-M4F-Digests has each file's sha256 in order" \
    [ "$(hdr "$T/h" X-M4F-Digests)" = "$want" ]
check "files: the hashes it computed are listed next" \
    [ "$(curl -sf "$API/list$S/$dir" | jq_py "','.join(e['sha256'] for e in d['entries'][:3])")" = "$want" ]
check "files: more than 64 MiB to hash in one answer is 400" \
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$API/files$S/fat?name=a&name=b")" = 400 ]

# A file that changes while it is read never goes out with a digest of
# other bytes: each answer is a 503 or carries the digest of its body.
head -c $((8 << 20)) /dev/urandom >"$S/fat/live"
( while :; do head -c 65536 /dev/urandom | dd of="$S/fat/live" bs=64k \
    seek=$((RANDOM % 128)) conv=notrunc 2>/dev/null; done ) &
writer=$!
bad=0 n503=0
for i in $(seq 30); do
	curl -s -D "$T/h" -o "$T/got" "$U$S/fat/live"
	c=$(head -1 "$T/h" | cut -d' ' -f2)
	if [ "$c" = 503 ]; then
		n503=$((n503 + 1))
		[ -n "$(hdr "$T/h" Retry-After)" ] || bad=$((bad + 1))
	elif [ "$c" = 200 ]; then
		dg=$(hdr "$T/h" Repr-Digest)
		# The bytes may change after the digest: then the client sees
		# the mismatch; but the digest must be of some state of the
		# file, never of bytes it did not have: a cached hash of older
		# bytes with today's size and mtime would be wrong.
		[ -z "$dg" ] || [ "$dg" = "sha-256=:$(b64sha <"$T/got"):" ] ||
		    echo "# body and digest differ (changed during the send)"
	else
		bad=$((bad + 1))
	fi
done
kill $writer; wait $writer 2>/dev/null
echo "# a file rewritten while read: $n503 of 30 answers 503"
check "a file changing while read: 503 with Retry-After or 200" [ $bad = 0 ]

# --- a fill-like read with the page cache dropped: each byte read once
# cold_fill WHAT LIST: drops the page cache, fetches each URL of LIST (one
# a line) and checks that the origin read at most 1.05 x what it sent.
cold_fill() {
	local r0 r1 got=0 n url
	drop_caches
	r0=$(read_bytes)
	while read -r url; do
		n=$(curl -sf -o /dev/null -w '%{size_download}' "$url")
		got=$((got + n))
	done <"$2"
	r1=$(read_bytes)
	echo "# $1: $(wc -l <"$2") answers, sent $got bytes, read $((r1 - r0)) bytes"
	check "$1 with a cold page cache: reads <= 1.05 x the bytes sent" \
	    [ "$got" -gt $((100 << 20)) -a $(((r1 - r0) * 100)) -le $((got * 105)) ]
}
if [ $can_drop = 1 ]; then
	jq_py '"\n".join([e["name"] for e in d["entries"] if e["type"] == "f" and e["name"].startswith("sport/") and e["sha256"] is None][:200])' \
	    <"$T/full" | sed "s|^|$U$S/|" >"$T/fill"
	cold_fill "fill" "$T/fill"
	# The crawler's way: 8 files of a folder an answer, hashed, then
	# sent from their mappings.
	jq_py '"\n".join(sorted({e["name"].rsplit("/", 1)[0] for e in d["entries"] if e["type"] == "f" and e["name"].startswith("news/") and e["sha256"] is None}))' \
	    <"$T/full" | head -40 | while read -r dir; do
		echo "$API/files$S/$dir?$(cd "$S/$dir" && ls | head -8 |
		    sed 's/^/name=/' | paste -sd'&')"
	done >"$T/bundles"
	cold_fill "bundle fill" "$T/bundles"
else
	skip "read_bytes of a fill (not root)"
fi

# --- new files are hashed as they appear, links announced as links
feed() { curl -sf "$API/feed$S$1"; }
seq0=$(feed "" | jq_py 'd["seq"]')
feed "?since=$seq0&wait=20" >"$T/f1" &
fp=$!
sleep 0.3
nd=$(dirname "$F")
head -c 3000000 /dev/urandom >"$S/$nd/.new.ts"
mv "$S/$nd/.new.ts" "$S/$nd/new.ts"
wait $fp
check "feed: a new file is announced with its sha256 set" \
    [ "$(jq_py '[(e["op"], e["sha256"]) for e in d["events"]]' <"$T/f1")" = \
    "[('add', '$(sha256sum <"$S/$nd/new.ts" | cut -c1-64)')]" ]
seq1=$(jq_py 'd["seq"]' <"$T/f1")
feed "?since=$seq1&wait=20" >"$T/f2" &
fp=$!
sleep 0.3
ln -s news "$S/news3"
wait $fp
check "feed: a new link is announced as a link" \
    [ "$(jq_py '[(e["name"], e["type"], e.get("target")) for e in d["events"]]' <"$T/f2")" = \
    "[('news3', 'l', 'news')]" ]
curl -s -o /dev/null -w '%{http_code}' "$U/metrics" >/dev/null
stop

# --- with a key, every answer is signed
KEY=k3y-$RANDOM
printf '%s\n' "$KEY" >"$T/key"
start -k "$T/key"
reqsig() {	# reqsig TARGET [T]
	printf 'GET\n%s\n%s' "$1" "${2:-$now}" |
	    openssl dgst -sha256 -hmac "$KEY" -r | cut -d' ' -f1
}
answersig() {	# answersig REQSIG STATUS RANGE DIGEST
	printf 'M4F-ANSWER\n%s\n%s\n%s\n%s' "$1" "$2" "$3" "$4" |
	    openssl dgst -sha256 -hmac "$KEY" -r | cut -d' ' -f1
}
signed_ok() {	# signed_ok TARGET DIGEST_FIELD [curl args]: the answer verifies
	local t=$1 field=$2 rs st
	shift 2
	now=$(date +%s)
	rs=$(reqsig "$t")
	curl -s -D "$T/h" -o "$T/got" -H "Authorization: M4F-HMAC-SHA256 t=$now,sig=$rs" "$@" "$U$t"
	st=$(head -1 "$T/h" | cut -d' ' -f2)
	[ -n "$(hdr "$T/h" X-M4F-Signature)" ] || return 1
	[ "$(hdr "$T/h" X-M4F-Signature)" = "$(answersig "$rs" "$st" \
	    "$(hdr "$T/h" Content-Range)" "${field:+$(hdr "$T/h" "$field")}")" ] || return 1
	# The same answer for another request's signature does not verify.
	[ "$(hdr "$T/h" X-M4F-Signature)" != "$(answersig "$(reqsig "$t" 1)" "$st" \
	    "$(hdr "$T/h" Content-Range)" "${field:+$(hdr "$T/h" "$field")}")" ]
}
check "signed: a whole file (Repr-Digest)" signed_ok "$S/$F" Repr-Digest
check "signed: a range (Content-Digest)" signed_ok "$S/$G" Content-Digest -r 5-500
check "signed: a listing (X-M4F-SHA256)" signed_ok "/m4f/v1/list$S/news" X-M4F-SHA256
check "signed: several files (X-M4F-Digests)" signed_ok "/m4f/v1/files$S/$dir?${q%&}" X-M4F-Digests
check "signed: a 404" eval 'signed_ok "$S/nope" "" && grep -q " 404" "$T/h"'
check "signed: a 416" eval 'signed_ok "$S/$F" "" -r 999999999- && grep -q " 416" "$T/h"'
check "signed: /metrics" signed_ok /metrics ""
check "signed: a 401 to a request with a wrong signature" eval \
    'now=$(date +%s); curl -s -D "$T/h" -o /dev/null -H "Authorization: M4F-HMAC-SHA256 t=$now,sig=$(printf %064d 0)" "$U$S/$F";
     [ "$(hdr "$T/h" X-M4F-Signature)" = "$(answersig "$(printf %064d 0)" 401 "" "")" ]'
curl -s -D "$T/h" -o /dev/null "$U$S/$F"
check "unsigned request: 401 without a signature" eval \
    'grep -q " 401" "$T/h" && [ -z "$(hdr "$T/h" X-M4F-Signature)" ]'
stop

# --- background hashing of the back catalogue, newest first
rm -f "$DB" "$DB"-wal "$DB"-shm
start -H 200M
sleep 3
curl -sf "$API/list$S?recursive=1" -o "$T/bg"
python3 - "$T/bg" >"$T/bgres" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
# The streams as dvr-fake wrote them: each minute's folder after the last.
f = [e for e in d["entries"] if e["type"] == "f" and
     e["name"].split("/")[0] in ("news", "sport") and
     not e["name"].endswith("/new.ts")]
known = [e for e in f if e["sha256"]]
unknown = [e for e in f if not e["sha256"]]
newest = max(f, key=lambda e: e["mtime"])
oldest = min(f, key=lambda e: e["mtime"])
print(len(known), len(unknown), bool(newest["sha256"]),
      bool(oldest["sha256"]))
EOF
read -r nk nu newest_known oldest_known <"$T/bgres"
echo "# -H 200M after 3 s: $nk files hashed, $nu not yet"
check "-H: hashes the back catalogue, the newest file first" \
    [ "$nk" -gt 0 -a "$newest_known" = True -a "$oldest_known" = False ]
hashed=$(curl -sf "$U/metrics" | awk '/^m4f_origin_hashed_bytes_total/ { print $2 }')
echo "# -H 200M: $((hashed >> 20)) MiB hashed in about 3 s"
check "-H: at the rate given (<= 200 MiB/s + 1 s of burst)" \
    [ "$nu" -gt 0 -a "$hashed" -le $((5 * (200 << 20))) ]
stop
grep -E 'warning|error' "$T/origin.log" | grep -v 'deeper than' | head
finish
