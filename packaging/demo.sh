#!/bin/bash
# The dvrfs demo (make demo): on this machine, a primary — m4f-origin over a
# storage folder where dvr-fake records two fake live streams with an hour
# of backfill and ffmpeg records a watchable test picture — and a
# secondary — a dvrfs mount of that primary with replicate,depth=30m and
# nginx over the mount. Shows the fill (dvrfs-status -w) until the depth is
# complete, prints URLs to open in a player, and on Ctrl-C unmounts and
# stops everything it started.
#
# Environment:
#   DEMO_SECONDS=N  run N seconds after the mount is up, print the final
#                   status and stop (non-interactive).
#   DEMO_DEPTH      the mount's depth (default 30m).
#   DEMO_KEEP=1     keep the work folder on exit.
# Needs root (mount, nginx) and the packages of packaging/deps.sh.
set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$TOP/bin
DEPTH=${DEMO_DEPTH:-30m}
SECS=${DEMO_SECONDS:-}

say() { echo "demo: $*"; }
die() { echo "demo: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (it mounts a filesystem and starts nginx)"
for p in m4f-origin dvr-fake dvrfs dvrfs-status; do
	[ -x "$BIN/$p" ] || die "$BIN/$p is missing: run make first"
done
for c in nginx ffmpeg curl python3; do
	command -v $c >/dev/null || die "$c is missing: run make deps"
done
if [ -n "$SECS" ] && ! [[ $SECS =~ ^[0-9]+$ ]]; then
	die "DEMO_SECONDS=$SECS: not a number of seconds"
fi

W=$(mktemp -d /tmp/dvrfs-demo.XXXXXX)
chmod 755 "$W"			# nginx's workers run as nobody
ROOT=$W/storage			# the primary's DVR folder
MNT=$W/mnt			# the secondary's mount point
STORE=$W/store			# the secondary's local store
STAGE=$W/stage			# ffmpeg's segments before they are complete
mkdir -p "$ROOT" "$MNT" "$STAGE" "$W/nginx" "$W/log"
chmod 755 "$ROOT" "$MNT"

pids=()
mounted=
helper=
cleanup() {
	local p i
	trap - EXIT INT TERM
	echo
	say "stopping"
	if [ -n "$mounted" ]; then
		for ((i = 0; i < 50; i++)); do
			umount "$MNT" 2>/dev/null && break
			sleep 0.1
		done
		grep -q " $MNT " /proc/mounts &&
			{ fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT"; }
	fi
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for ((i = 0; i < 50; i++)); do
		local alive=0
		for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ $alive = 0 ] && break
		sleep 0.1
	done
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait "${pids[@]}" 2>/dev/null
	# The dvrfs daemon ends with its mount; wait for it to let go.
	if [ -n "${DPID:-}" ]; then
		for ((i = 0; i < 50; i++)); do
			kill -0 "$DPID" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$DPID" 2>/dev/null
	fi
	[ -n "$helper" ] && rm -f "$helper" && say "removed $helper"
	if [ "${DEMO_KEEP:-}" = 1 ]; then
		say "kept $W"
	else
		rm -rf "$W"
	fi
	say "stopped"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() {
	local i
	for ((i = 0; i < 200; i++)); do
		(exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
		sleep 0.05
	done
	die "nothing listens on port $1 (see $W/log)"
}

OPORT=$(free_port)
NPORT=$(free_port)
while [ "$NPORT" = "$OPORT" ]; do NPORT=$(free_port); done
say "working in $W"

# The primary: two fake streams with an hour of archive, recording live.
say "primary: recording news and sport (1 hour of backfill, then live)"
"$BIN/dvr-fake" -r "$ROOT" -s news -s sport -b 1h -d 2 -R 500k -L \
	2>"$W/log/dvr-fake.log" &
pids+=($!)
# ...and a real picture: ffmpeg's test source in 2-second segments, each
# renamed into STREAM/YYYY/MM/DD/HH/MM/SS.ts once ffmpeg has closed it
# (the segment list names only closed ones; rename(2) is atomic).
TZ=UTC ffmpeg -nostdin -hide_banner -loglevel error -re \
	-f lavfi -i testsrc=size=640x360:rate=25 \
	-f lavfi -i sine=frequency=440:sample_rate=48000 \
	-c:v libx264 -preset ultrafast -pix_fmt yuv420p -g 50 -keyint_min 50 \
	-sc_threshold 0 -force_key_frames 'expr:gte(t,n_forced*2)' \
	-c:a aac -b:a 64k \
	-f segment -segment_time 2 -segment_format mpegts -strftime 1 \
	-segment_list "$STAGE/list.csv" -segment_list_type csv \
	"$STAGE/%Y-%m-%d-%H-%M-%S.ts" 2>"$W/log/ffmpeg.log" &
pids+=($!)

# Moves closed testsrc segments into the archive, as a recorder would.
# The playlists come from the mount itself (index.m3u8,
# archive-FROM-DURATION.m3u8 in the stream's folder).
recorder() {
	local f y mo d h mi s
	while :; do
		if [ -f "$STAGE/list.csv" ]; then
			while IFS=, read -r f _; do
				f=${f##*/}
				[ -f "$STAGE/$f" ] || continue
				IFS=- read -r y mo d h mi s <<<"${f%.ts}"
				mkdir -p "$ROOT/testsrc/$y/$mo/$d/$h/$mi"
				mv "$STAGE/$f" "$ROOT/testsrc/$y/$mo/$d/$h/$mi/$s.ts"
			done <"$STAGE/list.csv"
		fi
		sleep 1
	done
}
recorder </dev/null &
pids+=($!)

"$BIN/m4f-origin" -r "$ROOT" -l 127.0.0.1:$OPORT -c "$W/hashes.db" \
	2>"$W/log/m4f-origin.log" &
pids+=($!)
wait_port $OPORT
say "primary: m4f-origin -r $ROOT -l 127.0.0.1:$OPORT"

# The secondary: mount(8) runs /sbin/mount.dvrfs for -t dvrfs.
if [ ! -e /sbin/mount.dvrfs ]; then
	ln -s "$BIN/dvrfs" /sbin/mount.dvrfs || die "cannot link /sbin/mount.dvrfs"
	helper=/sbin/mount.dvrfs
	say "linked /sbin/mount.dvrfs -> $BIN/dvrfs (removed on exit)"
fi
opts=store=$STORE,port=$OPORT,replicate,depth=$DEPTH
say "secondary: mount -t dvrfs 127.0.0.1:$ROOT $MNT -o $opts"
mount -t dvrfs 127.0.0.1:"$ROOT" "$MNT" -o "$opts" 2>"$W/log/mount.err" ||
	die "mount failed: $(cat "$W/log/mount.err")"
mounted=1
DPID=$(sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' "$STORE/dvrfs.json" 2>/dev/null)

# nginx over the mount: the packaged site, on a loopback port.
sed -e "s|listen 80;|listen 127.0.0.1:$NPORT;|" -e "s|root /mnt/dvr;|root $MNT;|" \
	"$TOP/packaging/nginx-dvrfs.conf" >"$W/nginx/site.conf"
cat >"$W/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 2;
pid $W/nginx/nginx.pid;
error_log $W/log/nginx-error.log;
events { worker_connections 512; }
http {
	access_log $W/log/nginx-access.log;
	client_body_temp_path $W/nginx; proxy_temp_path $W/nginx;
	fastcgi_temp_path $W/nginx; uwsgi_temp_path $W/nginx;
	scgi_temp_path $W/nginx;
	include $W/nginx/site.conf;
}
EOF
nginx -c "$W/nginx/nginx.conf" -e "$W/log/nginx-error.log" </dev/null &
pids+=($!)
wait_port $NPORT
URL=http://127.0.0.1:$NPORT
say "nginx: $URL/ serves $MNT"

urls() {
	local from=$(( $(date +%s) - 600 ))
	say "open in a player (ffplay, mpv, VLC); the mount answers these:"
	echo "    $URL/testsrc/index.m3u8                     testsrc, live"
	echo "    $URL/testsrc/archive-$from-now.m3u8  testsrc, the last 10 minutes, growing"
	echo "    $URL/news/archive-$from-600.m3u8     news, 10 minutes of archive"
	echo "    $URL/news/archive-$from-600.ts       the same as one file to download"
	echo "    $URL/news/recording_status.json         what news has recorded"
	echo "    $URL/$(cd "$MNT" 2>/dev/null && find news -name '*.ts' 2>/dev/null | sort | tail -1)"
	echo "e.g.  ffplay $URL/testsrc/index.m3u8"
}
# Prints 1 when the depth is filled: every segment the primary has within
# the depth is complete here, and the oldest one is as old as the depth.
filled() {
	"$BIN/dvrfs-status" -j "$MNT" 2>/dev/null | python3 -c '
import json, sys
try:
    s = json.load(sys.stdin)
    t = s["total"]
    ok = (t["segments_total"] > 0 and
          t["segments_done"] == t["segments_total"] and
          t["oldest"] is not None and
          t["oldest"] <= s["now"] - s["depth_s"] + 10)
    print(1 if ok else 0)
except Exception:
    print(0)'
}

start=$SECONDS
deadline() { [ -n "$SECS" ] && [ $((SECONDS - start)) -ge "$SECS" ]; }
say "filling the depth ($DEPTH); dvrfs-status -w $MNT:"
"$BIN/dvrfs-status" -w "$MNT" &
wpid=$!
pids+=($wpid)
while [ "$(filled)" != 1 ] && ! deadline; do
	sleep 1
done
kill $wpid 2>/dev/null
wait $wpid 2>/dev/null
echo
if [ "$(filled)" = 1 ]; then
	say "depth filled after $((SECONDS - start)) s"
else
	say "depth not filled yet"
fi
urls
if [ -z "$SECS" ]; then
	say "running; dvrfs-status $MNT shows the state. Ctrl-C stops the demo."
	while :; do sleep 1; done
fi
while ! deadline; do sleep 1; done
# A segment recorded a moment ago may still be on its way: give the live
# edge a few seconds to settle before the last word.
for ((i = 0; i < 10; i++)); do
	[ "$(filled)" = 1 ] && break
	sleep 0.5
done
say "final status:"
"$BIN/dvrfs-status" "$MNT"
"$BIN/dvrfs-status" -j "$MNT" >"$W/status.json" 2>/dev/null
say "final fill: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["total"]["percent"])' "$W/status.json" 2>/dev/null)%"
exit 0
