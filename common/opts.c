#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "m4f.h"
#include "opts.h"

#define KEY_MAX		4096

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

int
opts_int(const char *s, long lo, long hi, int *out)
{
	char *end;
	long v;

	if (s == NULL || *s < '0' || *s > '9')
		return errno = EINVAL, -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return errno = errno ? errno : EINVAL, -1;
	if (v < lo || v > hi)
		return errno = ERANGE, -1;
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

/*
 * One stream of streams=: NAME or NAME:DEPTH (len bytes at item). An
 * empty item is skipped (streams=a++b).
 */
static int
add_stream(struct dvrfs_opts *o, const char *item, size_t len, char *err,
    size_t errlen)
{
	const char *colon = memchr(item, ':', len);
	size_t nlen = colon != NULL ? (size_t)(colon - item) : len;
	int64_t depth = 0;
	int64_t *d;
	char **v, dbuf[32];

	if (len == 0)
		return 0;
	if (m4f_name_check(item, nlen) == -1)
		return fail(err, errlen, "streams=: bad stream name '%.*s'",
		    (int)(nlen > 64 ? 64 : nlen), item);
	if (colon != NULL) {
		size_t dlen = len - nlen - 1;

		if (dlen == 0 || dlen >= sizeof(dbuf))
			goto bad_depth;
		memcpy(dbuf, colon + 1, dlen);
		dbuf[dlen] = '\0';
		if (opts_duration(dbuf, &depth) == -1 || depth < 1 ||
		    depth > OPTS_DEPTH_MAX)
			goto bad_depth;
	}
	if ((v = realloc(o->streams, (o->nstreams + 2) * sizeof(*v))) == NULL)
		return fail(err, errlen, "out of memory");
	o->streams = v;
	if ((d = realloc(o->stream_depth, (o->nstreams + 1) *
	    sizeof(*d))) == NULL)
		return fail(err, errlen, "out of memory");
	o->stream_depth = d;
	if ((v[o->nstreams] = strndup(item, nlen)) == NULL)
		return fail(err, errlen, "out of memory");
	d[o->nstreams] = depth;
	v[++o->nstreams] = NULL;
	return 0;
bad_depth:
	return fail(err, errlen, "streams=: depth of '%.*s' is not a duration "
	    "like 30m, 12h or 7d (at most 366d)", (int)(nlen > 64 ? 64 : nlen),
	    item);
}

/* "news:30d+sport:7d+weather": several streams in one value. */
static int
add_streams(struct dvrfs_opts *o, const char *val, char *err, size_t errlen)
{
	const char *p = val, *q;

	for (;;) {
		q = p + strcspn(p, "+");
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

static int
opt_key(struct dvrfs_opts *o, const char *val, char *err, size_t errlen)
{
	if (*val == '\0' || strlen(val) > KEY_MAX)
		return fail(err, errlen, "cluster_key= must have 1 to %d bytes",
		    KEY_MAX);
	if (set_str(&o->key, val, "cluster_key", err, errlen) == -1)
		return -1;
	o->keylen = strlen(val);
	return 0;
}

static int
opt_streams(struct dvrfs_opts *o, const char *val, char *err, size_t errlen)
{
	return add_streams(o, val, err, errlen);
}

enum opt_kind {
	OPT_STR,	/* char *, not empty */
	OPT_INT,	/* int in [lo, hi] */
	OPT_DURATION,	/* seconds (30s, 10m, 2h, 7d) in [lo, hi] */
	OPT_SIZE,	/* bytes (64k, 2M, 1G) in [lo, hi], or 0 if zero_ok */
	OPT_POW2,	/* OPT_SIZE, a power of two */
	OPT_FLAG,	/* no value: the int field is set to flag */
	OPT_FUNC,	/* a value handed to func */
};

/*
 * One mount option: its name, how its value is read, where it goes. The
 * error for a bad value is "NAME=VALUE: " then what.
 */
struct opt_def {
	const char	*name;
	enum opt_kind	 kind;
	size_t		 off;		/* the field in struct dvrfs_opts */
	size_t		 size;		/* its size: int, int64_t, uint32_t… */
	int64_t		 lo, hi;
	int		 flag;		/* OPT_FLAG: the value set */
	int		 zero_ok;	/* OPT_SIZE: 0 (none) is allowed too */
	int		(*func)(struct dvrfs_opts *, const char *, char *,
			    size_t);
	const char	*what;
	int		 who;		/* OPTS_MOUNT, OPTS_RESTORE */
};

#define M	OPTS_MOUNT
#define MR	(OPTS_MOUNT | OPTS_RESTORE)
#define FIELD(f)	offsetof(struct dvrfs_opts, f), \
			sizeof(((struct dvrfs_opts *)0)->f)

static const struct opt_def opt_table[] = {
	{ "store", OPT_STR, FIELD(store), .what = "", .who = M },
	{ "cafile", OPT_STR, FIELD(cafile), .what = "", .who = MR },
	{ "port", OPT_INT, FIELD(port), 1, 65535, .what = "not a port",
	    .who = MR },
	{ "replication_port", OPT_INT, FIELD(replication_port), 1, 65535,
	    .what = "not a port", .who = MR },
	{ "transfers", OPT_INT, FIELD(transfers), 1, 64,
	    .what = "not a number from 1 to 64", .who = MR },
	{ "readahead", OPT_INT, FIELD(readahead), 0, 64,
	    .what = "not a number from 0 to 64", .who = M },
	{ "depth", OPT_DURATION, FIELD(depth), 1, OPTS_DEPTH_MAX,
	    .what = "not a duration like 30m, 12h or 7d (at most 366d)",
	    .who = MR },
	{ "timeout", OPT_DURATION, FIELD(timeout), 1, 3600,
	    .what = "not a number of seconds from 1 to 3600", .who = MR },
	{ "bwlimit", OPT_SIZE, FIELD(bwlimit), 1024, INT64_MAX, .zero_ok = 1,
	    .what = "not a rate like 500k or 10M (bytes per second, at least "
	    "1k)", .who = MR },
	{ "max_size", OPT_SIZE, FIELD(max_size), 0, INT64_MAX,
	    .what = "not a size like 500G", .who = M },
	{ "block_size", OPT_POW2, FIELD(block_size), 4096, 64 << 20,
	    .what = "not a power of two from 4k to 64M", .who = M },
	{ "replicate", OPT_FLAG, FIELD(replicate), .flag = 1, .who = M },
	{ "allow_other", OPT_FLAG, FIELD(allow_other), .flag = 1, .who = M },
	{ "noallow_other", OPT_FLAG, FIELD(allow_other), .flag = 0, .who = M },
	{ "debug", OPT_FLAG, FIELD(debug), .flag = 1, .who = M },
	{ "streams", OPT_FUNC, .func = opt_streams, .who = MR },
	{ "cluster_key", OPT_FUNC, .func = opt_key, .who = MR },
	{ "cluster_key_file", OPT_FUNC, .func = read_key_file, .who = MR },
};

static const struct opt_def *
opt_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(opt_table) / sizeof(opt_table[0]); i++)
		if (strcmp(opt_table[i].name, name) == 0)
			return &opt_table[i];
	return NULL;
}

_Static_assert(sizeof(int) == sizeof(int32_t), "int fields are 32 bits");

/* Stores v into the integer field of size d->size at d->off. */
static void
opt_store(struct dvrfs_opts *o, const struct opt_def *d, int64_t v)
{
	char *f = (char *)o + d->off;

	switch (d->size) {
	case sizeof(int32_t): {
		int32_t x = (int32_t)v;

		memcpy(f, &x, sizeof(x));
		break;
	}
	default: {
		int64_t x = v;

		memcpy(f, &x, sizeof(x));
		break;
	}
	}
}

/* Applies the value val of option d; 0, or -1 with err set. */
static int
opt_apply(struct dvrfs_opts *o, const struct opt_def *d, const char *val,
    char *err, size_t errlen)
{
	int64_t v = 0;
	uint64_t u;
	int i, ok;

	switch (d->kind) {
	case OPT_STR:
		return set_str((char **)((char *)o + d->off), val, d->name,
		    err, errlen);
	case OPT_FUNC:
		return d->func(o, val, err, errlen);
	case OPT_FLAG:
		return 0;
	case OPT_INT:
		ok = opts_int(val, (long)d->lo, (long)d->hi, &i) == 0;
		v = i;
		break;
	case OPT_DURATION:
		ok = opts_duration(val, &v) == 0 && v >= d->lo && v <= d->hi;
		break;
	case OPT_SIZE:
	case OPT_POW2:
		ok = opts_size(val, &u) == 0 && u <= (uint64_t)d->hi &&
		    (u >= (uint64_t)d->lo || (d->zero_ok && u == 0)) &&
		    (d->kind != OPT_POW2 || (u & (u - 1)) == 0);
		v = (int64_t)u;
		break;
	default:
		ok = 0;
	}
	if (!ok)
		return fail(err, errlen, "%s=%s: %s", d->name, val, d->what);
	opt_store(o, d, v);
	return 0;
}

/*
 * One OPTION of -o; *in_streams says the previous one was streams=, so a
 * bare word that is no option is one more stream (streams=a,b).
 */
static int
parse_one(struct dvrfs_opts *o, char *opt, int *in_streams, int who,
    int sloppy, char *err, size_t errlen)
{
	const struct opt_def *d;
	char *val = strchr(opt, '=');

	if (val != NULL)
		*val++ = '\0';
	if ((d = opt_find(opt)) != NULL && (d->who & who) == 0) {
		if (who == OPTS_RESTORE)
			return fail(err, errlen, "%s: not an option of "
			    "dvrfs-restore", opt);
		d = NULL;
	}
	if (who != OPTS_MOUNT)
		sloppy = 0;
	if (val == NULL && *in_streams && !is_ignored(opt) &&
	    (d == NULL || d->kind != OPT_FLAG))
		return add_stream(o, opt, strlen(opt), err, errlen);
	*in_streams = d != NULL && strcmp(d->name, "streams") == 0;
	if (d != NULL && (val == NULL) == (d->kind == OPT_FLAG)) {
		if (d->kind == OPT_FLAG)
			opt_store(o, d, d->flag);
		return opt_apply(o, d, val, err, errlen);
	}
	if (val != NULL)
		val[-1] = '=';
	if ((who == OPTS_MOUNT && is_ignored(opt)) || sloppy)
		return 0;
	return fail(err, errlen, "unknown option '%s'", opt);
}

int
opts_list(struct dvrfs_opts *o, const char *list, int who, int sloppy,
    char *err, size_t errlen)
{
	char *copy, *p, *opt;
	int in_streams = 0, rc = 0;

	if ((copy = strdup(list)) == NULL)
		return fail(err, errlen, "out of memory");
	for (p = copy; rc == 0 && (opt = strsep(&p, ",")) != NULL;)
		if (*opt != '\0')
			rc = parse_one(o, opt, &in_streams, who, sloppy, err,
			    errlen);
	free(copy);
	return rc;
}

int
opts_spec(struct dvrfs_opts *o, const char *spec, char *err, size_t errlen)
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
		if (opts_int(num, 1, 65535, &port) == -1)
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


void
opts_init(struct dvrfs_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->depth = 7 * 86400;
	o->transfers = 4;
	o->readahead = 8;
	o->timeout = 10;
	o->allow_other = 1;
}

void
opts_default_port(struct dvrfs_opts *o)
{
	if (o->port == 0)
		o->port = o->tls ? 443 : 80;
}

int64_t
opts_stream_depth(const struct dvrfs_opts *o, const char *name)
{
	size_t i;

	for (i = 0; i < o->nstreams; i++)
		if (strcmp(o->streams[i], name) == 0)
			return o->stream_depth[i] != 0 ? o->stream_depth[i] :
			    o->depth;
	return o->depth;
}

int
opts_stream_wanted(const struct dvrfs_opts *o, const char *name, size_t len)
{
	size_t i;

	if (o->streams == NULL)
		return 1;
	for (i = 0; i < o->nstreams; i++)
		if (strlen(o->streams[i]) == len &&
		    memcmp(o->streams[i], name, len) == 0)
			return 1;
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
	free(o->stream_depth);
	if (o->key != NULL)
		explicit_bzero(o->key, o->keylen);
	free(o->key);
	free(o->cafile);
	free(o->fsname);
	memset(o, 0, sizeof(*o));
}
