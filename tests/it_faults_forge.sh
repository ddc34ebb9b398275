#!/bin/bash
# A man in the middle without the cluster key who rewrites whole answers
# consistently (file bytes with their digests recomputed, listings with
# their body hash recomputed): the mount refuses every one of them, serves
# no forged byte and keeps none; with the forger quiet, the same path works.
. "$(dirname "$0")/lib.sh"

ROOT=$T/primary/storage
MNT=$T/mnt
STORE=$T/store
mkdir -p "$ROOT" "$MNT"
"$BIN/dvr-fake" -r "$ROOT" -s news -b 2m -d 2 -S 100k || { nok "dvr-fake"; finish; }
echo "a shared key" >"$T/key"
OPORT=$(free_port)
bg "$BIN/m4f-origin" -r "$ROOT" -l 127.0.0.1:$OPORT -c "$T/hash.db" -k "$T/key" \
	2>"$T/origin.log"
wait_port $OPORT
FPORT=$(free_port)
MODE=$T/mode
echo pass >"$MODE"
bg python3 "$TOP/tests/forger.py" $FPORT $OPORT "$MODE" 2>"$T/forger.log"
wait_port $FPORT

"$BIN/dvrfs" 127.0.0.1:"$ROOT" "$MNT" -o store="$STORE",port=$FPORT,timeout=3,cluster_key_file="$T/key" \
	2>"$T/mount.err" || { nok "mount through the forger ($(cat "$T/mount.err"))"; finish; }
add_mount "$MNT"
files=($(cd "$ROOT" && find news -name '*.ts' | sort))
first=${files[0]}
check "with the forger quiet, a segment reads right" cmp -s "$ROOT/$first" "$MNT/$first"

echo forge >"$MODE"
wrong=0 eio=0 ok=0
for f in "${files[@]:1:20}"; do
	if cat "$MNT/$f" >"$T/got" 2>/dev/null; then
		cmp -s "$T/got" "$ROOT/$f" && ok=$((ok + 1)) || wrong=$((wrong + 1))
	else
		eio=$((eio + 1))
	fi
done
forged=$(cat "$MODE.count" 2>/dev/null || echo 0)
check "forged answers sent: $forged" test "$forged" -gt 0
check "no forged byte reaches a reader ($wrong wrong, $eio refused, $ok right)" \
	test $wrong -eq 0 -a $eio -gt 0
bad=$(python3 -c 'import json, os, sys
print(json.loads(os.getxattr(sys.argv[1], "user.dvrfs.status"))["fetcher"]["bad_answers"])' "$MNT")
check "the refusals are counted (bad_answers $bad)" test "$bad" -gt 0
stored_bad=0
while read -r f; do
	cmp -s "$STORE/data/$f" "$ROOT/$f" || stored_bad=$((stored_bad + 1))
done < <(cd "$STORE/data" && find . -type f -printf '%P\n')
check "nothing forged in the store ($stored_bad bad)" test $stored_bad -eq 0
# A listing forged consistently is refused too: the primary's sizes stay.
mkdir -p "$ROOT/news/extra" && head -c 5000 /dev/urandom >"$ROOT/news/extra/x.ts"
sleep 2.5
size=$(stat -c %s "$MNT/news/extra/x.ts" 2>/dev/null || echo none)
check "a forged listing is not believed (size seen: $size)" test "$size" != 5001

echo pass >"$MODE"
sleep 1
last=${files[25]}
check "with the forger quiet again, reads work ($last)" cmp -s "$ROOT/$last" "$MNT/$last"
finish
