#!/bin/bash
# Listings through the mount: the kernel keeps closed DVR folders'
# listings, the live edge still shows new segments, a change the
# primary makes to a closed folder reaches the listing through the feed,
# and a remount takes the feed up where the store left it.
. "$(dirname "$0")/lib.sh"

ROOT=$T/primary/storage
MNT=$T/mnt
STORE=$T/store
mkdir -p "$ROOT" "$MNT"

"$BIN/dvr-fake" -r "$ROOT" -s a -s b -b 3h -d 2 -S 752 || { nok "dvr-fake"; finish; }
bg "$BIN/dvr-fake" -r "$ROOT" -s live -b 1m -d 1 -S 752 -L
PORT=$(free_port)
bg "$BIN/m4f-origin" -v -r "$ROOT" -l 127.0.0.1:$PORT -c "$T/hash.db" 2>"$T/origin.log"
wait_port $PORT
"$BIN/dvrfs" 127.0.0.1:"$ROOT" "$MNT" -o store="$STORE",port=$PORT,timeout=5 ||
	{ nok "mount"; finish; }
add_mount "$MNT"

names() { (cd "$1" && find a b -printf '%y %s %P\n' | sort); }
check "a whole-tree walk lists the primary's names, types and sizes" \
	test "$(names "$ROOT")" = "$(names "$MNT")"
check "a second walk, from the kept listings, lists the same" \
	test "$(names "$ROOT")" = "$(names "$MNT")"

# The live edge: the newest minute folder gains segments every second.
newest() { (cd "$ROOT/live" && find . -mindepth 5 -maxdepth 5 -type d | sort | tail -1); }
dir=$(newest)
if [ "$(ls "$ROOT/live/$dir" | wc -l)" -ge 50 ]; then
	sleep 12		# into the next minute, with room to grow
	dir=$(newest)
fi
n1=$(ls "$MNT/live/$dir" | wc -l)
grows() {
	local i
	for ((i = 0; i < 40; i++)); do
		[ "$(ls "$MNT/live/$dir" | wc -l)" -gt "$n1" ] && return 0
		sleep 0.1
	done
	return 1
}
check "a live folder's listing shows new segments within 4 s ($n1 at first)" grows
live_same() {
	local d
	d=$(newest)
	sleep 1.5	# entries and the listing of the live folder time out
	diff <(ls "$ROOT/live/$d") <(ls "$MNT/live/$d") | grep -q '^>' && return 1
	return 0
}
check "… and never one the primary lacks" live_same

# A closed folder changed on the primary anyway: the feed drops the
# kept listing.
old=$(cd "$ROOT/a" && find . -mindepth 5 -maxdepth 5 -type d | sort | head -1)
ls "$MNT/a/$old" >/dev/null
first=$(ls "$ROOT/a/$old" | head -1)
rm "$ROOT/a/$old/$first"
gone() { ! ls "$MNT/a/$old" | grep -qx "$first"; }
wait_gone() { local i; for ((i = 0; i < 50; i++)); do gone && return 0; sleep 0.1; done; return 1; }
check "a segment removed from a closed folder leaves its listing" wait_gone
check "… and the folder lists as the primary's" \
	test "$(ls "$ROOT/a/$old")" = "$(ls "$MNT/a/$old")"

# Unmounted while the origin runs on, the primary changes a closed
# folder; the remount takes the changes from the feed, where the store
# left it, and lists nothing of the streams again.
pid=$(sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' "$STORE/dvrfs.json")
gone() { local i; for ((i = 0; i < 50; i++)); do
	kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; return 1; }
fusermount3 -u "$MNT" && gone "$pid" || nok "unmount"
second=$(ls "$ROOT/a/$old" | head -1)
cp "$ROOT/a/$old/$second" "$ROOT/a/$old/$first"
rm "$ROOT/a/$old/$second"
l0=$(wc -l <"$T/origin.log")
fg_mount $PORT "" || { nok "remount"; finish; }
add_mount "$MNT"
resumed() { local i; for ((i = 0; i < 50; i++)); do
	grep -q "resumed after change" "$LOG" && return 0; sleep 0.1; done; return 1; }
check "the remount resumes the feed" resumed
check "… a segment removed meanwhile is gone from its closed folder" \
	test "$(ls "$ROOT/a/$old")" = "$(ls "$MNT/a/$old")"
check "… one added meanwhile reads as the primary's" \
	cmp -s "$ROOT/a/$old/$first" "$MNT/a/$old/$first"
sleep 1
streams_listed=$(tail -n +$((l0 + 1)) "$T/origin.log" |
	grep -c "GET /m4f/v1/list$ROOT/[ab]")
check "… and no folder of the streams was listed again ($streams_listed)" \
	test "$streams_listed" -eq 0
finish
