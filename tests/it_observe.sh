#!/bin/bash
# Observing a secondary and the primary: dvrfs-status -p and the origin's
# /metrics pass promtool and agree with -j; -t draws local, missing and
# not-on-the-primary; the -H page, loaded by headless Chromium at two
# sizes, has one timeline per stream with a gap cut into the archive and
# a hole in the primary's recording drawn where they are; -w -H rewrites
# the page during a fill and a reader never sees half of one.
. "$(dirname "$0")/lib.sh"
ST=$BIN/dvrfs-status
for p in promtool chromium; do
	command -v $p >/dev/null || { nok "$p is installed (make deps)"; finish; }
done

# Headless Chromium as root, nothing from the network.
chrome() {
	timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-quic \
		--no-first-run --disable-background-networking \
		--disable-component-update --disable-sync --hide-scrollbars \
		--user-data-dir="$(mktemp -d "$T/chrome.XXXXXX")" "$@" 2>>"$T/chrome.log"
}

# The primary: 20 minutes of news and sport, 2 s segments.
P=$T/primary/storage
mkdir -p "$P"
"$BIN/dvr-fake" -r "$P" -s news -s sport -b 20m -d 2 -S 20k ||
	{ nok "dvr-fake"; finish; }
# segtime FILE: the start time its DVR path names.
segtime() {
	local r=${1#"$P"/*/}
	date -u -d "$(echo "$r" | sed -E \
		's|^([0-9]+)/([0-9]+)/([0-9]+)/([0-9]+)/([0-9]+)/([0-9]+)\.ts$|\1-\2-\3 \4:\5:\6|')" +%s
}
mapfile -t NEWS < <(find "$P/news" -type f | sort)
mapfile -t SPORT < <(find "$P/sport" -type f | sort)
# A hole in the primary's recording of sport: 30 segments (60 s) deleted.
H0=$(segtime "${SPORT[100]}"); H1=$(segtime "${SPORT[130]}")
rm -f "${SPORT[@]:100:30}"
# The gap: news segments 300..359 (2 minutes) are never read.
G0=$(segtime "${NEWS[300]}"); G1=$(segtime "${NEWS[360]}")

PORT=$(free_port)
bg "$BIN/m4f-origin" -r "$P" -l 127.0.0.1:$PORT -c "$T/hash.db" 2>"$T/origin.log"
wait_port $PORT || { nok "origin"; finish; }

# An on-demand mount (no read-ahead) that reads all but the gap.
ROOT=$P MNT=$T/mnt STORE=$T/store
mkdir -p "$MNT"
fg_mount $PORT depth=30m,readahead=0 || { nok "mount"; cat "$LOG"; finish; }
add_mount "$MNT"
find "$MNT" -type f >/dev/null
for ((i = 0; i < ${#NEWS[@]}; i++)); do
	[ $i -ge 300 ] && [ $i -lt 360 ] && continue
	echo "$MNT/${NEWS[$i]#"$P"/}"
done | xargs cat >/dev/null
find "$MNT/sport" -type f -print0 | xargs -0 cat >/dev/null
# Files read are verified and marked complete a little later.
want=$(( ${#NEWS[@]} - 60 + ${#SPORT[@]} - 30 ))
for ((i = 0; i < 300; i++)); do
	"$ST" -j "$MNT" >"$T/j" 2>/dev/null
	[ "$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["total"]["segments_done"])' "$T/j")" = $want ] && break
	sleep 0.1
done

# -j, -p, -t and -H of the same, unchanging mount.
"$ST" -j "$MNT" >"$T/j" 2>"$T/err"; rc=$?
check "-j exits 0, nothing on stderr" test $rc -eq 0 -a ! -s "$T/err"
"$ST" -p "$MNT" >"$T/prom" 2>"$T/err"; rc=$?
check "-p exits 0, nothing on stderr" test $rc -eq 0 -a ! -s "$T/err"
check "-p passes promtool check metrics" promtool check metrics <"$T/prom"
check "-p has HELP and TYPE" grep -q '^# TYPE dvrfs_stream_done_bytes gauge$' "$T/prom"

is "-j: the gap in news, at the times cut" "$T/j" 'd["streams"]["news"]["gaps"]' \
	"[{\"end\": $G1, \"start\": $G0}]"
is "-j: news local on both sides of the gap" "$T/j" \
	'[[r["start"], r["end"]] for r in d["streams"]["news"]["local"]][0][1]' "$G0"
is "-j: the primary's hole in sport" "$T/j" \
	'[[r["start"], r["end"]] for r in d["streams"]["sport"]["primary"]][0][1]' "$H0"
is "-j: sport goes on after the hole" "$T/j" \
	'[[r["start"], r["end"]] for r in d["streams"]["sport"]["primary"]][1][0]' "$H1"
is "-j: no gap in sport, the hole is not missing here" "$T/j" 'd["streams"]["sport"]["gaps"]' '[]'
is "-j: live edges and from" "$T/j" \
	'[d["streams"]["news"]["live_edge"] >= d["streams"]["news"]["newest"], d["from"] == d["now"] - 1800]' \
	'[true, true]'

# -p against -j: every figure of both.
python3 - "$T/j" "$T/prom" "$(realpath "$MNT")" >"$T/agree" <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1]))
m = {}
for line in open(sys.argv[2]):
    if line.startswith("#") or not line.strip():
        continue
    k, v = line.rsplit(" ", 1)
    m[k] = int(v)
mnt = sys.argv[3]
def p(name, **labels):
    l = {"mount": mnt, **labels}
    return m.get(name + "{" + ",".join('%s="%s"' % (a, b) for a, b in l.items()) + "}")
bad = []
def same(what, a, b):
    if a != b:
        bad.append("%s: -p %r, -j %r" % (what, a, b))
keys = [("done_bytes", "bytes_done"), ("depth_bytes", "bytes_total"),
        ("partial_bytes", "bytes_partial"), ("done_segments", "segments_done"),
        ("depth_segments", "segments_total"), ("live_lag_seconds", "live_lag_s"),
        ("gap_seconds", "gap_s"), ("fill_rate_bytes_per_second", "rate_bps"),
        ("oldest_timestamp_seconds", "oldest"), ("newest_timestamp_seconds", "newest")]
for s, j in d["streams"].items():
    for pk, jk in keys:
        same(s + " " + pk, p("dvrfs_stream_" + pk, stream=s), j[jk])
    same(s + " gaps", p("dvrfs_stream_gaps", stream=s), len(j["gaps"]))
    same(s + " edge", p("dvrfs_stream_live_edge_timestamp_seconds", stream=s), j["live_edge"])
for pk, jk in keys:
    same("total " + pk, p("dvrfs_" + pk), d["total"][jk])
same("gaps", p("dvrfs_gaps"), sum(len(s["gaps"]) for s in d["streams"].values()))
for r in ("local", "fetched", "failed"):
    same("reads " + r, p("dvrfs_reads_total", result=r), d["reads"][r])
for pr in ("viewer", "live", "backfill"):
    same("fetched " + pr, p("dvrfs_fetched_bytes_total", priority=pr),
         d["counters"]["fetcher"]["bytes_" + pr])
same("retries", p("dvrfs_fetch_retries_total"), d["counters"]["fetcher"]["retries"])
same("primary up", p("dvrfs_primary_up"), int(d["counters"]["fetcher"]["connected"]))
same("hash failures", p("dvrfs_hash_failures_total"), d["hash_failures"])
same("store size", p("dvrfs_store_size_bytes"), d["store_bytes"])
same("max size", p("dvrfs_store_max_size_bytes"), d["max_size"])
same("depth", p("dvrfs_depth_seconds"), d["depth_s"])
same("mounted", p("dvrfs_mounted"), 1)
print("\n".join(bad) if bad else "same")
PY
check "-p agrees with -j, figure by figure" grep -qx same "$T/agree" ||
	cat "$T/agree"

check "-p: a series with both labels" grep -q "^dvrfs_stream_gaps{mount=\"$(realpath "$MNT")\",stream=\"news\"} 1$" "$T/prom"

# -t: a bar per stream; the gap is '.', the hole blank, the rest '#'.
"$ST" -t "$MNT" >"$T/t"; rc=$?
check "-t exits 0" test $rc -eq 0
check "-t: the table's figures" grep -Eq '^news .*%' "$T/t"
check "-t: news has local and missing cells" grep -Eq '^news +\|[ #+.]*#[+.]*\.[+.]*#' "$T/t"
check "-t: sport has a hole between local cells, nothing missing" \
	grep -Eq '^sport +\| *#+ +#+ *\|$' "$T/t"

# -H: the page, its DOM in Chromium and two screenshots.
"$ST" -H "$T/page.html" "$MNT"; rc=$?
check "-H exits 0" test $rc -eq 0
check "-H: the page fetches nothing" bash -c "! grep -Eq '(src|href)=|url\\((https?:|//)|@import' '$T/page.html'"
chrome --dump-dom "file://$T/page.html" >"$T/dom.html"
chrome --window-size=1280,800 --screenshot="$T/desktop.png" "file://$T/page.html" >/dev/null
chrome --window-size=390,844 --screenshot="$T/phone.png" "file://$T/page.html" >/dev/null
check "screenshot at 1280x800" test -s "$T/desktop.png"
check "screenshot at 390x844" test -s "$T/phone.png"
python3 - "$T/dom.html" $G0 $G1 $H0 $H1 >"$T/dom" <<'PY'
import sys
from html.parser import HTMLParser
g0, g1, h0, h1 = map(int, sys.argv[2:])
svgs = []
class P(HTMLParser):
    def handle_starttag(self, tag, a):
        a = dict(a)
        if tag == "svg" and "tl" in (a.get("class") or "").split():
            svgs.append({"a": a, "rects": []})
        elif tag == "rect" and svgs and a.get("class") in ("prim", "local", "gap"):
            svgs[-1]["rects"].append(a)
P().feed(open(sys.argv[1]).read())
out = ["timelines %s" % ",".join(sorted(s["a"]["data-stream"] for s in svgs))]
# 1 px of the 1280 px wide page is about 0.9 of the viewBox's 1000.
for s in svgs:
    f, t = int(s["a"]["data-from"]), int(s["a"]["data-to"])
    x = lambda v: (v - f) * 1000.0 / (t - f)
    def near(r, a, b):
        return abs(float(r["x"]) - x(a)) <= 1.8 and abs(float(r["width"]) - (x(b) - x(a))) <= 1.8
    gaps = [r for r in s["rects"] if r["class"] == "gap"]
    prim = [r for r in s["rects"] if r["class"] == "prim"]
    if s["a"]["data-stream"] == "news":
        out.append("news gap placed %s" % (len(gaps) == 1 and near(gaps[0], g0, g1)))
    else:
        out.append("sport hole placed %s" % (len(prim) == 2 and
            abs(float(prim[0]["x"]) + float(prim[0]["width"]) - x(h0)) <= 1.8 and
            abs(float(prim[1]["x"]) - x(h1)) <= 1.8 and not gaps))
print("\n".join(out))
PY
check "DOM: one timeline per stream" grep -qx "timelines news,sport" "$T/dom"
check "DOM: the gap drawn at its times (x and width)" grep -qx "news gap placed True" "$T/dom"
check "DOM: the primary's hole left out at its times" grep -qx "sport hole placed True" "$T/dom"
[ -n "${OBSERVE_SHOTS:-}" ] && cp "$T/desktop.png" "$T/phone.png" "$T/page.html" "$OBSERVE_SHOTS/"
fg_unmount

# The origin's /metrics, open (no -k): promtool, and what it served.
curl -s -o "$T/om" -w '%{http_code} %{content_type}\n' \
	"http://127.0.0.1:$PORT/metrics" >"$T/omh"
check "/metrics: 200, text format 0.0.4" grep -q '^200 text/plain; version=0.0.4' "$T/omh"
check "/metrics passes promtool check metrics" promtool check metrics <"$T/om"
check "/metrics: files served and their bytes" bash -c \
	"grep -Eq '^m4f_origin_requests_total\\{kind=\"file\",code=\"200\"\\} [1-9]' '$T/om' &&
	 grep -Eq '^m4f_origin_sent_bytes_total\\{kind=\"file\"\\} [1-9]' '$T/om'"
check "/metrics: listings, hash cache" bash -c \
	"grep -Eq '^m4f_origin_requests_total\\{kind=\"list\",code=\"200\"\\} [1-9]' '$T/om' &&
	 grep -Eq '^m4f_origin_hash_cache_misses_total [1-9]' '$T/om'"

# With -k: /metrics is signed like every request.
KPORT=$(free_port)
printf 'observe-key' >"$T/key"
bg "$BIN/m4f-origin" -r "$P" -l 127.0.0.1:$KPORT -c "$T/hash2.db" -k "$T/key" 2>"$T/korigin.log"
wait_port $KPORT || { nok "origin -k"; finish; }
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$KPORT/metrics")
check "-k: unsigned /metrics is 401" test "$code" = 401
t=$(date +%s)
sig=$(printf 'GET\n/metrics\n%s' "$t" | openssl dgst -sha256 -hmac observe-key -hex | sed 's/.* //')
curl -s -o "$T/okm" -w '%{http_code}' -H "Authorization: M4F-HMAC-SHA256 t=$t,sig=$sig" \
	"http://127.0.0.1:$KPORT/metrics" >"$T/okc"
check "-k: signed /metrics is 200" grep -qx 200 "$T/okc"
check "-k: the refusal is counted" grep -qx 'm4f_origin_auth_failures_total 1' "$T/okm"

# -w -H during a fill: a replicating mount, slowed down by bwlimit.
MNT=$T/mnt2 STORE=$T/store2
mkdir -p "$MNT"
fg_mount $PORT depth=30m,replicate,bwlimit=3M,transfers=2 ||
	{ nok "replicating mount"; cat "$LOG"; finish; }
add_mount "$MNT"
"$ST" -w -H "$T/live.html" "$MNT" 2>"$T/werr" &
WP=$!
for ((i = 0; i < 100; i++)); do [ -s "$T/live.html" ] && break; sleep 0.1; done
python3 - "$T/live.html" >"$T/reads" <<'PY'
import re, sys, time
seen, bad, n = set(), 0, 0
end = time.time() + 6
while time.time() < end:
    try:
        s = open(sys.argv[1], "rb").read()
    except FileNotFoundError:
        bad += 1
        continue
    n += 1
    if not (s.startswith(b"<!DOCTYPE html>") and s.endswith(b"</html>\n")):
        bad += 1
    m = re.search(rb'class="card total">.*?<dd>([^<]*)</dd>', s, re.S)
    seen.add(m.group(1) if m else s[:0])
print("reads %d bad %d versions %d" % (n, bad, len(seen)))
PY
kill -TERM $WP
wait $WP; rc=$?
read -r _ nreads _ nbad _ nversions <"$T/reads"
check "-w -H: stops on SIGTERM with exit 0" test $rc -eq 0
check "-w -H: nothing on stderr" test ! -s "$T/werr"
check "-w -H: read $nreads times, never half a page ($nbad bad)" test "$nreads" -gt 100 -a "$nbad" -eq 0
check "-w -H: the page changed as the fill went on ($nversions versions)" test "$nversions" -ge 3
check "-w -H: the page reloads itself" grep -q 'http-equiv="refresh"' "$T/live.html"
check "-w -H: no temporary file left" bash -c "! ls -a '$T' | grep -q '^\\.live\\.html\\..*\\.tmp$'"
fg_unmount

finish
