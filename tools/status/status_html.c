#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "status_fmt.h"
#include "status_html.h"

#define GAP_MIN_W	2.0	/* a gap is never drawn narrower (viewBox) */
#define AXIS_TICKS	4	/* spaces between axis labels */

static const char css[] =
	":root{--ok:#2f9e5f;--gap:#e0533d;--prim:#b9c6d6;--none:#eef1f5;"
	"--ink:#1d2733;--mute:#5f6b7a;--card:#fff;--bg:#f3f5f8}"
	"*{box-sizing:border-box}"
	"body{margin:0;background:var(--bg);color:var(--ink);"
	"font:15px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}"
	"main{max-width:1180px;margin:0 auto;padding:16px}"
	"header h1{font-size:1.35em;margin:0 0 2px}"
	"header p{margin:0 0 12px;color:var(--mute);font-size:.9em;"
	"overflow-wrap:anywhere}"
	".card{background:var(--card);border-radius:10px;padding:12px 14px;"
	"margin:0 0 12px;box-shadow:0 1px 3px rgba(0,0,0,.08)}"
	".card h2{display:flex;justify-content:space-between;align-items:"
	"baseline;margin:0 0 6px;font-size:1.1em;overflow-wrap:anywhere}"
	".pct{font-variant-numeric:tabular-nums;color:var(--ok)}"
	".pct.low{color:var(--ink)}"
	"dl{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,"
	"1fr));gap:4px 12px;margin:0 0 10px}"
	"dl div{min-width:0}"
	"dt{font-size:.75em;text-transform:uppercase;letter-spacing:.04em;"
	"color:var(--mute)}"
	"dd{margin:0;font-variant-numeric:tabular-nums;font-weight:600;"
	"white-space:nowrap;overflow:hidden;text-overflow:ellipsis}"
	"svg.tl{display:block;width:100%;height:30px;border-radius:4px}"
	".tl .none{fill:url(#hatch)}.tl .prim{fill:var(--prim)}"
	".tl .local{fill:var(--ok)}.tl .gap{fill:var(--gap)}"
	".tl .edge{stroke:var(--ink);stroke-width:2}"
	".axis{position:relative;height:1.4em;font-size:.75em;"
	"color:var(--mute);font-variant-numeric:tabular-nums}"
	".axis span{position:absolute;top:2px;transform:translateX(-50%);"
	"white-space:nowrap}"
	".axis span:first-child{transform:none}"
	".axis span:last-child{transform:translateX(-100%)}"
	".legend{display:flex;flex-wrap:wrap;gap:6px 16px;font-size:.85em;"
	"color:var(--mute);margin:0 0 12px}"
	".legend i{display:inline-block;width:14px;height:14px;"
	"vertical-align:-2px;margin-right:5px;border-radius:3px}"
	".gaps{font-size:.85em;color:var(--mute);margin:6px 0 0}"
	"footer{font-size:.85em;color:var(--mute)}"
	"@media(max-width:600px){main{padding:10px}body{font-size:14px}"
	"dl{grid-template-columns:repeat(2,1fr)}.axis span.mid{display:none}}";

void
shtml_text(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default: fputc(*s, f); break;
		}
	}
}

double
shtml_x(int64_t t, int64_t from, int64_t to)
{
	double x;

	if (to <= from)
		return 0;
	x = (double)(t - from) * SHTML_W / (double)(to - from);
	return x < 0 ? 0 : x > SHTML_W ? SHTML_W : x;
}

/* The ranges of r as rects of class cls. */
static void
rects(FILE *f, const struct sscan_ranges *r, const char *cls, int64_t from,
    int64_t to, double min_w)
{
	double x, w;
	size_t i;

	for (i = 0; i < r->n; i++) {
		x = shtml_x(r->v[i].start, from, to);
		w = shtml_x(r->v[i].end, from, to) - x;
		if (w < min_w) {
			w = min_w;
			if (x + w > SHTML_W)
				x = SHTML_W - w;
		}
		fprintf(f, "<rect class=\"%s\" data-from=\"%" PRId64 "\" "
		    "data-to=\"%" PRId64 "\" x=\"%.2f\" y=\"0\" width=\"%.2f\" "
		    "height=\"30\"/>", cls, r->v[i].start, r->v[i].end, x, w);
	}
}

static void
timeline(FILE *f, const struct srep *rep, const struct srow *r)
{
	const struct sscan *sc = &r->sc;
	int64_t from = rep->since, to = rep->now;
	double x;

	fprintf(f, "<svg class=\"tl\" viewBox=\"0 0 %d 30\" "
	    "preserveAspectRatio=\"none\" data-stream=\"", SHTML_W);
	shtml_text(f, r->name);
	fprintf(f, "\" data-from=\"%" PRId64 "\" data-to=\"%" PRId64 "\" "
	    "role=\"img\" aria-label=\"timeline of ", from, to);
	shtml_text(f, r->name);
	fprintf(f, "\"><rect class=\"none\" x=\"0\" y=\"0\" width=\"%d\" "
	    "height=\"30\"/>", SHTML_W);
	rects(f, &sc->prim, "prim", from, to, 0);
	rects(f, &sc->local, "local", from, to, 0);
	rects(f, &sc->gaps, "gap", from, to, GAP_MIN_W);
	if (sc->edge >= 0) {
		x = shtml_x(sc->edge, from, to);
		fprintf(f, "<line class=\"edge\" data-t=\"%" PRId64 "\" "
		    "x1=\"%.2f\" x2=\"%.2f\" y1=\"0\" y2=\"30\" "
		    "vector-effect=\"non-scaling-stroke\"/>", sc->edge, x, x);
	}
	fputs("</svg>\n", f);
}

/* Times under a timeline: HH:MM, with the date when the depth is days. */
static void
axis(FILE *f, const struct srep *rep)
{
	int64_t span = rep->now - rep->since, t;
	char buf[32];
	struct tm tm;
	time_t tt;
	int i;

	fputs("<div class=\"axis\">", f);
	for (i = 0; i <= AXIS_TICKS; i++) {
		t = rep->since + span * i / AXIS_TICKS;
		tt = (time_t)t;
		if (gmtime_r(&tt, &tm) == NULL || strftime(buf, sizeof(buf),
		    span > 86400 ? "%m-%d %H:%M" : "%H:%M:%S", &tm) == 0)
			buf[0] = '\0';
		fprintf(f, "<span%s style=\"left:%d%%\">%s%s</span>",
		    i > 0 && i < AXIS_TICKS ? " class=\"mid\"" : "",
		    100 * i / AXIS_TICKS, i == AXIS_TICKS ? "now " : "", buf);
	}
	fputs("</div>\n", f);
}

static void
figure(FILE *f, const char *name, const char *value)
{
	fprintf(f, "<div><dt>%s</dt><dd>%s</dd></div>", name, value);
}

/* done, total, rate, ETA, lag, segments, gaps of a row. */
static void
figures(FILE *f, const struct srow *r, int64_t lag, size_t ngaps)
{
	const struct sscan *sc = &r->sc;
	char a[32], b[32], v[80];

	fputs("<dl>", f);
	snprintf(v, sizeof(v), "%s of %s", sfmt_bytes(sc->bytes_done, a,
	    sizeof(a)), sfmt_bytes(sc->bytes, b, sizeof(b)));
	figure(f, "done", v);
	snprintf(v, sizeof(v), "%" PRIu64 " / %" PRIu64, sc->segs_done,
	    sc->segs);
	figure(f, "segments", v);
	figure(f, "rate", sfmt_rate(r->rate, a, sizeof(a)));
	figure(f, "eta", sfmt_duration(sfmt_eta(sc->bytes_done, sc->bytes,
	    r->rate), a, sizeof(a)));
	figure(f, "live lag", sfmt_duration(lag, a, sizeof(a)));
	snprintf(v, sizeof(v), "%zu", ngaps);
	figure(f, "gaps", v);
	fputs("</dl>\n", f);
}

static void
title(FILE *f, const struct srep *rep, const char *name, uint64_t done,
    uint64_t total)
{
	double p = srep_pct(rep, done, total);

	fputs("<h2><span>", f);
	shtml_text(f, name);
	fprintf(f, "</span><span class=\"pct%s\">%.1f%%</span></h2>\n",
	    p < 99.95 ? " low" : "", p);
}

static void
stream(FILE *f, const struct srep *rep, const struct srow *r)
{
	char a[32], b[32];
	size_t g;

	fputs("<section class=\"card stream\" data-stream=\"", f);
	shtml_text(f, r->name);
	fputs("\">\n", f);
	title(f, rep, r->name, r->sc.bytes_done, r->sc.bytes);
	figures(f, r, srow_lag(r), r->sc.gaps.n);
	timeline(f, rep, r);
	axis(f, rep);
	if (r->sc.gaps.n > 0) {
		fputs("<p class=\"gaps\">gaps: ", f);
		for (g = 0; g < r->sc.gaps.n && g < 3; g++)
			fprintf(f, "%s%s .. %s", g ? ", " : "",
			    sfmt_time(r->sc.gaps.v[g].start, a, sizeof(a)),
			    sfmt_time(r->sc.gaps.v[g].end, b, sizeof(b)));
		if (r->sc.gaps.n > 3)
			fprintf(f, " and %zu more", r->sc.gaps.n - 3);
		fputs("</p>\n", f);
	}
	fputs("</section>\n", f);
}

static void
head(FILE *f, const struct srep *rep, int reload)
{
	char a[32], b[32];

	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	    "<meta name=\"viewport\" content=\"width=device-width,"
	    "initial-scale=1\">", f);
	if (reload)
		fprintf(f, "<meta http-equiv=\"refresh\" content=\"%d\">",
		    SHTML_RELOAD);
	fputs("<title>dvrfs ", f);
	shtml_text(f, srep_mount_label(rep));
	fprintf(f, "</title><style>%s</style></head>\n<body><main>\n", css);
	/* One hatch for every timeline: "the primary has nothing here". */
	fputs("<svg width=\"0\" height=\"0\" style=\"position:absolute\" "
	    "aria-hidden=\"true\"><defs><pattern id=\"hatch\" width=\"8\" "
	    "height=\"8\" patternUnits=\"userSpaceOnUse\" "
	    "patternTransform=\"rotate(45)\"><rect width=\"8\" height=\"8\" "
	    "fill=\"#eef1f5\"/><rect width=\"3\" height=\"8\" "
	    "fill=\"#d9dee5\"/></pattern></defs></svg>\n", f);
	fputs("<header><h1>dvrfs ", f);
	shtml_text(f, srep_mount_label(rep));
	fputs("</h1><p>", f);
	if (rep->mi.spec != NULL) {
		fputs(rep->mnt[0] ? "from " : "not mounted, last from ", f);
		shtml_text(f, rep->mi.spec);
	} else
		fputs(rep->mnt[0] ? "mounted" : "not mounted", f);
	fprintf(f, " &middot; depth %s &middot; store ",
	    sfmt_duration(rep->mi.depth, a, sizeof(a)));
	shtml_text(f, rep->store_dir);
	fprintf(f, " &middot; updated %s</p></header>\n",
	    sfmt_time(rep->now, b, sizeof(b)));
}

static void
legend(FILE *f)
{
	fputs("<div class=\"legend\">"
	    "<span><i style=\"background:var(--ok)\"></i>local</span>"
	    "<span><i style=\"background:var(--gap)\"></i>missing here</span>"
	    "<span><i style=\"background:var(--prim)\"></i>on the primary"
	    "</span><span><svg width=\"14\" height=\"14\" style=\"vertical-align:"
	    "-2px;margin-right:5px\"><rect width=\"14\" height=\"14\" rx=\"3\" "
	    "fill=\"url(#hatch)\"/></svg>not on the primary</span><span><i style=\"background:var(--ink);"
	    "width:3px\"></i>live edge</span></div>\n", f);
}

static void
foot(FILE *f, const struct srep *rep)
{
	char a[32], b[32];

	fputs("<footer><p>", f);
	if (rep->have_live)
		fprintf(f, "primary %s &middot; reads %" PRIu64 " local, %" PRIu64
		    " fetched, %" PRIu64 " failed (%s local, %s fetched)",
		    rep->li.connected == 0 ? "<b>unreachable</b>" :
		    "reachable", rep->li.reads_local, rep->li.reads_fetched,
		    rep->li.reads_failed,
		    sfmt_bytes(rep->li.bytes_local, a, sizeof(a)),
		    sfmt_bytes(rep->li.bytes_fetched, b, sizeof(b)));
	else
		fputs("not mounted: no live figures", f);
	fprintf(f, " &middot; hash failures %" PRIu64 " &middot; store %s",
	    rep->hash_failures, sfmt_bytes(rep->store_bytes, a, sizeof(a)));
	if (rep->mi.max_size > 0)
		fprintf(f, " of %s", sfmt_bytes(rep->mi.max_size, b, sizeof(b)));
	fputs("</p></footer>\n", f);
}

void
shtml_report(FILE *f, const struct srep *rep, int reload)
{
	struct stotal t;
	size_t i;

	srep_total(rep, &t);
	head(f, rep, reload);
	fputs("<section class=\"card total\">\n", f);
	title(f, rep, "all streams", t.row.sc.bytes_done, t.row.sc.bytes);
	figures(f, &t.row, t.lag, (size_t)t.ngaps);
	fputs("</section>\n", f);
	legend(f);
	for (i = 0; i < rep->nrows; i++)
		stream(f, rep, &rep->rows[i]);
	foot(f, rep);
	fputs("</main></body></html>\n", f);
}
