# Shared helpers for integration tests; source it from tests/it_*.sh.
# Each case reports "ok - NAME" or "not ok - NAME"; the script's exit
# status says whether all passed. Everything started is stopped and every
# mount unmounted on exit, whatever happens.
set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$TOP/bin
T=$(mktemp -d /tmp/dvrfs-test.XXXXXX)
_fails=0
_pids=()
_mounts=()

ok()   { echo "ok - $*"; }
nok()  { echo "not ok - $*"; _fails=$((_fails + 1)); }
skip() { echo "skip - $*"; }
# check NAME COMMAND...: runs the command, reports the case.
check() { local n=$1; shift; if "$@"; then ok "$n"; else nok "$n"; fi; }

# jget FILE EXPR: the value of a Python expression over the JSON d.
jget() {
	python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(json.dumps(eval(sys.argv[2], {"d": d}), sort_keys=True))' "$1" "$2"
}
# is NAME FILE EXPR EXPECTED
is() {
	local got
	got=$(jget "$2" "$3" 2>&1)
	if [ "$got" = "$4" ]; then ok "$1"; else
		nok "$1"; echo "# $3: got '$got', want '$4'"; fi
}

# A TCP port nobody listens on now.
free_port() {
	python3 - <<'PY'
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

# wait_port PORT [SECONDS]: until something accepts on 127.0.0.1:PORT.
wait_port() {
	local i
	for ((i = 0; i < ${2:-10} * 20; i++)); do
		(exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "nothing listens on port $1" >&2
	return 1
}

# bg CMD...: starts a process in the background, remembered for clean-up.
bg() { "$@" & _pids+=($!); }

# origin_start DIR PORT DB [ARGS...]: m4f-origin exporting DIR on
# 127.0.0.1:PORT with the hash cache DB (log appended to $T/origin.log),
# until it listens. Sets ORIGIN. origin_stop: SIGTERM, and waits for it.
origin_start() {
	local dir=$1 port=$2 db=$3
	shift 3
	bg "$BIN"/m4f-origin -r "$dir" -l 127.0.0.1:"$port" -c "$db" "$@" \
	    2>>"$T/origin.log"
	ORIGIN=$!
	wait_port "$port"
}
origin_stop() { kill -TERM "$ORIGIN"; wait "$ORIGIN"; }

# Mount points registered here are unmounted on exit.
add_mount() { _mounts+=("$1"); }

cleanup() {
	local m p
	for m in "${_mounts[@]}"; do
		fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	for p in "${_pids[@]}"; do kill "$p" 2>/dev/null; done
	sleep 0.2
	for p in "${_pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

finish() {
	[ $_fails -eq 0 ]
	exit $?
}

# segments_got LOG: one line per file an origin (-v) sent whole, from its
# log: the path of a plain "GET /PATH", and DIR/NAME for each name of a
# "GET /m4f/v1/files/DIR?name=..." (several files in one answer).
segments_got() {
	python3 - "$1" <<-'EOF'
	import re, sys, urllib.parse
	for line in open(sys.argv[1], errors="replace"):
	    m = re.search(r"GET (/\S+)", line)
	    if not m:
	        continue
	    t = m.group(1)
	    if t.startswith("/m4f/v1/files/"):
	        path, _, q = t[len("/m4f/v1/files"):].partition("?")
	        d = urllib.parse.unquote(path)
	        for k, v in urllib.parse.parse_qsl(q):
	            if k == "name":
	                print(d + "/" + v)
	    elif not t.startswith("/m4f/"):
	        print(urllib.parse.unquote(t.partition("?")[0]))
	EOF
}

# fg_mount PORT OPTIONS: dvrfs of $ROOT on $MNT with the store $STORE
# through 127.0.0.1:PORT, in the foreground (-v when DVRFS_V is set), its
# log in $LOG ($T/dvrfs.N.log), until the mount answers. Sets DPID.
# fg_unmount: unmounts it and waits for the daemon to end.
_nfg=0
fg_mount() {
	local i
	_nfg=$((_nfg + 1))
	LOG=$T/dvrfs.$_nfg.log
	bg "$BIN/dvrfs" -f ${DVRFS_V:+-v} 127.0.0.1:"$ROOT" "$MNT" \
		-o store="$STORE",port="$1",timeout=3,"$2" 2>"$LOG"
	DPID=$!
	for ((i = 0; i < 100; i++)); do
		mountpoint -q "$MNT" && [ -s "$STORE/dvrfs.json" ] && return 0
		sleep 0.1
	done
	return 1
}
fg_unmount() {
	local i
	fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -u -z "$MNT"
	for ((i = 0; i < 300; i++)); do
		kill -0 "$DPID" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

# nginx_site PORT ROOT [NAME]: the packaged site (packaging/nginx-dvrfs.conf)
# listening on 127.0.0.1:PORT with ROOT as its root; NAME gives it an
# access log $T/nginx/NAME.log.
nginx_site() {
	local log=""
	[ -n "${3:-}" ] && log='\n\taccess_log '"$T/nginx/$3.log;"
	sed -e "s|listen 80;|listen 127.0.0.1:$1;$log|" -e "s|root /mnt/dvr;|root $2;|" \
		"$TOP/packaging/nginx-dvrfs.conf"
}

# nginx_start PORT HTTP-BODY: nginx in the foreground (stopped on exit)
# with HTTP-BODY inside its http block, once it accepts on PORT.
nginx_start() {
	mkdir -p "$T/nginx"
	cat >"$T/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 2;
pid $T/nginx/pid;
error_log $T/nginx/error.log;
events { worker_connections 256; }
http {
	access_log off;
	client_body_temp_path $T/nginx; proxy_temp_path $T/nginx;
	fastcgi_temp_path $T/nginx; uwsgi_temp_path $T/nginx; scgi_temp_path $T/nginx;
$2
}
EOF
	bg nginx -c "$T/nginx/nginx.conf" -e "$T/nginx/error.log"
	wait_port "$1"
}
