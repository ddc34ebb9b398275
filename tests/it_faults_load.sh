#!/bin/bash
# The origin under load: 256 concurrent connections, slowloris (partial
# headers that never end), malformed requests and ranges. It keeps serving
# others: a normal curl during the attack gets the right bytes.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/faults_lib.sh"

make_archive -s news -b 2m -d 2 -S 200k
start_origin
f=$(cd "$ROOT" && find news -name '*.ts' | sort | head -1)
URL=http://127.0.0.1:$OPORT$ROOT/$f

cat >"$T/attack.py" <<'PY'
import socket, sys, time, random
port, path, secs = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
socks = []
# 256 slowloris connections: a partial request, a byte now and then.
for i in range(256):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        s.send(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n")
        socks.append(s)
    except OSError:
        pass
print("slowloris %d" % len(socks), flush=True)
bad = [b"GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
       b"GET " + path.encode() + b" HTTP/1.1\r\nRange: bytes=99999999999999999999-\r\n\r\n",
       b"GET " + path.encode() + b" HTTP/1.1\r\nRange: bytes=5-1\r\n\r\n",
       b"GET " + path.encode() + b" HTTP/1.1\r\nRange: bytes=-0\r\n\r\n",
       b"GET " + path.encode() + b" HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
       b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n",
       b"GET /m4f/v1/list" + path.encode() + b"?limit=-1&after=%00 HTTP/1.1\r\n\r\n",
       b"\x00\xff" * 100, b"GET " + path.encode() + b" HTTP/1.1\r\n" + b"X: y\r\n" * 5000 + b"\r\n"]
end = time.time() + secs
n = 0
while time.time() < end:
    for s in socks:
        try: s.send(b"X-a: b\r\n")
        except OSError: pass
    for b in bad:
        try:
            c = socket.create_connection(("127.0.0.1", port), timeout=2)
            c.sendall(b); c.settimeout(1); c.recv(100); c.close(); n += 1
        except OSError:
            n += 1
    time.sleep(0.5)
print("malformed %d" % n, flush=True)
PY
python3 "$T/attack.py" $OPORT "$ROOT/$f" 15 >"$T/attack.out" 2>&1 &
ap=$!
_pids+=($ap)
# 256 concurrent readers that do read.
(for i in $(seq 256); do curl -s -m 30 -o /dev/null "$URL" & done; wait) &
cp_=$!
sleep 3
good=0 slow=0
for i in 1 2 3 4 5; do
	a=$(date +%s%N)
	if curl -s -m 10 "$URL" | cmp -s - "$ROOT/$f"; then good=$((good + 1)); fi
	ms=$((($(date +%s%N) - a) / 1000000))
	[ $ms -gt 5000 ] && slow=$((slow + 1))
	echo "# curl during the attack: $ms ms"
	sleep 1
done
wait $ap $cp_
check "attack ran: $(paste -sd' ' "$T/attack.out")" grep -q '^slowloris [1-9]' "$T/attack.out"
check "a normal curl during the attack gets the right bytes ($good of 5)" test $good -eq 5
check "within a few seconds ($slow of 5 took over 5 s)" test $slow -eq 0
check "the origin is alive after" kill -0 $ORIGIN
check "and serves right after" sh -c "curl -s '$URL' | cmp -s - '$ROOT/$f'"
finish
