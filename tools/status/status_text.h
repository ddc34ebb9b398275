/*
 * status_text: the reports of dvrfs-status for people: the table per
 * stream, and the timeline of -t, one text bar per stream across the
 * depth. Writes to a stdio stream; errors show in ferror().
 */
#ifndef DVRFS_STATUS_TEXT_H
#define DVRFS_STATUS_TEXT_H

#include <stdint.h>
#include <stdio.h>

#include "status_report.h"

/* The cells of a timeline bar. */
#define STL_LOCAL	'#'	/* all the primary has here is local */
#define STL_PART	'+'	/* some of it is local, some missing */
#define STL_MISSING	'.'	/* the primary has it, nothing local */
#define STL_NONE	' '	/* the primary has nothing here */

/*
 * Draws sc's time line [from, to) into buf as width cells (one of the
 * STL_ characters each) and a NUL; buf has room for width + 1 bytes.
 * Returns buf.
 */
char	*stl_bar(const struct sscan *sc, int64_t from, int64_t to, char *buf,
	    size_t width);

/* The table: header line, a row per stream, the total, gaps, reads. */
void	stext_table(FILE *f, const struct srep *rep);
/* -t: the table, then a bar per stream of width cells. */
void	stext_timeline(FILE *f, const struct srep *rep, size_t width);

#endif
