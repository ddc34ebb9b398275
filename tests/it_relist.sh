#!/bin/bash
# A closed folder whose listing the kernel keeps, changed on the primary
# while the origin was down: the origin comes back with a new epoch, the
# mount lists its folders again, and the kernel is told what those
# listings changed (a name gone, a name new, a file rewritten).
. "$(dirname "$0")/lib.sh"

ROOT=$T/primary/storage
MNT=$T/mnt
STORE=$T/store
# Yesterday's minute: closed, its entries and listing kept an hour.
REL=a/$(date -u -d '-1 day' +%Y/%m/%d/%H/%M)
DIR=$ROOT/$REL
mkdir -p "$DIR" "$ROOT/b" "$MNT"
for s in 00 02 04 06 08 10 12 14; do
	head -c $((1000 + 10#$s)) /dev/urandom >"$DIR/$s.ts"
done

PORT=$(free_port)
origin_start "$ROOT" $PORT "$T/hash.db" -v || { nok "origin"; finish; }
fg_mount $PORT "" || { nok "mount"; finish; }
add_mount "$MNT"

# The kernel keeps the folder's listing, its entries and a file's pages.
ls "$MNT/$REL" >/dev/null
check "the closed folder lists as the primary's" \
	test "$(ls "$DIR")" = "$(ls "$MNT/$REL")"
stat "$MNT/$REL"/*.ts >/dev/null
cat "$MNT/$REL/06.ts" >/dev/null
ls "$MNT/$REL" >/dev/null

# The mount follows the feed past a change (the new origin's numbers
# then start below where it stands).
echo x >"$ROOT/b/x.ts"
followed() {
	local i
	for ((i = 0; i < 50; i++)); do
		grep -q "GET /m4f/v1/feed.*since=[1-9]" "$T/origin.log" && return 0
		sleep 0.1
	done
	return 1
}
check "the mount follows the feed" followed

# While the origin is down: one segment removed, one added, one rewritten.
origin_stop
rm "$DIR/00.ts"
head -c 2000 /dev/urandom >"$DIR/16.ts"
head -c 1500 /dev/urandom >"$DIR/06.ts.new"
mv "$DIR/06.ts.new" "$DIR/06.ts"
origin_start "$ROOT" $PORT "$T/hash.db" -v || { nok "origin restart"; finish; }

# fresh: the mount shows what the primary has, within 10 s.
fresh() {
	local i
	for ((i = 0; i < 100; i++)); do
		[ "$(ls "$DIR")" = "$(ls "$MNT/$REL")" ] && return 0
		sleep 0.1
	done
	echo "# primary: $(ls "$DIR" | tr '\n' ' ')"
	echo "# mount:   $(ls "$MNT/$REL" | tr '\n' ' ')"
	return 1
}
check "after the origin's restart the folder lists as the primary's" fresh
enoent() { local e; e=$(stat "$1" 2>&1 >/dev/null); [[ $e == *"No such file"* ]]; }
check "… the segment removed is gone (stat: ENOENT)" enoent "$MNT/$REL/00.ts"
check "… the segment added reads as the primary's" \
	cmp -s "$DIR/16.ts" "$MNT/$REL/16.ts"
check "… the segment rewritten has the primary's size" \
	test "$(stat -c %s "$MNT/$REL/06.ts")" -eq 1500
check "… and reads as the primary's" cmp -s "$DIR/06.ts" "$MNT/$REL/06.ts"
finish
