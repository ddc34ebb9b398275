#!/bin/bash
# m4f-origin against nginx serving the same DVR tree: whole-segment GETs
# spread over every segment of the archive, 64 keep-alive connections
# (wrk). First with the archive in the page cache, then (as root) with the
# cache dropped before each run. Target: origin >= 0.8 x nginx.
. "$(dirname "$0")/lib.sh"

if [ ! -x "$BENCH_ORIGIN" ]; then
	echo "skip: $BENCH_ORIGIN is not built (make bin/m4f-origin)"
	exit 0
fi

segment_paths "$BENCH_ARCHIVE" >"$W/paths"
note "$(wc -l <"$W/paths") segments, $BENCH_SEGSIZE each," \
    "${BENCH_CONNS:-64} connections, ${BENCH_SECONDS}s per run"

start_nginx "$BENCH_ARCHIVE" || { echo "skip: nginx did not start"; exit 0; }
start_origin "$BENCH_ARCHIVE" || { echo "skip: m4f-origin did not start"; exit 0; }

# Both must serve the same bytes before their speed means anything.
p=$(sed -n 1p "$W/paths")
a=$(curl -sf "http://127.0.0.1:$NGINX_PORT$p" | sha256sum)
b=$(curl -sf "http://127.0.0.1:$ORIGIN_PORT$p" | sha256sum)
if [ "$a" != "$b" ]; then
	echo "skip: m4f-origin and nginx return different bytes for $p"
	exit 1
fi

# run LABEL: one wrk run against each server; nginx is the baseline.
run() {
	local label=$1 n_rps n_mib n_err o_rps o_mib o_err
	[ "$label" = cold ] && { drop_caches || return 0; }
	read -r n_rps n_mib n_err < <(wrk_paths "$NGINX_PORT" "$W/paths")
	[ "$label" = cold ] && drop_caches
	read -r o_rps o_mib o_err < <(wrk_paths "$ORIGIN_PORT" "$W/paths")
	[ "$n_err" -eq 0 ] || note "nginx $label: $n_err errors"
	[ "$o_err" -eq 0 ] || note "m4f-origin $label: $o_err errors"
	result "nginx_${label}_rps" "$n_rps" req/s
	result "nginx_${label}_mibps" "$n_mib" MiB/s
	result "origin_${label}_rps" "$o_rps" req/s "$n_rps" nginx
	result "origin_${label}_mibps" "$o_mib" MiB/s "$n_mib" nginx
	result "origin_${label}_errors" "$o_err" errors
}

# Warm up both (first touch of the hash cache, worker start-up).
BENCH_SECONDS=3 wrk_paths "$NGINX_PORT" "$W/paths" >/dev/null 2>&1
BENCH_SECONDS=3 wrk_paths "$ORIGIN_PORT" "$W/paths" >/dev/null 2>&1
run warm
run cold
