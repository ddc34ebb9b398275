#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "dvrfs_status.h"
#include "jsonget.h"
#include "status_fmt.h"
#include "status_prom.h"

/* The figures every stream and the total have; -1 leaves a series out. */
enum {
	F_DONE_BYTES, F_DEPTH_BYTES, F_PARTIAL_BYTES, F_DONE_SEGS,
	F_DEPTH_SEGS, F_LAG, F_GAPS, F_GAP_S, F_RATE, F_ETA, F_OLDEST,
	F_NEWEST, F_EDGE, NFIG
};

static const struct {
	const char	*name;		/* after dvrfs_ or dvrfs_stream_ */
	const char	*help;
} figs[NFIG] = {
	[F_DONE_BYTES] = { "done_bytes",
	    "Bytes of complete, verified segments within the depth." },
	[F_DEPTH_BYTES] = { "depth_bytes",
	    "Bytes of all segments the primary has within the depth." },
	[F_PARTIAL_BYTES] = { "partial_bytes",
	    "Bytes here of segments not yet complete." },
	[F_DONE_SEGS] = { "done_segments",
	    "Complete, verified segments within the depth." },
	[F_DEPTH_SEGS] = { "depth_segments",
	    "Segments the primary has within the depth." },
	[F_LAG] = { "live_lag_seconds", "Time of the newest segment on the "
	    "primary minus that of the newest complete one here." },
	[F_GAPS] = { "gaps",
	    "Time ranges the primary has that are not complete here." },
	[F_GAP_S] = { "gap_seconds",
	    "Seconds of archive the primary has that are not complete here." },
	[F_RATE] = { "fill_rate_bytes_per_second",
	    "Bytes completed per second, measured over about a second." },
	[F_ETA] = { "eta_seconds",
	    "Missing bytes divided by the fill rate." },
	[F_OLDEST] = { "oldest_timestamp_seconds",
	    "Start of the oldest complete segment." },
	[F_NEWEST] = { "newest_timestamp_seconds",
	    "Start of the newest complete segment." },
	[F_EDGE] = { "live_edge_timestamp_seconds",
	    "End of the newest segment the primary has." },
};

void
sprom_label(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '"')
			fputs("\\\"", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

void
sprom_help(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void
family(FILE *f, const char *pfx, const char *name, const char *type,
    const char *help)
{
	fprintf(f, "# HELP %s%s ", pfx, name);
	sprom_help(f, help);
	fprintf(f, "\n# TYPE %s%s %s\n", pfx, name, type);
}

/* name{mount="…"[,key="val"]} v */
static void
sample(FILE *f, const char *pfx, const char *name, const char *mount,
    const char *key, const char *val, int64_t v)
{
	fprintf(f, "%s%s{mount=\"", pfx, name);
	sprom_label(f, mount);
	if (key != NULL) {
		fprintf(f, "\",%s=\"", key);
		sprom_label(f, val);
	}
	fprintf(f, "\"} %" PRId64 "\n", v);
}

static void
figures(const struct srep *rep, const struct srow *r, int64_t lag,
    int64_t ngaps, int64_t gap_s, int64_t v[NFIG])
{
	const struct sscan *sc = &r->sc;

	v[F_DONE_BYTES] = (int64_t)sc->bytes_done;
	v[F_DEPTH_BYTES] = (int64_t)sc->bytes;
	v[F_PARTIAL_BYTES] = (int64_t)sc->bytes_partial;
	v[F_DONE_SEGS] = (int64_t)sc->segs_done;
	v[F_DEPTH_SEGS] = (int64_t)sc->segs;
	v[F_LAG] = lag;
	v[F_GAPS] = ngaps;
	v[F_GAP_S] = gap_s;
	/* Rounded as -j rounds it, so that the two agree. */
	v[F_RATE] = r->rate < 0 ? -1 : (int64_t)(r->rate + 0.5);
	v[F_ETA] = sfmt_eta(sc->bytes_done, sc->bytes, r->rate);
	v[F_OLDEST] = sc->oldest;
	v[F_NEWEST] = sc->newest;
	v[F_EDGE] = sc->edge;
}

/* The per-stream families, then the totals. */
static void
stream_figures(FILE *f, const struct srep *rep, const char *mount)
{
	int64_t (*v)[NFIG], tv[NFIG];
	struct stotal t;
	const struct srow *r;
	size_t i;
	int k;

	if ((v = calloc(rep->nrows + 1, sizeof(*v))) == NULL) {
		fputs("# out of memory\n", f);	/* promtool refuses it */
		return;
	}
	for (i = 0; i < rep->nrows; i++) {
		r = &rep->rows[i];
		figures(rep, r, srow_lag(r), (int64_t)r->sc.gaps.n,
		    sscan_gap_seconds(&r->sc), v[i]);
	}
	srep_total(rep, &t);
	figures(rep, &t.row, t.lag, (int64_t)t.ngaps, t.gap_s, tv);
	for (k = 0; k < NFIG; k++) {
		family(f, "dvrfs_stream_", figs[k].name, "gauge", figs[k].help);
		for (i = 0; i < rep->nrows; i++)
			if (v[i][k] >= 0)
				sample(f, "dvrfs_stream_", figs[k].name, mount,
				    "stream", rep->rows[i].name, v[i][k]);
	}
	for (k = 0; k < NFIG; k++) {
		family(f, "dvrfs_", figs[k].name, "gauge", figs[k].help);
		if (tv[k] >= 0)
			sample(f, "dvrfs_", figs[k].name, mount, NULL, NULL,
			    tv[k]);
	}
	free(v);
}

/* A counter of the daemon's, from the object obj (NULL: top level). */
static int64_t
live(const struct srep *rep, const char *obj, const char *key)
{
	json_t *o = rep->li.raw;
	uint64_t v;
	int b;

	if (obj != NULL)
		o = json_object_get(o, obj);
	if (jsonget_bool(o, key, &b) == 1)
		return b;
	return jsonget_uint(o, key, INT64_MAX, &v) == 1 ? (int64_t)v : 0;
}

static void
live_figures(FILE *f, const struct srep *rep, const char *m)
{
	static const struct {
		const char *name, *key, *val, *obj, *ckey;
	} c[] = {
		{ "reads_total", "result", "local", NULL, DS_READS_LOCAL },
		{ "reads_total", "result", "fetched", NULL, DS_READS_FETCHED },
		{ "reads_total", "result", "failed", NULL, DS_READS_FAILED },
		{ "read_bytes_total", "source", "local", NULL, DS_BYTES_LOCAL },
		{ "read_bytes_total", "source", "fetched", NULL,
		    DS_BYTES_FETCHED },
		{ "fetched_bytes_total", "priority", "viewer", DS_FETCHER,
		    DS_F_BYTES_VIEWER },
		{ "fetched_bytes_total", "priority", "live", DS_FETCHER,
		    DS_F_BYTES_LIVE },
		{ "fetched_bytes_total", "priority", "backfill", DS_FETCHER,
		    DS_F_BYTES_BACKFILL },
		{ "fetch_requests_total", NULL, NULL, DS_FETCHER,
		    DS_F_REQUESTS },
		{ "fetch_failures_total", NULL, NULL, DS_FETCHER,
		    DS_F_FAILURES },
		{ "fetch_retries_total", NULL, NULL, DS_FETCHER, DS_F_RETRIES },
		{ "fetch_bad_answers_total", NULL, NULL, DS_FETCHER,
		    DS_F_BAD_ANSWERS },
		{ "primary_up", NULL, NULL, DS_FETCHER, DS_F_CONNECTED },
		{ "primary_auth_failed", NULL, NULL, DS_FETCHER,
		    DS_F_AUTH_FAILED },
		{ "crawler_queued", NULL, NULL, DS_CRAWLER, DS_C_QUEUED },
	};
	static const char *help[][2] = {
		{ "reads_total", "Reads of the mount, by where they were "
		    "served from (failed: an error was returned)." },
		{ "read_bytes_total", "Bytes read from the mount, by where "
		    "they were served from." },
		{ "fetched_bytes_total", "Bytes received from the primary, by "
		    "priority." },
		{ "fetch_requests_total", "Requests sent to the primary." },
		{ "fetch_failures_total", "Requests to the primary that ended "
		    "in an error." },
		{ "fetch_retries_total", "Requests to the primary tried again "
		    "after a transient error." },
		{ "fetch_bad_answers_total", "Answers of the primary that were "
		    "malformed, short or had a wrong hash." },
		{ "primary_up", "1 when the last request reached the primary." },
		{ "primary_auth_failed", "1 when the primary refused the "
		    "cluster key on the last answer." },
		{ "crawler_queued", "Segments waiting to be copied." },
	};
	size_t i, h;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		if (i == 0 || strcmp(c[i].name, c[i - 1].name) != 0) {
			for (h = 0; strcmp(help[h][0], c[i].name) != 0; h++)
				;
			family(f, "dvrfs_", c[i].name,
			    strstr(c[i].name, "_total") ? "counter" : "gauge",
			    help[h][1]);
		}
		sample(f, "dvrfs_", c[i].name, m, c[i].key, c[i].val,
		    live(rep, c[i].obj, c[i].ckey));
	}
}

void
sprom_report(FILE *f, const struct srep *rep)
{
	const char *m = srep_mount_label(rep);

	family(f, "dvrfs_", "mounted", "gauge",
	    "1 when the store is mounted (live figures are only then).");
	sample(f, "dvrfs_", "mounted", m, NULL, NULL, rep->mnt[0] != '\0');
	family(f, "dvrfs_", "depth_seconds", "gauge",
	    "The archive depth the mount replicates and keeps.");
	sample(f, "dvrfs_", "depth_seconds", m, NULL, NULL, rep->mi.depth);
	family(f, "dvrfs_", "store_size_bytes", "gauge",
	    "Bytes of local data in the store, complete and partial.");
	sample(f, "dvrfs_", "store_size_bytes", m, NULL, NULL,
	    (int64_t)rep->store_bytes);
	family(f, "dvrfs_", "store_max_size_bytes", "gauge",
	    "The store's size cap (max_size), 0 for none.");
	sample(f, "dvrfs_", "store_max_size_bytes", m, NULL, NULL,
	    (int64_t)rep->mi.max_size);
	family(f, "dvrfs_", "hash_failures_total", "counter",
	    "Fetched files whose SHA-256 did not match, since the store was "
	    "created.");
	sample(f, "dvrfs_", "hash_failures_total", m, NULL, NULL,
	    (int64_t)rep->hash_failures);
	stream_figures(f, rep, m);
	if (rep->have_live)
		live_figures(f, rep, m);
}
