#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crawler.h"
#include "dvrfs_status.h"
#include "fetcher.h"
#include "fs.h"
#include "log.h"
#include "options.h"
#include "status.h"
#include "store.h"

int
status_write_mount(const struct dvrfs_opts *o, const char *store_dir)
{
	char path[PATH_MAX], tmp[PATH_MAX], mnt[PATH_MAX];
	json_t *j, *streams;
	char *text = NULL;
	size_t i, len;
	int fd = -1, rc = -1, e;

	if (realpath(o->mountpoint, mnt) == NULL)
		snprintf(mnt, sizeof(mnt), "%s", o->mountpoint);
	streams = o->streams != NULL ? json_array() : json_null();
	for (i = 0; i < o->nstreams; i++)
		json_array_append_new(streams, json_string(o->streams[i]));
	j = json_pack("{s:s, s:s, s:I, s:b, s:o, s:I, s:I}", DS_SPEC, o->fsname,
	    DS_MOUNTPOINT, mnt, DS_DEPTH, (json_int_t)o->depth, DS_REPLICATE,
	    o->replicate, DS_STREAMS, streams, DS_PID, (json_int_t)getpid(),
	    DS_MAX_SIZE, (json_int_t)o->max_size);
	if (j == NULL || (text = json_dumps(j, JSON_INDENT(2))) == NULL) {
		errno = ENOMEM;
		goto out;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/" DVRFS_MOUNT_FILE,
	    store_dir) >=
	    sizeof(path) || (size_t)snprintf(tmp, sizeof(tmp),
	    "%s/" DVRFS_MOUNT_TMP, store_dir) >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		goto out;
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) == -1)
		goto out;
	len = strlen(text);
	if (write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 ||
	    fsync(fd) == -1)
		goto out;
	if (close(fd) == -1) {
		fd = -1;
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) == -1)
		goto out;
	rc = 0;
out:
	e = errno;
	if (fd >= 0)
		close(fd);
	if (rc == -1)
		unlink(tmp);
	free(text);
	json_decref(j);
	errno = e;
	return rc;
}

static void
rate_put(void *arg, const char *stream, double bps)
{
	json_object_set_new(arg, stream, json_integer((json_int_t)(bps + 0.5)));
}

char *
status_json(struct fs *fs, struct fetcher *f, struct crawler *cr,
    struct store *store)
{
	struct fs_counters c = { 0 };
	struct fetcher_stats fst = { 0 };
	struct crawler_stats cst = { 0 };
	uint64_t hash_failures = 0;
	json_t *j, *rates;
	char *text;

	if (fs != NULL)
		fs_counters(fs, &c);
	if (f != NULL)
		fetcher_stats(f, &fst);
	if (cr != NULL)
		crawler_stats(cr, &cst);
	/* Polled every second by dvrfs-status -w: no scan of the store. */
	if (store != NULL)
		hash_failures = store_hash_failures(store);
	j = json_pack("{s:I, s:I, s:I, s:I, s:I, "
	    "s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b, s:b}, "
	    "s:{s:I, s:I, s:I, s:I, s:I, s:b}, s:I}",
	    DS_READS_LOCAL, (json_int_t)c.reads_local,
	    DS_READS_FETCHED, (json_int_t)c.reads_fetched,
	    DS_READS_FAILED, (json_int_t)c.reads_failed,
	    DS_BYTES_LOCAL, (json_int_t)c.bytes_local,
	    DS_BYTES_FETCHED, (json_int_t)c.bytes_fetched,
	    DS_FETCHER,
	    DS_F_BYTES_VIEWER, (json_int_t)fst.bytes[FETCH_VIEWER],
	    DS_F_BYTES_LIVE, (json_int_t)fst.bytes[FETCH_LIVE],
	    DS_F_BYTES_BACKFILL, (json_int_t)fst.bytes[FETCH_BACKFILL],
	    DS_F_REQUESTS, (json_int_t)fst.requests,
	    DS_F_FAILURES, (json_int_t)fst.failures,
	    DS_F_RETRIES, (json_int_t)fst.retries,
	    DS_F_BAD_ANSWERS, (json_int_t)fst.bad_answers,
	    DS_F_CONNECTED, fst.connected,
	    DS_F_AUTH_FAILED, fst.auth_failed,
	    DS_CRAWLER,
	    DS_C_DONE, (json_int_t)cst.done,
	    DS_C_DONE_BYTES, (json_int_t)cst.done_bytes,
	    DS_C_FAILED, (json_int_t)cst.failed,
	    DS_C_QUEUED, (json_int_t)cst.queued,
	    DS_C_EXPIRED, (json_int_t)cst.expired,
	    DS_C_LISTING, cr != NULL && cst.replicating && cst.last_listing == 0,
	    DS_HASH_FAILURES, (json_int_t)hash_failures);
	if (j == NULL)
		return NULL;
	if (cr != NULL && (rates = json_object()) != NULL) {
		crawler_rates(cr, rate_put, rates);
		json_object_set_new(json_object_get(j, DS_CRAWLER),
		    DS_C_RATES, rates);
	}
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return text;
}
