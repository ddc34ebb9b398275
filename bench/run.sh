#!/bin/bash
# Runs the benchmarks: builds one synthetic DVR archive with dvr-fake,
# runs every bench/case_*.sh (or the cases named as arguments) against it,
# prints the collected figures as a table and writes docs/performance.md.
#
# Environment (defaults in brackets):
#   BENCH_HOURS    archive per stream: hours, or a dvr-fake -b duration
#                  such as 10m [1]
#   BENCH_SEGSIZE  segment size, dvr-fake -S [1M]
#   BENCH_SEGDUR   segment duration, dvr-fake -d [2]
#   BENCH_SECONDS  length of one load run [5]
#   BENCH_ROUNDS   load runs per figure, the median is reported [3]
#   BENCH_CONNS    concurrent connections [64]
#   BENCH_OUT      the report to write [docs/performance.md]
#   BENCH_FIRST_HOURS  hours of the first-contact case's own archive of
#                  2 streams of 1 MiB segments (case_first) [3]
#
# Adding a case: write bench/case_NAME.sh (its header comment, up to the
# first empty or indented "#" line, describes it in the report) that sources bench/lib.sh and
# prints "NAME: VALUE UNIT (ratio X.XX vs BASELINE)" lines (see lib.sh).
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP" || exit 1

export BENCH_TOP=$TOP
export BENCH_HOURS=${BENCH_HOURS:-1}
export BENCH_SEGSIZE=${BENCH_SEGSIZE:-1M}
export BENCH_SEGDUR=${BENCH_SEGDUR:-2}
export BENCH_SECONDS=${BENCH_SECONDS:-5}
export BENCH_ROUNDS=${BENCH_ROUNDS:-3}
export BENCH_CONNS=${BENCH_CONNS:-64}
export BENCH_STREAMS="bench1 bench2"
export BENCH_RELAY=$TOP/build/bench/relay
OUT=${BENCH_OUT:-docs/performance.md}

for p in bin/dvr-fake "$BENCH_RELAY"; do
	if [ ! -x "$p" ]; then
		echo "bench: $p is missing; run 'make bench'" >&2
		exit 1
	fi
done
for p in wrk nginx curl; do
	if ! command -v "$p" >/dev/null; then
		echo "bench: $p is missing; run 'make deps' as root" >&2
		exit 1
	fi
done

load=$(cut -d' ' -f1-3 /proc/loadavg)
WORK=$(mktemp -d /tmp/dvrfs-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM
# Served by nginx's workers too: let them traverse it.
chmod 755 "$WORK"
export BENCH_ARCHIVE=$WORK/archive

back=$BENCH_HOURS
[[ $back == *[0-9] ]] && back=${back}h
streams=()
for s in $BENCH_STREAMS; do streams+=(-s "$s"); done
echo "bench: writing $back of $BENCH_SEGSIZE segments" \
    "(${BENCH_SEGDUR}s) for streams $BENCH_STREAMS"
start=$(date +%s.%N)
if ! bin/dvr-fake -r "$BENCH_ARCHIVE" "${streams[@]}" -b "$back" \
    -d "$BENCH_SEGDUR" -S "$BENCH_SEGSIZE"; then
	echo "bench: dvr-fake failed" >&2
	exit 1
fi
end=$(date +%s.%N)
nfiles=$(find "$BENCH_ARCHIVE" -type f | wc -l)
size=$(du -sm "$BENCH_ARCHIVE" | cut -f1)
fake_s=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
echo "bench: $nfiles segments, $size MiB in ${fake_s}s"

cases=()
for c in "$@"; do
	c=${c##*/}
	c=${c#case_}
	cases+=("bench/case_${c%.sh}.sh")
done
[ ${#cases[@]} -gt 0 ] || cases=(bench/case_*.sh)

results=$WORK/results
: >"$results"
for c in "${cases[@]}"; do
	name=$(basename "$c" .sh)
	name=${name#case_}
	echo "bench: $name"
	cstart=$SECONDS
	# Result lines go to the table; everything is shown as it comes.
	bash "$c" 2>&1 | while IFS= read -r line; do
		echo "  $line"
		if [[ $line == "skip: "* ]]; then
			printf '%s\tskip\t%s\n' "$name" "${line#skip: }" >>"$results"
		elif [[ $line =~ ^[A-Za-z0-9_.-]+:\ [0-9.]+\ [^\ ]+(\ \(ratio\ [0-9.]+\ vs\ [^\)]+\))?$ ]]; then
			printf '%s\tresult\t%s\n' "$name" "$line" >>"$results"
		fi
	done
	rc=${PIPESTATUS[0]}
	[ "$rc" -eq 0 ] || printf '%s\tskip\tfailed (exit %s)\n' "$name" "$rc" >>"$results"
	echo "bench: $name done in $((SECONDS - cstart))s"
done

# One table: case | figure | value | unit | ratio.
table() {
	awk -F'\t' '
	$2 == "skip" { printf "| %s | %s | | | |\n", $1, "skipped: " $3; next }
	{
		line = $3
		ratio = ""
		if (match(line, / \(ratio [0-9.]+ vs [^)]*\)$/)) {
			ratio = substr(line, RSTART + 8, RLENGTH - 9)
			line = substr(line, 1, RSTART - 1)
		}
		name = line; sub(/: .*/, "", name)
		rest = line; sub(/^[^:]*: /, "", rest)
		value = rest; sub(/ .*/, "", value)
		unit = rest; sub(/^[^ ]* ?/, "", unit)
		printf "| %s | %s | %s | %s | %s |\n", $1, name, value, unit, ratio
	}' "$results"
}

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
fs=$(df -T "$WORK" | awk 'NR == 2 { print $2 " on " $1 }')
{
	echo "# Performance"
	echo
	echo "Measured by \`make bench\` (bench/run.sh) on $(date -u +%Y-%m-%d)."
	echo "Each case compares against a baseline measured in the same run;"
	echo "the ratio is case / baseline for rates, baseline / case for the"
	echo "times of window_dvrfs and list_dvrfs (how many times faster); >= 1 is"
	echo "better except where the baseline says target<=."
	echo
	echo "## Machine"
	echo
	echo "- CPU: ${cpu:-unknown}, $(nproc) cores"
	echo "- Memory: $mem"
	echo "- Kernel: $(uname -sr)"
	echo "- Load average when the run started: $load"
	echo "- Archive file system: $fs"
	echo "- OS: $(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-unknown}")"
	echo "- nginx $(nginx -v 2>&1 | sed 's|.*/||'), $(wrk -v 2>&1 | head -1 | awk '{ print $1, $2 }')"
	echo
	echo "## Data"
	echo
	echo "\`dvr-fake -b $back -d $BENCH_SEGDUR -S $BENCH_SEGSIZE\`, streams"
	echo "$BENCH_STREAMS: $nfiles segments, $size MiB, written in ${fake_s}s."
	echo "Load runs: wrk, $BENCH_CONNS connections, ${BENCH_SECONDS}s each;"
	echo "figures are medians of $BENCH_ROUNDS runs."
	echo
	echo "## Results"
	echo
	echo "| case | figure | value | unit | ratio |"
	echo "| --- | --- | --- | --- | --- |"
	table
	echo
	echo "## Cases"
	echo
	for c in "${cases[@]}"; do
		echo "- \`$c\`: $(sed -n '2,/^[^#]/{/^#$/q;/^#  /q;/^#/s/^# \{0,1\}//p}' "$c" | tr '\n' ' ' | sed 's/ $//')"
	done
	# What the figures taught, kept by hand next to the cases.
	if [ -f bench/findings.md ]; then
		echo
		cat bench/findings.md
	fi
} >"$OUT"

echo
echo "| case | figure | value | unit | ratio |"
echo "| --- | --- | --- | --- | --- |"
table
echo
echo "bench: wrote $OUT"
