/*
 * status_prom: dvrfs-status -p, a report in the Prometheus text
 * exposition format 0.0.4, for node_exporter's textfile collector.
 * Every series has a mount label (srep_mount_label()); per-stream series
 * (dvrfs_stream_*) a stream label too, and the totals of the same figures
 * are the dvrfs_* families without it. Base units, counters end in
 * _total. Writes to a stdio stream; errors show in ferror().
 */
#ifndef DVRFS_STATUS_PROM_H
#define DVRFS_STATUS_PROM_H

#include <stdio.h>

#include "status_report.h"

/* Writes s as a label value, escaped: \\, \" and \n. */
void	sprom_label(FILE *f, const char *s);
/* Writes s as HELP text, escaped: \\ and \n. */
void	sprom_help(FILE *f, const char *s);

void	sprom_report(FILE *f, const struct srep *rep);

#endif
