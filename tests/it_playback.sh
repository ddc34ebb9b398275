#!/bin/bash
# Playback through plain nginx over the mount: archive playlists, the live
# playlist, range files and recording_status.json answered by the mount
# itself, checked with ffprobe, ffmpeg, curl and byte comparisons.
. "$(dirname "$0")/lib.sh"

P=$T/primary
ROOT=$P/storage
MNT=$T/mnt
STORE=$T/store
mkdir -p "$ROOT" "$MNT" "$T/nginx"
chmod 755 "$T"

# 40 minutes of 2 s segments; a 2-minute hole 20 minutes ago.
"$BIN/dvr-fake" -r "$ROOT" -s news -b 40m -d 2 -S 64k ||
	{ nok "dvr-fake"; finish; }
NOW=$(date +%s)
GAP_FROM=$(( (NOW - 1200) / 60 * 60 ))
GAP_TO=$((GAP_FROM + 120))
for ((t = GAP_FROM; t < GAP_TO; t += 2)); do
	rm -f "$ROOT/news/$(date -u -d @$t +%Y/%m/%d/%H/%M/%S).ts"
done
# A live stream of 1 s segments, still being recorded.
bg "$BIN/dvr-fake" -r "$ROOT" -s live -b 2m -d 1 -S 16k -L

PORT=$(free_port)
bg "$BIN/m4f-origin" -r "$ROOT" -l 127.0.0.1:$PORT -c "$T/hash.db" \
	2>>"$T/origin.log"
ORIGIN=$!
wait_port $PORT
"$BIN/dvrfs" 127.0.0.1:"$ROOT" "$MNT" -o store="$STORE",port=$PORT,timeout=3 ||
	{ nok "mount"; finish; }
add_mount "$MNT"

NPORT=$(free_port)
# The packaged site (open_file_cache and all), as an operator runs it.
nginx_start $NPORT "$(nginx_site $NPORT "$MNT")"
URL=http://127.0.0.1:$NPORT

# The segments of stream $1 in [$2, $3), as paths below the stream folder.
segs_in() {
	(cd "$ROOT/$1" && find . -name '*.ts' -printf '%P\n' | sort) |
	while read -r f; do
		t=$(date -u -d "$(echo "$f" | sed -E \
		    's#(....)/(..)/(..)/(..)/(..)/(..)\.ts#\1-\2-\3 \4:\5:\6#')" +%s)
		[ "$t" -lt "$3" ] && [ "$t" -ge $(($2 - 1)) ] && echo "$f"
	done
}
uris() { grep -v '^#' "$1"; }

# A 10-minute VOD playlist 30 minutes ago.
FROM=$(( (NOW - 2300) / 2 * 2 ))
curl -sf -o "$T/vod.m3u8" "$URL/news/archive-$FROM-600.m3u8"
check "archive-FROM-600.m3u8 is served through nginx" test -s "$T/vod.m3u8"
check "it is a VOD playlist with an end" \
	grep -qx '#EXT-X-PLAYLIST-TYPE:VOD' "$T/vod.m3u8"
check "… and #EXT-X-ENDLIST" grep -qx '#EXT-X-ENDLIST' "$T/vod.m3u8"
check "its segments are the primary's in the range" \
	test "$(uris "$T/vod.m3u8")" = "$(segs_in news "$FROM" $((FROM + 600)))"
check "300 segments of 2 s ($(grep -c '^#EXTINF:2.000,' "$T/vod.m3u8"))" \
	test "$(grep -c '^#EXTINF:2.000,' "$T/vod.m3u8")" -eq 300
bad=0
for u in $(uris "$T/vod.m3u8"); do
	code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/news/$u")
	[ "$code" = 200 ] || bad=$((bad + 1))
done
check "every URI in it resolves through nginx ($bad failed)" test $bad -eq 0
dur=$(ffprobe -v error -show_entries format=duration -of csv=p=0 \
	"$URL/news/archive-$FROM-600.m3u8" 2>"$T/ffprobe.err")
check "ffprobe: duration within a segment of 600 s (saw $dur)" \
	awk -v d="$dur" 'BEGIN { exit !(d >= 598 && d <= 602) }'
check "ffmpeg copies it to MPEG-TS without an error" \
	ffmpeg -v error -nostdin -i "$URL/news/archive-$FROM-600.m3u8" -map 0 \
	-c copy -f mpegts -y "$T/copy.ts"
check "index-FROM-DURATION.m3u8 is the same playlist" \
	cmp -s "$T/vod.m3u8" <(curl -sf "$URL/news/index-$FROM-600.m3u8")

# A range across the hole: a discontinuity at it.
GFROM=$((GAP_FROM - 60))
curl -sf -o "$T/gap.m3u8" "$URL/news/archive-$GFROM-240.m3u8"
check "a range over the hole has one discontinuity" \
	test "$(grep -c '^#EXT-X-DISCONTINUITY$' "$T/gap.m3u8")" -eq 1
after=$(grep -A3 '^#EXT-X-DISCONTINUITY$' "$T/gap.m3u8" | grep -v '^#' | head -1)
check "… right before the first segment after the hole ($after)" \
	test "$after" = "$(date -u -d @$GAP_TO +%Y/%m/%d/%H/%M/%S).ts"
check "… with its program date and time" test \
	"$(grep -A1 '^#EXT-X-DISCONTINUITY$' "$T/gap.m3u8" | tail -1)" = \
	"#EXT-X-PROGRAM-DATE-TIME:$(date -u -d @$GAP_TO +%Y-%m-%dT%H:%M:%S).000Z"
code() { curl -s -o /dev/null -w '%{http_code}' "$URL/news/$1"; }
check "a range inside the hole is 404" test "$(code "archive-$((GAP_FROM + 10))-60.m3u8")" = 404
for bad in archive-abc-600.m3u8 "archive-$FROM-0.m3u8" "archive-$FROM-86401.m3u8" \
	"archive-$((NOW + 3600))-60.m3u8" "archive-$((NOW - 86400 * 30))-600.m3u8" \
	"archive-$FROM-600.m3u8x" "archive-0$FROM-600.m3u8" "archive-+$FROM-600.m3u8" \
	"index-$FROM-now.m3u8" "archive-$FROM-600.mp4"; do
	check "bad name $bad is 404" test "$(code "$bad")" = 404
done
check "playback names are never listed" \
	test -z "$(ls "$MNT/news" | grep -E 'm3u8|json|archive')"

# The range file: its segments' bytes in order, ranges included.
curl -sf -o "$T/range.ts" "$URL/news/archive-$FROM-600.ts"
(cd "$ROOT/news" && cat $(uris "$T/vod.m3u8")) >"$T/expect.ts"
check "archive-FROM-600.ts equals its segments concatenated" \
	cmp -s "$T/range.ts" "$T/expect.ts"
check "its size in stat equals the bytes served" \
	test "$(stat -c %s "$MNT/news/archive-$FROM-600.ts")" -eq "$(stat -c %s "$T/expect.ts")"
SEG=$(stat -c %s "$T/expect.ts")
for r in 0-99 65000-70000 $((SEG - 100))- 131000-300000; do
	curl -sf -r "$r" -o "$T/part" "$URL/news/archive-$FROM-600.ts"
	a=${r%-*} b=${r#*-}; [ -z "$b" ] && b=$((SEG - 1))
	check "range $r of the .ts equals the segments' bytes" \
		cmp -s "$T/part" <(tail -c +$((a + 1)) "$T/expect.ts" | head -c $((b - a + 1)))
done
check "ffprobe reads the range file" \
	ffprobe -v error "$URL/news/archive-$FROM-600.ts"

# recording_status.json: the hole splits the ranges.
curl -sf -o "$T/status.json" "$URL/news/recording_status.json"
check "recording_status.json: two ranges around the hole" python3 - "$T/status.json" $GAP_FROM $GAP_TO <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
gf, gt = int(sys.argv[2]), int(sys.argv[3])
r = j[0]["ranges"]
assert j[0]["stream"] == "news", j
assert len(r) == 2, r
assert r[0]["from"] + r[0]["duration"] == gf, (r, gf)
assert r[1]["from"] == gt, (r, gt)
assert isinstance(j[0]["local"], list)
PY

# The live edge: index.m3u8 and archive-FROM-now.m3u8 grow.
LFROM=$(( $(date +%s) - 60 ))
curl -sf -o "$T/live1" "$URL/live/index.m3u8"
curl -sf -o "$T/event1" "$URL/live/archive-$LFROM-now.m3u8"
sleep 2.5
curl -sf -o "$T/live2" "$URL/live/index.m3u8"
curl -sf -o "$T/event2" "$URL/live/archive-$LFROM-now.m3u8"
last() { grep -v '^#' "$1" | tail -1; }
check "index.m3u8 has 6 segments, no end" \
	test "$(grep -c '^#EXTINF' "$T/live1")" -eq 6 -a -z "$(grep ENDLIST "$T/live1")"
check "index.m3u8 2 s later has newer segments ($(last "$T/live1") → $(last "$T/live2"))" \
	test "$(last "$T/live2")" \> "$(last "$T/live1")"
check "archive-FROM-now.m3u8 is an EVENT playlist" \
	grep -qx '#EXT-X-PLAYLIST-TYPE:EVENT' "$T/event1"
check "archive-FROM-now.m3u8 grew ($(grep -c EXTINF "$T/event1") → $(grep -c EXTINF "$T/event2"))" \
	test "$(grep -c EXTINF "$T/event2")" -ge $(( $(grep -c EXTINF "$T/event1") + 2 ))
check "… and ends with the newest segment" test "$(last "$T/event2")" = "$(last "$T/live2")"

# A day of 2 s segments: one playlist of 43,200 entries.
start=$(date +%s%N)
curl -sf -o "$T/day.m3u8" "$URL/news/archive-$((NOW - 86400))-86400.m3u8"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "# a day's playlist over 40 minutes of archive: ${ms} ms"
check "a day's playlist lists what the primary has" \
	test "$(grep -c EXTINF "$T/day.m3u8")" -eq "$(segs_in news $((NOW - 86400)) $NOW | wc -l)"

# With the primary down: local ranges still play, others fail in time.
for u in $(uris "$T/vod.m3u8"); do cat "$MNT/news/$u" >/dev/null; done
kill "$ORIGIN"; wait "$ORIGIN" 2>/dev/null
check "with the primary down, a local range's playlist is served" \
	cmp -s "$T/vod.m3u8" <(curl -sf "$URL/news/archive-$FROM-600.m3u8")
check "… and its range file" cmp -s "$T/expect.ts" <(curl -sf "$URL/news/archive-$FROM-600.ts")
start=$SECONDS
c=$(curl -s -m 30 -o /dev/null -w '%{http_code}' "$URL/live/index.m3u8")
check "a live playlist that needs the primary fails (HTTP $c)" test "$c" != 200
check "… within the timeout" test $((SECONDS - start)) -le 5
finish
