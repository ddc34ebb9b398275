/*
 * status_html: dvrfs-status -H, one self-contained HTML page (inline CSS
 * and SVG, nothing loaded from elsewhere) with a timeline of the depth
 * per stream and the figures of the table.
 *
 * Each timeline is an <svg class="tl"> with data-stream, data-from and
 * data-to (the depth's times) and a viewBox SHTML_W wide: a range
 * [start, end) is a <rect> at x = (start - from) * SHTML_W / (to - from)
 * with class "prim" (the primary has it), "local" or "gap", and the times
 * in data-from and data-to; the live edge is a <line class="edge">.
 */
#ifndef DVRFS_STATUS_HTML_H
#define DVRFS_STATUS_HTML_H

#include <stdint.h>
#include <stdio.h>

#include "status_report.h"

#define SHTML_W		1000	/* viewBox width of a timeline */

/* Writes s with &, <, >, " and ' as entities. */
void	shtml_text(FILE *f, const char *s);
/* The x of time t on a timeline of [from, to), clamped to [0, SHTML_W]. */
double	shtml_x(int64_t t, int64_t from, int64_t to);
/*
 * The page; with reload, it asks the browser to load it again every
 * SHTML_RELOAD seconds (for -w, which rewrites it).
 */
#define SHTML_RELOAD	2
void	shtml_report(FILE *f, const struct srep *rep, int reload);

#endif
