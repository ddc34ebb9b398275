/*
 * origin_http: request handling. Each request keeps the raw target it
 * arrived with (the URI log callback) because the signature covers the
 * target exactly as sent; paths and queries are decoded here, once.
 *
 * Digests are computed from the very bytes an answer sends: the file is
 * hashed through the descriptor the answer is then sent from (sendfile
 * for one file, a mapping of each descriptor for several; the bytes are
 * in the page cache by then), so the origin reads them once. With a
 * key every answer is signed in send_resp, the one place answers are
 * queued.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "answer.h"
#include "log.h"
#include "m4f.h"
#include "origin_feed.h"
#include "origin_fs.h"
#include "origin_hash.h"
#include "origin_http.h"
#include "origin_metrics.h"
#include "origin_req.h"

#define LIST_PREFIX	M4F_API_PREFIX "/list/"
#define FEED_PREFIX	M4F_API_PREFIX "/feed/"
#define FILES_PREFIX	M4F_API_PREFIX "/files/"
/*
 * Connections: CONN_LIMIT are served; CONN_SPARE more are accepted only to
 * be told 503 (with Retry-After), so that a client is never left hanging
 * in the listen queue when idle sockets hold every slot. A spare one
 * that sends nothing is dropped after CONN_SPARE_TIMEOUT seconds.
 */
#define CONN_LIMIT	1000
#define CONN_SPARE	64
#define CONN_SPARE_TIMEOUT 2
#define CONN_TIMEOUT	120
#define RETRY_AFTER	"2"
/*
 * Memory a client can make the origin hold, whatever it asks: at most
 * LIST_BUILDS listings are built at once (~1 KB an entry while built, so
 * ~100 MB for a 100000-entry page; a request waits up to LIST_WAIT_MS
 * for its turn), and
 * JSON answers waiting to be sent hold at most JSON_HELD_MAX bytes in
 * all (one answer alone may be larger). Past either: 503.
 */
#define LIST_BUILDS	2
#define LIST_WAIT_MS	10000
#define JSON_HELD_MAX	((size_t)32 << 20)

struct req {
	char	*target;	/* raw request target, query included */
	char	*path;		/* decoded path */
	char	*query;		/* raw query after '?', or NULL */
	int	 called;	/* the handler saw the headers already */
};

/*
 * The field that vouches for an answer's body, which its signature
 * covers: Content-Digest for a 206, else Repr-Digest (a whole file),
 * X-M4F-Digests (several files) or X-M4F-SHA256 (JSON); NULL for none.
 */
static const char *
vouching(struct MHD_Response *r, unsigned status)
{
	static const char *const fields[] = { ANSWER_REPR_DIGEST,
	    M4F_FILES_DIGESTS, M4F_BODY_SHA256 };
	const char *v;
	size_t i;

	if (status == 206)
		return MHD_get_response_header(r, ANSWER_CONTENT_DIGEST);
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if ((v = MHD_get_response_header(r, fields[i])) != NULL)
			return v;
	return NULL;
}

/*
 * With a key, signs the answer r to the request on c (answer_sign over
 * the request's sig=, the status, Content-Range and the vouching field).
 * A request without a sig= gets an unsigned answer (a 401). 0, or -1
 * when it cannot be signed: the answer must not go out then.
 */
static int
sign_answer(struct MHD_Connection *c, unsigned status,
    struct MHD_Response *r)
{
	const union MHD_ConnectionInfo *ci;
	const struct oconn_ctx *x = NULL;
	const struct ohttp *h;
	char reqsig[65], sig[65];

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (ci != NULL)
		x = ci->socket_context;
	if (x == NULL || x->http == NULL)
		return -1;	/* cannot tell whether to sign: drop it */
	h = x->http;
	if (h->key == NULL || !oreq_sig(MHD_lookup_connection_value(c,
	    MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION), reqsig))
		return 0;
	if (answer_sign(h->key, h->keylen, reqsig, (int)status,
	    MHD_get_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE),
	    vouching(r, status), sig) == -1 ||
	    MHD_add_response_header(r, ANSWER_SIGNATURE, sig) != MHD_YES) {
		log_warn("cannot sign an answer");
		return -1;
	}
	return 0;
}

/* Queues r (taken), signed, as the answer on c. */
static enum MHD_Result
send_resp(struct MHD_Connection *c, unsigned status, struct MHD_Response *r)
{
	enum MHD_Result rc;

	if (r == NULL)
		return MHD_NO;
	if (sign_answer(c, status, r) == -1) {
		MHD_destroy_response(r);
		return MHD_NO;
	}
	rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result
send_error(struct MHD_Connection *c, unsigned status, const char *why)
{
	struct MHD_Response *r;
	char *body;
	int n;

	if ((n = asprintf(&body, "%u %s\n", status, why)) < 0)
		return MHD_NO;
	r = MHD_create_response_from_buffer((size_t)n, body,
	    MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
	if (status == 405)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	if (status == 503) {
		MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER,
		    RETRY_AFTER);
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	}
	log_debug("%u %s", status, why);
	return send_resp(c, status, r);
}

/* A JSON answer's bytes, given back to the budget once sent. */
struct held {
	struct ohttp	*h;
	char		*json;
	size_t		 len;
};

static void
held_free(void *arg)
{
	struct held *hb = arg;

	atomic_fetch_sub(&hb->h->held, hb->len);
	free(hb->json);
	free(hb);
}

/*
 * Logs a busy refusal (503), at most once a second with how many went
 * unlogged since: under load every request may be refused, and a line
 * each would flood the log.
 */
static void
busy_warn(struct ohttp *h, const char *what)
{
	long long now = (long long)time(NULL), was = atomic_load(&h->busy_said);
	unsigned quiet;

	/* A thread that read the clock before the last line must not log. */
	if (was >= now || !atomic_compare_exchange_strong(&h->busy_said, &was,
	    now)) {
		atomic_fetch_add(&h->busy_quiet, 1);
		return;
	}
	quiet = atomic_exchange(&h->busy_quiet, 0);
	if (quiet > 0)
		log_warnx("%s: 503 (and %u more refused since the last line)",
		    what, quiet);
	else
		log_warnx("%s: 503", what);
}

/*
 * Takes len bytes of the JSON budget: 0, or -1 when answers already wait
 * for JSON_HELD_MAX bytes (a single answer is let through alone).
 */
static int
held_take(struct ohttp *h, size_t len)
{
	size_t cur = atomic_load(&h->held);

	do {
		if (cur > 0 && cur + len > JSON_HELD_MAX)
			return -1;
	} while (!atomic_compare_exchange_weak(&h->held, &cur, cur + len));
	return 0;
}

/* Sends json (taken) with its digest, within the JSON budget. */
static enum MHD_Result
send_json(struct MHD_Connection *c, struct ohttp *h, char *json)
{
	struct MHD_Response *r;
	struct held *hb;
	char digest[M4F_SHA256_HEX + 1];
	size_t len;

	if (json == NULL)
		return send_error(c, 500, "cannot encode");
	len = strlen(json);
	if (m4f_sha256_hex(json, len, digest) == -1) {
		free(json);
		return send_error(c, 500, "cannot hash");
	}
	if ((hb = malloc(sizeof(*hb))) == NULL) {
		free(json);
		return send_error(c, 500, "out of memory");
	}
	if (held_take(h, len) == -1) {
		free(hb);
		free(json);
		busy_warn(h, "answers wait to be sent");
		return send_error(c, 503, "busy, answers wait to be sent");
	}
	*hb = (struct held){ .h = h, .json = json, .len = len };
	r = MHD_create_response_from_buffer_with_free_callback_cls(len, json,
	    held_free, hb);
	if (r == NULL) {
		held_free(hb);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "application/json");
	/* Listings say what the files' hashes are: they are checked too. */
	MHD_add_response_header(r, M4F_BODY_SHA256, digest);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	ometrics_body(c, len);
	return send_resp(c, 200, r);
}

static void
file_headers(struct MHD_Response *r, const char *path, const struct stat *st)
{
	char buf[64];
	struct tm tm;
	size_t n = strlen(path);

	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	    n > 3 && strcmp(path + n - 3, ".ts") == 0 ? "video/mp2t" :
	    "application/octet-stream");
	MHD_add_response_header(r, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
	if (gmtime_r(&st->st_mtim.tv_sec, &tm) != NULL &&
	    strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm) > 0)
		MHD_add_response_header(r, MHD_HTTP_HEADER_LAST_MODIFIED, buf);
	snprintf(buf, sizeof(buf), "%lld", (long long)st->st_mtim.tv_sec);
	MHD_add_response_header(r, "X-M4F-Mtime", buf);
}

/* 416 with Content-Range: bytes * /SIZE. */
static enum MHD_Result
send_416(struct MHD_Connection *c, uint64_t size)
{
	struct MHD_Response *r;
	static const char body[] = "416 range not satisfiable\n";
	char cr[48];

	r = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body,
	    MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	snprintf(cr, sizeof(cr), "bytes */%llu", (unsigned long long)size);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
	return send_resp(c, 416, r);
}

/*
 * Asks the kernel to read the first len bytes of fd now, in the
 * background: the files of a bundle come off the disk all at once instead
 * of each when its turn comes. At most READ_SOON_MAX bytes, so that a
 * huge file cannot flood the page cache. (A single file's answer goes
 * without: sendfile starts with the first pages read, and waiting for
 * the advice on the whole file made a cold read of the bench's window
 * slower, 0.54 s against 0.49 s.)
 */
#define READ_SOON_MAX	(32ULL << 20)

static void
read_soon(int fd, uint64_t len)
{
	if (len > READ_SOON_MAX)
		len = READ_SOON_MAX;
	(void)posix_fadvise(fd, 0, (off_t)len, POSIX_FADV_WILLNEED);
}

/* Adds a digest field (Repr-Digest, Content-Digest) of md to r. */
static void
add_digest(struct MHD_Response *r, const char *field, const uint8_t md[32])
{
	char v[ANSWER_DIGEST_LEN];

	answer_digest_format(md, v);
	MHD_add_response_header(r, field, v);
}

/* A failed ohash_range/ohash_file as a status and reason. */
static int
hash_status(int err, const char **why)
{
	if (err == EAGAIN)
		return *why = "file changed while read, try again", 503;
	return *why = "cannot read", 500;
}

/*
 * The digests of a file answer, computed before it is sent: md_repr the
 * whole file's (*repr set when there is one: known, or hashed now when
 * the whole file goes out and is at most M4F_DIGEST_MAX), md_part the
 * range's (*part set when rng is 1 and the range at most M4F_DIGEST_MAX).
 * HEAD (head) never reads. 200, or a status with *why.
 */
static int
file_digests(struct ohttp *h, const struct oexport *ex, const char *rel,
    int fd, const struct stat *st, int head, int rng, uint64_t off,
    uint64_t len, uint8_t md_repr[32], int *repr, uint8_t md_part[32],
    int *part, const char **why)
{
	char *abs, hex[65];
	int known, rc = 200;

	*repr = *part = 0;
	if (asprintf(&abs, "%s/%s", ex->real, rel) < 0)
		return *why = "out of memory", 500;
	known = ohash_lookup(h->hash, abs, st, hex);
	if (head)
		goto out;
	if (rng == 1 && len <= M4F_DIGEST_MAX) {
		if (ohash_range(h->hash, fd, st, off, len, md_part, NULL,
		    NULL) == -1) {
			rc = hash_status(errno, why);
			goto out;
		}
		*part = 1;
		/* A range of all of it: the whole file's hash, kept. */
		if (!known && off == 0 && len == (uint64_t)st->st_size) {
			m4f_hex_encode(md_part, 32, hex);
			ohash_put(h->hash, abs, st, hex);
			known = 1;
		}
	} else if (rng == 0 && !known && (uint64_t)st->st_size <=
	    M4F_DIGEST_MAX) {
		if (ohash_file(h->hash, abs, fd, st, hex, NULL, NULL) == -1) {
			rc = hash_status(errno, why);
			goto out;
		}
		known = 1;
	}
out:
	if (rc == 200 && known && ohash_unhex(hex, md_repr) == 0)
		*repr = 1;
	free(abs);
	return rc;
}

/*
 * Serves the file at rel of ex, or a range of it, from its descriptor,
 * with the digests of what it sends (file_digests).
 */
static enum MHD_Result
serve_file(struct MHD_Connection *c, struct ohttp *h,
    const struct oexport *ex, const char *rel, int head)
{
	struct MHD_Response *r;
	struct stat st;
	uint64_t off = 0, len, size;
	uint8_t md_repr[32], md_part[32];
	const char *why;
	char cr[80];
	int status, fd, rng, repr, part;

	if ((status = ofs_open(ex, rel, &fd, &st, &why)) != 200)
		return send_error(c, (unsigned)status, why);
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return send_error(c, 400, "not a file");
	}
	size = len = (uint64_t)st.st_size;
	rng = oreq_range(MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_RANGE), size, &off, &len);
	if (rng == 416) {
		close(fd);
		return send_416(c, size);
	}
	if ((status = file_digests(h, ex, rel, fd, &st, head, rng, off, len,
	    md_repr, &repr, md_part, &part, &why)) != 200) {
		close(fd);
		return send_error(c, (unsigned)status, why);
	}
	if (len == 0) {
		close(fd);
		r = MHD_create_response_from_buffer(0, (void *)"",
		    MHD_RESPMEM_PERSISTENT);
	} else if ((r = MHD_create_response_from_fd_at_offset64(len, fd,
	    off)) == NULL)
		close(fd);
	if (r == NULL)
		return send_error(c, 500, "cannot respond");
	file_headers(r, rel, &st);
	if (repr)
		add_digest(r, ANSWER_REPR_DIGEST, md_repr);
	if (part)
		add_digest(r, ANSWER_CONTENT_DIGEST, md_part);
	if (rng == 1) {
		snprintf(cr, sizeof(cr), "bytes %llu-%llu/%llu",
		    (unsigned long long)off, (unsigned long long)(off + len - 1),
		    (unsigned long long)size);
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
	}
	ometrics_body(c, len);
	return send_resp(c, rng == 1 ? 206 : 200, r);
}

/*
 * Files of one folder sent back to back (serve_files): from mappings of
 * their descriptors when they can be mapped (map[i], NULL for an empty
 * file), so the kernel copies the bytes from the page cache into the
 * socket and nothing passes through a buffer of ours; else read in turn
 * by bundle_read. A file truncated while it is sent from its mapping
 * ends the answer (the send fails with EFAULT: no signal in the kernel's
 * copy), as a short pread does.
 */
struct bundle {
	int		 fd[M4F_FILES_MAX];
	uint64_t	 size[M4F_FILES_MAX];
	void		*map[M4F_FILES_MAX];
	size_t		 n, cur;	/* files, the one being sent */
	size_t		 nmap;		/* files mapped */
	uint64_t	 off;		/* bytes of fd[cur] sent */
};

static void
bundle_free(void *arg)
{
	struct bundle *b = arg;
	size_t i;

	for (i = 0; i < b->nmap; i++)
		if (b->map[i] != NULL)
			munmap(b->map[i], (size_t)b->size[i]);
	for (i = 0; i < b->n; i++)
		close(b->fd[i]);
	free(b);
}

/* MHD asks for the next bytes in order; a file that shrank ends it. */
static ssize_t
bundle_read(void *arg, uint64_t pos, char *buf, size_t max)
{
	struct bundle *b = arg;
	ssize_t r;

	(void)pos;
	while (b->cur < b->n && b->off == b->size[b->cur]) {
		b->cur++;
		b->off = 0;
	}
	if (b->cur == b->n)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (max > b->size[b->cur] - b->off)
		max = (size_t)(b->size[b->cur] - b->off);
	r = pread(b->fd[b->cur], buf, max, (off_t)b->off);
	if (r <= 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	b->off += (uint64_t)r;
	return r;
}

/*
 * The answer of bundle b, total bytes: from mappings of its files, or
 * (one cannot be mapped) read by bundle_read. Takes b, also on failure
 * (NULL).
 */
static struct MHD_Response *
bundle_response(struct bundle *b, uint64_t total)
{
	struct MHD_IoVec iov[M4F_FILES_MAX];
	struct MHD_Response *r;
	unsigned niov = 0;
	size_t i;

	for (i = 0; i < b->n; i++, b->nmap++) {
		b->map[i] = NULL;
		if (b->size[i] == 0)
			continue;
		if (b->size[i] > SIZE_MAX || (b->map[i] = mmap(NULL,
		    (size_t)b->size[i], PROT_READ, MAP_SHARED, b->fd[i],
		    0)) == MAP_FAILED) {
			b->map[i] = NULL;
			goto read;
		}
		/* Pages not in the cache yet come in by read-ahead. */
		(void)madvise(b->map[i], (size_t)b->size[i], MADV_SEQUENTIAL);
		iov[niov++] = (struct MHD_IoVec){ b->map[i],
		    (size_t)b->size[i] };
	}
	if ((r = MHD_create_response_from_iovec(iov, niov, bundle_free,
	    b)) == NULL)
		bundle_free(b);
	return r;
read:
	if ((r = MHD_create_response_from_callback(total, 256 * 1024,
	    bundle_read, b, bundle_free)) == NULL)
		bundle_free(b);
	return r;
}

/*
 * The X-M4F-Digests value of a bundle b of the files names[] of folder
 * rel into out (M4F_FILES_MAX * 65 bytes): each hash known, or computed
 * now through the descriptor the answer is sent from, and kept. At most
 * M4F_DIGEST_MAX bytes are hashed for one answer: past that (or for a
 * single unknown file larger) 400, the client asks for the files one by
 * one. 200, or a status with *why.
 */
static int
bundle_digests(struct ohttp *h, const struct oexport *ex, const char *rel,
    char *const *names, const struct bundle *b, const struct stat *st,
    char *out, const char **why)
{
	char hex[M4F_FILES_MAX][65], *abs[M4F_FILES_MAX] = { NULL };
	int known[M4F_FILES_MAX];
	uint64_t unknown = 0;
	size_t i;
	int rc = 200;

	for (i = 0; i < b->n; i++) {
		if (asprintf(&abs[i], "%s/%s%s%s", ex->real, rel, *rel ? "/" :
		    "", names[i]) < 0) {
			abs[i] = NULL;
			rc = 500, *why = "out of memory";
			goto out;
		}
		if (!(known[i] = ohash_lookup(h->hash, abs[i], &st[i], hex[i])))
			unknown += b->size[i];
	}
	if (unknown > M4F_DIGEST_MAX) {
		rc = 400, *why = "too large for one answer, ask one by one";
		goto out;
	}
	*out = '\0';
	for (i = 0; i < b->n; i++) {
		if (!known[i] && ohash_file(h->hash, abs[i], b->fd[i], &st[i],
		    hex[i], NULL, NULL) == -1) {
			rc = hash_status(errno, why);
			goto out;
		}
		strcat(out, i ? "," : "");
		strcat(out, hex[i]);
	}
out:
	for (i = 0; i < b->n; i++)
		free(abs[i]);
	return rc;
}

/*
 * Several whole files of the folder rel (the query's name= values, in
 * order) in one answer: one round trip for many segments. Their sizes are
 * in X-M4F-Sizes, their hashes in X-M4F-Digests; a missing one fails the
 * whole request (404).
 */
static enum MHD_Result
serve_files(struct MHD_Connection *c, struct ohttp *h,
    const struct oexport *ex, const char *rel, const struct req *q)
{
	char *names[M4F_FILES_MAX], *path = NULL, sizes[M4F_FILES_MAX *
	    21 + 1], digests[M4F_FILES_MAX * 65];
	struct MHD_Response *r = NULL;
	struct stat st[M4F_FILES_MAX];
	struct bundle *b;
	uint64_t total = 0;
	const char *why = "bad query";
	size_t n, i, used = 0;
	int status = 400;

	if (oreq_all(q->query, "name", names, M4F_FILES_MAX, &n) == -1)
		return send_error(c, 400, "bad query");
	if ((b = calloc(1, sizeof(*b))) == NULL) {
		status = 500, why = "out of memory";
		goto out;
	}
	if (n == 0)
		goto out;
	for (i = 0; i < n; i++) {
		free(path);
		path = NULL;
		if (m4f_name_check(names[i], strlen(names[i])) == -1 ||
		    asprintf(&path, "%s%s%s", rel, *rel ? "/" : "",
		    names[i]) < 0) {
			path = NULL;
			status = 400, why = "bad name";
			goto out;
		}
		if ((status = ofs_open(ex, path, &b->fd[b->n], &st[i],
		    &why)) != 200)
			goto out;
		b->n++;
		if (!S_ISREG(st[i].st_mode)) {
			status = 400, why = "not a file";
			goto out;
		}
		b->size[i] = (uint64_t)st[i].st_size;
		if (total < READ_SOON_MAX)
			read_soon(b->fd[i], b->size[i]);
		total += b->size[i];
		used += (size_t)snprintf(sizes + used, sizeof(sizes) - used,
		    "%s%llu", i ? "," : "", (unsigned long long)b->size[i]);
	}
	if ((status = bundle_digests(h, ex, rel, names, b, st, digests,
	    &why)) != 200)
		goto out;
	r = bundle_response(b, total);
	b = NULL;
	if (r == NULL) {
		status = 500, why = "cannot respond";
		goto out;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "application/octet-stream");
	MHD_add_response_header(r, M4F_FILES_SIZES, sizes);
	MHD_add_response_header(r, M4F_FILES_DIGESTS, digests);
	ometrics_body(c, total);
	status = 200;
out:
	free(path);
	for (i = 0; i < n; i++)
		free(names[i]);
	if (b != NULL)
		bundle_free(b);
	if (status != 200)
		return send_error(c, (unsigned)status, why);
	return send_resp(c, 200, r);
}
/*
 * Waits for one of the LIST_BUILDS turns to build a listing, up to
 * LIST_WAIT_MS: 0 (the caller gives it back in h->nbuild), or -1.
 */
static int
build_enter(struct ohttp *h)
{
	const struct timespec tick = { 0, 10 * 1000 * 1000 };
	unsigned cur;
	int ms;

	for (ms = 0; ms <= LIST_WAIT_MS; ms += 10) {
		cur = atomic_load(&h->nbuild);
		while (cur < LIST_BUILDS)
			if (atomic_compare_exchange_weak(&h->nbuild, &cur,
			    cur + 1))
				return 0;
		nanosleep(&tick, NULL);
	}
	return -1;
}

static enum MHD_Result
serve_list(struct MHD_Connection *c, struct ohttp *h, const struct req *q,
    const struct oexport *ex, const char *rel, const char *urlpath)
{
	uint64_t limit, rec;
	char *after = NULL, *json;
	const char *why;
	int status;

	if (oreq_num(q->query, "recursive", 0, 1, 0, &rec, NULL) == -1 ||
	    oreq_num(q->query, "limit", 1, M4F_LIST_LIMIT_MAX,
	    M4F_LIST_LIMIT_DEFAULT, &limit, NULL) == -1 ||
	    oreq_get(q->query, "after", &after) == -1 ||
	    (after != NULL && (m4f_path_check(after) == -1 || *after == '\0'))) {
		free(after);
		return send_error(c, 400, "bad query");
	}
	if (build_enter(h) == -1) {
		free(after);
		busy_warn(h, "listings being built for too long");
		return send_error(c, 503, "busy listing");
	}
	status = ofs_list(ex, h->hash, urlpath, rel, (int)rec, after,
	    (size_t)limit, &json, &why);
	/*
	 * Building took ~1 KB an entry in small blocks (names, the JSON
	 * tree), now freed but kept by this thread's malloc arena: give the
	 * pages back, or every arena keeps the peak of its largest listing.
	 */
	malloc_trim(0);
	atomic_fetch_sub(&h->nbuild, 1);
	free(after);
	if (status != 200)
		return send_error(c, (unsigned)status, why);
	return send_json(c, h, json);
}

static enum MHD_Result
serve_feed(struct MHD_Connection *c, struct ohttp *h, const struct req *q,
    const struct oexport *ex, const char *rel)
{
	uint64_t since, wait;
	struct stat st;
	const char *why;
	char *json;
	int has_since, status, fd;

	if (oreq_num(q->query, "since", 0, (uint64_t)1 << 53, 0, &since,
	    &has_since) == -1 || oreq_num(q->query, "wait", 0,
	    M4F_FEED_WAIT_MAX, M4F_FEED_WAIT_DEFAULT, &wait, NULL) == -1)
		return send_error(c, 400, "bad query");
	if ((status = ofs_open(ex, rel, &fd, &st, &why)) != 200)
		return send_error(c, (unsigned)status, why);
	close(fd);
	if (!S_ISDIR(st.st_mode))
		return send_error(c, 400, "not a folder");
	errno = 0;
	json = ofeed_get(h->feed, ex, rel, has_since, since, (unsigned)wait);
	if (json == NULL && errno == EAGAIN)
		return send_error(c, 503, "starting: folders still being "
		    "watched");
	return send_json(c, h, json);
}

/* Routes a request whose signature and method are fine. */
static enum MHD_Result
route(struct MHD_Connection *c, struct ohttp *h, const struct req *q,
    int head)
{
	const struct oexport *ex;
	const char *rel, *p = q->path;
	int list = 0, feed = 0, files = 0;

	if (strncmp(p, LIST_PREFIX, strlen(LIST_PREFIX)) == 0)
		list = 1, p += strlen(LIST_PREFIX) - 1;
	else if (strncmp(p, FILES_PREFIX, strlen(FILES_PREFIX)) == 0)
		files = 1, p += strlen(FILES_PREFIX) - 1;
	else if (strncmp(p, FEED_PREFIX, strlen(FEED_PREFIX)) == 0)
		feed = 1, p += strlen(FEED_PREFIX) - 1;
	else if (strncmp(p, M4F_API_PREFIX "/", strlen(M4F_API_PREFIX) + 1) == 0)
		return send_error(c, 404, "no such API");
	if (!list && !files && !feed && h->metrics != NULL &&
	    strcmp(p, OMETRICS_PATH) == 0)
		return send_resp(c, 200, ometrics_answer(h->metrics, c));
	if (p[0] != '/')
		return send_error(c, 400, "bad path");
	if ((ex = ofs_export(h->ex, h->nex, p, &rel)) == NULL)
		return send_error(c, m4f_path_check(p + 1) == -1 ? 400 : 404,
		    "not exported");
	/* The export's own path is valid: what is beneath it must be too. */
	if (m4f_path_check(rel) == -1) {
		if (errno != E2BIG)
			return send_error(c, 400, "bad path");
		log_warnx("%.128s...: deeper than %d levels beneath the "
		    "export, refused", p, M4F_DEPTH_MAX);
		return send_error(c, 400, "path too deep");
	}
	if (list)
		return serve_list(c, h, q, ex, rel, p);
	if (feed)
		return serve_feed(c, h, q, ex, rel);
	if (files)
		return serve_files(c, h, ex, rel, q);
	return serve_file(c, h, ex, rel, head);
}

static const char *
auth_reason(int err)
{
	switch (err) {
	case ETIME:
		return "signature expired";
	case EACCES:
		return "wrong signature";
	default:
		return "missing or malformed signature";
	}
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **con_cls)
{
	const union MHD_ConnectionInfo *ci;
	struct ohttp *h = cls;
	struct req *q = *con_cls;
	const char *qm;

	if (q == NULL || q->target == NULL)
		return send_error(c, 500, "no request target");
	/*
	 * Answer once the whole request is in: a response queued with the
	 * headers alone makes MHD close the connection afterwards.
	 */
	if (!q->called || *upload_size != 0) {
		q->called = 1;
		*upload_size = 0;
		return MHD_YES;
	}
	log_debug("%s %s", method, q->target);
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (ci != NULL && ci->socket_context != NULL &&
	    ((struct oconn_ctx *)ci->socket_context)->spare) {
		busy_warn(h, "too many connections");
		return send_error(c, 503, "too many connections");
	}
	if (h->key != NULL && m4f_auth_check(h->key, h->keylen, method,
	    q->target, MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_AUTHORIZATION), (int64_t)time(NULL)) == -1)
		return send_error(c, 401, auth_reason(errno));
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return send_error(c, 405, "method not allowed");
	if ((qm = strchr(q->target, '?')) != NULL)
		q->query = (char *)qm + 1;
	q->path = m4f_unescape(q->target, qm ? (size_t)(qm - q->target) :
	    strlen(q->target), 1);
	if (q->path == NULL || q->path[0] != '/')
		return send_error(c, 400, "bad path");
	if (strlen(q->path) > M4F_PATH_MAX + sizeof(M4F_API_PREFIX "/list"))
		return send_error(c, 400, "path too long");
	return route(c, h, q, strcmp(method, MHD_HTTP_METHOD_HEAD) == 0);
}

/*
 * Counts connections. One past CONN_LIMIT is marked spare: its request
 * gets 503, and it has CONN_SPARE_TIMEOUT seconds to send it.
 */
static void
conn_notify(void *cls, struct MHD_Connection *c, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
	struct ohttp *h = cls;
	struct oconn_ctx *x;

	if (toe != MHD_CONNECTION_NOTIFY_STARTED) {
		ometrics_conn(h->metrics, *socket_context, toe);
		free(*socket_context);
		*socket_context = NULL;
		atomic_fetch_sub(&h->nconn, 1);
		return;
	}
	*socket_context = x = calloc(1, sizeof(*x));
	if (x != NULL)
		x->http = h;
	ometrics_conn(h->metrics, x, toe);
	if (atomic_fetch_add(&h->nconn, 1) < CONN_LIMIT || x == NULL)
		return;
	x->spare = 1;
	MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT,
	    (unsigned)CONN_SPARE_TIMEOUT);
}

/* MHD's URI log hook: the raw target becomes the request's context. */
static void *
req_new(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct req *q = calloc(1, sizeof(*q));

	if (q != NULL)
		q->target = strdup(uri);
	ometrics_start(cls, c, uri);
	return q;
}

static void
req_done(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct req *q = *con_cls;

	ometrics_done(cls, c, toe);
	if (q == NULL)
		return;
	free(q->target);
	free(q->path);
	free(q);
	*con_cls = NULL;
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	log_warnx("httpd: %s", buf);
}

/* Splits "host:port" or "[v6]:port" and resolves it; NULL on error. */
static struct addrinfo *
resolve_addr(const char *hostport)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
	    .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res = NULL;
	char host[256];
	const char *colon, *h = hostport;
	size_t hl;
	uint64_t port;
	int e;

	if ((colon = strrchr(hostport, ':')) == NULL ||
	    oreq_parse_num(colon + 1, 1, 65535, &port) == -1)
		return NULL;
	hl = (size_t)(colon - hostport);
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']')
		h++, hl -= 2;
	if (hl == 0 || hl >= sizeof(host))
		return NULL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	if ((e = getaddrinfo(host, colon + 1, &hints, &res)) != 0) {
		log_warnx("%s: %s", hostport, gai_strerror(e));
		return NULL;
	}
	return res;
}

int
ohttp_loopback(const char *hostport)
{
	const struct sockaddr_in6 *s6;
	struct addrinfo *ai;
	int rc = 0;

	if ((ai = resolve_addr(hostport)) == NULL) {
		log_warnx("bad listen address %s", hostport);
		return -1;
	}
	/* The first address is the one ohttp_start listens on. */
	if (ai->ai_family == AF_INET)
		rc = (ntohl(((const struct sockaddr_in *)(const void *)
		    ai->ai_addr)->sin_addr.s_addr) >> 24) == 127;
	else if (ai->ai_family == AF_INET6) {
		s6 = (const struct sockaddr_in6 *)(const void *)ai->ai_addr;
		rc = IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr) ||
		    (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) &&
		    s6->sin6_addr.s6_addr[12] == 127);
	}
	freeaddrinfo(ai);
	return rc;
}

struct MHD_Daemon *
ohttp_start(struct ohttp *h, const char *hostport)
{
	struct MHD_Daemon *d;
	struct addrinfo *ai;
	/* poll(), not select(): a thousand connections pass FD_SETSIZE. */
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION |
	    MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG;

	if ((ai = resolve_addr(hostport)) == NULL) {
		log_warnx("bad listen address %s", hostport);
		return NULL;
	}
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	d = MHD_start_daemon(flags, 0, NULL, NULL, handle, h,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	    MHD_OPTION_SOCK_ADDR, ai->ai_addr,
	    MHD_OPTION_URI_LOG_CALLBACK, req_new, h->metrics,
	    MHD_OPTION_NOTIFY_COMPLETED, req_done, h->metrics,
	    MHD_OPTION_NOTIFY_CONNECTION, conn_notify, h,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)(CONN_LIMIT + CONN_SPARE),
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONN_TIMEOUT,
	    MHD_OPTION_END);
	freeaddrinfo(ai);
	if (d == NULL)
		log_warnx("cannot listen on %s", hostport);
	return d;
}

void
ohttp_stop(struct MHD_Daemon *d)
{
	if (d != NULL)
		MHD_stop_daemon(d);
}
