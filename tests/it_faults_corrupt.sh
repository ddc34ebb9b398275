#!/bin/bash
# Corrupted bytes and truncated bodies from the link: detected, fetched
# again, never served, counted. On-demand reads first, then a fill.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/faults_lib.sh"

make_archive -s news -s sport -b 4m -d 2 -S 200k
(cd "$ROOT" && find . -type f -printf '%P\n' | sort) >"$T/files"
start_origin
start_proxy

# On demand (no crawler): every file read whole, through a link that
# flips a byte in 30 % of the bodies and cuts 20 % short.
mount_dvrfs timeout=5 || { nok "mount"; finish; }
add_mount "$MNT"
proxy corrupt=30 truncate=20
wrong=0 errs=0 n=0
while read -r f; do
	n=$((n + 1))
	if ! cat "$MNT/$f" >"$T/got" 2>"$T/err"; then errs=$((errs + 1)); continue; fi
	cmp -s "$T/got" "$ROOT/$f" || { wrong=$((wrong + 1)); echo "# wrong: $f"; }
done <"$T/files"
c=$(proxy_stat corrupted) t=$(proxy_stat truncated)
check "on demand: the proxy corrupted $c and truncated $t bodies" test "$c" -gt 0 -a "$t" -gt 0
check "on demand: $n whole-file reads, $wrong with a wrong byte ($errs errors)" test $wrong -eq 0
bad_answers=$(status 'd["counters"]["fetcher"]["bad_answers"]')
hf=$(status 'd["counters"]["hash_failures"]')
check "on demand: counted (bad_answers $bad_answers, hash_failures $hf)" \
	test "$((bad_answers + hf))" -gt 0
check "on demand: every file in STORE/data is sha256-equal to the primary's" \
	test -z "$(store_bad)"

# Random ranges too, with readers comparing every byte.
start_readers 2 "$T/files"
sleep 10
stop_readers
check "ranges: $R_READS reads, $R_WRONG wrong, $R_SHORT short ($R_ERRORS errors)" \
	test "$R_WRONG" -eq 0 -a "$R_SHORT" -eq 0 -a "$R_READS" -gt 0

# A fill through the same link: it completes and the store is right.
fusermount3 -u "$MNT"
rm -rf "$STORE"
mount_dvrfs replicate,depth=1h,timeout=5 || { nok "mount replicate"; finish; }
check "fill: completes through the corrupting link" wait_full 150
hf=$(status 'd["counters"]["hash_failures"]')
ba=$(status 'd["counters"]["fetcher"]["bad_answers"]')
check "fill: counted (bad_answers $ba, hash_failures $hf)" test "$((ba + hf))" -gt 0
bad=$(store_bad)
check "fill: every file in STORE/data is sha256-equal to the primary's" test -z "$bad"
[ -n "$bad" ] && echo "$bad" | head | sed 's/^/# /'
check "fill: all files are in the store ($(find "$STORE/data" -type f | wc -l) of $(wc -l <"$T/files"); status $(status "[d[\"total\"][k] for k in (\"segments_done\", \"segments_total\")]"))" \
	test "$(find "$STORE/data" -type f | wc -l)" -eq "$(wc -l <"$T/files")"
echo "# figure: files=$n corrupted=$(proxy_stat corrupted) truncated=$(proxy_stat truncated) responses=$(proxy_stat responses) fill_bad_answers=$ba fill_hash_failures=$hf"
finish
