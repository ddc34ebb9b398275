#!/bin/bash
# dvr-fake: backfill layout, names, sizes, valid MPEG-TS, reproducible
# bytes, live recording with atomic renames, SIGTERM, bad options.
. "$(dirname "$0")/lib.sh"
FAKE=$BIN/dvr-fake
SEG=999972		# 4 Mbit/s x 2 s = 1000000 bytes -> 5319 packets

# Backfill 1 minute of two streams, 2 s segments.
D1=$T/one
before=$(date +%s)
"$FAKE" -r "$D1" -s news -s sport -b 1m -d 2 2>"$T/err"
rc=$?
after=$(date +%s)
check "backfill exits 0" test $rc -eq 0
check "backfill prints nothing" test ! -s "$T/err"

for s in news sport; do
	n=$(find "$D1/$s" -type f -name '*.ts' | wc -l)
	check "$s: 30 segments" test "$n" -eq 30
done
check "no temp files left" test -z "$(find "$D1" -name '.*' -o -name '*.tmp')"

# Names are the UTC start times: 2 s apart, ending at the aligned "now".
expect_names() {
	local end=$1 t
	for ((t = end - 60; t < end; t += 2)); do
		date -u -d "@$t" +"%Y/%m/%d/%H/%M/%S.ts"
	done
}
got=$(cd "$D1/news" && find . -type f | sed 's|^\./||' | sort)
names_ok=0
for ((now = before; now <= after; now++)); do
	[ "$got" = "$(expect_names $((now / 2 * 2)))" ] && names_ok=1
done
check "segment paths are the UTC start times" test $names_ok -eq 1
check "same names for both streams" \
	test "$got" = "$(cd "$D1/sport" && find . -type f | sed 's|^\./||' | sort)"

bad_size=$(find "$D1" -type f ! -size ${SEG}c | wc -l)
check "every segment is $SEG bytes (4 Mbit/s x 2 s)" test "$bad_size" -eq 0

# mtime of a backfilled segment is its end time.
first=$(cd "$D1/news" && find . -type f | sort | head -1)
start=$(date -u -d "$(echo "${first#./}" | sed -E \
	's|^([0-9]+)/([0-9]+)/([0-9]+)/([0-9]+)/([0-9]+)/([0-9]+)\.ts$|\1-\2-\3 \4:\5:\6|')" +%s)
check "mtime is the segment's end" test "$(stat -c %Y "$D1/news/$first")" -eq $((start + 2))
# Folders are dated as a recorder leaves them: a minute folder by its
# newest segment's end, its hour by when that minute folder was made.
seg_start() { date -u -d "$(echo "$1" | sed -E \
	's|.*/([0-9]+)/([0-9]+)/([0-9]+)/([0-9]+)/([0-9]+)/([0-9]+)\.ts$|\1-\2-\3 \4:\5:\6|')" +%s; }
last=$(cd "$D1/news" && find . -type f | sort | tail -1)
mdir=$(dirname "$D1/news/$last")
mfirst=$(ls "$mdir" | sort | head -1)
check "a minute folder's mtime is its newest segment's end" \
	test "$(stat -c %Y "$mdir")" -eq $(($(seg_start "$last") + 2))
check "an hour folder's mtime is when its newest minute folder came" \
	test "$(stat -c %Y "$(dirname "$mdir")")" -eq "$(seg_start "$mdir/$mfirst")"
mkdir -p "$T/rel"
check "a relative root that does not exist yet is made" \
	sh -c "cd '$T/rel' && '$FAKE' -r arch -s x -b 10s -d 2 && test -d arch/x"

# ffprobe: no errors, a duration of 2.0 +- 0.1 s.
probe_ok=1
for f in $(find "$D1" -type f | sort | sed -n '1p;15p;30p;45p;60p'); do
	out=$(ffprobe -v error "$f" 2>&1)
	[ -z "$out" ] || { echo "# ffprobe $f: $out"; probe_ok=0; }
	d=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$f")
	awk -v d="$d" 'BEGIN { exit !(d >= 1.9 && d <= 2.1) }' ||
		{ echo "# $f: duration $d"; probe_ok=0; }
done
check "ffprobe reads segments without error, duration 2.0 s" test $probe_ok -eq 1

# Consecutive segments concatenate into one clean stream (continuity).
cat $(find "$D1/news" -type f | sort | head -5) >"$T/cat.ts"
out=$(ffmpeg -nostdin -v warning -i "$T/cat.ts" -map 0 -c copy -f null - 2>&1)
check "concatenated segments play without warnings" test -z "$out"

# The payload is incompressible.
f=$(find "$D1/news" -type f | head -1)
z=$(gzip -1 -c "$f" | wc -c)
check "payload is incompressible" test "$z" -gt $((SEG * 95 / 100))

# Same command, same bytes: backfill a second tree over the same window.
# The window moves with the clock, so compare the files both runs wrote.
D2=$T/two
"$FAKE" -r "$D2" -s news -s sport -b 1m -d 2
same=1 common=0
while read -r p; do
	[ -f "$D2/$p" ] || continue
	common=$((common + 1))
	cmp -s "$D1/$p" "$D2/$p" || { echo "# differs: $p"; same=0; }
done < <(cd "$D1" && find . -type f | sed 's|^\./||')
check "same command writes identical bytes" test $same -eq 1 -a $common -gt 0
a=$(find "$D1/news" -type f | sort | head -1)
b=${a/news/sport}
differ() { ! cmp -s "$1" "$2"; }
check "streams get different payloads" differ "$a" "$b"

# -S sets the segment size; -R the bitrate.
"$FAKE" -r "$T/size" -s x -b 4s -d 2 -S 1M
check "-S 1M: segments of 1 MiB within one packet" test \
	-z "$(find "$T/size" -type f -size -$((1048576 - 188))c)" -a \
	-z "$(find "$T/size" -type f -size +$((1048576 + 188))c)" -a \
	"$(find "$T/size" -type f | wc -l)" -eq 2
"$FAKE" -r "$T/rate" -s x -b 10s -d 5 -R 500k
# 500000 x 5 / 8 = 312500 bytes = 1662.2 packets -> 1662 x 188.
check "-R 500k -d 5: 2 segments of 312500 bytes rounded to packets" test \
	"$(find "$T/rate" -type f -size 312456c | wc -l)" -eq 2

# Live: records on, each segment complete when it appears.
D3=$T/live
"$FAKE" -r "$D3" -s cam -b 4s -d 1 -R 800k -L &
lp=$!
_pids+=($lp)
LSEG=$((532 * 188))	# 100000 bytes = 531.9 packets -> 532
partial=0 seen=0
for ((i = 0; i < 50; i++)); do
	sleep 0.1
	while read -r s; do
		seen=$((seen + 1))
		[ "$s" -eq $LSEG ] || partial=1
	done < <(find "$D3" -type f -name '*.ts' ! -name '.*' -printf '%s\n')
done
n=$(find "$D3" -type f -name '*.ts' ! -name '.*' | wc -l)
check "live adds segments at the live edge" test "$n" -gt 4
check "live segments are never seen half-written" test $partial -eq 0 -a $seen -gt 0
kill -TERM $lp
wait $lp
check "SIGTERM ends live recording with exit 0" test $? -eq 0
check "no temp files after SIGTERM" test -z "$(find "$D3" -name '.*')"
newest=$(find "$D3" -type f | sort | tail -1)
ffprobe -v error "$newest" >"$T/probe" 2>&1
check "newest live segment is valid" test ! -s "$T/probe"

# Bad usage: non-zero exit, one line on stderr naming the option.
bad_usage() {
	local opt=$1 rc lines
	shift
	"$FAKE" "$@" >/dev/null 2>"$T/usage"
	rc=$?
	lines=$(wc -l <"$T/usage")
	[ $rc -eq 2 ] && [ "$lines" -eq 1 ] && grep -q -- "$opt" "$T/usage" ||
		{ echo "# rc=$rc: $(cat "$T/usage")"; return 1; }
}
check "-d 0 is refused" bad_usage -d -r "$T/x" -s a -b 1m -d 0
check "-d 61 is refused" bad_usage -d -r "$T/x" -s a -b 1m -d 61
check "-R foo is refused" bad_usage -R -r "$T/x" -s a -b 1m -R foo
check "-S 10 is refused" bad_usage -S -r "$T/x" -s a -b 1m -S 10
check "-b 2x is refused" bad_usage -b -r "$T/x" -s a -b 2x
check "missing -r is refused" bad_usage -r -s a -b 1m
check "missing -s is refused" bad_usage -s -r "$T/x" -b 1m
check "stream '..' is refused" bad_usage -s -r "$T/x" -s .. -b 1m
check "stream with / is refused" bad_usage -s -r "$T/x" -s a/b -b 1m
check "bad usage writes nothing" test ! -e "$T/x"
"$FAKE" -h 2>"$T/usage"
check "-h prints the synopsis" grep -q '^usage: dvr-fake \[-L\]' "$T/usage"

finish
