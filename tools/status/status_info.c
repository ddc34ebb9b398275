#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dvrfs_status.h"
#include "jsonget.h"
#include "status_info.h"

#define MOUNT_JSON_MAX	(64 * 1024)

/* A counter: absent is 0, anything but a non-negative integer is bad. */
static int
counter(json_t *obj, const char *key, uint64_t *out)
{
	*out = 0;
	return jsonget_uint(obj, key, UINT64_MAX, out) == -1 ? -1 : 0;
}

/* A boolean: absent or null leaves *out as it is, another type is bad. */
static int
flag(json_t *obj, const char *key, int *out)
{
	return jsonget_bool(obj, key, out) == -1 ? -1 : 0;
}

/* key's object of non-negative integers, or NULL when absent. */
static int
rates(json_t *obj, json_t **out)
{
	json_t *r = json_object_get(obj, DS_C_RATES), *v;
	const char *k;

	*out = NULL;
	if (r == NULL)
		return 0;
	if (!json_is_object(r))
		return -1;
	json_object_foreach(r, k, v)
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			return -1;
	*out = r;
	return 0;
}

double
sinfo_live_rate(const struct sinfo_live *l, const char *stream)
{
	json_t *v;

	if (l->rates == NULL)
		return -1;
	v = json_object_get(l->rates, stream);
	return v != NULL ? (double)json_integer_value(v) : 0.0;
}

int
sinfo_live_parse(const char *text, size_t len, struct sinfo_live *l)
{
	json_t *f, *c;
	uint64_t skip;

	memset(l, 0, sizeof(*l));
	l->connected = -1;
	if ((l->raw = json_loadb(text, len, 0, NULL)) == NULL ||
	    !json_is_object(l->raw))
		goto bad;
	if (counter(l->raw, DS_READS_LOCAL, &l->reads_local) == -1 ||
	    counter(l->raw, DS_READS_FETCHED, &l->reads_fetched) == -1 ||
	    counter(l->raw, DS_READS_FAILED, &l->reads_failed) == -1 ||
	    counter(l->raw, DS_BYTES_LOCAL, &l->bytes_local) == -1 ||
	    counter(l->raw, DS_BYTES_FETCHED, &l->bytes_fetched) == -1 ||
	    counter(l->raw, DS_HASH_FAILURES, &l->hash_failures) == -1)
		goto bad;
	if ((f = json_object_get(l->raw, DS_FETCHER)) != NULL) {
		if (!json_is_object(f) ||
		    flag(f, DS_F_CONNECTED, &l->connected) == -1 ||
		    flag(f, DS_F_AUTH_FAILED, &l->auth_failed) == -1 ||
		    counter(f, DS_F_REQUESTS, &skip) == -1)
			goto bad;
	}
	if ((c = json_object_get(l->raw, DS_CRAWLER)) != NULL) {
		if (!json_is_object(c) ||
		    counter(c, DS_C_DONE_BYTES, &l->crawler_done_bytes) == -1 ||
		    counter(c, DS_C_QUEUED, &l->crawler_queued) == -1 ||
		    flag(c, DS_C_LISTING, &l->listing) == -1 ||
		    rates(c, &l->rates) == -1)
			goto bad;
	}
	return 0;
bad:
	errno = EINVAL;
	return -1;
}

void
sinfo_live_clear(struct sinfo_live *l)
{
	if (l == NULL)
		return;
	json_decref(l->raw);
	memset(l, 0, sizeof(*l));
}

/* A copy of a string into *out; absent or null leaves *out as it is. */
static int
dup_str(json_t *obj, const char *key, char **out)
{
	const char *s;
	int r;

	if ((r = jsonget_str(obj, key, &s)) == -1)
		return errno = EINVAL, -1;
	if (r == 1 && (*out = strdup(s)) == NULL)
		return -1;
	return 0;
}

int
sinfo_mount_parse(const char *text, size_t len, struct sinfo_mount *m)
{
	json_t *j, *v, *s;
	uint64_t depth = SINFO_DEPTH_DEFAULT, pid = 0;
	size_t i;
	int rc = -1;

	memset(m, 0, sizeof(*m));
	m->depth = SINFO_DEPTH_DEFAULT;
	if ((j = json_loadb(text, len, 0, NULL)) == NULL || !json_is_object(j))
		goto bad;
	if (dup_str(j, DS_SPEC, &m->spec) == -1 ||
	    dup_str(j, DS_MOUNTPOINT, &m->mountpoint) == -1)
		goto out;
	/* Absent, the depth is the default; unlike the others, null is bad. */
	if (json_is_null(json_object_get(j, DS_DEPTH)) ||
	    jsonget_uint(j, DS_DEPTH, SINFO_DEPTH_MAX, &depth) == -1 ||
	    depth == 0)
		goto bad;
	m->depth = (int64_t)depth;
	if (flag(j, DS_REPLICATE, &m->replicate) == -1 ||
	    jsonget_uint(j, DS_PID, INT_MAX, &pid) == -1 ||
	    jsonget_uint(j, DS_MAX_SIZE, UINT64_MAX, &m->max_size) == -1)
		goto bad;
	m->pid = (long)pid;
	if ((v = json_object_get(j, DS_STREAMS)) != NULL && !json_is_null(v)) {
		if (!json_is_array(v))
			goto bad;
		if ((m->streams = calloc(json_array_size(v) + 1,
		    sizeof(*m->streams))) == NULL)
			goto out;
		json_array_foreach(v, i, s) {
			/* A stream is a folder name: no "..", no '/' at ends. */
			if (!json_is_string(s) || *json_string_value(s) == '\0' ||
			    json_string_value(s)[0] == '/' ||
			    strstr(json_string_value(s), "..") != NULL)
				goto bad;
			if ((m->streams[i] = strdup(json_string_value(s))) ==
			    NULL)
				goto out;
			m->nstreams = i + 1;
		}
	}
	rc = 0;
	goto out;
bad:
	errno = EINVAL;
out:
	json_decref(j);
	return rc;
}

int
sinfo_mount_load(const char *store, struct sinfo_mount *m)
{
	char path[PATH_MAX], *buf = NULL;
	ssize_t n;
	size_t len = 0;
	int fd, rc = -1, e;

	memset(m, 0, sizeof(*m));
	m->depth = SINFO_DEPTH_DEFAULT;
	if ((size_t)snprintf(path, sizeof(path), "%s/" DVRFS_MOUNT_FILE, store) >=
	    sizeof(path))
		return errno = ENAMETOOLONG, -1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	if ((buf = malloc(MOUNT_JSON_MAX)) == NULL)
		goto out;
	while ((n = read(fd, buf + len, MOUNT_JSON_MAX - len)) > 0)
		len += (size_t)n;
	if (n < 0)
		goto out;
	if (len == MOUNT_JSON_MAX) {
		errno = EFBIG;
		goto out;
	}
	rc = sinfo_mount_parse(buf, len, m);
out:
	e = errno;
	close(fd);
	free(buf);
	errno = e;
	return rc;
}

void
sinfo_mount_clear(struct sinfo_mount *m)
{
	size_t i;

	if (m == NULL)
		return;
	free(m->spec);
	free(m->mountpoint);
	for (i = 0; m->streams != NULL && m->streams[i] != NULL; i++)
		free(m->streams[i]);
	free(m->streams);
	memset(m, 0, sizeof(*m));
}
