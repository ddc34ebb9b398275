#!/bin/bash
# Replication: fill to the depth while the primary records live, resume
# after kill -9, retention, the live edge, bwlimit, viewers first.
. "$(dirname "$0")/lib.sh"

ROOT=$T/primary/storage
MNT=$T/mnt
STORE=$T/store
SEG=200k
mkdir -p "$ROOT" "$MNT"

"$BIN/dvr-fake" -r "$ROOT" -s news -s sport -b 2h -d 2 -S $SEG ||
	{ nok "dvr-fake backfill"; finish; }
bg "$BIN/dvr-fake" -r "$ROOT" -s news -s sport -d 2 -S $SEG -L
PORT=$(free_port)
bg "$BIN/m4f-origin" -r "$ROOT" -l 127.0.0.1:$PORT -c "$T/hash.db" -v \
	2>"$T/origin.log"
wait_port $PORT

dvrfs() {	# STORE MOUNTPOINT OPTIONS
	"$BIN/dvrfs" 127.0.0.1:"$ROOT" "$2" -o store="$1",port=$PORT,"$3" &&
		add_mount "$2"
}
status() { "$BIN/dvrfs-status" -j "$1"; }
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin)
for k in sys.argv[1].split("."): d=d[k]
print(d)' "$1"; }
# wait_for SECONDS COMMAND...: until the command succeeds.
wait_for() {
	local n=$(($1 * 10)); shift
	while ! "$@" 2>/dev/null; do
		((n-- > 0)) || return 1
		sleep 0.1
	done
}
filled() { [ "$(status "$1" | jget total.percent)" = 100.0 ]; }
daemon_pid() { sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' "$1/dvrfs.json"; }
# Segments of the primary within DEPTH seconds of now, as relative paths.
within() {	# DEPTH [EDGE]: leave out segments that began in the last EDGE s
	python3 - "$ROOT" "$1" "${2:-0}" <<'PY'
import calendar, os, sys, time
root, depth, edge = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
cutoff = time.time() - depth
newest = time.time() - edge
out = []
for d, _, files in os.walk(root):
    for f in files:
        if not f.endswith(".ts") or f.startswith("."):
            continue
        rel = os.path.relpath(os.path.join(d, f), root)
        p = rel.split("/")
        t = calendar.timegm(tuple(int(x) for x in p[-6:-1]) + (int(p[-1][:2]),))
        if cutoff <= t <= newest:
            out.append(rel)
print("\n".join(sorted(out)))
PY
}

# 1. kill -9 during the fill, remount: it completes, nothing copied twice
#    but what was in flight.
dvrfs "$STORE" "$MNT" depth=30m,replicate,transfers=4 ||
	{ nok "mount with replicate"; finish; }
wait_for 30 sh -c "[ \$(find '$STORE/data' -type f 2>/dev/null | wc -l) -ge 300 ]"
pid=$(daemon_pid "$STORE")
kill -9 "$pid"
fusermount3 -u -z "$MNT"
n_before=$(find "$STORE/data" -type f | wc -l)
check "killed mid-fill ($n_before files copied)" test "$n_before" -lt 1790
dvrfs "$STORE" "$MNT" depth=30m,replicate,transfers=4
check "the fill completes after kill -9 and remount" wait_for 90 filled "$MNT"

# Every file in the store is hash-equal to the primary's.
store_bad() {
	python3 - "$STORE/data" "$ROOT" <<'PY'
import hashlib, os, sys
data, root = sys.argv[1:3]
bad = 0
for d, _, files in os.walk(data):
    for f in files:
        p = os.path.join(d, f)
        rel = os.path.relpath(p, data)
        try:
            a = hashlib.sha256(open(p, "rb").read()).digest()
        except FileNotFoundError:
            continue	# retention dropped it at the depth's edge
        if a != hashlib.sha256(open(os.path.join(root, rel), "rb").read()).digest():
            print("differs:", rel)
            bad += 1
sys.exit(bad != 0)
PY
}
check "every file in STORE/data is hash-equal to the primary's" store_bad

# Exactly the segments within the depth: nothing missing, nothing older
# (a few seconds of slack for segments crossing the edge meanwhile).
missing=$(comm -23 <(within 1790 6) <(cd "$STORE/data" && find . -type f | sed 's|^\./||' | sort) | wc -l)
check "no segment within the depth is missing ($missing)" test "$missing" -eq 0
extra=$(comm -13 <(within 1830) <(cd "$STORE/data" && find . -type f | sed 's|^\./||' | sort) | wc -l)
check "nothing older than the depth is in the store ($extra)" test "$extra" -eq 0
check "nothing partial left in STORE/data" \
	test -z "$(find "$STORE/data" -name '.*' -o -name '*.tmp')"

# Bytes the origin sent: each segment once, plus what was in flight at
# the kill (the crawler keeps 8 × transfers queued).
segments_got "$T/origin.log" | grep '\.ts$' | sort | uniq -d >"$T/dups"
sed 's/^/fetched twice: /' "$T/dups"
dups=$(wc -l <"$T/dups")
check "segments fetched: $(segments_got "$T/origin.log" | grep -c '\.ts$')" \
	test "$(segments_got "$T/origin.log" | grep -c '\.ts$')" -gt 0
check "segments fetched twice: $dups (at most the 32 in flight)" test "$dups" -le 32

# 2. The live edge: a new segment is in the store within two segment
#    durations (4 s) of appearing on the primary; it shows in the mount.
lat_ok=0
for i in 1 2 3; do
	newest=$(cd "$ROOT" && find news -type f -name '*.ts' | sort | tail -1)
	wait_for 5 sh -c "[ \"\$(cd '$ROOT' && find news -type f -name '*.ts' | sort | tail -1)\" != '$newest' ]"
	new=$(cd "$ROOT" && find news -type f -name '*.ts' | sort | tail -1)
	if wait_for 4 test -f "$STORE/data/$new"; then
		lat_ok=$((lat_ok + 1))
	fi
done
check "new segments reach the store within 4 s ($lat_ok of 3)" test $lat_ok -ge 2
check "a new segment shows in the mount without a remount" \
	cmp -s "$ROOT/$new" "$MNT/$new"
st=$(status "$MNT")
check "dvrfs-status: live lag at most 4 s" \
	test "$(jget streams.news.live_lag_s <<<"$st")" -le 4

# 3. Retention: remount with a smaller depth: what aged out leaves.
fusermount3 -u "$MNT"
dvrfs "$STORE" "$MNT" depth=20m,replicate,transfers=4
gone() { [ "$(comm -13 <(within 1230) <(cd "$STORE/data" && find . -type f | sed 's|^\./||' | sort) | wc -l)" -eq 0 ]; }
check "segments older than a new depth of 20m leave the store" wait_for 30 gone
check "they stay in the mount while the primary has them" \
	test -f "$MNT/$(cd "$ROOT" && find news -type f | sort | head -1)"
fusermount3 -u "$MNT"

# 4. bwlimit=2M over 20 s, measured from the daemon's own counters.
S2=$T/store2
dvrfs "$S2" "$MNT" depth=2h,replicate,bwlimit=2M,transfers=4
bytes() { python3 -c 'import json,os,sys
f = json.loads(os.getxattr(sys.argv[1], "user.dvrfs.status"))["fetcher"]
print(f["bytes_live"] + f["bytes_backfill"])' "$MNT"; }
# Measure once the walk of the primary is done and bytes flow.
bytes_over() { [ "$(bytes)" -gt "$1" ]; }
wait_for 30 bytes_over 4194304
b0=$(bytes); t0=$(date +%s.%N)
sleep 20
b1=$(bytes); t1=$(date +%s.%N)
rate=$(awk -v a="$b0" -v b="$b1" -v s="$t0" -v e="$t1" 'BEGIN { printf "%.0f", (b - a) / (e - s) }')
check "bwlimit=2M holds within 10% over 20 s ($rate B/s)" \
	awk -v r="$rate" 'BEGIN { exit !(r > 0.9 * 2097152 && r < 1.1 * 2097152) }'
fusermount3 -u "$MNT"

# 5. Viewers first: time to first byte of a missing segment during a
#    full-speed fill, against the same when idle (median of 5 each).
ttfb() {	# FILE...
	local f
	for f in "$@"; do
		python3 - "$f" <<'PY'
import sys, time
t = time.monotonic()
with open(sys.argv[1], "rb") as f:
    f.read(1)
print("%.6f" % (time.monotonic() - t))
PY
	done | sort -n | sed -n 3p
}
S3=$T/store3
dvrfs "$S3" "$MNT" depth=1m
old=($(cd "$ROOT" && find sport -type f | sort | sed -n '10p;20p;30p;40p;50p'))
idle=$(ttfb "${old[@]/#/$MNT/}")
fusermount3 -u "$MNT"
rm -rf "$S3"
dvrfs "$S3" "$MNT" depth=2h,replicate,transfers=8
sleep 2
old=($(cd "$ROOT" && find sport -type f | sort | sed -n '110p;120p;130p;140p;150p'))
busy=$(ttfb "${old[@]/#/$MNT/}")
check "TTFB during a full fill $busy s vs idle $idle s (within 3x + 20 ms)" \
	awk -v b="$busy" -v i="$idle" 'BEGIN { exit !(b <= 3 * i + 0.02) }'
fusermount3 -u "$MNT"

# 6. streams= and replication_port=: only the named stream is copied, all
#    of it through the replication port; viewers use the main port.
P2=$(free_port)
RP=$(free_port)
bg "$BIN/m4f-origin" -r "$ROOT" -l 127.0.0.1:$P2 -c "$T/hash.db" -v 2>"$T/main.log"
bg "$BIN/m4f-origin" -r "$ROOT" -l 127.0.0.1:$RP -c "$T/hash3.db" -v 2>"$T/repl.log"
wait_port $P2 && wait_port $RP
S4=$T/store4
"$BIN/dvrfs" 127.0.0.1:"$ROOT" "$MNT" \
	-o store="$S4",port=$P2,replicate,depth=10m,streams=news,replication_port=$RP &&
	add_mount "$MNT"
check "streams=news fills news" wait_for 60 filled "$MNT"
check "no other stream is copied" test ! -e "$S4/data/sport"
n_repl=$(segments_got "$T/repl.log" | grep -c '/news/.*\.ts$')
n_main=$(segments_got "$T/main.log" | grep -c '\.ts$')
check "the crawler's $n_repl segments came through replication_port" \
	test "$n_repl" -ge 290
check "none through the main port ($n_main)" test "$n_main" -eq 0
f=$(cd "$ROOT" && find sport -type f | sort | sed -n 200p)
check "a viewer's read is right" cmp -s "$ROOT/$f" "$MNT/$f"
check "and went to the main port" grep -q "GET [^ ]*/$f " "$T/main.log"
fusermount3 -u "$MNT"

# 7. A depth per stream: streams=news:10m+sport copies 10 minutes of news
#    and depth= (30 minutes) of sport, and retention drops each by its own.
S5=$T/store5
local_of() { (cd "$S5/data" 2>/dev/null && find "$1" -name '*.ts' | sort); }
has_all() {	# STREAM DEPTH: every segment of it within DEPTH (but the
		# last 10 s) is local
	[ -z "$(comm -23 <(within "$2" 10 | grep "^$1/") <(local_of "$1"))" ]
}
none_older() {	# STREAM DEPTH: nothing local older than DEPTH (+ 20 s)
	[ -z "$(comm -13 <(within $(($2 + 20)) | grep "^$1/") <(local_of "$1"))" ]
}
both() { has_all news "$1" && has_all sport "$2"; }
neither_older() { none_older news "$1" && none_older sport "$2"; }
dvrfs "$S5" "$MNT" depth=30m,replicate,streams=news:30m+sport,transfers=8
check "streams=news:30m+sport: 30 minutes of both" wait_for 90 both 1800 1800
fusermount3 -u "$MNT"
dvrfs "$S5" "$MNT" depth=30m,replicate,streams=news:10m+sport
check "remounted with news:10m: news older than 10 minutes leaves" \
	wait_for 30 none_older news 600
check "… while sport keeps its 30 minutes (depth=)" has_all sport 1780
check "… and news its last 10 minutes" has_all news 590
fusermount3 -u "$MNT"
S5=$T/store6
dvrfs "$S5" "$MNT" depth=30m,replicate,streams=news:5m+sport:1m
check "a fresh store with news:5m+sport:1m copies 5 and 1 minutes" \
	wait_for 60 both 300 60
check "… and nothing older" neither_older 300 60
finish
