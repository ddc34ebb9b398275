# Helpers for benchmark cases; bench/case_*.sh source this file.
#
# bench/run.sh exports:
#   BENCH_TOP      the checkout
#   BENCH_ARCHIVE  a DVR tree written by dvr-fake (read-only for cases)
#   BENCH_STREAMS  its stream names, space-separated
#   BENCH_SEGSIZE  segment size given to dvr-fake -S
#   BENCH_SECONDS  how long one load run lasts (wrk -d)
#   BENCH_RELAY    the relay program (build/bench/relay)
#   BENCH_ORIGIN   the m4f-origin to measure [bin/m4f-origin]
#
# A case prints one line per figure:
#   NAME: VALUE UNIT (ratio X.XX vs BASELINE)
# (the ratio part only when the figure has a baseline), "skip: WHY" when
# it cannot run, and anything else prefixed with "# ". Every process
# started with bg is stopped when the case exits, and the case's scratch
# folder $W is removed.
set -u
BIN=$BENCH_TOP/bin
BENCH_ORIGIN=${BENCH_ORIGIN:-$BIN/m4f-origin}
W=$(mktemp -d /tmp/dvrfs-bench-case.XXXXXX)
_pids=()
_mounts=()

# bg CMD...: start in the background, stopped on exit.
bg() { "$@" & _pids+=($!); }

_cleanup() {
	local p
	for p in "${_mounts[@]}"; do fusermount3 -uz "$p" 2>/dev/null; done
	for p in "${_pids[@]}"; do kill "$p" 2>/dev/null; done
	sleep 0.2
	for p in "${_pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$W"
}
trap _cleanup EXIT
trap 'exit 130' INT TERM

note() { echo "# $*"; }

# need [-h HINT] PROG...: ends the case with "skip: PROG is not built"
# (followed by " (HINT)" when given) for the first PROG that is not an
# executable file; returns when all of them are.
need() {
	local p hint=
	if [ "${1:-}" = -h ]; then
		hint=" ($2)"
		shift 2
	fi
	for p in "$@"; do
		[ -x "$p" ] || { echo "skip: $p is not built$hint"; exit 0; }
	done
}

# A TCP port nobody listens on now.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_port PORT [SECONDS]: until something accepts on 127.0.0.1:PORT.
wait_port() {
	local i
	for ((i = 0; i < ${2:-10} * 20; i++)); do
		(exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "# nothing listens on port $1" >&2
	return 1
}

# drop_caches: empty the page cache (root only), so reads hit the disk.
# Returns 1 when it could not.
drop_caches() {
	sync
	if [ "$(id -u)" = 0 ] && echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; then
		return 0
	fi
	note "cannot drop the page cache (not root?)"
	return 1
}

# start_nginx DIR: nginx on a free loopback port serving DIR's files under
# their absolute paths (GET /DIR/x returns DIR/x, like m4f-origin), tuned
# as for a DVR: sendfile, disk reads in a thread pool (aio threads, so a
# cold read does not stall a worker), long keep-alive and HTML folder
# listings (autoindex, what rclone's and httpdirfs' http backends read).
# Sets NGINX_PORT.
start_nginx() {
	local dir=$1 conf=$W/nginx-$$.$RANDOM
	mkdir -p "$conf"
	NGINX_PORT=$(free_port)
	{
		[ "$(id -u)" = 0 ] && echo "user root;"
		cat <<-EOF
		worker_processes auto;
		daemon off;
		pid $conf/nginx.pid;
		error_log $conf/error.log warn;
		events { worker_connections 4096; }
		http {
		    access_log off;
		    sendfile on;
		    aio threads;
		    tcp_nopush on;
		    keepalive_requests 1000000;
		    keepalive_timeout 120s;
		    autoindex on;
		    types { video/mp2t ts; }
		    default_type application/octet-stream;
		    client_body_temp_path $conf/body;
		    proxy_temp_path $conf/proxy;
		    fastcgi_temp_path $conf/fastcgi;
		    uwsgi_temp_path $conf/uwsgi;
		    scgi_temp_path $conf/scgi;
		    server {
		        listen 127.0.0.1:$NGINX_PORT;
		        location $dir { root /; }
		    }
		}
		EOF
	} >"$conf/nginx.conf"
	bg nginx -c "$conf/nginx.conf" -e "$conf/error.log" 2>>"$conf/error.log"
	wait_port "$NGINX_PORT"
}

# start_origin DIR [ARGS...]: m4f-origin exporting DIR on a free loopback
# port, hash cache in the scratch folder. Sets ORIGIN_PORT.
start_origin() {
	local dir=$1
	shift
	ORIGIN_PORT=$(free_port)
	bg "$BENCH_ORIGIN" -r "$dir" -l "127.0.0.1:$ORIGIN_PORT" \
	    -c "$W/hashcache.$ORIGIN_PORT" "$@" 2>>"$W/origin.log"
	wait_port "$ORIGIN_PORT" 60
}

# start_rsyncd: an rsync daemon on a free loopback port serving the
# archive as the module "archive" (rsync://127.0.0.1:PORT/archive/).
# Sets RSYNC_PORT.
start_rsyncd() {
	RSYNC_PORT=$(free_port)
	printf 'use chroot = no\n[archive]\npath = %s\nread only = yes\nuid = root\ngid = root\n' \
	    "$BENCH_ARCHIVE" >"$W/rsyncd.conf"
	bg rsync --daemon --no-detach --config="$W/rsyncd.conf" \
	    --address=127.0.0.1 --port="$RSYNC_PORT" 2>>"$W/rsync.log"
	wait_port "$RSYNC_PORT"
}

# origin_hash_all: lists the whole archive recursively on the origin
# started by start_origin. The origin no longer hashes to list (a file is
# hashed when it is first sent, from the bytes it sends): this only warms
# its folder metadata, and the cases measure first-contact hashing as
# part of their first reads (bench/case_first.sh measures it alone).
origin_hash_all() {
	curl -sf -o /dev/null --max-time 600 \
	    "http://127.0.0.1:$ORIGIN_PORT/m4f/v1/list$BENCH_ARCHIVE?recursive=1&limit=100000"
}

# start_relay PORT [MS]: a TCP relay to 127.0.0.1:PORT that delays each
# direction by MS (default 10) milliseconds, i.e. adds 2 x MS of round
# trip to every request (the TCP handshake with the relay itself is not
# delayed). Sets RELAY_PORT.
start_relay() {
	RELAY_PORT=$(free_port)
	bg "$BENCH_RELAY" -d "${2:-10}" -c "127.0.0.1:$1" \
	    -l "127.0.0.1:$RELAY_PORT" 2>>"$W/relay.log"
	wait_port "$RELAY_PORT"
}

# segment_paths DIR: every segment under DIR, as absolute paths, shuffled
# with a fixed seed so load runs spread over the whole archive.
segment_paths() {
	find "$1" -type f -name '*.ts' ! -name '.*' | sort |
	    shuf --random-source=<(yes dvrfs)
}

# wrk_paths PORT PATHFILE: runs wrk against 127.0.0.1:PORT for
# BENCH_SECONDS with BENCH_CONNS (64) connections; the requests cycle
# through the paths in PATHFILE, each thread from its own offset. Prints
# "RPS MIBPS ERRORS" (errors: socket errors plus non-2xx responses).
wrk_paths() {
	local port=$1 paths=$2 out
	cat >"$W/paths.lua" <<-EOF
	local paths = {}
	local n = 0
	local i = 0
	local counter = 0
	function setup(thread)
	    counter = counter + 1
	    thread:set("tid", counter)
	end
	function init(args)
	    for line in io.lines("$paths") do
	        n = n + 1
	        paths[n] = line
	    end
	    i = math.floor(n * (tid - 1) / 4)
	end
	function request()
	    i = i % n + 1
	    return wrk.format("GET", paths[i])
	end
	EOF
	out=$(wrk -t "${BENCH_THREADS:-2}" -c "${BENCH_CONNS:-64}" \
	    -d "${BENCH_SECONDS}s" --timeout 10s -s "$W/paths.lua" \
	    "http://127.0.0.1:$port/" 2>&1)
	echo "$out" | sed 's/^/# /' >&2
	awk '
	function mib(v,  u, x) {
		x = v + 0; u = v; sub(/^[0-9.]+/, "", u)
		if (u == "B") x /= 1048576
		else if (u == "KB") x /= 1024
		else if (u == "GB") x *= 1024
		else if (u == "TB") x *= 1048576
		return x
	}
	/^Requests\/sec:/ { rps = $2 }
	/^Transfer\/sec:/ { mb = mib($2) }
	/Non-2xx or 3xx responses:/ { err += $NF }
	/Socket errors:/ {
		for (k = 1; k <= NF; k++) if ($k ~ /^[0-9]+,?$/) err += $k + 0
	}
	END { printf "%.1f %.1f %d\n", rps, mb, err }' <<<"$out"
}

# result NAME VALUE UNIT [BASEVALUE BASENAME]: prints a result line, with
# the ratio VALUE / BASEVALUE when a baseline is given.
result() {
	if [ $# -ge 5 ]; then
		awk -v n="$1" -v v="$2" -v u="$3" -v b="$4" -v bn="$5" 'BEGIN {
			printf "%s: %s %s (ratio %.2f vs %s)\n", n, v, u,
			    (b > 0 ? v / b : 0), bn }'
	else
		echo "$1: $2 $3"
	fi
}

# faster NAME VALUE UNIT [BASEVALUE BASENAME]: like result, for figures
# where less is better (times): the ratio is BASEVALUE / VALUE, how many
# times faster than the baseline.
faster() {
	if [ $# -ge 5 ] && [ -n "$4" ]; then
		awk -v n="$1" -v v="$2" -v u="$3" -v b="$4" -v bn="$5" 'BEGIN {
			printf "%s: %s %s (ratio %.2f vs %s)\n", n, v, u,
			    (v > 0 ? b / v : 0), bn }'
	else
		echo "$1: $2 $3"
	fi
}

# now: seconds since the epoch with nanoseconds.
now() { date +%s.%N; }

# since T0: seconds elapsed since now() returned T0, 3 decimals.
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }

# rate MIB SECONDS: MiB/s, 1 decimal.
rate() { awk -v m="$1" -v s="$2" 'BEGIN { printf "%.1f", (s > 0 ? m / s : 0) }'; }

# median V...: the middle value (the lower middle for an even count).
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# wait_mount DIR [PID]: until DIR is a mount point (at most 20 s, or
# until process PID is gone).
wait_mount() {
	local i
	for ((i = 0; i < 400; i++)); do
		mountpoint -q "$1" && return 0
		[ -z "${2:-}" ] || kill -0 "$2" 2>/dev/null || break
		sleep 0.05
	done
	echo "# $1 did not get mounted" >&2
	return 1
}

# unmount DIR: unmounts a FUSE mount started here, waits for it to go.
unmount() {
	local i pid=
	grep -q " $1 fuse.dvrfs " /proc/mounts && pid=${DVRFS_PID:-}
	fusermount3 -u "$1" 2>/dev/null || fusermount3 -uz "$1" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		mountpoint -q "$1" || break
		sleep 0.05
	done
	# A dvrfs daemon finishes writing its store after the unmount.
	for ((i = 0; i < 100; i++)); do
		[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.05
	done
}

# mount_dvrfs PORT DIR STORE [OPTIONS]: dvrfs of the archive served by an
# m4f-origin on 127.0.0.1:PORT, on DIR with the store STORE (extra -o
# options appended). Sets DVRFS_PID.
mount_dvrfs() {
	mkdir -p "$2"
	"$BIN/dvrfs" "127.0.0.1:$BENCH_ARCHIVE" "$2" \
	    -o "store=$3,port=$1${4:+,$4}" 2>>"$W/dvrfs.log" || return 1
	_mounts+=("$2")
	DVRFS_PID=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["pid"])' "$3/dvrfs.json")
}

# status_counter DIR KEY...: one counter of a dvrfs mount's
# user.dvrfs.status, e.g. status_counter MNT fetcher bytes_viewer.
status_counter() {
	python3 -c 'import os, sys, json
v = json.loads(os.getxattr(sys.argv[1], "user.dvrfs.status"))
for k in sys.argv[2:]: v = v[k]
print(v)' "$@"
}

# wait_filled STORE N [SECONDS]: waits until STORE/data holds N files
# (only verified files are ever there), at most SECONDS (BENCH_FILL_MAX,
# 600); prints how many it holds then.
wait_filled() {
	local i n=0
	for ((i = 0; i < ${3:-${BENCH_FILL_MAX:-600}} * 10; i++)); do
		n=$(find "$1/data" -type f 2>/dev/null | wc -l)
		[ "$n" -ge "$2" ] && break
		sleep 0.1
	done
	echo "$n"
}

# walk DIR N: prints the seconds a whole-tree find over DIR takes, and
# notes when it does not list N files.
walk() {
	local t0 n t
	t0=$(now)
	n=$(find "$1" -type f | wc -l)
	t=$(since "$t0")
	[ "$n" = "$2" ] || note "$1: $n files listed, not $2"
	echo "$t"
}

# proc_cpu PID [children]: CPU seconds (user + system) process PID has
# used, or with "children" those of its children it has reaped.
proc_cpu() {
	awk -v hz="$(getconf CLK_TCK)" -v c="${2:-}" '{
		sub(/^.*\) /, "")	# the fields after "pid (comm) "
		printf "%.2f\n", (c == "children" ? $14 + $15 : $12 + $13) / hz
	}' "/proc/$1/stat"
}

# proc_read_bytes PID: the bytes process PID has had read from disk.
proc_read_bytes() { awk '/^read_bytes:/ { print $2 }' "/proc/$1/io"; }

# mount_rclone PORT DIR CACHE: rclone mount of the archive served by nginx
# on 127.0.0.1:PORT (http backend, --vfs-cache-mode full) on DIR.
mount_rclone() {
	mkdir -p "$2" "$3"
	bg rclone mount --config /dev/null --read-only \
	    --vfs-cache-mode full --cache-dir "$3" \
	    --http-url "http://127.0.0.1:$1$BENCH_ARCHIVE/" :http: "$2" \
	    2>>"$W/rclone.log"
	_mounts+=("$2")
	wait_mount "$2" $!
}

# mount_httpdirfs PORT DIR CACHE: httpdirfs --cache of the archive served
# by nginx on 127.0.0.1:PORT, on DIR.
mount_httpdirfs() {
	mkdir -p "$2" "$3"
	# Its range check fails against nginx (it then refuses every read),
	# though nginx answers ranges.
	bg httpdirfs -f --cache --cache-location "$3" --no-range-check \
	    "http://127.0.0.1:$1$BENCH_ARCHIVE/" "$2" >>"$W/httpdirfs.log" 2>&1
	_mounts+=("$2")
	wait_mount "$2" $!
}
