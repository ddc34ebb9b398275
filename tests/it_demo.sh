#!/bin/bash
# make demo, non-interactive: it fills the 30-minute depth, serves a
# playable test picture and the fake streams through nginx over the mount,
# and leaves nothing running or mounted behind.
. "$(dirname "$0")/lib.sh"

SECS=${DEMO_TEST_SECONDS:-60}
helper_before=$(readlink /sbin/mount.dvrfs 2>/dev/null || echo none)

DEMO_SECONDS=$SECS make -C "$TOP" --no-print-directory demo \
	>"$T/demo.log" 2>&1 &
demo=$!
_pids+=($demo)

# log_value PATTERN: the first match of a sed -n pattern in the log, once
# it is there.
log_value() {
	local v i
	for ((i = 0; i < 1200; i++)); do
		v=$(sed -n "$1" "$T/demo.log" | head -1)
		[ -n "$v" ] && { echo "$v"; return 0; }
		kill -0 $demo 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}
W=$(log_value 's/^demo: working in //p')
URL=$(log_value 's|^demo: nginx: \(http://[0-9.:]*\)/.*|\1|p')
check "the demo starts a primary, a mount and nginx ($URL)" test -n "$URL"

# While it runs: the mount's live playlist names testsrc segments that
# nginx serves through the mount, and ffprobe accepts them as 2-second H.264.
seg=
for ((i = 0; i < 300; i++)); do
	seg=$(curl -sf "$URL/testsrc/index.m3u8" | grep '^[0-9].*\.ts$' | head -1)
	[ -n "$seg" ] && break
	sleep 0.2
done
check "index.m3u8 names testsrc segments ($seg)" test -n "$seg"
curl -sf -o "$T/testsrc.ts" "$URL/testsrc/$seg"
info=$(ffprobe -v error -select_streams v:0 -show_entries \
	stream=codec_name,width,height -of csv=p=0 "$T/testsrc.ts" 2>&1 |
	grep . | sort -u)	# mpegts lists the stream under its program too
check "ffprobe accepts a testsrc segment from nginx ($info)" \
	test "$info" = "h264,640,360"
dur=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$T/testsrc.ts")
check "the segment lasts 2 s ($dur)" \
	awk -v d="$dur" 'BEGIN { exit !(d > 1.9 && d < 2.1) }'
check "the segment equals the primary's file" \
	cmp -s "$T/testsrc.ts" "$W/storage/testsrc/$seg"
from=$(( $(date +%s) - 600 ))
curl -sf "$URL/news/archive-$from-300.m3u8" >"$T/archive.m3u8"
check "an archive playlist of news is a closed playlist" \
	grep -q '^#EXT-X-ENDLIST' "$T/archive.m3u8"

# A fake stream's segment from the backfill, fetched through nginx.
news=$(log_value 's|^    http://[0-9.:]*\(/news/.*\.ts\)$|\1|p')
if [ -n "$news" ]; then
	curl -sf -o "$T/news.ts" "$URL$news"
	check "a news segment through nginx equals the primary's ($news)" \
		cmp -s "$T/news.ts" "$W/storage$news"
	check "ffprobe accepts it" ffprobe -v error "$T/news.ts"
else
	nok "the demo printed a news segment's URL"
fi

wait $demo
rc=$?
check "make demo exits 0 after DEMO_SECONDS=$SECS (rc $rc)" test $rc -eq 0
check "the depth got filled" \
	grep -Eq '^demo: (depth filled after|final fill: 100\.0%)' "$T/demo.log"
check "the final status says 100%" grep -q '^demo: final fill: 100.0%' "$T/demo.log"
check "the final table's total is 100%" \
	grep -Eq '^total +[0-9.]+[A-Za-z]* +[0-9.]+[A-Za-z]* +100\.0% ' "$T/demo.log"

# Nothing left behind.
check "nothing mounted under the demo's folder" \
	sh -c "! grep -q ' $W/' /proc/mounts"
check "the demo's folder is gone" test ! -e "$W"
none_left() { ! pgrep -af "$W" >&2; }
check "no process of the demo is left" none_left
port=${URL##*:}
closed() { ! (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; }
check "nginx's port is closed" closed "$port"
check "/sbin/mount.dvrfs is as before ($helper_before)" \
	test "$(readlink /sbin/mount.dvrfs 2>/dev/null || echo none)" = "$helper_before"
if [ -n "${VERBOSE:-}" ] || [ $_fails -gt 0 ]; then
	grep -v '^\(news\|sport\|testsrc\|total\) ' "$T/demo.log" | tail -30
fi
finish
