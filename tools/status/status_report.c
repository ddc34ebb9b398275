#include <stdio.h>
#include <string.h>

#include "status_fmt.h"
#include "status_report.h"

int64_t
srow_lag(const struct srow *r)
{
	if (r->sc.newest < 0 || r->sc.newest_known < 0)
		return -1;
	return r->sc.newest_known - r->sc.newest;
}

int64_t
sscan_gap_seconds(const struct sscan *sc)
{
	int64_t s = 0;
	size_t i;

	for (i = 0; i < sc->gaps.n; i++)
		s += sc->gaps.v[i].end - sc->gaps.v[i].start;
	return s;
}

void
srep_total(const struct srep *rep, struct stotal *t)
{
	const struct sscan *sc;
	struct sscan *ts = &t->row.sc;
	size_t i;
	int have_rate = 0;

	memset(t, 0, sizeof(*t));
	snprintf(t->row.name, sizeof(t->row.name), "total");
	sscan_init(ts, rep->since);
	t->row.rate = 0;
	t->lag = -1;
	for (i = 0; i < rep->nrows; i++) {
		sc = &rep->rows[i].sc;
		ts->segs += sc->segs;
		ts->bytes += sc->bytes;
		ts->segs_done += sc->segs_done;
		ts->bytes_done += sc->bytes_done;
		ts->bytes_partial += sc->bytes_partial;
		t->ngaps += sc->gaps.n;
		t->gap_s += sscan_gap_seconds(sc);
		if (sc->oldest >= 0 && (ts->oldest < 0 || sc->oldest < ts->oldest))
			ts->oldest = sc->oldest;
		if (sc->newest > ts->newest)
			ts->newest = sc->newest;
		if (sc->newest_known > ts->newest_known)
			ts->newest_known = sc->newest_known;
		if (sc->edge > ts->edge)
			ts->edge = sc->edge;
		if (srow_lag(&rep->rows[i]) > t->lag)
			t->lag = srow_lag(&rep->rows[i]);
		if (rep->rows[i].rate >= 0) {
			t->row.rate += rep->rows[i].rate;
			have_rate = 1;
		}
	}
	if (!have_rate)
		t->row.rate = -1;
}

double
srep_pct(const struct srep *rep, uint64_t done, uint64_t total)
{
	double p = sfmt_percent(done, total);

	if (!rep->listing)
		return p;
	return total == 0 ? 0.0 : p > 99.9 ? 99.9 : p;
}

const char *
srep_mount_label(const struct srep *rep)
{
	if (rep->mnt[0] != '\0')
		return rep->mnt;
	if (rep->mi.mountpoint != NULL)
		return rep->mi.mountpoint;
	return rep->store_dir;
}
