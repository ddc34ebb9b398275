#!/bin/bash
# The local store's index at scale: an index of STORE_RECORDS (1 million)
# segment records. Figures and targets:
#   store_open_1m      time of store_open()          target <= 1 s
#   store_lookups      store_lookup() by parent+name target >= 500000/s
#   store_rss_record   RSS of the process / records  target <= 200 B
#   store_marks        durable block marks (4 KiB)   target >= 5000/s
#   store_evict        one pass of the size cap over every record made
#                      local (3 % of them evicted), and the longest a
#                      feed event (a write of the index) waited during
#                      it against the longest before it
# The ratio is value / target: >= 1 meets a "more is better" target,
# <= 1 a "less is better" one. Runs on its own: bash bench/case_store.sh
BENCH_TOP=${BENCH_TOP:-$(cd "$(dirname "$0")/.." && pwd)}
. "$BENCH_TOP/bench/lib.sh"

make -s -C "$BENCH_TOP" build/bench/store_bench >/dev/null ||
    { echo "skip: build/bench/store_bench does not build"; exit 0; }
N=${STORE_RECORDS:-1000000}
out=$("$BENCH_TOP/build/bench/store_bench" "$W/store" "$N" 2>"$W/err") ||
    { echo "skip: store_bench failed: $(tail -1 "$W/err")"; exit 1; }
val() { awk -v k="$1" '$1 == k { print $2 }' <<<"$out"; }
note "$N records; index built in $(val build_s) s," \
    "$(du -m "$W/store/index.db" | cut -f1) MB"
result store_open_1m "$(val open_s)" s 1 "target<=1s"
result store_lookups "$(val lookups_per_s)" lookups/s 500000 "target>=500000/s"
note "lookups per CPU second of the bench's thread: $(val lookups_per_cpu_s)"
result store_rss_record "$(val rss_per_record)" B/record 200 "target<=200B"
result store_marks "$(val marks_per_s)" marks/s 5000 "target>=5000/s"
note "size cap: $(val evict_files) of $N local files evicted in one pass"
result store_evict_pass "$(val evict_pass_s)" s
result store_evict_write_max "$(val evict_write_max_ms)" ms \
    "$(val evict_write_idle_max_ms)" "longest write before the pass"
