#include "status_fmt.h"
#include "status_json.h"

static json_t *
opt_int(int64_t v)
{
	return v < 0 ? json_null() : json_integer(v);
}

static json_t *
opt_rate(double rate)
{
	return rate < 0 ? json_null() : json_integer((json_int_t)(rate + 0.5));
}

/* [{"start": t, "end": t}, ...] */
static json_t *
ranges_json(const struct sscan_ranges *r)
{
	json_t *a;
	size_t i;

	if ((a = json_array()) == NULL)
		return NULL;
	for (i = 0; i < r->n; i++)
		if (json_array_append_new(a, json_pack("{s:I, s:I}", "start",
		    (json_int_t)r->v[i].start, "end",
		    (json_int_t)r->v[i].end)) == -1) {
			json_decref(a);
			return NULL;
		}
	return a;
}

/* The progress figures both -j and -w -j have. */
static json_t *
progress_json(const struct srep *rep, uint64_t done, uint64_t total,
    uint64_t segs_done, uint64_t segs, double rate)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:f, s:o, s:o}",
	    "bytes_done", (json_int_t)done,
	    "bytes_total", (json_int_t)total,
	    "segments_done", (json_int_t)segs_done,
	    "segments_total", (json_int_t)segs,
	    "percent", srep_pct(rep, done, total),
	    "rate_bps", opt_rate(rate),
	    "eta_s", opt_int(sfmt_eta(done, total, rate)));
}

/* The figures of a row; with_ranges adds its timeline. */
static json_t *
row_json(const struct srep *rep, const struct srow *r, int64_t lag,
    int64_t gap_s, int with_ranges)
{
	const struct sscan *sc = &r->sc;
	json_t *o;

	o = progress_json(rep, sc->bytes_done, sc->bytes, sc->segs_done,
	    sc->segs, r->rate);
	if (o == NULL || json_object_update_new(o, json_pack("{s:I, s:o, s:o, "
	    "s:o, s:I}",
	    "bytes_partial", (json_int_t)sc->bytes_partial,
	    "live_lag_s", opt_int(lag),
	    "oldest", opt_int(sc->oldest),
	    "newest", opt_int(sc->newest),
	    "gap_s", (json_int_t)gap_s)) == -1) {
		json_decref(o);
		return NULL;
	}
	if (!with_ranges)
		return o;
	if (json_object_set_new(o, "gaps", ranges_json(&sc->gaps)) == -1 ||
	    json_object_set_new(o, "primary", ranges_json(&sc->prim)) == -1 ||
	    json_object_set_new(o, "local", ranges_json(&sc->local)) == -1 ||
	    json_object_set_new(o, "live_edge", opt_int(sc->edge)) == -1) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *
sjson_report(const struct srep *rep)
{
	json_t *j, *streams;
	struct stotal t;
	const struct srow *r;
	size_t i;

	srep_total(rep, &t);
	if ((streams = json_object()) == NULL)
		return NULL;
	for (i = 0; i < rep->nrows; i++) {
		r = &rep->rows[i];
		if (json_object_set_new(streams, r->name, row_json(rep, r,
		    srow_lag(r), sscan_gap_seconds(&r->sc), 1)) == -1) {
			json_decref(streams);
			return NULL;
		}
	}
	j = json_pack("{s:s, s:b, s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:I, "
	    "s:o, s:o}",
	    "store", rep->store_dir,
	    "mounted", rep->mnt[0] != '\0',
	    "mountpoint", rep->mnt[0] ? json_string(rep->mnt) : json_null(),
	    "spec", rep->mi.spec ? json_string(rep->mi.spec) : json_null(),
	    "depth_s", (json_int_t)rep->mi.depth,
	    "now", (json_int_t)rep->now,
	    "from", (json_int_t)rep->since,
	    "hash_failures", (json_int_t)rep->hash_failures,
	    "store_bytes", (json_int_t)rep->store_bytes,
	    "max_size", (json_int_t)rep->mi.max_size,
	    "total", row_json(rep, &t.row, t.lag, t.gap_s, 0),
	    "streams", streams);
	if (j == NULL)
		return NULL;
	if (rep->have_live) {
		json_object_set_new(j, "reads", json_pack("{s:I, s:I, s:I}",
		    "local", (json_int_t)rep->li.reads_local,
		    "fetched", (json_int_t)rep->li.reads_fetched,
		    "failed", (json_int_t)rep->li.reads_failed));
		json_object_set(j, "counters", rep->li.raw);
	}
	return j;
}

/* A row of -w -j: its progress, without the timeline. */
static json_t *
watch_row(const struct srep *rep, const struct srow *r)
{
	return progress_json(rep, r->sc.bytes_done, r->sc.bytes,
	    r->sc.segs_done, r->sc.segs, r->rate);
}

json_t *
sjson_watch(const struct srep *rep)
{
	json_t *streams;
	struct stotal t;
	size_t i;

	srep_total(rep, &t);
	if ((streams = json_object()) == NULL)
		return NULL;
	for (i = 0; i < rep->nrows; i++)
		json_object_set_new(streams, rep->rows[i].name,
		    watch_row(rep, &rep->rows[i]));
	return json_pack("{s:I, s:b, s:o, s:o}", "now", (json_int_t)rep->now,
	    "mounted", rep->mnt[0] != '\0', "total", watch_row(rep, &t.row),
	    "streams", streams);
}
