/*
 * status_report: one report of dvrfs-status, as every output (table,
 * timeline, JSON, Prometheus, HTML) reads it. dvrfs-status.c fills it;
 * the status_* output modules only read it.
 */
#ifndef DVRFS_STATUS_REPORT_H
#define DVRFS_STATUS_REPORT_H

#include <limits.h>
#include <stdint.h>

#include "status_info.h"
#include "status_scan.h"

struct store;

/* One stream. */
struct srow {
	char		 name[256];
	int		 here;		/* the store has the folder */
	struct sscan	 sc;
	double		 rate;		/* bytes/s, -1 unknown */
};

struct srep {
	char		 store_dir[PATH_MAX];
	char		 mnt[PATH_MAX];	/* "" when not mounted */
	struct sinfo_mount mi;
	int		 have_live;
	struct sinfo_live li;
	int		 listing;	/* the mount has not walked the primary */
	struct store	*store;
	struct srow	*rows;
	size_t		 nrows;
	int64_t		 now;
	int64_t		 since;		/* now - depth */
	uint64_t	 hash_failures;
	uint64_t	 store_bytes;	/* local data, complete and partial */
};

/* The totals of a report. */
struct stotal {
	struct srow	 row;		/* sums; row.sc has no ranges */
	int64_t		 lag;		/* the largest, -1 unknown */
	uint64_t	 ngaps;
	int64_t		 gap_s;		/* seconds missing, all streams */
};

/* Sums the rows of rep into *t. */
void	srep_total(const struct srep *rep, struct stotal *t);
/* A stream's live lag in seconds, or -1 when unknown. */
int64_t	srow_lag(const struct srow *r);
/* Seconds covered by the gaps of a scan. */
int64_t	sscan_gap_seconds(const struct sscan *sc);
/*
 * done of total in percent, as sfmt_percent(), but never 100 while the
 * mount has not walked the primary yet (nothing is "done" then).
 */
double	srep_pct(const struct srep *rep, uint64_t done, uint64_t total);
/* The mount point, else the last one from dvrfs.json, else the store. */
const char *srep_mount_label(const struct srep *rep);

#endif
