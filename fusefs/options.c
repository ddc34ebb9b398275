#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "m4f.h"
#include "options.h"

#define KEY_MAX		4096
#define DEPTH_MAX	(366LL * 86400)

/* Generic mount(8) options that mean nothing to a read-only network fs. */
static const char *const ignored[] = {
	"rw", "ro", "defaults", "_netdev", "nofail", "noauto", "auto", "user",
	"nouser", "users", "owner", "group", "exec", "noexec", "suid",
	"nosuid", "dev", "nodev", "atime", "noatime", "relatime",
	"norelatime", "strictatime", "diratime", "nodiratime", "sync",
	"async", "lazytime", "nolazytime", "silent", "loud", "nofail",
	"default_permissions", NULL
};

static int
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

int
opts_duration(const char *s, int64_t *out)
{
	char *end;
	long long v, mul = 1;

	if (s == NULL || *s < '0' || *s > '9')
		return errno = EINVAL, -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0)
		return -1;
	if (*end != '\0') {
		switch (*end) {
		case 's': mul = 1; break;
		case 'm': mul = 60; break;
		case 'h': mul = 3600; break;
		case 'd': mul = 86400; break;
		default: return errno = EINVAL, -1;
		}
		if (end[1] != '\0')
			return errno = EINVAL, -1;
	}
	if (v > INT64_MAX / mul)
		return errno = ERANGE, -1;
	*out = v * mul;
	return 0;
}

int
opts_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	if (s == NULL || *s < '0' || *s > '9')
		return errno = EINVAL, -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	if (*end != '\0') {
		switch (*end) {
		case 'k': case 'K': mul = 1ULL << 10; break;
		case 'm': case 'M': mul = 1ULL << 20; break;
		case 'g': case 'G': mul = 1ULL << 30; break;
		case 't': case 'T': mul = 1ULL << 40; break;
		default: return errno = EINVAL, -1;
		}
		if (end[1] != '\0' && strcmp(end + 1, "B") != 0 &&
		    strcmp(end + 1, "iB") != 0)
			return errno = EINVAL, -1;
	}
	if (v > UINT64_MAX / mul)
		return errno = ERANGE, -1;
	*out = v * mul;
	return 0;
}

/* An integer in [lo, hi], the whole string. */
static int
parse_int(const char *s, long lo, long hi, int *out)
{
	char *end;
	long v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

/* Reads the cluster key from path: the content less one trailing newline. */
static int
read_key_file(struct dvrfs_opts *o, const char *path, char *err, size_t errlen)
{
	char buf[KEY_MAX + 2];
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return fail(err, errlen, "cluster_key_file=%s: %s", path,
		    strerror(errno));
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return fail(err, errlen, "cluster_key_file=%s: %s", path,
		    strerror(errno));
	if (n > KEY_MAX)
		return fail(err, errlen, "cluster_key_file=%s: longer than %d "
		    "bytes", path, KEY_MAX);
	buf[n] = '\0';
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	if (n == 0 || memchr(buf, '\0', (size_t)n) != NULL)
		return fail(err, errlen, "cluster_key_file=%s: empty or "
		    "binary key", path);
	free(o->key);
	if ((o->key = strdup(buf)) == NULL)
		return fail(err, errlen, "out of memory");
	o->keylen = (size_t)n;
	return 0;
}

static int
add_stream(struct dvrfs_opts *o, const char *name, size_t len, char *err,
    size_t errlen)
{
	char **v;

	if (len == 0)
		return 0;
	if (m4f_name_check(name, len) == -1)
		return fail(err, errlen, "streams=: bad stream name '%.*s'",
		    (int)(len > 64 ? 64 : len), name);
	if ((v = realloc(o->streams, (o->nstreams + 2) * sizeof(*v))) == NULL)
		return fail(err, errlen, "out of memory");
	o->streams = v;
	if ((v[o->nstreams] = strndup(name, len)) == NULL)
		return fail(err, errlen, "out of memory");
	v[++o->nstreams] = NULL;
	return 0;
}

/* "a+b:c" — several streams in one value. */
static int
add_streams(struct dvrfs_opts *o, const char *val, char *err, size_t errlen)
{
	const char *p = val, *q;

	for (;;) {
		q = p + strcspn(p, "+:");
		if (add_stream(o, p, (size_t)(q - p), err, errlen) == -1)
			return -1;
		if (*q == '\0')
			return 0;
		p = q + 1;
	}
}

static int
set_str(char **dst, const char *val, const char *name, char *err,
    size_t errlen)
{
	if (*val == '\0')
		return fail(err, errlen, "%s= needs a value", name);
	free(*dst);
	if ((*dst = strdup(val)) == NULL)
		return fail(err, errlen, "out of memory");
	return 0;
}

static int
is_ignored(const char *name)
{
	size_t i;

	if (strncmp(name, "x-", 2) == 0 || strncmp(name, "comment=", 8) == 0)
		return 1;
	for (i = 0; ignored[i] != NULL; i++)
		if (strcmp(name, ignored[i]) == 0)
			return 1;
	return 0;
}

/* One OPTION of -o; *in_streams says the previous one was streams=. */
static int
parse_one(struct dvrfs_opts *o, char *opt, int *in_streams, int sloppy,
    char *err, size_t errlen)
{
	char *val = strchr(opt, '=');
	int64_t d;

	if (val != NULL)
		*val++ = '\0';
	if (val == NULL && *in_streams && !is_ignored(opt) &&
	    strcmp(opt, "replicate") != 0 && strcmp(opt, "allow_other") != 0 &&
	    strcmp(opt, "noallow_other") != 0 && strcmp(opt, "debug") != 0)
		return add_stream(o, opt, strlen(opt), err, errlen);
	*in_streams = 0;

	if (strcmp(opt, "store") == 0 && val != NULL)
		return set_str(&o->store, val, opt, err, errlen);
	if (strcmp(opt, "port") == 0 && val != NULL) {
		if (parse_int(val, 1, 65535, &o->port) == -1)
			return fail(err, errlen, "port=%s: not a port", val);
		return 0;
	}
	if (strcmp(opt, "replication_port") == 0 && val != NULL) {
		if (parse_int(val, 1, 65535, &o->replication_port) == -1)
			return fail(err, errlen, "replication_port=%s: not a "
			    "port", val);
		return 0;
	}
	if (strcmp(opt, "depth") == 0 && val != NULL) {
		if (opts_duration(val, &d) == -1 || d <= 0 || d > DEPTH_MAX)
			return fail(err, errlen, "depth=%s: not a duration "
			    "like 30m, 12h or 7d (at most 366d)", val);
		o->depth = d;
		return 0;
	}
	if (strcmp(opt, "timeout") == 0 && val != NULL) {
		if (opts_duration(val, &d) == -1 || d < 1 || d > 3600)
			return fail(err, errlen, "timeout=%s: not a number of "
			    "seconds from 1 to 3600", val);
		o->timeout = (int)d;
		return 0;
	}
	if (strcmp(opt, "transfers") == 0 && val != NULL) {
		if (parse_int(val, 1, 64, &o->transfers) == -1)
			return fail(err, errlen, "transfers=%s: not a number "
			    "from 1 to 64", val);
		return 0;
	}
	if (strcmp(opt, "readahead") == 0 && val != NULL) {
		if (parse_int(val, 0, 64, &o->readahead) == -1)
			return fail(err, errlen, "readahead=%s: not a number "
			    "from 0 to 64", val);
		return 0;
	}
	if (strcmp(opt, "bwlimit") == 0 && val != NULL) {
		if (opts_size(val, &o->bwlimit) == -1 ||
		    (o->bwlimit != 0 && o->bwlimit < 1024))
			return fail(err, errlen, "bwlimit=%s: not a rate like "
			    "500k or 10M (bytes per second, at least 1k)", val);
		return 0;
	}
	if (strcmp(opt, "block_size") == 0 && val != NULL) {
		uint64_t b;

		if (opts_size(val, &b) == -1 || b < 4096 || b > (64 << 20) ||
		    (b & (b - 1)) != 0)
			return fail(err, errlen, "block_size=%s: not a power "
			    "of two from 4k to 64M", val);
		o->block_size = (uint32_t)b;
		return 0;
	}
	if (strcmp(opt, "max_size") == 0 && val != NULL) {
		if (opts_size(val, &o->max_size) == -1)
			return fail(err, errlen, "max_size=%s: not a size like "
			    "500G", val);
		return 0;
	}
	if (strcmp(opt, "streams") == 0 && val != NULL) {
		*in_streams = 1;
		return add_streams(o, val, err, errlen);
	}
	if (strcmp(opt, "cluster_key") == 0 && val != NULL) {
		if (*val == '\0' || strlen(val) > KEY_MAX)
			return fail(err, errlen, "cluster_key= must have 1 to "
			    "%d bytes", KEY_MAX);
		if (set_str(&o->key, val, opt, err, errlen) == -1)
			return -1;
		o->keylen = strlen(val);
		return 0;
	}
	if (strcmp(opt, "cluster_key_file") == 0 && val != NULL)
		return read_key_file(o, val, err, errlen);
	if (strcmp(opt, "cafile") == 0 && val != NULL)
		return set_str(&o->cafile, val, opt, err, errlen);
	if (val == NULL && strcmp(opt, "replicate") == 0)
		return o->replicate = 1, 0;
	if (val == NULL && strcmp(opt, "allow_other") == 0)
		return o->allow_other = 1, 0;
	if (val == NULL && strcmp(opt, "noallow_other") == 0)
		return o->allow_other = 0, 0;
	if (val == NULL && strcmp(opt, "debug") == 0)
		return o->debug = 1, 0;
	if (val != NULL)
		val[-1] = '=';
	if (is_ignored(opt) || sloppy)
		return 0;
	return fail(err, errlen, "unknown option '%s'", opt);
}

static int
parse_list(struct dvrfs_opts *o, const char *list, int sloppy, char *err,
    size_t errlen)
{
	char *copy, *p, *opt;
	int in_streams = 0, rc = 0;

	if ((copy = strdup(list)) == NULL)
		return fail(err, errlen, "out of memory");
	for (p = copy; rc == 0 && (opt = strsep(&p, ",")) != NULL;)
		if (*opt != '\0')
			rc = parse_one(o, opt, &in_streams, sloppy, err,
			    errlen);
	free(copy);
	return rc;
}

/* HOST:/PATH, m4f://HOST[:PORT]/PATH, m4fs://…; HOST may be [v6]. */
static int
parse_spec(struct dvrfs_opts *o, const char *spec, char *err, size_t errlen)
{
	const char *p = spec, *host, *hend, *path;
	int url = 0, port = 0;

	if (strncmp(p, "m4f://", 6) == 0)
		p += 6, url = 1;
	else if (strncmp(p, "m4fs://", 7) == 0)
		p += 7, url = 1, o->tls = 1;
	else if (strstr(p, "://") != NULL)
		return fail(err, errlen, "%s: unknown scheme (use HOST:/PATH, "
		    "m4f:// or m4fs://)", spec);
	host = p;
	if (*p == '[') {
		if ((hend = strchr(p, ']')) == NULL)
			return fail(err, errlen, "%s: unclosed '['", spec);
		host = p + 1;
		p = hend + 1;
	} else {
		p += strcspn(p, url ? ":/" : ":");
		hend = p;
	}
	if (hend == host)
		return fail(err, errlen, "%s: no host (use HOST:/PATH)", spec);
	if (url && *p == ':') {
		const char *pe = p + 1 + strcspn(p + 1, "/");
		char num[8];

		if (pe - p - 1 < 1 || pe - p - 1 > 5)
			return fail(err, errlen, "%s: bad port", spec);
		memcpy(num, p + 1, (size_t)(pe - p - 1));
		num[pe - p - 1] = '\0';
		if (parse_int(num, 1, 65535, &port) == -1)
			return fail(err, errlen, "%s: bad port", spec);
		p = pe;
	} else if (!url) {
		if (*p != ':')
			return fail(err, errlen, "%s: not HOST:/PATH", spec);
		p++;
	}
	path = p;
	if (*path != '/')
		return fail(err, errlen, "%s: the path must be absolute", spec);
	if ((o->host = strndup(host, (size_t)(hend - host))) == NULL ||
	    (o->export = strdup(path)) == NULL)
		return fail(err, errlen, "out of memory");
	if (strspn(o->host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789.-:") != strlen(o->host))
		return fail(err, errlen, "%s: bad host name", spec);
	/* Drop trailing slashes, then check what is left. */
	while (strlen(o->export) > 1 && o->export[strlen(o->export) - 1] == '/')
		o->export[strlen(o->export) - 1] = '\0';
	if (strcmp(o->export, "/") != 0 && m4f_path_check(o->export + 1) == -1)
		return fail(err, errlen, "%s: bad path", spec);
	if (port != 0)
		o->port = port;
	return 0;
}

int
opts_parse(struct dvrfs_opts *o, int argc, char **argv, char *err,
    size_t errlen)
{
	const char *lists[32];
	size_t nlists = 0, i;
	int ch, sloppy = 0;

	memset(o, 0, sizeof(*o));
	o->depth = 7 * 86400;
	o->transfers = 4;
	o->readahead = 8;
	o->timeout = 10;
	o->allow_other = 1;

	/*
	 * 0, not 1: glibc then also drops the rest of an option cluster
	 * ("-hf") a previous call stopped in, which points into that call's
	 * argv.
	 */
	optind = 0;
	opterr = 0;
	while ((ch = getopt(argc, argv, "fhnN:o:st:v")) != -1) {
		switch (ch) {
		case 'f': o->foreground = 1; break;
		case 'n': case 'N': case 't': break;
		case 's': sloppy = 1; break;
		case 'v': o->verbose = 1; break;
		case 'o':
			if (nlists == sizeof(lists) / sizeof(lists[0]))
				return fail(err, errlen, "too many -o");
			lists[nlists++] = optarg;
			break;
		case 'h':
			return fail(err, errlen, "usage");
		default:
			return fail(err, errlen, "unknown flag '-%c'", optopt);
		}
	}
	if (argc - optind != 2)
		return fail(err, errlen, "usage");
	if ((o->fsname = strdup(argv[optind])) == NULL ||
	    (o->mountpoint = strdup(argv[optind + 1])) == NULL)
		return fail(err, errlen, "out of memory");
	if (parse_spec(o, argv[optind], err, errlen) == -1)
		return -1;
	for (i = 0; i < nlists; i++)
		if (parse_list(o, lists[i], sloppy, err, errlen) == -1)
			return -1;
	if (o->port == 0)
		o->port = o->tls ? 443 : 80;
	if (o->store == NULL)
		return fail(err, errlen, "store=DIR is required");
	if (o->streams != NULL && !o->replicate)
		return fail(err, errlen, "streams= needs replicate");
	return 0;
}

void
opts_clear(struct dvrfs_opts *o)
{
	size_t i;

	free(o->host);
	free(o->export);
	free(o->mountpoint);
	free(o->store);
	for (i = 0; i < o->nstreams; i++)
		free(o->streams[i]);
	free(o->streams);
	if (o->key != NULL)
		explicit_bzero(o->key, o->keylen);
	free(o->key);
	free(o->cafile);
	free(o->fsname);
	memset(o, 0, sizeof(*o));
}
