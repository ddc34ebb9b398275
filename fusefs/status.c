#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crawler.h"
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
	j = json_pack("{s:s, s:s, s:I, s:b, s:o, s:I}", "spec", o->fsname,
	    "mountpoint", mnt, "depth", (json_int_t)o->depth, "replicate",
	    o->replicate, "streams", streams, "pid", (json_int_t)getpid());
	if (j == NULL || (text = json_dumps(j, JSON_INDENT(2))) == NULL) {
		errno = ENOMEM;
		goto out;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/dvrfs.json", store_dir) >=
	    sizeof(path) || (size_t)snprintf(tmp, sizeof(tmp),
	    "%s/.dvrfs.json.tmp", store_dir) >= sizeof(tmp)) {
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

char *
status_json(struct fs *fs, struct fetcher *f, struct crawler *cr,
    struct store *store)
{
	struct fs_counters c = { 0 };
	struct fetcher_stats fst = { 0 };
	struct crawler_stats cst = { 0 };
	uint64_t hash_failures = 0;
	json_t *j;
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
	    "s:{s:I, s:I, s:I, s:I, s:I, s:I, s:b, s:b}, "
	    "s:{s:I, s:I, s:I, s:I, s:I, s:b}, s:I}",
	    "reads_local", (json_int_t)c.reads_local,
	    "reads_fetched", (json_int_t)c.reads_fetched,
	    "reads_failed", (json_int_t)c.reads_failed,
	    "bytes_local", (json_int_t)c.bytes_local,
	    "bytes_fetched", (json_int_t)c.bytes_fetched,
	    "fetcher",
	    "bytes_viewer", (json_int_t)fst.bytes[FETCH_VIEWER],
	    "bytes_live", (json_int_t)fst.bytes[FETCH_LIVE],
	    "bytes_backfill", (json_int_t)fst.bytes[FETCH_BACKFILL],
	    "requests", (json_int_t)fst.requests,
	    "failures", (json_int_t)fst.failures,
	    "bad_answers", (json_int_t)fst.bad_answers,
	    "connected", fst.connected,
	    "auth_failed", fst.auth_failed,
	    "crawler",
	    "done", (json_int_t)cst.done,
	    "done_bytes", (json_int_t)cst.done_bytes,
	    "failed", (json_int_t)cst.failed,
	    "queued", (json_int_t)cst.queued,
	    "expired", (json_int_t)cst.expired,
	    "listing", cr != NULL && cst.replicating && cst.last_listing == 0,
	    "hash_failures", (json_int_t)hash_failures);
	if (j == NULL)
		return NULL;
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return text;
}
