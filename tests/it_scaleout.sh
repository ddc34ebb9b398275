#!/bin/bash
# Scale-out set-ups of README.md on one machine: two secondaries (two
# dvrfs mounts of one primary, each under the packaged nginx site) behind a
# balancing nginx, and a second-tier secondary that replicates from a
# secondary's mount through its own m4f-origin. Every answer must be
# byte-identical to the primary's file.
. "$(dirname "$0")/lib.sh"

ROOT=$T/primary/storage
mkdir -p "$ROOT" "$T/m1" "$T/m2" "$T/m3" "$T/nginx"
chmod 755 "$T" "$T/primary"	# nginx's workers read the mounts as nobody

"$BIN/dvr-fake" -r "$ROOT" -s news -s sport -b 10m -d 2 -S 100k ||
	{ nok "dvr-fake"; finish; }
nseg=$(find "$ROOT" -name '*.ts' | wc -l)

PORT=$(free_port)
bg "$BIN/m4f-origin" -r "$ROOT" -l 127.0.0.1:$PORT -c "$T/hash.db" 2>"$T/origin.log"
wait_port $PORT

mnt() {	# SPEC DIR STORE PORT
	"$BIN/dvrfs" "$1" "$2" -o store="$3",port=$4,depth=1h,replicate,timeout=5 \
		2>>"$T/mount.err" && add_mount "$2"
}
check "secondary 1 mounts the primary" mnt 127.0.0.1:"$ROOT" "$T/m1" "$T/s1" $PORT
check "secondary 2 mounts the primary" mnt 127.0.0.1:"$ROOT" "$T/m2" "$T/s2" $PORT

# filled STORE-OR-MOUNT: dvrfs-status says every segment is complete.
filled() {
	local i j
	for ((i = 0; i < 600; i++)); do
		j=$("$BIN/dvrfs-status" -j "$1" 2>/dev/null)
		python3 -c 'import json, sys
t = json.loads(sys.argv[1])["total"]
sys.exit(not (t["segments_total"] == int(sys.argv[2]) and
              t["segments_done"] == t["segments_total"]))' "$j" "$nseg" \
			2>/dev/null && return 0
		sleep 0.1
	done
	echo "$j" | head -20 >&2
	return 1
}
check "secondary 1 replicates all $nseg segments" filled "$T/m1"
check "secondary 2 replicates all $nseg segments" filled "$T/m2"

# Two backends from the packaged site, one per mount, and a front nginx
# balancing viewers over them.
NA=$(free_port) NB=$(free_port) NF=$(free_port)
nginx_start $NF "$(nginx_site $NA "$T/m1" a)
$(nginx_site $NB "$T/m2" b)
	upstream dvr_secondaries {
		server 127.0.0.1:$NA;
		server 127.0.0.1:$NB;
	}
	server {
		listen 127.0.0.1:$NF;
		location / { proxy_pass http://dvr_secondaries; }
	}"
check "the packaged site passes nginx -t" \
	nginx -t -q -c "$T/nginx/nginx.conf" -e "$T/nginx/error.log"

# Every segment of one stream through the balancer equals the primary's.
bad=0 n=0
while read -r f; do
	n=$((n + 1))
	a=$(curl -sf "http://127.0.0.1:$NF/$f" | sha256sum)
	b=$(sha256sum <"$ROOT/$f")
	[ "$a" = "$b" ] || { bad=$((bad + 1)); echo "differs: $f" >&2; }
done < <(cd "$ROOT" && find sport -name '*.ts' | sort)
check "all $n sport segments through the balancer are byte-identical" \
	test $bad -eq 0 -a $n -gt 100
na=$(grep -c ' 200 ' "$T/nginx/a.log")
nb=$(grep -c ' 200 ' "$T/nginx/b.log")
check "both secondaries served viewers ($na + $nb)" \
	test "$na" -gt 0 -a "$nb" -gt 0 -a $((na + nb)) -eq $n
seg=$(cd "$ROOT" && find news -name '*.ts' | sort | sed -n 77p)
for r in 0-187 1000-50000 -188; do
	bad=0
	for i in 1 2 3 4; do
		[ "$(curl -sf -r $r "http://127.0.0.1:$NF/$seg" | sha256sum)" = \
		  "$(curl -sf -r $r "http://127.0.0.1:$PORT$ROOT/$seg" | sha256sum)" ] ||
			bad=1
	done
	check "range $r through the balancer equals the primary's" test $bad = 0
done
curl -sf -o "$T/probe.ts" "http://127.0.0.1:$NF/$seg"
check "ffprobe accepts a segment through the balancer" ffprobe -v error "$T/probe.ts"

# Second tier: m4f-origin over secondary 1's mount, a third mount of it.
P2=$(free_port)
bg "$BIN/m4f-origin" -r "$T/m1" -l 127.0.0.1:$P2 -c "$T/hash2.db" 2>"$T/origin2.log"
wait_port $P2
check "a second-tier secondary mounts secondary 1" \
	mnt 127.0.0.1:"$T/m1" "$T/m3" "$T/s3" $P2
tree() { (cd "$1" && find . -printf '%y %s %P\n' | sort); }
check "the second tier shows the primary's names and sizes" \
	test "$(tree "$ROOT")" = "$(tree "$T/m3")"
check "the second tier replicates all $nseg segments" filled "$T/m3"
bad=0
while read -r f; do
	cmp -s "$ROOT/$f" "$T/m3/$f" || { bad=$((bad + 1)); echo "differs: $f" >&2; }
done < <(cd "$ROOT" && find . -name '*.ts')
check "every segment on the second tier is byte-identical to the primary's" \
	test $bad -eq 0
bad=0
while read -r f; do
	[ "$(sha256sum <"$T/s3/data/$f")" = "$(sha256sum <"$ROOT/$f")" ] ||
		{ bad=$((bad + 1)); echo "bad in store: $f" >&2; }
done < <(cd "$T/s3/data" && find . -type f)
check "the second tier's store holds the primary's bytes" test $bad -eq 0

# New segments reach the second tier through both hops.
sleep 1.1
"$BIN/dvr-fake" -r "$ROOT" -s news -b 4s -d 2 -S 100k
new=$(cd "$ROOT" && find news -name '*.ts' | sort | tail -1)
got=
for ((i = 0; i < 300; i++)); do
	cmp -s "$ROOT/$new" "$T/m3/$new" 2>/dev/null && { got=1; break; }
	sleep 0.1
done
check "a new segment reaches the second tier ($new)" test -n "$got"
finish
