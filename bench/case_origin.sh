#!/bin/bash
# m4f-origin against nginx serving the same DVR tree: whole-segment GETs
# spread over every segment of the archive, 64 keep-alive connections
# (wrk). First with the archive in the page cache, then (as root) with the
# cache dropped before each run; medians of alternating rounds.
# Target: origin >= 0.8 x nginx.
. "$(dirname "$0")/lib.sh"

need -h "make bin/m4f-origin" "$BENCH_ORIGIN"

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

# median V...: the middle value (the lower middle for an even count).
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# measure SERVER PORT LABEL: one wrk run, the cache dropped first when
# LABEL is cold; appends to the SERVER_rps, _mib and _err arrays.
measure() {
	local rps mib err
	[ "$3" = cold ] && drop_caches
	read -r rps mib err < <(wrk_paths "$2" "$W/paths")
	eval "$1_rps+=($rps) $1_mib+=($mib) $1_err=\$((\$$1_err + $err))"
}

# run LABEL: BENCH_ROUNDS (3) rounds, each one wrk run against each
# server, alternating which goes first since other load on the machine
# comes and goes; the medians are reported, nginx is the baseline.
run() {
	local label=$1 r n o
	nginx_rps=() nginx_mib=() nginx_err=0
	origin_rps=() origin_mib=() origin_err=0
	if [ "$label" = cold ] && ! drop_caches; then
		echo "skip: cold runs need root to drop the page cache"
		return 0
	fi
	for ((r = 1; r <= ${BENCH_ROUNDS:-3}; r++)); do
		if ((r % 2)); then
			measure nginx "$NGINX_PORT" "$label"
			measure origin "$ORIGIN_PORT" "$label"
		else
			measure origin "$ORIGIN_PORT" "$label"
			measure nginx "$NGINX_PORT" "$label"
		fi
	done
	note "$label req/s per round: nginx ${nginx_rps[*]}, m4f-origin ${origin_rps[*]}"
	[ "$nginx_err" -eq 0 ] || note "nginx $label: $nginx_err errors"
	n=$(median "${nginx_rps[@]}") o=$(median "${origin_rps[@]}")
	result "nginx_${label}_rps" "$n" req/s
	result "origin_${label}_rps" "$o" req/s "$n" nginx
	n=$(median "${nginx_mib[@]}") o=$(median "${origin_mib[@]}")
	result "nginx_${label}_mibps" "$n" MiB/s
	result "origin_${label}_mibps" "$o" MiB/s "$n" nginx
	result "origin_${label}_errors" "$origin_err" errors
}

# Warm up both (first touch of the hash cache, worker start-up).
BENCH_SECONDS=2 wrk_paths "$NGINX_PORT" "$W/paths" >/dev/null 2>&1
BENCH_SECONDS=2 wrk_paths "$ORIGIN_PORT" "$W/paths" >/dev/null 2>&1
run warm
run cold
