#!/bin/bash
# m4f-origin against hostile clients and a hostile export: a FIFO in the
# export, the connection limit held by idle sockets (the 503s past it,
# and their log), many feed long-polls and unread listings (memory),
# unread listings that fill the budget of answers waiting to be sent
# (503s, and their log at most once a second), listings that wait past
# 10 s for the two being built from a slow disk (503s, and their log),
# paths deeper than M4F_DEPTH_MAX, a symbolic link swapped in and out
# under a reader, and listening on the network without a key.
. "$(dirname "$0")/lib.sh"

S=$T/storage			# the export
mkdir -p "$S"/news/a "$T"/outside/d
head -c 100000 /dev/urandom >"$S/news/a/seg.ts"
mkfifo "$S/news/fifo.ts"
P=$(free_port)
U=http://127.0.0.1:$P
API=$U/m4f/v1
start() {
	bg "$BIN"/m4f-origin -r "$S" -l 127.0.0.1:"$P" -c "$T/hashes.db" "$@" \
	    2>>"$T/origin.log"
	ORIGIN=$!
	wait_port "$P"
}
code() { curl -s -o /dev/null -m 5 -w '%{http_code}' "$@"; }
# stop_within SECONDS: SIGTERM, then true if the origin exits in time.
stop_within() {
	local i
	kill -TERM "$ORIGIN"
	for ((i = 0; i < $1 * 20; i++)); do
		kill -0 "$ORIGIN" 2>/dev/null || { wait "$ORIGIN"; return 0; }
		sleep 0.05
	done
	kill -9 "$ORIGIN"
	wait "$ORIGIN"
	return 1
}
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# fast CURL_ARGS...: true if curl gets a 4xx within 1 s.
fast_4xx() {
	local c
	c=$(curl -s -o /dev/null -m 1 -w '%{http_code}' "$@")
	[ "${c:0:1}" = 4 ] || { echo "got '$c'"; return 1; }
}

# hold N TARGET [FIRST]: in the background, N connections that each send
# "GET TARGET" (nothing when TARGET is "-") and never read the answer,
# held for 60 s; with FIRST, a round of N "GET FIRST" read to the end
# before. Returns once they are all open; sets HOLD to the holder's pid.
hold() {
	python3 - "$P" "$@" >"$T/hold.out" 2>&1 <<-'PY' &
	import resource, socket, sys, time
	port, n, target = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
	first = sys.argv[4] if len(sys.argv) > 4 else None
	soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
	resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
	def open_all(t):
	    socks = []
	    for i in range(n):
	        s = socket.create_connection(("127.0.0.1", port))
	        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
	        if t != "-":
	            s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % t).encode())
	        socks.append(s)
	    return socks
	if first:
	    for s in open_all(first):
	        s.recv(65536)
	        s.close()
	socks = open_all(target)
	print("held", len(socks), flush=True)
	time.sleep(60)
	PY
	HOLD=$!
	for ((i = 0; i < 600; i++)); do
		grep -qs held "$T/hold.out" && return 0
		sleep 0.05
	done
	return 1
}
unhold() { kill "$HOLD" 2>/dev/null; wait "$HOLD" 2>/dev/null; }
# busy_logged FROM WHAT: the busy refusals' log lines past line FROM of
# the origin's log, those of WHAT ("too many connections"; "" for all),
# and the refusals they count (each its own and its "N more"), as
# "LINES REFUSALS".
busy_logged() {
	tail -n +"$(($1 + 1))" "$T/origin.log" | awk -v what="$2: 503 (" '
	index($0, what) {
		lines++; sum++
		if (match($0, /\(and [0-9]+ more refused since the last line\)/))
			sum += substr($0, RSTART + 5) + 0
	}
	END { print lines + 0, sum + 0 }'
}

start

# --- a FIFO (and any file that is neither regular nor a folder)
check "FIFO: GET is refused at once (4xx within 1 s)" fast_4xx "$U$S/news/fifo.ts"
check "FIFO: files?name= is refused at once" \
    fast_4xx "$API/files$S/news?name=fifo.ts"
check "FIFO: not listed" eval '! curl -s -m 5 "$API/list$S/news" | grep -q fifo'
check "FIFO: a regular file still reads" \
    [ "$(code "$U$S/news/a/seg.ts")" = 200 ]
check "FIFO: SIGTERM exits within 2 s after those requests" stop_within 2

# --- 1000 idle sockets hold the connection limit; a client gets 503
start
hold 1000 -
sleep 0.5
curl -s -D "$T/h" -o /dev/null -m 5 -w '%{http_code} %{time_total}\n' \
    "$U$S/news/a/seg.ts" >"$T/c503"
read -r c t <"$T/c503"
check "1000 idle sockets: a new client gets 503 (got $c in ${t}s)" eval \
    '[ "$c" = 503 ] && awk "BEGIN { exit !($t < 2) }"'
check "503 carries Retry-After" grep -qi '^retry-after: [0-9]' "$T/h"
unhold
sleep 0.5
check "after the idle sockets close: 200 again" \
    [ "$(code "$U$S/news/a/seg.ts")" = 200 ]
check "SIGTERM with many connections gone: exits within 2 s" stop_within 2

# --- past 1000 connections: the spare ones are told 503 (status, reason,
# Retry-After), and the log says so at most once a second, each line with
# how many it did not log: the lines add up to the 503s the clients saw.
# The 1000 held are served once the refused have gone.
[ "$(ulimit -n)" -ge 4096 ] || ulimit -n 4096 2>/dev/null
start
from=$(wc -l <"$T/origin.log")
# 1000 connections held, then 40 more that ask for a file at once and,
# in a later second, one more; then the held ones ask for it. Prints the
# burst's exact 503s and other answers, the last one's status, the log
# lines it added, the held ones answered 200 with the whole file and the
# seconds the whole took.
timeout 120 python3 - "$P" "$S/news/a/seg.ts" 100000 40 "$T/origin.log" \
    >"$T/conn.out" 2>"$T/conn.err" <<'PY'
import resource, socket, sys, time
port, path, size, n, log = (int(sys.argv[1]), sys.argv[2], int(sys.argv[3]),
    int(sys.argv[4]), sys.argv[5])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
get = ("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode()

def conn():
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(30)
    return s

def answer(s):
    buf = b""
    while b"\r\n\r\n" not in buf:
        c = s.recv(65536)
        if not c:
            return "none", {}, buf
        buf += c
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = dict((k.strip().lower(), v.strip()) for k, _, v in
        (l.partition(":") for l in lines[1:]))
    while len(body) < int(fields.get("content-length", "0")):
        c = s.recv(65536)
        if not c:
            break
        body += c
    return lines[0], fields, body

def refused(a):
    status, fields, body = a
    return (status == "HTTP/1.1 503 Service Unavailable" and
        fields.get("retry-after", "").isdigit() and
        body == b"503 too many connections\n")

def lines():
    with open(log, errors="replace") as f:
        return sum("too many connections: 503" in l for l in f)

t0 = int(time.time())
held = [conn() for i in range(1000)]
burst = [conn() for i in range(n)]
for s in burst:
    s.sendall(get)
got = [answer(s) for s in burst]
for s in burst:
    s.close()
time.sleep(1.1)
before = lines()
s = conn()
s.sendall(get)
final = answer(s)
s.close()
after = lines()
t1 = int(time.time())
for s in held:
    s.sendall(get)
served = 0
for s in held:
    status, fields, body = answer(s)
    served += status == "HTTP/1.1 200 OK" and len(body) == size
for a in got + [final]:
    if not refused(a):
        print(a[0], a[1], a[2][:80], file=sys.stderr)
n503 = sum(refused(a) for a in got)
print(n503, n - n503, "503" if refused(final) else final[0].replace(" ", "_"),
    after - before, served, t1 - t0 + 1)
PY
read -r n503 nother final logged served secs <"$T/conn.out"
sed 's/^/# not a 503 as expected: /' "$T/conn.err" | head -5
read -r nlines nsum < <(busy_logged "$from" "too many connections")
check "1040 connections: the 40 past 1000 get 503 \"too many connections\" with Retry-After (exact: ${n503:-none}, other: ${nother:-none})" \
    eval '[ "${n503:-0}" = 40 ] && [ "$nother" = 0 ]'
check "past 1000: one more a second later gets 503 ($final) and a log line of its own ($logged)" \
    eval '[ "$final" = 503 ] && [ "$logged" = 1 ]'
check "past 1000: the log lines count every 503 the clients saw ($nsum, $((${n503:-0} + 1)) seen)" \
    [ "$nsum" = "$((${n503:-0} + 1))" ]
check "past 1000: at most a line a second, fewer lines than 503s ($nlines lines in ${secs:-?} s)" \
    eval '[ "$nlines" -le "${secs:-0}" ] && [ "$nlines" -lt "$nsum" ]'
check "past 1000: the 1000 held connections are then served the file (${served:-0})" \
    [ "${served:-0}" = 1000 ]
check "past 1000: the origin is still up and serves a new client" \
    eval 'kill -0 "$ORIGIN" && [ "$(code "$U$S/news/a/seg.ts")" = 200 ]'
check "SIGTERM after refusing connections: exits within 2 s" stop_within 2

# --- memory: 900 feed long-polls, after a large listing (whose freed
# memory makes later allocations come from the heap, touched)
python3 - "$S/many" <<'PY'
import os, sys
root = sys.argv[1]
for h in range(20):
    for m in range(10):
        d = os.path.join(root, "2026/11/27/%02d/%02d" % (h, m))
        os.makedirs(d)
        for s in range(100):
            open(os.path.join(d, "%03d.ts" % s), "w").close()
PY
start
curl -s -m 120 -o "$T/l" "$API/list$S/many?recursive=1&limit=100000"
base=$(rss_kib "$ORIGIN")
seq=$(curl -s "$API/feed$S" | python3 -c 'import json,sys; print(json.load(sys.stdin)["seq"])')
# A first round that ends (its buffers freed), then one that waits.
hold 900 "/m4f/v1/feed$S?since=$seq&wait=30" "/m4f/v1/feed$S?since=$seq&wait=1"
sleep 2
rss=$(rss_kib "$ORIGIN")
unhold
echo "# origin RSS: ${base} KiB idle, ${rss} KiB with 900 feed long-polls"
check "900 feed long-polls: origin RSS under 64 MiB (${rss} KiB)" \
    [ "${rss:-999999}" -lt 65536 ]

# --- memory: 100 unread recursive listings of 20,000 files
lsz=$(stat -c %s "$T/l")
hold 100 "/m4f/v1/list$S/many?recursive=1&limit=100000"
sleep 8
rss=$(rss_kib "$ORIGIN")
hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$ORIGIN/status")
unhold
echo "# a listing of 20,200 entries is $lsz bytes; 100 unread: RSS ${rss} KiB, VmHWM ${hwm} KiB"
check "100 unread listings: origin RSS under 256 MiB (${rss} KiB)" \
    [ "${rss:-999999}" -lt 262144 ]
check "SIGTERM with unread answers: exits within 2 s" stop_within 2
rm -rf "$S/many"

# --- busy: unread listings hold the budget of answers waiting to be sent
# (32 MiB), so the listings asked after them get 503. The log says so at
# most once a second, each line with how many it did not log: the lines
# add up to the 503s the clients saw. An answer must be larger than what
# the kernel takes from it for an unread socket (the send buffer, up to
# tcp_wmem's maximum), or it is sent, freed, and holds nothing.
wmem=$(awk '{ print $3 }' /proc/sys/net/ipv4/tcp_wmem)
nwide=$((2 * wmem / 300))	# entries of ~300 bytes: twice that
[ "$nwide" -ge 20000 ] || nwide=20000
[ "$nwide" -le 100000 ] || nwide=100000	# one page, the most asked
mkdir -p "$S/wide"
python3 - "$S/wide" "$nwide" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    open(os.path.join(d, "%06d-%s.ts" % (i, "x" * 230)), "w").close()
PY
start
from=$(wc -l <"$T/origin.log")
# 40 listings asked at once, their status lines read and nothing more;
# then, in a later second, one more. Prints the burst's 200s, 503s and
# other answers, the last one's status, the log lines it added and the
# seconds the whole took.
timeout 120 python3 - "$P" "/m4f/v1/list$S/wide?limit=100000" 40 \
    "$T/origin.log" >"$T/busy.out" <<'PY'
import socket, sys, time
port, path, n, log = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]

def ask():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(60)
    s.connect(("127.0.0.1", port))
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
    return s

def status(s):
    line = b""
    while not line.endswith(b"\r\n"):
        c = s.recv(1)
        if not c:
            break
        line += c
    return line.split(b" ")[1].decode() if b" " in line else "none"

def lines():
    with open(log, errors="replace") as f:
        return sum(": 503 (" in l for l in f)

t0 = int(time.time())
socks = [ask() for i in range(n)]
codes = [status(s) for s in socks]
time.sleep(1.1)
before = lines()
final = status(ask())
after = lines()
t1 = int(time.time())
n200, n503 = codes.count("200"), codes.count("503")
print(n200, n503, n - n200 - n503, final, after - before, t1 - t0 + 1)
PY
read -r n200 n503 nother final logged secs <"$T/busy.out"
read -r nlines nsum < <(busy_logged "$from" "")
check "busy: 40 unread listings of $nwide entries: the first hold the budget, the others get 503 (200: $n200, 503: $n503, other: $nother)" \
    eval '[ "${n200:-0}" -ge 1 ] && [ "${n503:-0}" -ge 2 ] && [ "$nother" = 0 ]'
check "busy: one more a second later gets 503 ($final) and a log line of its own ($logged)" \
    eval '[ "$final" = 503 ] && [ "$logged" = 1 ]'
check "busy: the log lines count every 503 the clients saw ($nsum, $((n503 + 1)) seen)" \
    [ "$nsum" = "$((n503 + 1))" ]
check "busy: at most a line a second, fewer lines than 503s ($nlines lines in $secs s)" \
    eval '[ "$nlines" -le "$secs" ] && [ "$nlines" -lt "$nsum" ]'
listed() {
	local i
	for ((i = 0; i < 50; i++)); do
		[ "$(code "$API/list$S/wide?limit=10")" = 200 ] && return 0
		sleep 0.1
	done
	return 1
}
check "busy: with the unread answers gone, listings are answered again" listed
check "SIGTERM after busy refusals: exits within 2 s" stop_within 2
rm -rf "$S/wide"

# --- busy: listings held up by a slow disk. Two listings of folders that
# take 15 s to read (slowfs mounted in the export) hold both turns to
# build a listing; the listings asked meanwhile wait 10 s for a turn and
# get 503: two at once, and one a second later, whose log line counts
# what the first two's line left out (LIST_WAIT_MS is not settable: this
# takes 16 s). Then listings are answered again.
make -s -C "$TOP" build/tests/slowfs >/dev/null || { nok "build slowfs"; finish; }
mkdir -p "$S/slow"
start
bg "$TOP/build/tests/slowfs" 15 "$S/slow" 2>>"$T/slowfs.log"
add_mount "$S/slow"
for ((i = 0; i < 100; i++)); do
	mountpoint -q "$S/slow" && break
	sleep 0.05
done
mountpoint -q "$S/slow" || nok "slowfs mounted on $S/slow: $(cat "$T/slowfs.log")"
from=$(wc -l <"$T/origin.log")
pids=()
for d in a b; do
	curl -s -o /dev/null -m 30 -w '%{http_code}\n' "$API/list$S/slow/$d" \
	    >"$T/slow.$d" &
	pids+=($!)
done
# ask_waiting N: listing N, of a quick folder, in the background.
ask_waiting() {
	curl -s -D "$T/wait.$1.h" -o "$T/wait.$1.b" -m 30 \
	    -w '%{http_code} %{time_total}\n' "$API/list$S/news" >"$T/wait.$1" &
	pids+=($!)
}
sleep 1
ask_waiting 1
ask_waiting 2
sleep 1.3
ask_waiting 3
wait "${pids[@]}"
# waited N: true if listing N got 503 "busy listing" with Retry-After
# after waiting at least the 10 s.
waited() {
	local c t
	read -r c t <"$T/wait.$1"
	echo "# listing $1: $c after ${t}s: $(cat "$T/wait.$1.b")"
	[ "$c" = 503 ] && awk "BEGIN { exit !($t >= 9.9) }" &&
	    grep -qi '^retry-after: [0-9]' "$T/wait.$1.h" &&
	    [ "$(cat "$T/wait.$1.b")" = "503 busy listing" ]
}
check "slow disk: listings asked while two are built wait 10 s, then get 503 \"busy listing\" with Retry-After" \
    eval 'waited 1 && waited 2 && waited 3'
read -r nlines nsum < <(busy_logged "$from" "listings being built for too long")
check "slow disk: the log lines \"listings being built for too long\" count every 503 ($nsum in $nlines lines, 3 seen)" \
    eval '[ "$nlines" -ge 2 ] && [ "$nsum" = 3 ]'
check "slow disk: the two slow listings are answered once read ($(cat "$T/slow.a" "$T/slow.b" | tr '\n' ' '))" \
    eval '[ "$(cat "$T/slow.a" "$T/slow.b")" = "$(printf "200\n200")" ]'
check "slow disk: then listings are answered at once again" \
    eval '[ "$(curl -s -o /dev/null -m 2 -w "%{http_code}" "$API/list$S/news")" = 200 ]'
fusermount3 -u "$S/slow"
check "SIGTERM after listings refused: exits within 2 s" stop_within 2
rmdir "$S/slow"

start
# --- depth: paths deeper than M4F_DEPTH_MAX (64) components
deep=$(printf 'd/%.0s' $(seq 70))
mkdir -p "$S/deep/$deep"
echo x >"$S/deep/${deep}f.ts"
rel=$(printf 'd/%.0s' $(seq 64))f.ts	# deep/ + 64 + f.ts: 66 components
check "a path deeper than 64 levels: 400" \
    [ "$(code "$U$S/deep/${rel}")" = 400 ]
check "... with a log line saying why" grep -q 'deeper than 64 levels beneath the export, refused' "$T/origin.log"
curl -s -m 30 "$API/list$S?recursive=1" >"$T/deep.json"
check "a recursive listing leaves out what is deeper than 64 levels" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
depth = max(e["name"].count("/") + 1 for e in d["entries"])
sys.exit(not (60 <= depth <= 64))' "$T/deep.json"
rm -rf "$S/deep"

# --- a symbolic link swapped in and out while a client reads through it
mkdir -p "$S/cam/d.dir"
head -c 50000 /dev/zero | tr '\0' 'I' >"$S/cam/d.dir/seg.ts"
head -c 50000 /dev/zero | tr '\0' 'O' >"$T/outside/d/seg.ts"
ln -s "$T/outside/d" "$S/cam/d.link"
python3 - "$S/cam" 6 <<'PY' &
import os, sys, time
d, end = sys.argv[1], time.time() + float(sys.argv[2])
os.chdir(d)
while time.time() < end:
    os.rename("d.dir", "d"); os.rename("d", "d.dir")
    os.rename("d.link", "d"); os.rename("d", "d.link")
PY
swapper=$!
python3 - "$P" "$S/cam/d/seg.ts" 5 >"$T/swap.out" <<'PY'
import http.client, sys, time
port, path, end = int(sys.argv[1]), sys.argv[2], time.time() + float(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
got = {}
while time.time() < end:
    try:
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
    except Exception as e:
        c.close()
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        got["error"] = got.get("error", 0) + 1
        continue
    k = "outside" if b"O" in body else "%d" % r.status
    got[k] = got.get(k, 0) + 1
print(" ".join("%s:%d" % kv for kv in sorted(got.items())))
PY
wait "$swapper"
echo "# symlink swap: $(cat "$T/swap.out")"
check "symlink swapped in a loop: never the outside file's bytes" eval \
    '! grep -q outside "$T/swap.out" && grep -q "200:" "$T/swap.out"'
rm -rf "$S/cam"
check "SIGTERM: exits within 2 s" stop_within 2

# --- no key on a network address needs -P (--public-read)
timeout 5 "$BIN"/m4f-origin -r "$S" -l 0.0.0.0:"$P" -c "$T/hashes.db" 2>"$T/pub.log"
rc=$?
check "0.0.0.0 without -k: refuses to start, naming --public-read" eval \
    '[ $rc = 1 ] && grep -q -- --public-read "$T/pub.log"'
timeout 5 "$BIN"/m4f-origin -r "$S" -l "[::]:$P" -c "$T/hashes.db" 2>"$T/pub.log"
check "[::] without -k: refuses to start" [ $? = 1 ]
start -l localhost:"$(free_port)"
check "loopback without -k: serves" [ "$(code "$U$S/news/a/seg.ts")" = 200 ]
stop_within 2

grep -E 'warning|error' "$T/origin.log" | sort | uniq -c | sort -rn | head -10
finish
