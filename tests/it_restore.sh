#!/bin/bash
# dvrfs-restore: B is the archive A less one hour of news and with ten
# minutes of news re-recorded 1 s later. Restoring B from an origin over
# A fills exactly the hour, leaves the offset stretch and every file of B
# alone, survives kill -9, never shows a partial file to an origin over
# B; -n names what the real run copies; -w brings a deleted stretch back;
# a full disk, an unreachable peer, a wrong key and a forged listing fail
# clearly.
. "$(dirname "$0")/lib.sh"

A=$T/a/storage
B=$T/b/storage
mkdir -p "$A" "$T/b"
"$BIN/dvr-fake" -r "$A" -s news -s sport -b 2h -d 4 -S 16k ||
	{ nok "dvr-fake"; finish; }
cp -a "$A" "$B"

# B: news loses the hour from 20 to 80 minutes into the archive (the
# list in $T/hour); news from 90 to 100 minutes is recorded again 1 s
# later, other bytes.
python3 - "$B" "$T/hour" "$T/stretch" <<'PY'
import calendar, os, sys, time
root, hourlist, stretchlist = sys.argv[1:4]
def t_of(rel):
    p = rel.split("/")
    return calendar.timegm(tuple(int(x) for x in p[-6:-1]) + (int(p[-1][:2]),))
segs = []
for d, _, files in os.walk(os.path.join(root, "news")):
    for f in files:
        rel = os.path.relpath(os.path.join(d, f), root)
        segs.append((t_of(rel), rel))
segs.sort()
t0 = segs[0][0]
hour, stretch = [], []
for t, rel in segs:
    if t0 + 1200 <= t < t0 + 4800:
        os.unlink(os.path.join(root, rel))
        hour.append(rel)
    elif t0 + 5400 <= t < t0 + 6000:
        stretch.append(rel)
        src = os.path.join(root, rel)
        size = os.path.getsize(src)
        os.unlink(src)
        n = time.strftime("news/%Y/%m/%d/%H/%M/%S.ts", time.gmtime(t + 1))
        os.makedirs(os.path.dirname(os.path.join(root, n)), exist_ok=True)
        with open(os.path.join(root, n), "wb") as f:
            f.write(os.urandom(size))
        os.utime(os.path.join(root, n), (t + 5, t + 5))
open(hourlist, "w").write("".join(r + "\n" for r in sorted(hour)))
open(stretchlist, "w").write("".join(r + "\n" for r in sorted(stretch)))
PY
nhour=$(wc -l <"$T/hour")

# state DIR: one line per file: path inode mtime_ns sha256.
state() {
	python3 - "$1" <<'PY'
import hashlib, os, sys
root = sys.argv[1]
for d, _, files in sorted(os.walk(root)):
    for f in sorted(files):
        p = os.path.join(d, f)
        st = os.stat(p)
        h = hashlib.sha256(open(p, "rb").read()).hexdigest()
        print(os.path.relpath(p, root), st.st_ino, st.st_mtime_ns, h)
PY
}
state "$B" >"$T/b.before"
tmps() { find "$1" -name '*.tmp' | wc -l; }

PORT=$(free_port)
bg "$BIN/m4f-origin" -r "$A" -l 127.0.0.1:$PORT -c "$T/hash-a.db" \
	2>"$T/origin-a.log"
wait_port $PORT
R=("$BIN/dvrfs-restore" -o port=$PORT)

# -n: names the hour, copies nothing.
"${R[@]}" -n 127.0.0.1:"$A" "$B" >"$T/dry.out" 2>"$T/dry.err"
check "-n exits 0" test $? = 0
grep -E '^(news|sport)/' "$T/dry.out" | grep -v ' ' | sort >"$T/dry.names"
check "-n names exactly the missing hour ($(wc -l <"$T/dry.names") of $nhour)" \
	cmp -s "$T/dry.names" "$T/hour"
check "-n prints files, bytes and time ranges per stream ($(grep '^news:' "$T/dry.out" | head -c 160))" \
	grep -qE '^news: [0-9]+ files, [0-9,]+ bytes.*[0-9]{4}-[0-9]{2}-[0-9]{2}T.*Z\.\.' "$T/dry.out"
check "-n copies nothing" cmp -s "$T/b.before" <(state "$B")

# An origin over B, and a reader that lists it and fetches every file
# listed during the restore: it must never see a partial one.
BPORT=$(free_port)
bg "$BIN/m4f-origin" -r "$B" -l 127.0.0.1:$BPORT -c "$T/hash-b.db" \
	2>"$T/origin-b.log"
wait_port $BPORT
python3 - "$A" "$B" "$BPORT" "$T/reader.out" "$T/reader.stop" <<'PY' &
import hashlib, json, os, sys, time, urllib.request
A, B, port, out, stopf = sys.argv[1:6]
bad, seen = [], 0
url = "http://127.0.0.1:%s" % port
while not os.path.exists(stopf):
    try:
        body = urllib.request.urlopen("%s/m4f/v1/list%s/news?recursive=1&limit=100000" % (url, B)).read()
    except Exception as e:
        time.sleep(0.2); continue
    for e in json.loads(body)["entries"]:
        if e["type"] != "f":
            continue
        name = e["name"]
        if name.startswith(".") or "/." in name or name.endswith(".tmp"):
            bad.append("listed " + name)
        a = os.path.join(A, "news", name)
        if not os.path.exists(a) or os.path.getsize(a) != e["size"]:
            continue
        ha = hashlib.sha256(open(a, "rb").read()).hexdigest()
        if e["sha256"] is not None and e["sha256"] != ha:
            if os.path.exists(os.path.join(B, "news", name)) and open(os.path.join(B, "news", name), "rb").read() != open(a, "rb").read():
                continue  # B's own file, not restored
            bad.append("listed with a wrong hash " + name)
        try:
            data = urllib.request.urlopen("%s%s/news/%s" % (url, B, name)).read()
        except Exception:
            continue
        seen += 1
        if hashlib.sha256(data).hexdigest() != ha and data != open(os.path.join(B, "news", name), "rb").read():
            bad.append("served partial " + name)
    time.sleep(0.05)
open(out, "w").write("%d\n%s" % (seen, "".join(b + "\n" for b in bad[:20])))
PY
READER=$!

# kill -9 in the middle of a slow restore, then a second run.
"${R[@]}",bwlimit=1M,transfers=2 127.0.0.1:"$A" "$B" >"$T/run1.out" 2>&1 &
RPID=$!
sleep 4
kill -9 $RPID
wait $RPID 2>/dev/null
n1=$(comm -13 <(cut -d' ' -f1 "$T/b.before") <(find "$B" -type f ! -name '.*' -printf '%P\n' | sort) | wc -l)
check "killed mid-restore ($n1 of $nhour files copied)" test "$n1" -gt 0 -a "$n1" -lt "$nhour"
echo "# temporaries after kill -9: $(tmps "$B")"
# What a kill -9 in the middle of a file leaves, and a recorder's own
# temporary file, which is not dvrfs-restore's to remove.
left=$(sed -n '$p' "$T/hour")
mkdir -p "$B/$(dirname "$left")"
head -c 1000 "$A/$left" >"$B/$(dirname "$left")/.$(basename "$left").dvrfs-restore.tmp"
echo partial >"$B/news/.recorder.ts.tmp"
"${R[@]}" 127.0.0.1:"$A" "$B" >"$T/run2.out" 2>"$T/run2.err"
rc=$?
check "the second run exits 0 ($(cat "$T/run2.out"))" test $rc = 0
# The killed run may have left temporaries of its own beside the one
# planted: all of them go, and the run says how many.
check "the second run removed the leftovers of the killed one ($(grep -o 'removed [0-9]* temporary files*' "$T/run2.err"))" \
	sh -c "grep -Eq 'removed [1-9][0-9]* temporary files?' '$T/run2.err' &&
	    test ! -e '$B/$(dirname "$left")/.$(basename "$left").dvrfs-restore.tmp'"
check "the recorder's temporary file is left alone" \
	rm "$B/news/.recorder.ts.tmp"
touch "$T/reader.stop"
wait $READER
state "$B" >"$T/b.after"
check "no temporary file is left" test "$(tmps "$B")" = 0
comm -13 <(cut -d' ' -f1 "$T/b.before") <(cut -d' ' -f1 "$T/b.after") >"$T/copied"
check "exactly the missing hour was copied ($(wc -l <"$T/copied") files)" \
	cmp -s "$T/copied" "$T/hour"
check "-n named exactly what the runs copied" cmp -s "$T/copied" "$T/dry.names"
same_as_a() {
	local f
	while read -r f; do
		cmp -s "$A/$f" "$B/$f" || { echo "# differs: $f"; return 1; }
		[ "$(stat -c %Y "$A/$f")" = "$(stat -c %Y "$B/$f")" ] ||
			{ echo "# mtime differs: $f"; return 1; }
	done <"$1"
}
check "every copied file is byte-equal to A's, with A's mtime" same_as_a "$T/copied"
check "every file of B kept its inode, mtime and bytes (the offset stretch too)" \
	test -z "$(comm -23 "$T/b.before" "$T/b.after")"
in_b() { local f; while read -r f; do [ -e "$B/$f" ] && return 0; done <"$1"; return 1; }
check "nothing was copied into the offset stretch ($(wc -l <"$T/stretch") segments of A there)" \
	eval '! in_b "$T/stretch"'
read -r seen <"$T/reader.out"
check "an origin over B never listed or served a partial file ($seen files read)" \
	test "$(sed 1d "$T/reader.out" | wc -l)" = 0 -a "$seen" -gt 0
sed 1d "$T/reader.out" | head -5 | sed 's/^/# /'

# Again: nothing to do.
"${R[@]}" 127.0.0.1:"$A" "$B" >"$T/run3.out" 2>&1
check "a third run copies nothing ($(cat "$T/run3.out"))" \
	grep -q '^copied 0 of 0 files' "$T/run3.out"

# -w: delete two minutes of sport while it runs; they come back.
"${R[@]}" -w 127.0.0.1:"$A" "$B" >"$T/watch.out" 2>&1 &
WPID=$!
_pids+=($WPID)
sleep 1
gone=$(find "$B/sport" -name '*.ts' | sort | sed -n '100,129p')
rm -f $gone
back() { local f; for f in $gone; do [ -f "$f" ] || return 1; done; }
t0=$SECONDS
for ((i = 0; i < 100; i++)); do back && break; sleep 0.1; done
check "-w: a deleted stretch of 30 segments comes back ($((SECONDS - t0)) s)" back
for f in $gone; do cmp -s "$f" "$A/${f#"$B"/}" || { nok "-w: $f differs"; break; }; done
kill -TERM $WPID
wait $WPID
check "-w stops on SIGTERM with status 0 and no temporary file" \
	test $? = 0 -a "$(tmps "$B")" = 0

# Failures: each a clear line, its status, nothing partial.
E=$T/empty
mkdir -p "$E"
DEAD=$(free_port)
"$BIN/dvrfs-restore" -o port=$DEAD,timeout=2 127.0.0.1:"$A" "$E" >/dev/null 2>"$T/dead.err"
rc=$?
check "an unreachable peer: status 2, '$(head -c 120 "$T/dead.err")'" \
	eval 'test $rc = 2 && grep -q unreachable "$T/dead.err" && test -z "$(ls -A "$E")"'

printf 'right-key\n' >"$T/key"
KPORT=$(free_port)
bg "$BIN/m4f-origin" -r "$A" -l 127.0.0.1:$KPORT -c "$T/hash-k.db" -k "$T/key" \
	2>"$T/origin-k.log"
wait_port $KPORT
"$BIN/dvrfs-restore" -o port=$KPORT,cluster_key=wrong 127.0.0.1:"$A" "$E" >/dev/null 2>"$T/key.err"
rc=$?
check "a wrong key: status 3, '$(head -c 120 "$T/key.err")'" \
	eval 'test $rc = 3 && grep -q "cluster key" "$T/key.err" && test -z "$(ls -A "$E")"'
"$BIN/dvrfs-restore" -o port=$KPORT,cluster_key_file="$T/key",streams=sport:5m 127.0.0.1:"$A" "$E" >"$T/key.out" 2>&1
check "the right key restores (streams=sport:5m: $(cat "$T/key.out"))" \
	eval 'test $? = 0 && test -d "$E/sport" && test ! -e "$E/news"'

# Several files of a folder per request (GET /m4f/v1/files/), through a
# man in the middle without the key (tests/forger.py) in front of a
# signing origin that logs its requests.
VPORT=$(free_port)
bg "$BIN/m4f-origin" -v -r "$A" -l 127.0.0.1:$VPORT -c "$T/hash-v.db" \
	-k "$T/key" 2>"$T/origin-v.log"
wait_port $VPORT
FPORT=$(free_port)
bg python3 "$TOP/tests/forger.py" $FPORT $VPORT "$T/fmode" 2>"$T/forger.log"
wait_port $FPORT
# bundled NAME MODE STREAMS: restores STREAMS into $T/NAME through the
# forger in MODE; sets files (copied), bundles and singles (requests the
# origin logged meanwhile) and forged (answers the forger changed).
bundled() {
	local from
	echo "$2" >"$T/fmode"
	echo 0 >"$T/fmode.count"
	from=$(wc -l <"$T/origin-v.log")
	mkdir -p "$T/$1"
	"$BIN/dvrfs-restore" -v -o port=$FPORT,cluster_key_file="$T/key",streams="$3" \
		127.0.0.1:"$A" "$T/$1" >"$T/$1.out" 2>"$T/$1.err"
	brc=$?
	(cd "$T/$1" && find . -type f -printf '%P\n' | sort) >"$T/$1.files"
	files=$(wc -l <"$T/$1.files")
	tail -n +$((from + 1)) "$T/origin-v.log" >"$T/$1.log"
	bundles=$(grep -c "GET /m4f/v1/files/" "$T/$1.log")
	singles=$(grep -c "GET $A/" "$T/$1.log")
	forged=$(cat "$T/fmode.count")
}
bundled flip flip sport:20m
check "bundles: $files files in $bundles bundles and $singles single GETs" \
	test $brc = 0 -a "$files" -gt 30 -a "$bundles" -gt 0 -a \
	$((bundles + singles)) -lt $((files / 2))
check "a bundle's file damaged on the way ($forged times): fetched alone and verified" \
	eval 'test "$forged" -gt 0 -a "$singles" -ge "$forged" && grep -q "asked for alone" "$T/flip.err"'
check "bundles: every file byte-equal to A's, with A's mtime, no temporary file" \
	eval 'same_as_a "$T/flip.files" && test "$(tmps "$T/flip")" = 0'
bundled flip2 flip sport:20m
check "the same against the listed hashes ($forged damaged, $singles single GETs)" \
	eval 'test $brc = 0 -a "$forged" -gt 0 && same_as_a "$T/flip2.files"'
bundled forged forgebundle news:20m
check "a bundle's file forged with its digest ($forged times): the signature refuses it, fetched alone" \
	eval 'test $brc = 0 -a "$forged" -gt 0 && grep -q "wrong X-M4F-Signature" "$T/forged.err"'
check "after the forged bundles every file is A's ($files files)" \
	eval 'test "$files" -gt 30 && same_as_a "$T/forged.files"'
# A listing rewritten on the way (each file one byte longer, its body
# digest made to match): only the signature gives it away.
bundled listing forge sport:20m
check "a forged listing ($forged answers): refused, status 5, nothing asked for or copied, '$(tail -1 "$T/listing.err" | head -c 120)'" \
	eval 'test $brc = 5 -a "$forged" -gt 0 -a "$files" = 0 -a $((bundles + singles)) = 0 &&
	grep -q "wrong X-M4F-Signature" "$T/listing.err" &&
	grep -q "listing is not signed" "$T/listing.err"'

# An origin without the API: one request for several files (404), then
# one file per request.
OPORT=$(free_port)
bg python3 "$TOP/tests/fake_origin.py" -v -r "$A" -p $OPORT 2>"$T/old.log"
wait_port $OPORT
mkdir -p "$T/old"
"$BIN/dvrfs-restore" -o port=$OPORT,streams=sport:20m 127.0.0.1:"$A" "$T/old" \
	>"$T/old.out" 2>&1
rc=$?
(cd "$T/old" && find . -type f -printf '%P\n' | sort) >"$T/old.files"
check "an origin without bundles: $(grep -c "/m4f/v1/files/" "$T/old.log") refused (the requests of transfers=4 started before the first 404), then $(cat "$T/old.files" | wc -l) files one by one" \
	eval 'test $rc = 0 && test "$(grep -c /m4f/v1/files/ "$T/old.log")" -le 4 && same_as_a "$T/old.files"'

DISK=$T/disk
mkdir -p "$DISK"
if mount -t tmpfs -o size=2m tmpfs "$DISK" 2>/dev/null; then
	add_mount "$DISK"
	"${R[@]}" 127.0.0.1:"$A" "$DISK" >/dev/null 2>"$T/full.err"
	rc=$?
	check "a full disk: status 4, '$(tail -1 "$T/full.err" | head -c 120)'" \
		eval 'test $rc = 4 && grep -qi "no space" "$T/full.err"'
	check "a full disk: no temporary file" test "$(tmps "$DISK")" = 0
	(cd "$DISK" && find . -type f -printf '%P\n') >"$T/full.files"
	check "a full disk: the $(wc -l <"$T/full.files") files copied are whole" \
		same_as_a "$T/full.files"
else
	skip "a full disk: cannot mount a tmpfs (needs root)"
fi
finish
