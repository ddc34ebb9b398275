#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status_fmt.h"
#include "status_text.h"

#define GAPS_SHOWN	10	/* per stream in the table */

/* Seconds of [c0, c1) covered by r, from range *j on; moves *j forward. */
static int64_t
covered(const struct sscan_ranges *r, size_t *j, int64_t c0, int64_t c1)
{
	int64_t s = 0, a, b;
	size_t k;

	while (*j < r->n && r->v[*j].end <= c0)
		(*j)++;
	for (k = *j; k < r->n && r->v[k].start < c1; k++) {
		a = r->v[k].start > c0 ? r->v[k].start : c0;
		b = r->v[k].end < c1 ? r->v[k].end : c1;
		if (b > a)
			s += b - a;
	}
	return s;
}

char *
stl_bar(const struct sscan *sc, int64_t from, int64_t to, char *buf,
    size_t width)
{
	size_t i, jl = 0, jg = 0;
	int64_t c0, c1, loc, gap;
	double span = (double)(to > from ? to - from : 1);

	for (i = 0; i < width; i++) {
		c0 = from + (int64_t)(span * (double)i / (double)width);
		c1 = from + (int64_t)(span * (double)(i + 1) / (double)width);
		if (c1 <= c0)
			c1 = c0 + 1;
		loc = covered(&sc->local, &jl, c0, c1);
		gap = covered(&sc->gaps, &jg, c0, c1);
		if (gap > 0)
			buf[i] = loc > 0 ? STL_PART : STL_MISSING;
		else
			buf[i] = loc > 0 ? STL_LOCAL : STL_NONE;
	}
	buf[width] = '\0';
	return buf;
}

static void
table_row(FILE *f, const struct srep *rep, const struct srow *r, int64_t lag)
{
	char done[16], total[16], rate[24], eta[24], lg[24], o[32], n[32];
	char segs[48];
	const struct sscan *sc = &r->sc;

	snprintf(segs, sizeof(segs), "%" PRIu64 "/%" PRIu64, sc->segs_done,
	    sc->segs);
	fprintf(f, "%-12s %8s %8s %6.1f%% %15s %10s %8s %7s  %-20s  %s\n",
	    r->name, sfmt_bytes(sc->bytes_done, done, sizeof(done)),
	    sfmt_bytes(sc->bytes, total, sizeof(total)),
	    srep_pct(rep, sc->bytes_done, sc->bytes), segs,
	    sfmt_rate(r->rate, rate, sizeof(rate)),
	    sfmt_duration(sfmt_eta(sc->bytes_done, sc->bytes, r->rate), eta,
	    sizeof(eta)),
	    lag < 0 ? "-" : sfmt_duration(lag, lg, sizeof(lg)),
	    sfmt_time(sc->oldest, o, sizeof(o)),
	    sfmt_time(sc->newest, n, sizeof(n)));
}

/* The first line and the table itself. */
static void
table_head(FILE *f, const struct srep *rep)
{
	struct stotal t;
	char a[32];
	size_t i;

	fprintf(f, "store %s, ", rep->store_dir);
	if (rep->mnt[0] != '\0')
		fprintf(f, "mounted on %s", rep->mnt);
	else
		fprintf(f, "not mounted");
	if (rep->mi.spec != NULL)
		fprintf(f, rep->mnt[0] ? " from %s" : " (last from %s)",
		    rep->mi.spec);
	fprintf(f, ", depth %s\n\n", sfmt_duration(rep->mi.depth, a,
	    sizeof(a)));
	fprintf(f, "%-12s %8s %8s %7s %15s %10s %8s %7s  %-20s  %s\n",
	    "stream", "done", "total", "%", "segments", "rate", "eta", "lag",
	    "oldest", "newest");
	for (i = 0; i < rep->nrows; i++)
		table_row(f, rep, &rep->rows[i], srow_lag(&rep->rows[i]));
	srep_total(rep, &t);
	table_row(f, rep, &t.row, t.lag);
}

/* The read counters and hash failures, when there are any. */
static void
table_tail(FILE *f, const struct srep *rep)
{
	char c[32], d[32];

	if (rep->have_live)
		fprintf(f, "\nreads: %" PRIu64 " local, %" PRIu64 " fetched, %"
		    PRIu64 " failed (%s local, %s fetched)\n",
		    rep->li.reads_local, rep->li.reads_fetched,
		    rep->li.reads_failed,
		    sfmt_bytes(rep->li.bytes_local, c, sizeof(c)),
		    sfmt_bytes(rep->li.bytes_fetched, d, sizeof(d)));
	if (rep->hash_failures > 0)
		fprintf(f, "hash failures: %" PRIu64 "\n", rep->hash_failures);
}

void
stext_table(FILE *f, const struct srep *rep)
{
	char a[32], b[32], c[32];
	const struct sscan *sc;
	size_t i, g, ngaps = 0;

	table_head(f, rep);
	for (i = 0; i < rep->nrows; i++)
		ngaps += rep->rows[i].sc.gaps.n;
	if (ngaps > 0)
		fprintf(f, "\ngaps (missing here, present on the primary):\n");
	for (i = 0; i < rep->nrows; i++) {
		sc = &rep->rows[i].sc;
		for (g = 0; g < sc->gaps.n && g < GAPS_SHOWN; g++)
			fprintf(f, "  %-12s %s .. %s  %s\n", rep->rows[i].name,
			    sfmt_time(sc->gaps.v[g].start, a, sizeof(a)),
			    sfmt_time(sc->gaps.v[g].end, b, sizeof(b)),
			    sfmt_duration(sc->gaps.v[g].end -
			    sc->gaps.v[g].start, c, sizeof(c)));
		if (sc->gaps.n > GAPS_SHOWN)
			fprintf(f, "  %-12s and %zu more\n", rep->rows[i].name,
			    sc->gaps.n - GAPS_SHOWN);
	}
	table_tail(f, rep);
}

void
stext_timeline(FILE *f, const struct srep *rep, size_t width)
{
	char a[32], b[32], c[32], *bar;
	size_t i;

	table_head(f, rep);
	if ((bar = malloc(width + 1)) == NULL)
		return;
	fprintf(f, "\ntimeline %s .. %s, a cell is %s: '%c' local, '%c' "
	    "partly missing, '%c' missing, '%c' not on the primary\n",
	    sfmt_time(rep->since, a, sizeof(a)),
	    sfmt_time(rep->now, b, sizeof(b)),
	    sfmt_duration((rep->now - rep->since) / (int64_t)width, c,
	    sizeof(c)), STL_LOCAL, STL_PART, STL_MISSING, STL_NONE);
	for (i = 0; i < rep->nrows; i++)
		fprintf(f, "%-12s |%s|\n", rep->rows[i].name,
		    stl_bar(&rep->rows[i].sc, rep->since, rep->now, bar,
		    width));
	free(bar);
	table_tail(f, rep);
}
