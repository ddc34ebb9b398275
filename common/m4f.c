/*
 * m4f: the M4F wire protocol (docs/protocol.md). Path rules, HMAC request
 * signatures and the JSON documents (listings, feeds). Pure functions, no
 * I/O, no shared state: safe from any thread.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "jsonget.h"
#include "m4f.h"

#define AUTH_SCHEME	"M4F-HMAC-SHA256 "
#define JSON_NUM_MAX	((json_int_t)1 << 53)	/* exact in a double */

_Static_assert(sizeof(json_int_t) >= 8, "json_int_t holds 2^53");

/*
 * A header value of 1 to max items separated by single commas, nothing
 * else: item() parses the k-th at *s and moves *s past it (0), or fails
 * (-1). The count goes to *n. Returns 0, or -1 with errno EINVAL.
 */
static int
comma_list(const char *s, size_t max, size_t *n,
    int (*item)(const char **, size_t, void *), void *arg)
{
	size_t k = 0;

	if (s == NULL)
		goto bad;
	for (;;) {
		if (k == max || item(&s, k, arg) == -1)
			goto bad;
		k++;
		if (*s == '\0')
			break;
		if (*s++ != ',')
			goto bad;
	}
	*n = k;
	return 0;
bad:
	errno = EINVAL;
	return -1;
}

/* One size of X-M4F-Sizes into ((uint64_t *)arg)[k]. */
static int
size_item(const char **sp, size_t k, void *arg)
{
	const char *s = *sp;
	uint64_t x;

	if (*s < '0' || *s > '9' || (*s == '0' && s[1] >= '0' && s[1] <= '9'))
		return -1;
	for (x = 0; *s >= '0' && *s <= '9'; s++) {
		if (x > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -1;
		x = x * 10 + (uint64_t)(*s - '0');
	}
	((uint64_t *)arg)[k] = x;
	*sp = s;
	return 0;
}

int
m4f_sizes_parse(const char *s, uint64_t *v, size_t max, size_t *n)
{
	return comma_list(s, max, n, size_item, v);
}

int
m4f_name_check(const char *name, size_t len)
{
	size_t i;

	if (name == NULL || len == 0) {
		errno = EINVAL;
		return -1;
	}
	if (len > M4F_NAME_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((len == 1 && name[0] == '.') ||
	    (len == 2 && name[0] == '.' && name[1] == '.')) {
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '/' || c < 0x20 || c == 0x7f) {
			errno = EINVAL;
			return -1;
		}
	}
	return 0;
}

int
m4f_path_check(const char *rel)
{
	const char *p, *slash;
	size_t len, depth = 0;

	if (rel == NULL) {
		errno = EINVAL;
		return -1;
	}
	len = strnlen(rel, M4F_PATH_MAX + 1);
	if (len > M4F_PATH_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (len == 0)
		return 0;
	/* An empty component catches leading, trailing and double '/'. */
	for (p = rel;; p = slash + 1) {
		if (++depth > M4F_DEPTH_MAX) {
			errno = E2BIG;
			return -1;
		}
		slash = strchr(p, '/');
		if (m4f_name_check(p, slash ? (size_t)(slash - p) : strlen(p)))
			return -1;
		if (slash == NULL)
			return 0;
	}
}

/*
 * Hidden means still being written: any component that starts with '.'
 * or ends in ".tmp". Works on single names and on relative paths.
 */
int
m4f_name_hidden(const char *name)
{
	const char *p, *end;
	size_t len;

	for (p = name; *p != '\0'; p = end + (*end == '/')) {
		end = strchrnul(p, '/');
		len = (size_t)(end - p);
		if (len > 0 && p[0] == '.')
			return 1;
		if (len >= 4 && memcmp(end - 4, ".tmp", 4) == 0)
			return 1;
		if (*end == '\0')
			break;
	}
	return 0;
}

void
m4f_hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

int
m4f_sign(const void *key, size_t keylen, const char *method,
    const char *target, int64_t t, char hex[M4F_SHA256_HEX + 1])
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char *msg;
	int n;

	if (key == NULL || method == NULL || target == NULL ||
	    keylen > INT32_MAX) {
		errno = EINVAL;
		return -1;
	}
	n = asprintf(&msg, "%s\n%s\n%" PRId64, method, target, t);
	if (n < 0) {
		errno = ENOMEM;
		return -1;
	}
	if (HMAC(EVP_sha256(), key, (int)keylen, (unsigned char *)msg,
	    (size_t)n, mac, &maclen) == NULL || maclen != 32) {
		free(msg);
		errno = EIO;
		return -1;
	}
	free(msg);
	m4f_hex_encode(mac, maclen, hex);
	return 0;
}

int
m4f_auth_header(const void *key, size_t keylen, const char *method,
    const char *target, int64_t now, char *buf, size_t bufsz)
{
	char hex[M4F_SHA256_HEX + 1];
	int n;

	if (m4f_sign(key, keylen, method, target, now, hex) == -1)
		return -1;
	n = snprintf(buf, bufsz, AUTH_SCHEME "t=%" PRId64 ",sig=%s", now, hex);
	if (n < 0 || (size_t)n >= bufsz) {
		errno = ENOSPC;
		return -1;
	}
	return 0;
}

/* Is s exactly n lowercase hex digits followed by NUL? */
static int
is_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[n] == '\0';
}

/* One SHA-256 of X-M4F-Digests into the k-th string of arg. */
static int
digest_item(const char **sp, size_t k, void *arg)
{
	char *d = ((char (*)[M4F_SHA256_HEX + 1])arg)[k];

	if (strnlen(*sp, M4F_SHA256_HEX) < M4F_SHA256_HEX)
		return -1;
	memcpy(d, *sp, M4F_SHA256_HEX);
	d[M4F_SHA256_HEX] = '\0';
	*sp += M4F_SHA256_HEX;
	return is_hex(d, M4F_SHA256_HEX) ? 0 : -1;
}

int
m4f_digests_parse(const char *s, char (*v)[M4F_SHA256_HEX + 1], size_t max,
    size_t *n)
{
	return comma_list(s, max, n, digest_item, v);
}

int
m4f_link_check(const char *rel, const char *target)
{
	const char *p, *end;
	size_t len, n;
	long depth = 0;

	if (target == NULL || (rel != NULL && (m4f_path_check(rel) == -1 ||
	    *rel == '\0')))
		goto bad;
	len = strnlen(target, M4F_PATH_MAX + 1);
	if (len > M4F_PATH_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (len == 0 || target[0] == '/')
		goto bad;
	/* The link resolves from its folder: rel's components but one. */
	for (p = rel; p != NULL && (p = strchr(p, '/')) != NULL; p++)
		depth++;
	if (rel == NULL)
		depth = LONG_MAX / 2;	/* its place unknown: syntax only */
	for (p = target;; p = end + 1) {
		end = strchrnul(p, '/');
		n = (size_t)(end - p);
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (--depth < 0)
				goto bad;	/* above the export */
		} else if (n == 1 && p[0] == '.')
			;
		else if (n > 0) {
			if (m4f_name_check(p, n) == -1)
				return -1;
			depth++;
		}
		if (*end == '\0')
			return 0;
	}
bad:
	errno = EINVAL;
	return -1;
}

/*
 * Parses "M4F-HMAC-SHA256 t=DIGITS,sig=HEX64" strictly. Returns 0 and fills
 * t and sig, or -1.
 */
static int
auth_parse(const char *h, int64_t *t, const char **sig)
{
	int64_t v = 0;
	const char *p;

	if (strncmp(h, AUTH_SCHEME "t=", sizeof(AUTH_SCHEME) + 1) != 0)
		return -1;
	p = h + sizeof(AUTH_SCHEME) + 1;
	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (INT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (*p - '0');
	}
	if (strncmp(p, ",sig=", 5) != 0 || !is_hex(p + 5, M4F_SHA256_HEX))
		return -1;
	*t = v;
	*sig = p + 5;
	return 0;
}

int
m4f_auth_check(const void *key, size_t keylen, const char *method,
    const char *target, const char *header, int64_t now)
{
	char want[M4F_SHA256_HEX + 1];
	const char *sig;
	int64_t t;

	if (header == NULL || auth_parse(header, &t, &sig) == -1) {
		errno = EBADMSG;
		return -1;
	}
	if (t > now + M4F_AUTH_WINDOW || t < now - M4F_AUTH_WINDOW) {
		errno = ETIME;
		return -1;
	}
	if (m4f_sign(key, keylen, method, target, t, want) == -1)
		return -1;
	if (CRYPTO_memcmp(want, sig, M4F_SHA256_HEX) != 0) {
		errno = EACCES;
		return -1;
	}
	return 0;
}

/* JSON encoding. */

static const char *
type_str(enum m4f_type t)
{
	return t == M4F_DIR ? "d" : t == M4F_LINK ? "l" : "f";
}

/*
 * A file has size, mtime and sha256 (null when the origin does not know
 * it yet), a folder mtime, a link mtime and target.
 */
static json_t *
entry_json(const struct m4f_entry *e, json_t *o)
{
	if (o == NULL)
		return NULL;
	if (json_object_set_new(o, "name", json_string(e->name)) ||
	    json_object_set_new(o, "type", json_string(type_str(e->type))))
		goto fail;
	if (e->type == M4F_FILE && json_object_set_new(o, "size",
	    json_integer((json_int_t)e->size)))
		goto fail;
	if (json_object_set_new(o, "mtime", json_integer(e->mtime)))
		goto fail;
	if (e->type == M4F_FILE && json_object_set_new(o, "sha256",
	    e->sha256[0] ? json_string(e->sha256) : json_null()))
		goto fail;
	if (e->type == M4F_LINK && (e->target == NULL ||
	    json_object_set_new(o, "target", json_string(e->target))))
		goto fail;
	return o;
fail:
	json_decref(o);
	return NULL;
}

/* A del event carries only name and type. */
static json_t *
del_json(const struct m4f_entry *e, json_t *o)
{
	if (json_object_set_new(o, "name", json_string(e->name)) ||
	    json_object_set_new(o, "type", json_string(type_str(e->type)))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static char *
dump_free(json_t *root)
{
	char *s;

	if (root == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	s = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (s == NULL)
		errno = ENOMEM;
	return s;
}

char *
m4f_listing_encode(const struct m4f_listing *l)
{
	json_t *root, *arr;
	size_t i;

	root = json_object();
	arr = json_array();
	if (root == NULL || arr == NULL ||
	    json_object_set_new(root, "path", json_string(l->path)) ||
	    json_object_set(root, "entries", arr) ||
	    json_object_set_new(root, "next",
	    l->next ? json_string(l->next) : json_null()))
		goto fail;
	for (i = 0; i < l->n; i++)
		if (json_array_append_new(arr,
		    entry_json(&l->entries[i], json_object())))
			goto fail;
	json_decref(arr);
	return dump_free(root);
fail:
	json_decref(arr);
	json_decref(root);
	errno = ENOMEM;
	return NULL;
}

char *
m4f_feed_encode(const struct m4f_feed *f)
{
	json_t *root, *arr, *o;
	size_t i;

	root = json_object();
	arr = json_array();
	if (root == NULL || arr == NULL ||
	    json_object_set_new(root, "epoch", json_string(f->epoch)) ||
	    json_object_set_new(root, "seq", json_integer((json_int_t)f->seq)) ||
	    json_object_set_new(root, "reset", json_boolean(f->reset)) ||
	    json_object_set(root, "events", arr))
		goto fail;
	for (i = 0; i < f->n; i++) {
		const struct m4f_event *ev = &f->events[i];

		o = json_object();
		if (o == NULL || json_object_set_new(o, "seq",
		    json_integer((json_int_t)ev->seq)) ||
		    json_object_set_new(o, "op",
		    json_string(ev->op == M4F_ADD ? "add" : "del"))) {
			json_decref(o);
			goto fail;
		}
		o = ev->op == M4F_DEL ? del_json(&ev->e, o) : entry_json(&ev->e, o);
		if (json_array_append_new(arr, o))
			goto fail;
	}
	json_decref(arr);
	return dump_free(root);
fail:
	json_decref(arr);
	json_decref(root);
	errno = ENOMEM;
	return NULL;
}

/* JSON decoding: every field checked, a bad one rejects the document. */

#define set_err(err, errlen, ...) ((err) != NULL && (errlen) > 0 ? \
	(void)snprintf((err), (errlen), __VA_ARGS__) : (void)0)

/*
 * Fills e from the object o. need_stat: size (files), mtime, sha256
 * (files: 64 hex digits, or null when the origin does not know it yet)
 * and target (links) are required; otherwise (del events) only name and
 * type. Returns 0, or -1 with a reason in err.
 */
static int
entry_decode(json_t *o, struct m4f_entry *e, int single, int need_stat,
    char *err, size_t errlen)
{
	const char *name, *type, *sha, *target;
	uint64_t v;

	if (!json_is_object(o))
		return set_err(err, errlen, "%s", "entry is not an object"), -1;
	if (jsonget_str(o, "name", &name) != 1 || *name == '\0' ||
	    m4f_path_check(name) == -1 || (single && strchr(name, '/') != NULL))
		return set_err(err, errlen, "%s", "bad entry name"), -1;
	if (jsonget_str(o, "type", &type) != 1 ||
	    (strcmp(type, "f") != 0 && strcmp(type, "d") != 0 &&
	    strcmp(type, "l") != 0))
		return set_err(err, errlen, "bad type of \"%.64s\"", name), -1;
	e->type = (enum m4f_type)type[0];
	if (need_stat) {
		if (jsonget_uint(o, "mtime", JSON_NUM_MAX, &v) != 1)
			return set_err(err, errlen, "bad mtime of \"%.64s\"",
			    name), -1;
		e->mtime = (int64_t)v;
	}
	if (need_stat && e->type == M4F_FILE) {
		if (jsonget_uint(o, "size", JSON_NUM_MAX, &e->size) != 1)
			return set_err(err, errlen, "bad size of \"%.64s\"",
			    name), -1;
		if (json_is_null(json_object_get(o, "sha256")))
			e->sha256[0] = '\0';	/* not known yet */
		else if (jsonget_str(o, "sha256", &sha) != 1 ||
		    !is_hex(sha, M4F_SHA256_HEX))
			return set_err(err, errlen, "bad sha256 of \"%.64s\"",
			    name), -1;
		else
			memcpy(e->sha256, sha, M4F_SHA256_HEX + 1);
	}
	if (need_stat && e->type == M4F_LINK) {
		/*
		 * Its syntax only: name is relative to the listed folder,
		 * whose depth in the export the store knows (it checks that
		 * the link stays inside).
		 */
		if (jsonget_str(o, "target", &target) != 1 ||
		    m4f_link_check(NULL, target) == -1)
			return set_err(err, errlen, "bad target of \"%.64s\"",
			    name), -1;
		if ((e->target = strdup(target)) == NULL)
			return set_err(err, errlen, "%s", "out of memory"), -1;
	}
	if ((e->name = strdup(name)) == NULL) {
		free(e->target);
		e->target = NULL;
		return set_err(err, errlen, "%s", "out of memory"), -1;
	}
	return 0;
}

static json_t *
load(const char *json, size_t len, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root;

	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		set_err(err, errlen, "bad JSON: %.80s", jerr.text);
		return NULL;
	}
	if (!json_is_object(root)) {
		set_err(err, errlen, "%s", "not a JSON object");
		json_decref(root);
		return NULL;
	}
	return root;
}

/* An absolute URL path: "/" followed by a valid non-empty relative path. */
static int
abs_path_ok(const char *p)
{
	return p != NULL && p[0] == '/' && p[1] != '\0' &&
	    m4f_path_check(p + 1) == 0;
}

struct m4f_listing *
m4f_listing_decode(const char *json, size_t len, int recursive, char *err,
    size_t errlen)
{
	struct m4f_listing *l = NULL;
	json_t *root, *arr, *jn;
	const char *s;
	size_t i;

	if ((root = load(json, len, err, errlen)) == NULL)
		goto fail;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		goto fail;
	if (jsonget_str(root, "path", &s) != 1 || !abs_path_ok(s) ||
	    (l->path = strdup(s)) == NULL) {
		set_err(err, errlen, "%s", "bad path");
		goto fail;
	}
	arr = json_object_get(root, "entries");
	if (!json_is_array(arr)) {
		set_err(err, errlen, "%s", "bad entries");
		goto fail;
	}
	if ((l->entries = calloc(json_array_size(arr) + 1,
	    sizeof(*l->entries))) == NULL)
		goto fail;
	for (i = 0; i < json_array_size(arr); i++, l->n++)
		if (entry_decode(json_array_get(arr, i), &l->entries[i],
		    !recursive, 1, err, errlen) == -1)
			goto fail;
	jn = json_object_get(root, "next");
	if (jn == NULL || (!json_is_null(jn) && !json_is_string(jn))) {
		set_err(err, errlen, "%s", "bad next");
		goto fail;
	}
	if (json_is_string(jn) && (jsonget_str(root, "next", &s) != 1 ||
	    *s == '\0' || m4f_path_check(s) == -1 ||
	    (l->next = strdup(s)) == NULL)) {
		set_err(err, errlen, "%s", "bad next");
		goto fail;
	}
	json_decref(root);
	return l;
fail:
	json_decref(root);
	m4f_listing_free(l);
	errno = EBADMSG;
	return NULL;
}

/* Frees what entry e owns (its name and link target). */
static void
entry_clear(struct m4f_entry *e)
{
	free(e->name);
	free(e->target);
}

void
m4f_listing_free(struct m4f_listing *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++)
		entry_clear(&l->entries[i]);
	free(l->entries);
	free(l->path);
	free(l->next);
	free(l);
}

static int
event_decode(json_t *o, struct m4f_event *ev, char *err, size_t errlen)
{
	const char *op;

	if (!json_is_object(o) ||
	    jsonget_uint(o, "seq", JSON_NUM_MAX, &ev->seq) != 1) {
		set_err(err, errlen, "%s", "bad event seq");
		return -1;
	}
	if (jsonget_str(o, "op", &op) != 1 ||
	    (strcmp(op, "add") != 0 && strcmp(op, "del") != 0)) {
		set_err(err, errlen, "%s", "bad event op");
		return -1;
	}
	ev->op = op[0] == 'a' ? M4F_ADD : M4F_DEL;
	return entry_decode(o, &ev->e, 0, ev->op == M4F_ADD, err, errlen);
}

/* The epoch: 1 to 32 characters of [0-9a-zA-Z]. */
static int
epoch_ok(const char *s)
{
	size_t i;

	if (s == NULL || *s == '\0' || strlen(s) > 32)
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
			return 0;
	return 1;
}

struct m4f_feed *
m4f_feed_decode(const char *json, size_t len, char *err, size_t errlen)
{
	struct m4f_feed *f = NULL;
	json_t *root, *arr, *jr;
	const char *s;
	size_t i;

	if ((root = load(json, len, err, errlen)) == NULL)
		goto fail;
	if ((f = calloc(1, sizeof(*f))) == NULL)
		goto fail;
	if (jsonget_str(root, "epoch", &s) != 1 || !epoch_ok(s)) {
		set_err(err, errlen, "%s", "bad epoch");
		goto fail;
	}
	strcpy(f->epoch, s);
	jr = json_object_get(root, "reset");
	arr = json_object_get(root, "events");
	if (jsonget_uint(root, "seq", JSON_NUM_MAX, &f->seq) != 1 ||
	    !json_is_boolean(jr) || !json_is_array(arr)) {
		set_err(err, errlen, "%s", "bad seq, reset or events");
		goto fail;
	}
	f->reset = json_is_true(jr);
	if ((f->events = calloc(json_array_size(arr) + 1,
	    sizeof(*f->events))) == NULL)
		goto fail;
	for (i = 0; i < json_array_size(arr); i++, f->n++)
		if (event_decode(json_array_get(arr, i), &f->events[i], err,
		    errlen) == -1)
			goto fail;
	json_decref(root);
	return f;
fail:
	json_decref(root);
	m4f_feed_free(f);
	errno = EBADMSG;
	return NULL;
}

void
m4f_feed_free(struct m4f_feed *f)
{
	size_t i;

	if (f == NULL)
		return;
	for (i = 0; i < f->n; i++)
		entry_clear(&f->events[i].e);
	free(f->events);
	free(f);
}

/* Percent-encoding. */

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *
m4f_unescape(const char *src, size_t len, int in_path)
{
	char *out, *o;
	size_t i;
	int hi, lo;

	if ((out = malloc(len + 1)) == NULL)
		return NULL;
	for (i = 0, o = out; i < len; i++) {
		if (src[i] == '\0')
			goto bad;
		if (src[i] != '%') {
			*o++ = src[i];
			continue;
		}
		if (len - i < 3)
			goto bad;
		hi = hexval((unsigned char)src[i + 1]);
		lo = hexval((unsigned char)src[i + 2]);
		if (hi < 0 || lo < 0)
			goto bad;
		*o = (char)(hi << 4 | lo);
		if (*o == '\0' || (in_path && *o == '/'))
			goto bad;
		o++;
		i += 2;
	}
	*o = '\0';
	return out;
bad:
	free(out);
	errno = EINVAL;
	return NULL;
}

char *
m4f_escape_path(const char *path)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t n = strlen(path);
	char *out, *o;
	const unsigned char *p;

	if (n > (SIZE_MAX - 1) / 3) {
		errno = ENOMEM;
		return NULL;
	}
	if ((out = malloc(3 * n + 1)) == NULL)
		return NULL;
	for (p = (const unsigned char *)path, o = out; *p != '\0'; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
		    *p == '_' || *p == '~' || *p == '/') {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = digits[*p >> 4];
			*o++ = digits[*p & 15];
		}
	}
	*o = '\0';
	return out;
}

int
m4f_sha256(const void *buf, size_t len, unsigned char md[32])
{
	unsigned char out[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (EVP_Digest(buf, len, out, &n, EVP_sha256(), NULL) != 1 || n != 32) {
		errno = EIO;
		return -1;
	}
	memcpy(md, out, 32);
	return 0;
}

int
m4f_sha256_hex(const void *buf, size_t len, char hex[M4F_SHA256_HEX + 1])
{
	unsigned char md[32];

	if (m4f_sha256(buf, len, md) == -1)
		return -1;
	m4f_hex_encode(md, sizeof(md), hex);
	return 0;
}

int
m4f_header_value(const char *line, size_t n, const char *name, char *dst,
    size_t dstsz)
{
	size_t k = strlen(name);

	if (n <= k || line[k] != ':' || strncasecmp(line, name, k) != 0)
		return 0;
	line += k + 1, n -= k + 1;
	while (n > 0 && (*line == ' ' || *line == '\t'))
		line++, n--;
	while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == '\n' ||
	    line[n - 1] == ' ' || line[n - 1] == '\t'))
		n--;
	if (n >= dstsz)
		return 0;
	memcpy(dst, line, n);
	dst[n] = '\0';
	return 1;
}
