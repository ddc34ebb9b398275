# Helpers of the fault tests (tests/it_faults_*.sh), sourced after lib.sh:
# an archive on a primary, m4f-origin behind build/tests/faultproxy, a
# dvrfs mount through the proxy, readers that compare every byte they read
# with the primary's, and checks of the store against the primary.

make -s -C "$TOP" build/tests/faultproxy >/dev/null || { nok "build faultproxy"; finish; }
FPROXY=$TOP/build/tests/faultproxy
ROOT=$T/primary/storage
MNT=$T/mnt
STORE=$T/store
mkdir -p "$ROOT" "$MNT"

# make_archive ARGS...: dvr-fake into ROOT.
make_archive() {
	"$BIN/dvr-fake" -r "$ROOT" "$@" || { nok "dvr-fake"; finish; }
}

# start_origin [ARGS...]: m4f-origin on OPORT, logging requests.
start_origin() {
	OPORT=${OPORT:-$(free_port)}
	bg "$BIN/m4f-origin" -r "$ROOT" -l 127.0.0.1:$OPORT -c "$T/hash.db" -v \
		"$@" 2>>"$T/origin.log"
	ORIGIN=$!
	wait_port $OPORT
}

# start_proxy: faultproxy on PPORT in front of the origin, controlled by
# writing words to $CTL (see tests/faultproxy.c).
start_proxy() {
	PPORT=$(free_port)
	CTL=$T/proxy.ctl
	: >"$CTL"
	bg "$FPROXY" -l $PPORT -t 127.0.0.1:$OPORT -c "$CTL" -s "$T/proxy.stats" \
		2>>"$T/proxy.log"
	wait_port $PPORT
}
# proxy WORDS...: switch the proxy's faults (takes effect within 50 ms).
proxy() { echo "$*" >"$CTL.new" && mv "$CTL.new" "$CTL"; sleep 0.1; }
proxy_stat() { awk -v k="$1" '$1 == k { print $2 }' "$T/proxy.stats"; }

# mount_dvrfs OPTIONS: mounts ROOT at MNT through the proxy.
mount_dvrfs() {
	"$BIN/dvrfs" 127.0.0.1:"$ROOT" "$MNT" -o store="$STORE",port=$PPORT,$1 \
		2>>"$T/mount.err"
}
dvrfs_pid() { sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' "$STORE/dvrfs.json"; }

# status EXPR: a Python expression over dvrfs-status -j of the store (d).
status() {
	"$BIN/dvrfs-status" -j "$MNT" 2>/dev/null | python3 -c 'import json, sys
d = json.load(sys.stdin)
print(json.dumps(eval(sys.argv[1], {"d": d})))' "$1" 2>/dev/null
}
# wait_full SECONDS: until dvrfs-status says 100 %.
wait_full() {
	local i
	for ((i = 0; i < $1 * 2; i++)); do
		[ "$(status 'd["total"]["percent"]')" = "100.0" ] && return 0
		sleep 0.5
	done
	return 1
}

# store_bad: prints every file in STORE/data that differs from the
# primary's, and every temporary name there; nothing when all is well.
store_bad() {
	(cd "$STORE/data" && find . -type f -printf '%P\n') | while read -r f; do
		[ "$(sha256sum <"$STORE/data/$f")" = "$(sha256sum <"$ROOT/$f" 2>/dev/null)" ] ||
			echo "differs: $f"
	done
	find "$STORE/data" -name '.*' -o -name '*.tmp' -o -name '*.part'
}

# Readers: start_readers N FILELIST starts N processes that read random
# files of FILELIST (paths relative to ROOT) through MNT, whole or a
# random range, and compare each byte with the primary's until
# stop_readers. Errors (EIO, ENOTCONN) are counted, wrong bytes recorded.
cat >"$T/reader.py" <<'PY'
import os, random, sys, time
root, mnt, files, out, stop = sys.argv[1:6]
names = open(files).read().split()
reads = errors = wrong = short = 0
seen = set()
while not os.path.exists(stop):
    f = random.choice(names)
    try:
        want = open(os.path.join(root, f), "rb").read()
        off = random.choice([0, random.randrange(len(want))])
        n = random.choice([len(want), 1 + random.randrange(65536)])
        fd = os.open(os.path.join(mnt, f), os.O_RDONLY)
        try:
            got = os.pread(fd, n, off)
        finally:
            os.close(fd)
        reads += 1
        if len(got) < len(want[off:off + n]) and got == want[off:off + len(got)]:
            # A read cut by the daemon's death: right bytes, fewer of them.
            short += 1
        elif got != want[off:off + n]:
            wrong += 1
            print("wrong bytes: %s at %d+%d" % (f, off, n), flush=True)
    except OSError as e:
        errors += 1
        seen.add(e.errno)
        time.sleep(0.02)
print("reads %d errors %d wrong %d short %d errnos %s" % (reads, errors, wrong, short,
      ",".join(sorted(os.strerror(e) for e in seen))), flush=True)
PY
start_readers() {
	local i
	_readers=()
	rm -f "$T/readers.stop"
	for ((i = 0; i < $1; i++)); do
		python3 "$T/reader.py" "$ROOT" "$MNT" "$2" "$T/rd.$i" \
			"$T/readers.stop" >"$T/rd.$i" 2>&1 &
		_readers+=($!)
		_pids+=($!)
	done
}
# stop_readers: stops them; sets R_READS, R_ERRORS, R_WRONG, R_SHORT (reads
# that returned fewer bytes, all right, as when the daemon dies mid-read).
stop_readers() {
	touch "$T/readers.stop"
	wait "${_readers[@]}" 2>/dev/null
	R_READS=$(cat "$T"/rd.* | awk '/^reads/ { s += $2 } END { print s + 0 }')
	R_ERRORS=$(cat "$T"/rd.* | awk '/^reads/ { s += $4 } END { print s + 0 }')
	R_WRONG=$(cat "$T"/rd.* | grep -c '^wrong bytes')
	R_SHORT=$(cat "$T"/rd.* | awk '/^reads/ { s += $8 } END { print s + 0 }')
	R_ERRNOS=$(cat "$T"/rd.* | sed -n 's/^reads.*errnos //p' | tr ',' '\n' |
		sort -u | grep -v '^$' | paste -sd, -)
}
