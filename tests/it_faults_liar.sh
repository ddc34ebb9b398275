#!/bin/bash
# A primary that lies (tests/fake_origin.py), one lie at a time, with the
# crawler on and viewers reading: wrong hashes and sizes are never served
# and never stored, garbage listings and hostile names are refused without
# a crash or a hang, and a folder of very many entries lists in bounded
# memory. After every lie the daemon is alive and the mount answers.
. "$(dirname "$0")/lib.sh"

ROOT=$T/primary/storage
MNT=$T/sandbox/mnt
STORE=$T/sandbox/store
CTL=$T/fake.ctl
FAKE=$TOP/tests/fake_origin.py
BIG=${BIG:-200000}
[ "${DVRFS_LONG:-0}" = 1 ] && BIG=1000000
mkdir -p "$ROOT" "$MNT"
: >"$CTL"

# "good" stays honest; the fake lies about "lie" and what is below it.
"$BIN/dvr-fake" -r "$ROOT" -s good -s lie -b 1m -d 2 -S 100k ||
	{ nok "dvr-fake"; finish; }
(cd "$ROOT" && find good -type f | sort) >"$T/good"
(cd "$ROOT" && find lie -type f | sort) >"$T/lie"

# start_fake [ARGS...]: the fake origin on FPORT, lies read from CTL.
start_fake() {
	FPORT=$(free_port)
	bg python3 "$FAKE" -r "$ROOT" -p "$FPORT" -c "$CTL" "$@" \
		2>>"$T/fake.log"
	FPID=$!
	wait_port "$FPORT"
}
stop_fake() { kill "$FPID"; wait "$FPID" 2>/dev/null; }
lie() { echo "$1" >"$CTL"; }

# up OPTIONS: a fresh store, dvrfs in the foreground through the fake
# origin (lib.sh: fg_mount). down: unmount, wait for the daemon.
add_mount "$MNT"
up() { rm -rf "$STORE"; fg_mount "$FPORT" "$1"; }
down() { fg_unmount; }
dvrfs_pid() { sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' "$STORE/dvrfs.json"; }
status() {
	timeout 10 "$BIN/dvrfs-status" -j "$MNT" 2>/dev/null | python3 -c 'import json, sys
d = json.load(sys.stdin)
print(json.dumps(eval(sys.argv[1], {"d": d})))' "$1" 2>/dev/null
}
# alive WHAT: the daemon runs, the mount answers, dvrfs-status works.
alive() {
	local pid
	pid=$(dvrfs_pid)
	check "$1: daemon alive, mount answers, dvrfs-status -j works" \
		eval '[ -n "$pid" ] && kill -0 "$pid" && timeout 10 stat "$MNT" >/dev/null &&
		timeout 10 "$BIN/dvrfs-status" -j "$MNT" >/dev/null'
}
# read_all LIST: cats every file of LIST through the mount; sets RD_OK
# (right bytes), RD_WRONG (any other bytes), RD_EIO, RD_OTHER (errors).
read_all() {
	local f
	RD_OK=0 RD_WRONG=0 RD_EIO=0 RD_OTHER=0
	while read -r f; do
		if timeout 30 cat "$MNT/$f" >"$T/got" 2>"$T/err"; then
			if cmp -s "$T/got" "$ROOT/$f"; then
				RD_OK=$((RD_OK + 1))
			else
				RD_WRONG=$((RD_WRONG + 1))
			fi
		elif grep -q 'Input/output error' "$T/err"; then
			RD_EIO=$((RD_EIO + 1))
		else
			RD_OTHER=$((RD_OTHER + 1)); sed 's/^/# /' "$T/err"
		fi
	done <"$1"
}
# data_under DIR: files (any kind) under STORE/data/DIR.
data_under() { find "$STORE/data/$1" -mindepth 1 2>/dev/null | wc -l; }
good_ok() {
	read_all "$T/good"
	check "$1: honest files still read right ($RD_OK of $(wc -l <"$T/good"))" \
		test "$RD_OK" -eq "$(wc -l <"$T/good")"
}

start_fake
CASES=${CASES:-abcde}

# (a), (b) Bodies that do not match the listing: a flipped byte, sizes
# longer and shorter than the body (headers agreeing with the lie or not).
for mode in hash long short longraw shortraw; do
	[[ $CASES == *a* ]] || break
	lie "$mode"
	up replicate,depth=1h,transfers=4 || { nok "$mode: mount"; continue; }
	read_all "$T/lie"
	check "$mode: $(wc -l <"$T/lie") reads of lying files: $RD_WRONG wrong, $RD_OK served, $RD_EIO EIO, $RD_OTHER other" \
		test "$RD_WRONG" -eq 0 -a "$RD_OK" -eq 0 -a "$RD_EIO" -eq "$(wc -l <"$T/lie")"
	good_ok "$mode"
	# Let the crawler try every lying file at least once.
	for ((i = 0; i < 40; i++)); do
		[ "$(status '[d["total"]["segments_done"], d["counters"]["crawler"]["failed"]]' |
			python3 -c 'import json,sys; d=json.load(sys.stdin); print(d[0] + d[1])' 2>/dev/null)" \
			-ge "$(cat "$T/good" "$T/lie" | wc -l)" ] 2>/dev/null && break
		sleep 0.5
	done
	hf=$(status 'd["counters"]["hash_failures"]')
	ba=$(status 'd["counters"]["fetcher"]["bad_answers"]')
	check "$mode: counted (hash_failures $hf, bad_answers $ba)" \
		test "$((${hf:-0} + ${ba:-0}))" -gt 0
	check "$mode: nothing of the lying files in STORE/data ($(data_under lie))" \
		test "$(data_under lie)" -eq 0
	bad=0
	while read -r f; do
		cmp -s "$STORE/data/$f" "$ROOT/$f" || bad=$((bad + 1))
	done < <(cd "$STORE/data" && find . -type f -printf '%P\n')
	check "$mode: every file in STORE/data equals the primary's ($bad differ)" \
		test "$bad" -eq 0
	alive "$mode"
	down || nok "$mode: unmount"
done
echo "# counters: see the lines above; crawler: $(status 'd["counters"]')"

# (c) Garbage listings of "lie": the folder lists as an error or empty,
# within the timeout, and nothing else breaks.
for mode in badjson badtype negsize hugesize nofield loop endless; do
	[[ $CASES == *c* ]] || break
	lie "$mode"
	up replicate,depth=1h || { nok "$mode: mount"; continue; }
	start=$SECONDS
	timeout 30 find "$MNT/lie" >"$T/ls" 2>"$T/ls.err"
	rc=$?
	el=$((SECONDS - start))
	check "$mode: find lie ends (rc $rc: $(head -c 80 "$T/ls.err"), $(wc -l <"$T/ls") names, ${el}s)" \
		test $rc -ne 124 -a $rc -ne 137
	check "$mode: no file of lie listed ($(grep -c '\.ts$' "$T/ls"))" \
		test "$(grep -c '\.ts$' "$T/ls")" -eq 0
	if [ "$mode" = endless ]; then
		# Pages that never end must not eat the machine.
		for ((i = 0; i < 60; i++)); do
			grep -q 'listing of .*refused' "$LOG" && break
			sleep 0.5
		done
		sleep 5
		pid=$(dvrfs_pid)
		hwm=$(awk '/VmHWM/ { print $2 }' /proc/"$pid"/status)
		check "$mode: daemon's peak memory with endless pages: $((hwm / 1024)) MiB (< 512)" \
			test "$hwm" -lt $((512 * 1024))
	fi
	check "$mode: logged ($(grep -m1 -o 'listing of "[^"]*": .*' "$LOG" | head -c 100))" \
		grep -q 'listing of "' "$LOG"
	good_ok "$mode"
	alive "$mode"
	down || nok "$mode: unmount"
done

# (d) Hostile names in the listing of "lie" and in feed events: refused,
# nothing created outside the store. Snapshot what exists under $T first.
if [[ $CASES == *d* ]]; then
snap() { find "$T" \( -path "$STORE" -o -path "$MNT" \) -prune -o -print |
	grep -v "^$T/dvrfs\.[0-9]*\.log$\|^$T/ls\|^$T/got$\|^$T/err$\|^$T/fake\|^$T/before$\|^$T/after$" | sort; }
snap >"$T/before"
nhostile=$(python3 -c "import sys; sys.path.insert(0, '$TOP/tests')
import fake_origin; print(len(fake_origin.HOSTILE))")
refused=0 feedlog=0
for ((k = 0; k < nhostile; k++)); do
	# Lying from the start, so no honest listing of "lie" is cached.
	lie "hostile:$k"
	up replicate,depth=1h || { nok "hostile:$k: mount"; continue; }
	if timeout 30 ls -a "$MNT/lie" >"$T/ls" 2>"$T/ls.err"; then
		extra=$(grep -vxF -f <(cd "$ROOT/lie" && ls -a) "$T/ls")
		[ -z "$extra" ] || nok "hostile:$k: listed a strange name: $extra"
	else
		refused=$((refused + 1))
	fi
	[ $k -eq 0 ] && sleep 2	# a few feed answers
	grep -q 'feed: bad entry name' "$LOG" && feedlog=$((feedlog + 1))
	[ $k -lt $((nhostile - 1)) ] && { down || nok "hostile:$k: unmount"; }
done
check "hostile: $refused of $nhostile listings of lie refused as a whole (EIO)" \
	test "$refused" -eq "$nhostile"
check "hostile: feed answers with hostile names refused and logged (in $feedlog mounts: $(grep -m1 'feed: ' "$LOG" | head -c 60))" \
	test "$feedlog" -gt 0
lie honest
good_ok hostile
check "hostile: lie lists right again once the primary stops lying" \
	test "$(ls "$MNT/lie")" = "$(ls "$ROOT/lie")"
alive hostile
down || nok "hostile: unmount"
snap >"$T/after"
check "hostile: nothing new under the test folder outside STORE and the mount" \
	test -z "$(comm -13 "$T/before" "$T/after")"
comm -13 "$T/before" "$T/after" | head | sed 's/^/# new: /'
strange=$(find "$T" / -xdev \( -name 'evil' -o -name 'nul*name' -o \
	-name 'ctl*name' -o -name "$(printf 'n%.0s' {1..255})*" \) 2>/dev/null | head)
check "hostile: no file named like a hostile name anywhere" test -z "$strange"
check "hostile: STORE/data holds only real paths" test -z "$(cd "$STORE/data" &&
	find . -mindepth 1 -printf '%P\n' | while read -r p; do [ -e "$ROOT/$p" ] || echo "$p"; done)"
fi

# (e) A folder of BIG entries, paged by the fake: listed through the
# mount in bounded memory, or a clear error.
if [[ $CASES == *e* ]]; then
stop_fake
lie honest
start_fake -b "$BIG"
up timeout=120 || nok "big: mount"
pid=$(dvrfs_pid)
hwm0=$(awk '/VmHWM/ { print $2 }' /proc/"$pid"/status)
start=$SECONDS
timeout 170 ls -f "$MNT/big" 2>"$T/ls.err" | grep -vc '^\.\.\?$' >"$T/n"
el=$((SECONDS - start))
nbig=$(cat "$T/n")
hwm=$(awk '/VmHWM/ { print $2 }' /proc/"$pid"/status)
echo "# figure: big folder of $BIG: ls gave $nbig names in ${el}s; VmHWM $((hwm0 / 1024)) -> $((hwm / 1024)) MiB ($(head -c 80 "$T/ls.err"))"
check "big: ls lists $nbig of $BIG entries (or a clear error: $(head -c 60 "$T/ls.err"))" \
	eval '[ "$nbig" -eq "$BIG" ] || grep -q "Input/output error" "$T/ls.err"'
check "big: the daemon's peak memory stays under 512 MiB ($((hwm / 1024)) MiB)" \
	test "$hwm" -lt $((512 * 1024))
check "big: a file of it reads right" \
	test "$(cat "$MNT/big/f0000123")" = f0000123
alive big
down || nok "big: unmount"
fi
finish
