#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <limits.h>
#include <pthread.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dvrpath.h"
#include "store.h"

#define BS 4096

static char dir[64];

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/check_store.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void
teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static void
sha_hex(const void *buf, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int n;
	int i;

	EVP_Digest(buf, len, md, &n, EVP_sha256(), NULL);
	for (i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
}

static struct store *
mk(uint32_t bs, uint64_t max_bytes)
{
	struct store_conf c = { .block_size = bs, .max_bytes = max_bytes };
	struct store *s = store_open(dir, &c);

	ck_assert_ptr_nonnull(s);
	return s;
}

static void
fill(uint8_t *b, size_t n, unsigned seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		b[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 9));
}

/* Adds file rel with content buf through a feed event; returns its id. */
static uint64_t
add_file(struct store *s, const char *rel, const void *buf, size_t len,
    int64_t mtime)
{
	struct store_remote r = { rel, STORE_FILE, len, mtime, NULL, NULL };
	char hex[65];
	uint64_t id = 0;

	sha_hex(buf, len, hex);
	r.sha256 = hex;
	ck_assert_int_eq(store_apply_event(s, &r, 0, &id, NULL), 0);
	ck_assert_uint_gt(id, 1);
	return id;
}

static int
data_eq(const char *rel, const void *buf, size_t len)
{
	char path[PATH_MAX];
	struct stat sb;
	void *b;
	int fd, r;

	snprintf(path, sizeof(path), "%s/data/%s", dir, rel);
	if ((fd = open(path, O_RDONLY)) == -1)
		return 0;
	if (fstat(fd, &sb) == -1 || (size_t)sb.st_size != len) {
		close(fd);
		return 0;
	}
	b = malloc(len + 1);
	r = read(fd, b, len + 1) == (ssize_t)len && memcmp(b, buf, len) == 0;
	free(b);
	close(fd);
	return r;
}

static int
data_exists(const char *rel)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/data/%s", dir, rel);
	return access(path, F_OK) == 0;
}

/* Writes every block of id from buf. */
static int
write_all(struct store *s, uint64_t id, const uint8_t *buf, size_t len)
{
	size_t off;
	int r = 0;

	for (off = 0; off < len && r == 0; off += BS)
		r = store_write_block(s, id, off / BS, buf + off,
		    len - off < BS ? len - off : BS);
	return r;
}

START_TEST(t_block_size_fixed)
{
	struct store_conf c = { .block_size = 8192 };
	struct store *s = mk(BS, 0);

	ck_assert_uint_eq(store_block_size(s), BS);
	ck_assert_str_eq(store_dir(s), dir);
	store_close(s);
	s = mk(0, 0);
	ck_assert_uint_eq(store_block_size(s), BS);
	store_close(s);
	errno = 0;
	ck_assert_ptr_null(store_open(dir, &c));
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

struct names {
	char	 v[16][256];
	int	 n;
};

static int
collect(void *arg, const struct store_ent *e)
{
	struct names *nm = arg;

	snprintf(nm->v[nm->n++], sizeof(nm->v[0]), "%s", e->name);
	return nm->n >= 16;
}

START_TEST(t_listing)
{
	static const char h[] = "0000000000000000000000000000000000000000"
	    "000000000000000000000000";
	struct store_remote v[] = {
		{ "b", STORE_DIR, 0, 10, NULL, NULL },
		{ "b/x.ts", STORE_FILE, 5, 11, h, NULL },
		{ "a.ts", STORE_FILE, 3, 12, h, NULL },
		{ "c/d/e.ts", STORE_FILE, 7, 13, h, NULL },
		{ "B", STORE_DIR, 0, 14, NULL, NULL },
	};
	struct store *s = mk(BS, 0);
	struct store_ent e;
	struct names nm = { .n = 0 };
	uint64_t ids[5];
	char *p;

	ck_assert_int_eq(store_apply_listing(s, "", v, 5, 1, 1, 100, ids), 0);
	ck_assert_int_eq(store_lookup(s, STORE_ROOT_ID, "b", &e), 0);
	ck_assert_uint_eq(e.id, ids[0]);
	ck_assert_int_eq(e.type, STORE_DIR);
	ck_assert_int_eq(e.listed, 100);
	ck_assert_int_eq(store_lookup(s, ids[0], "x.ts", &e), 0);
	ck_assert_uint_eq(e.size, 5);
	ck_assert_int_eq(e.mtime, 11);
	ck_assert_str_eq(e.sha256, h);
	ck_assert_int_eq(e.state, STORE_NONE);
	ck_assert_int_eq(store_resolve(s, "c/d/e.ts", &e), 0);
	ck_assert_uint_eq(e.id, ids[3]);
	p = store_path(s, ids[3]);
	ck_assert_str_eq(p, "c/d/e.ts");
	free(p);
	p = store_path(s, STORE_ROOT_ID);
	ck_assert_str_eq(p, "");
	free(p);
	ck_assert_int_eq(store_resolve(s, "", &e), 0);
	ck_assert_uint_eq(e.id, STORE_ROOT_ID);
	ck_assert_int_eq(store_resolve(s, "c/nope", &e), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(store_lookup(s, STORE_ROOT_ID, "zz", &e), -1);
	ck_assert_int_eq(errno, ENOENT);

	/* Byte-wise order: "B" < "a.ts" < "b" < "c"; then paging. */
	ck_assert_int_eq(store_readdir(s, STORE_ROOT_ID, NULL, 10, collect,
	    &nm), 4);
	ck_assert_str_eq(nm.v[0], "B");
	ck_assert_str_eq(nm.v[1], "a.ts");
	ck_assert_str_eq(nm.v[2], "b");
	ck_assert_str_eq(nm.v[3], "c");
	nm.n = 0;
	ck_assert_int_eq(store_readdir(s, STORE_ROOT_ID, "a.ts", 1, collect,
	    &nm), 1);
	ck_assert_str_eq(nm.v[0], "b");
	nm.n = 0;
	ck_assert_int_eq(store_readdir(s, STORE_ROOT_ID, "c", 10, collect,
	    &nm), 0);

	/* Complete recursive listing without b/x.ts and c: both go. */
	ck_assert_int_eq(store_apply_listing(s, "", v, 3, 1, 1, 200, NULL), 0);
	ck_assert_int_eq(store_resolve(s, "b", &e), 0);
	ck_assert_int_eq(store_resolve(s, "b/x.ts", &e), 0);
	ck_assert_int_eq(store_apply_listing(s, "", v + 2, 1, 1, 1, 300,
	    NULL), 0);
	ck_assert_int_eq(store_resolve(s, "b/x.ts", &e), -1);
	ck_assert_int_eq(store_resolve(s, "b", &e), -1);
	ck_assert_int_eq(store_resolve(s, "c/d/e.ts", &e), -1);
	ck_assert_int_eq(store_resolve(s, "a.ts", &e), 0);
	/* Ids are never reused. */
	ck_assert_uint_gt(e.id, 0);
	ck_assert_int_eq(store_apply_listing(s, "", v, 2, 1, 0, 0, ids), 0);
	ck_assert_uint_gt(ids[0], ids[4]);
	store_close(s);
}
END_TEST

/* Every field a look-up gives is the one store_get() gives. */
static void
lookup_eq(struct store *s, uint64_t parent, const char *name)
{
	struct store_ent a, b;

	ck_assert_int_eq(store_lookup(s, parent, name, &a), 0);
	ck_assert_int_eq(store_get(s, a.id, &b), 0);
	ck_assert_uint_eq(a.id, b.id);
	ck_assert_uint_eq(a.parent, parent);
	ck_assert_uint_eq(a.parent, b.parent);
	ck_assert_str_eq(a.name, name);
	ck_assert_str_eq(a.name, b.name);
	ck_assert_int_eq(a.type, b.type);
	ck_assert_uint_eq(a.size, b.size);
	ck_assert_int_eq(a.mtime, b.mtime);
	ck_assert_str_eq(a.sha256, b.sha256);
	ck_assert_int_eq(a.state, b.state);
	ck_assert_uint_eq(a.have, b.have);
	ck_assert_int_eq(a.listed, b.listed);
}

/*
 * A look-up reads only the columns it returns: the reply of each kind
 * of entry, and a miss that leaves out as it was (the mount looks up a
 * playback name with its folder's entry as out).
 */
START_TEST(t_lookup_reply)
{
	static const char h[] = "abababababababababababababababababababab"
	    "abababababababababababab";
	struct store_remote v[] = {
		{ "n", STORE_DIR, 0, 10, NULL, NULL },
		{ "n/h.ts", STORE_FILE, 2 * BS, 11, h, NULL },
		{ "n/u.ts", STORE_FILE, 2 * BS, 12, NULL, NULL },
		{ "n/l", STORE_LINK, 0, 13, NULL, "h.ts" },
	};
	uint8_t buf[BS];
	struct store *s = mk(BS, 0);
	struct store_ent e, keep;
	uint64_t ids[4];

	ck_assert_int_eq(store_apply_listing(s, "", v, 4, 1, 1, 100, ids), 0);
	fill(buf, sizeof(buf), 3);
	ck_assert_int_eq(store_write_block(s, ids[2], 0, buf, BS), 0);
	store_sync(s);
	lookup_eq(s, STORE_ROOT_ID, "n");
	lookup_eq(s, ids[0], "h.ts");
	lookup_eq(s, ids[0], "u.ts");
	lookup_eq(s, ids[0], "l");
	ck_assert_int_eq(store_lookup(s, ids[0], "u.ts", &e), 0);
	ck_assert_int_eq(e.state, STORE_PARTIAL);
	ck_assert_uint_eq(e.have, BS);
	ck_assert_str_eq(e.sha256, "");
	ck_assert_int_eq(store_lookup(s, ids[0], "h.ts", &e), 0);
	ck_assert_str_eq(e.sha256, h);
	ck_assert_int_eq(store_lookup(s, STORE_ROOT_ID, "n", &e), 0);
	ck_assert_int_eq(e.listed, 100);
	keep = e;
	ck_assert_int_eq(store_lookup(s, ids[0], "h.t", &e), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_mem_eq(&e, &keep, sizeof(e));
	store_close(s);
}
END_TEST

START_TEST(t_listing_flat)
{
	static const char h[] = "1111111111111111111111111111111111111111"
	    "111111111111111111111111";
	struct store_remote v[] = {
		{ "x.ts", STORE_FILE, 1, 1, h, NULL },
		{ "y.ts", STORE_FILE, 2, 1, h, NULL },
		{ "sub", STORE_DIR, 0, 1, NULL, NULL },
	};
	struct store_remote deep = { "s/t/sub/z.ts", STORE_FILE, 3, 1, h, NULL };
	struct store *s = mk(BS, 0);
	struct store_ent e;

	ck_assert_int_eq(store_apply_event(s, &deep, 0, NULL, NULL), 0);
	ck_assert_int_eq(store_apply_listing(s, "s/t", v, 3, 0, 1, 50, NULL),
	    0);
	/* Not recursive: sub stays with its content, listed only s/t. */
	ck_assert_int_eq(store_resolve(s, "s/t/sub/z.ts", &e), 0);
	ck_assert_int_eq(store_resolve(s, "s/t/sub", &e), 0);
	ck_assert_int_eq(e.listed, 0);
	ck_assert_int_eq(store_resolve(s, "s/t", &e), 0);
	ck_assert_int_eq(e.listed, 50);
	ck_assert_int_eq(store_apply_listing(s, "s/t", v, 1, 0, 1, 60, NULL),
	    0);
	ck_assert_int_eq(store_resolve(s, "s/t/y.ts", &e), -1);
	ck_assert_int_eq(store_resolve(s, "s/t/sub/z.ts", &e), -1);
	ck_assert_int_eq(store_resolve(s, "s/t/x.ts", &e), 0);
	/* Not complete: nothing removed. */
	ck_assert_int_eq(store_apply_listing(s, "s/t", v + 1, 1, 0, 0, 70,
	    NULL), 0);
	ck_assert_int_eq(store_resolve(s, "s/t/x.ts", &e), 0);
	store_close(s);
}
END_TEST

/*
 * A listing asked for before the feed added a file must not remove that
 * file when it is applied after: only what is older than it may go.
 */
/* A listing out of order: each entry still lands in its own folder. */
START_TEST(t_listing_unsorted)
{
	static const char h[] = "5555555555555555555555555555555555555555"
	    "555555555555555555555555";
	struct store_remote v[] = {
		{ "x/a", STORE_FILE, 1, 1, h, NULL },
		{ "b", STORE_FILE, 1, 1, h, NULL },
		{ "x/c", STORE_FILE, 1, 1, h, NULL },
		{ "y", STORE_DIR, 0, 1, NULL, NULL },
		{ "b2", STORE_FILE, 1, 1, h, NULL },
		{ "y/d", STORE_FILE, 1, 1, h, NULL },
	};
	struct store *s = mk(BS, 0);
	struct store_ent e;
	uint64_t ids[6];

	ck_assert_int_eq(store_apply_listing(s, "", v, 6, 1, 1, 1, ids), 0);
	ck_assert_int_eq(store_resolve(s, "x/c", &e), 0);
	ck_assert_uint_eq(e.id, ids[2]);
	ck_assert_int_eq(store_resolve(s, "y/d", &e), 0);
	ck_assert_uint_eq(e.id, ids[5]);
	ck_assert_int_eq(store_lookup(s, STORE_ROOT_ID, "c", &e), -1);
	ck_assert_int_eq(store_lookup(s, STORE_ROOT_ID, "d", &e), -1);
	store_close(s);
}
END_TEST

START_TEST(t_snapshot)
{
	struct store *s = mk(BS, 0);
	struct store_ent e;
	uint8_t b[100];
	char hex[65];
	struct store_remote v[2] = {
		{ "h/a.ts", STORE_FILE, sizeof(b), 100, hex, NULL },
		{ "h", STORE_DIR, 0, 100, NULL, NULL },
	};
	uint64_t before, c;

	fill(b, sizeof(b), 1);
	sha_hex(b, sizeof(b), hex);
	add_file(s, "h/a.ts", b, sizeof(b), 100);
	add_file(s, "h/b.ts", b, sizeof(b), 100);
	before = store_last_id(s);
	ck_assert_uint_ge(before, 3);
	c = add_file(s, "h/c.ts", b, sizeof(b), 100);
	ck_assert_uint_gt(c, before);
	ck_assert_int_eq(store_apply_snapshot(s, "", v, 2, 1, 200, before,
	    NULL, NULL), 0);
	ck_assert_int_eq(store_resolve(s, "h/a.ts", &e), 0);
	ck_assert_int_eq(store_resolve(s, "h/b.ts", &e), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(store_resolve(s, "h/c.ts", &e), 0);
	ck_assert_uint_eq(e.id, c);
	/* A plain complete listing removes it. */
	ck_assert_int_eq(store_apply_listing(s, "", v, 2, 1, 1, 300, NULL), 0);
	ck_assert_int_eq(store_resolve(s, "h/c.ts", &e), -1);

	/* Folders the snapshot itself creates are listed, however new. */
	{
		struct store_remote w[3] = {
			{ "n", STORE_DIR, 0, 100, NULL, NULL },
			{ "n/m", STORE_DIR, 0, 100, NULL, NULL },
			{ "n/m/a.ts", STORE_FILE, sizeof(b), 100, hex, NULL },
		};

		before = store_last_id(s);
		ck_assert_int_eq(store_apply_snapshot(s, "k", w, 3, 1, 400,
		    before, NULL, NULL), 0);
		ck_assert_int_eq(store_resolve(s, "k/n/m", &e), 0);
		ck_assert_int_eq(e.listed, 400);
		ck_assert_int_eq(store_resolve(s, "k/n", &e), 0);
		ck_assert_int_eq(e.listed, 400);
		ck_assert_int_eq(store_resolve(s, "k/n/m/a.ts", &e), 0);
		{
			struct store_ent *kids;
			size_t n;

			ck_assert_int_eq(store_resolve(s, "k/n", &e), 0);
			ck_assert_int_eq(store_children(s, e.id, &kids, &n), 0);
			ck_assert_uint_eq(n, 1);
			ck_assert_str_eq(kids[0].name, "m");
			free(kids);
			ck_assert_int_eq(store_resolve(s, "k/n/m/a.ts", &e), 0);
			ck_assert_int_eq(store_children(s, e.id, &kids, &n), 0);
			ck_assert_uint_eq(n, 0);
			free(kids);
		}
	}
	store_close(s);
}
END_TEST

/* The change of kind k in ch about name (NULL: folder id), or NULL. */
static const struct store_change *
change_find(const struct store_changes *ch, enum store_change_kind k,
    uint64_t id, const char *name)
{
	size_t i;

	for (i = 0; i < ch->n; i++)
		if (ch->v[i].kind == k && (name != NULL ?
		    ch->v[i].name != NULL && strcmp(ch->v[i].name, name) == 0 :
		    ch->v[i].name == NULL && ch->v[i].id == id))
			return &ch->v[i];
	return NULL;
}

static uint64_t
id_of(struct store *s, const char *rel)
{
	struct store_ent e;

	ck_assert_int_eq(store_resolve(s, rel, &e), 0);
	return e.id;
}

START_TEST(t_snapshot_changes)
{
	struct store *s = mk(BS, 0);
	struct store_changes ch = { 0 };
	const struct store_change *c;
	uint8_t b[100];
	char hex[65];
	struct store_remote v[7] = {
		{ "h", STORE_DIR, 0, 100, NULL, NULL },
		{ "h/m", STORE_DIR, 0, 100, NULL, NULL },
		{ "h/m/a.ts", STORE_FILE, sizeof(b), 100, hex, NULL },
		{ "h/m/b.ts", STORE_FILE, sizeof(b), 100, hex, NULL },
		{ "h/m/c.ts", STORE_FILE, sizeof(b), 100, hex, NULL },
		{ "h/n", STORE_DIR, 0, 100, NULL, NULL },
		{ "h/n/x.ts", STORE_FILE, sizeof(b), 100, hex, NULL },
	};
	struct store_remote w[7] = {
		{ "h", STORE_DIR, 0, 100, NULL, NULL },
		{ "h/m", STORE_DIR, 0, 200, NULL, NULL },
		{ "h/m/a.ts", STORE_FILE, sizeof(b), 100, hex, NULL },
		{ "h/m/c.ts", STORE_FILE, sizeof(b) - 1, 100, NULL, NULL },
		{ "h/m/d.ts", STORE_FILE, sizeof(b), 100, hex, NULL },
		{ "h/o", STORE_DIR, 0, 100, NULL, NULL },
		{ "h/o/y.ts", STORE_FILE, sizeof(b), 100, hex, NULL },
	};
	struct store_remote bad[2] = {
		{ "h/m/e.ts", STORE_FILE, sizeof(b), 100, hex, NULL },
		{ "h/m/../f.ts", STORE_FILE, sizeof(b), 100, hex, NULL },
	};
	uint64_t h, m, bid, cid, nid;

	fill(b, sizeof(b), 1);
	sha_hex(b, sizeof(b), hex);

	/* All new: only the folder that gained the listed one says so. */
	ck_assert_int_eq(store_apply_snapshot(s, "s", v, 7, 1, 200,
	    store_last_id(s), NULL, &ch), 0);
	ck_assert_uint_eq(ch.n, 1);
	ck_assert_ptr_nonnull(change_find(&ch, STORE_CH_NAMES, STORE_ROOT_ID,
	    NULL));
	store_changes_clear(&ch);
	ck_assert_uint_eq(ch.n, 0);

	/* The same listing again changes nothing. */
	ck_assert_int_eq(store_apply_snapshot(s, "s", v, 7, 1, 300,
	    store_last_id(s), NULL, &ch), 0);
	ck_assert_uint_eq(ch.n, 0);

	/*
	 * b.ts and the folder n removed, c.ts rewritten, d.ts and the
	 * folder o (with y.ts) added, m's mtime changed.
	 */
	h = id_of(s, "s/h");
	m = id_of(s, "s/h/m");
	bid = id_of(s, "s/h/m/b.ts");
	cid = id_of(s, "s/h/m/c.ts");
	nid = id_of(s, "s/h/n");
	ck_assert_int_eq(store_apply_snapshot(s, "s", w, 7, 1, 400,
	    store_last_id(s), NULL, &ch), 0);
	ck_assert_uint_eq(ch.n, 6);
	ck_assert_ptr_nonnull(c = change_find(&ch, STORE_CH_REMOVED, 0,
	    "b.ts"));
	ck_assert_uint_eq(c->id, bid);
	ck_assert_uint_eq(c->parent, m);
	ck_assert_ptr_nonnull(c = change_find(&ch, STORE_CH_REMOVED, 0, "n"));
	ck_assert_uint_eq(c->id, nid);
	ck_assert_uint_eq(c->parent, h);
	ck_assert_ptr_nonnull(c = change_find(&ch, STORE_CH_REPLACED, 0,
	    "c.ts"));
	ck_assert_uint_eq(c->id, cid);
	ck_assert_uint_eq(c->parent, m);
	ck_assert_uint_ne(id_of(s, "s/h/m/c.ts"), cid);
	ck_assert_ptr_nonnull(change_find(&ch, STORE_CH_NAMES, m, NULL));
	ck_assert_ptr_nonnull(change_find(&ch, STORE_CH_NAMES, h, NULL));
	ck_assert_ptr_nonnull(change_find(&ch, STORE_CH_ATTR, m, NULL));
	store_changes_clear(&ch);

	/* A listing refused half-way reports nothing. */
	ck_assert_int_eq(store_apply_snapshot(s, "s", bad, 2, 1, 500,
	    store_last_id(s), NULL, &ch), -1);
	ck_assert_uint_eq(ch.n, 0);
	store_changes_clear(&ch);
	store_changes_clear(NULL);
	store_close(s);
}
END_TEST

START_TEST(t_event)
{
	uint8_t buf[100];
	struct store *s = mk(BS, 0);
	struct store_remote del = { "cam/2026/01/02/03/04/05.ts", STORE_FILE,
	    0, 0, NULL, NULL };
	struct store_ent e, d;
	uint64_t id, parent = 0;

	fill(buf, sizeof(buf), 1);
	id = add_file(s, del.name, buf, sizeof(buf), 5);
	ck_assert_int_eq(store_resolve(s, "cam/2026/01/02/03/04", &d), 0);
	ck_assert_int_eq(store_get(s, id, &e), 0);
	ck_assert_uint_eq(e.parent, d.id);
	ck_assert_int_eq(store_put_file(s, id, buf, sizeof(buf)), 0);
	ck_assert(data_eq(del.name, buf, sizeof(buf)));
	id = 77;
	ck_assert_int_eq(store_apply_event(s, &del, 1, &id, &parent), 0);
	ck_assert_uint_eq(id, 0);
	ck_assert_uint_eq(parent, d.id);
	ck_assert_int_eq(store_resolve(s, del.name, &e), -1);
	ck_assert(!data_exists(del.name));
	/* A folder deletion takes its subtree. */
	add_file(s, del.name, buf, sizeof(buf), 5);
	del.name = "cam/2026";
	del.type = STORE_DIR;
	ck_assert_int_eq(store_apply_event(s, &del, 1, NULL, NULL), 0);
	ck_assert_int_eq(store_resolve(s, "cam/2026/01", &e), -1);
	ck_assert_int_eq(store_resolve(s, "cam", &e), 0);
	/* Deleting something unknown is fine. */
	del.name = "nope/x";
	ck_assert_int_eq(store_apply_event(s, &del, 1, NULL, NULL), 0);
	store_close(s);
}
END_TEST

START_TEST(t_blocks)
{
	size_t len = 3 * BS + 100;
	uint8_t *buf = malloc(len), *rd = malloc(len);
	struct store *s = mk(BS, 0);
	struct store_ent e;
	struct store_stats st;
	uint64_t id, miss = 0;
	int fd;

	fill(buf, len, 2);
	id = add_file(s, "n/f.ts", buf, len, 1);
	ck_assert_int_eq(store_have(s, id, 0, len, &miss), 0);
	ck_assert_uint_eq(miss, 0);
	ck_assert_int_eq(store_write_block(s, id, 1, buf + BS, BS), 0);
	ck_assert_int_eq(store_write_block(s, id, 3, buf + 3 * BS, 100), 0);
	/* Readable at once, before any commit. */
	ck_assert_int_eq(store_have(s, id, BS, BS, NULL), 1);
	ck_assert_int_eq(store_have(s, id, BS, 2 * BS, &miss), 0);
	ck_assert_uint_eq(miss, 2 * BS);
	ck_assert_int_eq(store_pread(s, id, rd, BS, BS), BS);
	ck_assert_mem_eq(rd, buf + BS, BS);
	/* Reads are clipped at the end of file. */
	ck_assert_int_eq(store_have(s, id, 3 * BS, 5000, NULL), 1);
	ck_assert_int_eq(store_pread(s, id, rd, 5000, 3 * BS), 100);
	ck_assert_mem_eq(rd, buf + 3 * BS, 100);
	/* Bad block numbers and lengths. */
	ck_assert_int_eq(store_write_block(s, id, 4, buf, 1), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(store_write_block(s, id, 3, buf, BS), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(store_write_block(s, id, 0, buf, 10), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(store_write_block(s, 999, 0, buf, 10), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(store_sync(s), 0);
	ck_assert_int_eq(store_get(s, id, &e), 0);
	ck_assert_int_eq(e.state, STORE_PARTIAL);
	ck_assert_uint_eq(e.have, BS + 100);
	ck_assert_int_eq(store_open_complete(s, id), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert(!data_exists("n/f.ts"));
	ck_assert_int_eq(store_stats(s, "", 0, &st), 0);
	ck_assert_uint_eq(st.partial_files, 1);
	ck_assert_uint_eq(st.partial_bytes, BS + 100);

	/* Marks survive a reopen. */
	store_close(s);
	s = mk(0, 0);
	ck_assert_int_eq(store_have(s, id, BS, BS, NULL), 1);
	ck_assert_int_eq(store_have(s, id, 0, 1, NULL), 0);
	ck_assert_int_eq(store_write_block(s, id, 0, buf, BS), 0);
	ck_assert_int_eq(store_write_block(s, id, 2, buf + 2 * BS, BS), 0);
	ck_assert_int_eq(store_get(s, id, &e), 0);
	ck_assert_int_eq(e.state, STORE_COMPLETE);
	ck_assert_uint_eq(e.have, len);
	ck_assert(data_eq("n/f.ts", buf, len));
	ck_assert_int_eq(store_have(s, id, 0, len, NULL), 1);
	memset(rd, 0, len);
	ck_assert_int_eq(store_pread(s, id, rd, len, 0), (ssize_t)len);
	ck_assert_mem_eq(rd, buf, len);
	fd = store_open_complete(s, id);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, rd, len, 0), (ssize_t)len);
	ck_assert_mem_eq(rd, buf, len);
	close(fd);
	/* Writing a complete file again is a no-op. */
	ck_assert_int_eq(store_write_block(s, id, 0, buf, BS), 0);
	ck_assert_int_eq(store_stats(s, "n", 0, &st), 0);
	ck_assert_uint_eq(st.files, 1);
	ck_assert_uint_eq(st.complete_files, 1);
	ck_assert_uint_eq(st.complete_bytes, len);
	ck_assert_uint_eq(st.partial_files, 0);
	store_close(s);
	free(buf);
	free(rd);
}
END_TEST

START_TEST(t_hash_failure)
{
	size_t len = 2 * BS;
	uint8_t *buf = malloc(len), *bad = malloc(len);
	struct store *s = mk(BS, 0);
	struct store_ent e;
	struct store_stats st;
	uint64_t id;

	fill(buf, len, 3);
	memcpy(bad, buf, len);
	bad[BS + 5] ^= 1;
	id = add_file(s, "h/f.ts", buf, len, 1);
	ck_assert_int_eq(store_write_block(s, id, 0, bad, BS), 0);
	ck_assert_int_eq(store_write_block(s, id, 1, bad + BS, BS), -1);
	ck_assert_int_eq(errno, EBADMSG);
	ck_assert(!data_exists("h/f.ts"));
	ck_assert_int_eq(store_have(s, id, 0, 1, NULL), 0);
	ck_assert_int_eq(store_sync(s), 0);
	ck_assert_int_eq(store_get(s, id, &e), 0);
	ck_assert_int_eq(e.state, STORE_NONE);
	ck_assert_uint_eq(e.have, 0);
	ck_assert_int_eq(store_stats(s, "", 0, &st), 0);
	ck_assert_uint_eq(st.hash_failures, 1);
	ck_assert_uint_eq(store_hash_failures(s), 1);
	/* The right bytes afterwards complete it. */
	ck_assert_int_eq(write_all(s, id, buf, len), 0);
	ck_assert(data_eq("h/f.ts", buf, len));
	store_close(s);
	free(buf);
	free(bad);
}
END_TEST

START_TEST(t_put_file)
{
	size_t len = 10000;
	uint8_t *buf = malloc(len);
	struct store *s = mk(BS, 0);
	struct store_ent e;
	char tmp[PATH_MAX];
	uint64_t id;

	fill(buf, len, 4);
	id = add_file(s, "p/q/r.ts", buf, len, 1);
	ck_assert_int_eq(store_put_file(s, id, buf, len - 1), -1);
	ck_assert_int_eq(errno, EBADMSG);
	buf[0] ^= 1;
	ck_assert_int_eq(store_put_file(s, id, buf, len), -1);
	ck_assert_int_eq(errno, EBADMSG);
	buf[0] ^= 1;
	ck_assert(!data_exists("p/q/r.ts"));
	ck_assert_int_eq(store_get(s, id, &e), 0);
	ck_assert_int_eq(e.state, STORE_NONE);
	ck_assert_int_eq(store_put_file(s, id, buf, len), 0);
	ck_assert(data_eq("p/q/r.ts", buf, len));
	ck_assert_int_eq(store_get(s, id, &e), 0);
	ck_assert_int_eq(e.state, STORE_COMPLETE);
	ck_assert_int_eq(store_put_file(s, 12345, buf, len), -1);
	ck_assert_int_eq(errno, ENOENT);
	/* Nothing is left in tmp/. */
	snprintf(tmp, sizeof(tmp), "rmdir %s/tmp && mkdir %s/tmp", dir, dir);
	ck_assert_int_eq(system(tmp), 0);
	store_close(s);
	free(buf);
}
END_TEST

/* Adds file rel with no known hash; returns its id. */
static uint64_t
add_unknown(struct store *s, const char *rel, size_t len, int64_t mtime)
{
	struct store_remote r = { rel, STORE_FILE, len, mtime, NULL, NULL };
	uint64_t id = 0;

	ck_assert_int_eq(store_apply_event(s, &r, 0, &id, NULL), 0);
	ck_assert_uint_gt(id, 1);
	return id;
}

#define PUT_THREADS	16
#define PUT_FILES	4

struct putter {
	struct store	*s;
	pthread_barrier_t *bar;
	int		 unknown;	/* its files' hashes are not known */
	uint64_t	 id[PUT_FILES];
	uint8_t		*buf[PUT_FILES];
	size_t		 len[PUT_FILES];
	int		 rc[PUT_FILES];
	int		 err[PUT_FILES];
};

static void *
putter_main(void *arg)
{
	struct putter *p = arg;
	uint8_t md[32];
	unsigned n;
	int i;

	pthread_barrier_wait(p->bar);
	for (i = 0; i < PUT_FILES; i++) {
		EVP_Digest(p->buf[i], p->len[i], md, &n, EVP_sha256(), NULL);
		if (i == PUT_FILES - 1 && !p->unknown)
			md[0] ^= 1;	/* the caller's digest is checked */
		p->rc[i] = store_put_verified(p->s, p->id[i], p->buf[i],
		    p->len[i], md, i % 2 ? STORE_COLD : 0);
		p->err[i] = errno;
	}
	return NULL;
}

/*
 * Many callers installing at once share batches (group commit): every
 * file with the right digest ends complete and byte-equal at its path, in
 * three folders, and the one with a wrong digest in each thread is
 * refused and leaves nothing behind. Half the threads put files of no
 * known hash: each one's digest is recorded with its batch.
 */
START_TEST(t_put_concurrent)
{
	struct store *s = mk(BS, 0);
	struct putter p[PUT_THREADS];
	pthread_t th[PUT_THREADS];
	pthread_barrier_t bar;
	struct store_ent e;
	char rel[64], tmp[PATH_MAX], hex[65];
	int t, i;

	pthread_barrier_init(&bar, NULL, PUT_THREADS);
	for (t = 0; t < PUT_THREADS; t++) {
		p[t].s = s;
		p[t].bar = &bar;
		p[t].unknown = t % 2;
		for (i = 0; i < PUT_FILES; i++) {
			p[t].len[i] = 1000 + (size_t)(t * 131 + i * 17);
			p[t].buf[i] = malloc(p[t].len[i]);
			fill(p[t].buf[i], p[t].len[i], (unsigned)(t * 8 + i));
			snprintf(rel, sizeof(rel), "g/%d/%02d-%d.ts", t % 3, t,
			    i);
			p[t].id[i] = p[t].unknown ? add_unknown(s, rel,
			    p[t].len[i], 1) : add_file(s, rel, p[t].buf[i],
			    p[t].len[i], 1);
		}
	}
	for (t = 0; t < PUT_THREADS; t++)
		ck_assert_int_eq(pthread_create(&th[t], NULL, putter_main,
		    &p[t]), 0);
	for (t = 0; t < PUT_THREADS; t++)
		pthread_join(th[t], NULL);
	for (t = 0; t < PUT_THREADS; t++)
		for (i = 0; i < PUT_FILES; i++) {
			snprintf(rel, sizeof(rel), "g/%d/%02d-%d.ts", t % 3, t,
			    i);
			ck_assert_int_eq(store_get(s, p[t].id[i], &e), 0);
			if (i == PUT_FILES - 1 && !p[t].unknown) {
				ck_assert_int_eq(p[t].rc[i], -1);
				ck_assert_int_eq(p[t].err[i], EBADMSG);
				ck_assert_int_eq(e.state, STORE_NONE);
				ck_assert(!data_exists(rel));
			} else {
				ck_assert_msg(p[t].rc[i] == 0, "%s: %s", rel,
				    strerror(p[t].err[i]));
				ck_assert_int_eq(e.state, STORE_COMPLETE);
				ck_assert(data_eq(rel, p[t].buf[i],
				    p[t].len[i]));
				sha_hex(p[t].buf[i], p[t].len[i], hex);
				ck_assert_str_eq(e.sha256, hex);
			}
			free(p[t].buf[i]);
		}
	pthread_barrier_destroy(&bar);
	/* Nothing is left in tmp/. */
	snprintf(tmp, sizeof(tmp), "%s/tmp", dir);
	ck_assert_int_eq(rmdir(tmp), 0);
	ck_assert_int_eq(mkdir(tmp, 0700), 0);
	store_close(s);
}
END_TEST

/*
 * Does the file system of dir take O_DIRECT writes, and keep them out of
 * the page cache (not tmpfs, whose files are the page cache)?
 */
static int
direct_writes(const uint8_t *aligned)
{
	char path[PATH_MAX];
	struct statfs sf;
	int fd, ok;

	if (statfs(dir, &sf) == -1 || sf.f_type == TMPFS_MAGIC)
		return 0;
	snprintf(path, sizeof(path), "%s/direct-probe", dir);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_DIRECT, 0600)) == -1)
		return 0;
	ok = pwrite(fd, aligned, STORE_ALIGN, 0) == STORE_ALIGN;
	close(fd);
	unlink(path);
	return ok;
}

/* Pages of the first len bytes of file rel in the page cache. */
static size_t
cached_pages(const char *rel, size_t len)
{
	char path[PATH_MAX];
	size_t pg = (size_t)sysconf(_SC_PAGESIZE), n = (len + pg - 1) / pg, i, c = 0;
	unsigned char *vec = malloc(n);
	void *m;
	int fd;

	snprintf(path, sizeof(path), "%s/data/%s", dir, rel);
	ck_assert_int_ge(fd = open(path, O_RDONLY), 0);
	m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	ck_assert_ptr_ne(m, MAP_FAILED);
	ck_assert_int_eq(mincore(m, len, vec), 0);
	for (i = 0; i < n; i++)
		c += vec[i] & 1;
	munmap(m, len);
	close(fd);
	free(vec);
	return c;
}

/*
 * Cold installs (the crawler's) go around the page cache: files with and
 * without an unaligned tail, from an aligned and from an unaligned
 * buffer, end complete and byte-equal; where the file system takes
 * O_DIRECT, the aligned head of a file written from an aligned buffer is
 * not in the page cache. A wrong digest is refused as without the flag.
 */
START_TEST(t_put_cold)
{
	static const size_t lens[] = { 100, STORE_ALIGN,
	    3 * STORE_ALIGN + 88, (1 << 20) + 88 };
	struct store *s = mk(BS, 0);
	struct store_ent e;
	uint8_t md[32], *mem, *buf;
	char rel[64];
	unsigned n;
	uint64_t id;
	size_t i, shift;
	int disk;

	ck_assert_int_eq(posix_memalign((void **)&mem, STORE_ALIGN,
	    (1 << 20) + 2 * STORE_ALIGN), 0);
	disk = direct_writes(mem);
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		for (shift = 0; shift < 2; shift++) {
			buf = mem + shift;
			fill(buf, lens[i], (unsigned)(i * 2 + shift));
			snprintf(rel, sizeof(rel), "cold/%zu-%zu.ts", lens[i],
			    shift);
			id = add_file(s, rel, buf, lens[i], 1);
			EVP_Digest(buf, lens[i], md, &n, EVP_sha256(), NULL);
			ck_assert_int_eq(store_put_verified(s, id, buf,
			    lens[i], md, STORE_COLD), 0);
			ck_assert_int_eq(store_get(s, id, &e), 0);
			ck_assert_int_eq(e.state, STORE_COMPLETE);
			if (disk && shift == 0 && lens[i] >= STORE_ALIGN)
				ck_assert_uint_eq(cached_pages(rel, lens[i] &
				    ~(size_t)(STORE_ALIGN - 1)), 0);
			ck_assert(data_eq(rel, buf, lens[i]));
		}
	fill(mem, 2 * STORE_ALIGN, 99);
	id = add_file(s, "cold/bad.ts", mem, 2 * STORE_ALIGN, 1);
	EVP_Digest(mem, 2 * STORE_ALIGN, md, &n, EVP_sha256(), NULL);
	md[5] ^= 1;
	ck_assert_int_eq(store_put_verified(s, id, mem, 2 * STORE_ALIGN, md,
	    STORE_COLD), -1);
	ck_assert_int_eq(errno, EBADMSG);
	ck_assert(!data_exists("cold/bad.ts"));
	free(mem);
	store_close(s);
}
END_TEST

/* A complete file, then the same path with one field changed. */
static void
coherence(int which)
{
	static const char *rel = "cc/2026/01/01/00/00/00.ts";
	size_t len = 5000;
	uint8_t *buf = malloc(len);
	struct store *s = mk(BS, 0);
	struct store_remote r = { rel, STORE_FILE, len, 7, NULL, NULL };
	struct store_ent e;
	char hex[65];
	uint64_t id, nid;

	fill(buf, len, 5);
	id = add_file(s, rel, buf, len, 7);
	ck_assert_int_eq(store_put_file(s, id, buf, len), 0);
	ck_assert(data_eq(rel, buf, len));
	sha_hex(buf, len, hex);
	r.sha256 = hex;
	/* The same identity keeps everything. */
	ck_assert_int_eq(store_apply_listing(s, "", &r, 1, 1, 0, 0, &nid), 0);
	ck_assert_uint_eq(nid, id);
	ck_assert(data_eq(rel, buf, len));
	if (which == 0)
		r.size = len + 1;
	else if (which == 1)
		r.mtime = 8;
	else
		hex[0] = hex[0] == 'a' ? 'b' : 'a';
	ck_assert_int_eq(store_apply_listing(s, "cc", &(struct store_remote){
	    rel + 3, r.type, r.size, r.mtime, r.sha256, NULL }, 1, 1, 0, 0,
	    &nid), 0);
	ck_assert(!data_exists(rel));
	ck_assert_int_eq(store_resolve(s, rel, &e), 0);
	ck_assert_uint_eq(e.id, nid);
	ck_assert_int_eq(e.state, STORE_NONE);
	ck_assert_uint_eq(e.have, 0);
	ck_assert_uint_eq(e.size, r.size);
	ck_assert_int_eq(store_open_complete(s, nid), -1);
	store_close(s);
	free(buf);
}

START_TEST(t_coherence_size) { coherence(0); }
END_TEST
START_TEST(t_coherence_mtime) { coherence(1); }
END_TEST
START_TEST(t_coherence_hash) { coherence(2); }
END_TEST

START_TEST(t_coherence_partial)
{
	size_t len = 2 * BS;
	uint8_t *buf = malloc(len);
	struct store *s = mk(BS, 0);
	struct store_remote r = { "pp.ts", STORE_FILE, len, 2, NULL, NULL };
	char path[PATH_MAX], hex[65];
	uint64_t id;

	fill(buf, len, 6);
	id = add_file(s, "pp.ts", buf, len, 1);
	ck_assert_int_eq(store_write_block(s, id, 0, buf, BS), 0);
	ck_assert_int_eq(store_sync(s), 0);
	snprintf(path, sizeof(path), "%s/partial/%llu", dir,
	    (unsigned long long)id);
	ck_assert_int_eq(access(path, F_OK), 0);
	sha_hex(buf, len, hex);
	r.sha256 = hex;
	ck_assert_int_eq(store_apply_event(s, &r, 0, NULL, NULL), 0);
	ck_assert_int_eq(access(path, F_OK), -1);
	/* The old id is gone: a late block for it is refused. */
	ck_assert_int_eq(store_write_block(s, id, 1, buf + BS, BS), -1);
	ck_assert_int_eq(errno, ENOENT);
	store_close(s);
	free(buf);
}
END_TEST

START_TEST(t_unknown_hash_same_file)
{
	size_t len = 3 * BS + 10;
	uint8_t *buf = malloc(len);
	struct store *s = mk(BS, 0);
	struct store_remote r = { "u/a.ts", STORE_FILE, len, 5, NULL, NULL };
	struct store_ent e;
	char hex[65];
	uint64_t id, nid = 0;

	fill(buf, len, 11);
	sha_hex(buf, len, hex);
	id = add_unknown(s, "u/a.ts", len, 5);
	ck_assert_int_eq(store_get(s, id, &e), 0);
	ck_assert_str_eq(e.sha256, "");
	/* Blocks checked alone are served alone, no whole hash needed. */
	ck_assert_int_eq(store_write_block(s, id, 0, buf, BS), 0);
	ck_assert_int_eq(store_write_block(s, id, 2, buf + 2 * BS, BS), 0);
	ck_assert_int_eq(store_have(s, id, 0, BS, NULL), 1);
	ck_assert_int_eq(store_sync(s), 0);
	/* Unknown again: the same file, nothing lost. */
	ck_assert_int_eq(store_apply_event(s, &r, 0, &nid, NULL), 0);
	ck_assert_uint_eq(nid, id);
	/* Its hash now known, same size and mtime: still the same file. */
	r.sha256 = hex;
	ck_assert_int_eq(store_apply_event(s, &r, 0, &nid, NULL), 0);
	ck_assert_uint_eq(nid, id);
	ck_assert_int_eq(store_get(s, id, &e), 0);
	ck_assert_str_eq(e.sha256, hex);
	ck_assert_int_eq(store_have(s, id, 2 * BS, BS, NULL), 1);
	/* The rest completes it against the hash learnt meanwhile. */
	ck_assert_int_eq(store_write_block(s, id, 1, buf + BS, BS), 0);
	ck_assert_int_eq(store_write_block(s, id, 3, buf + 3 * BS, 10), 0);
	ck_assert_int_eq(store_get(s, id, &e), 0);
	ck_assert_int_eq(e.state, STORE_COMPLETE);
	ck_assert(data_eq("u/a.ts", buf, len));
	/* Unknown once more (an origin that lost its cache): kept. */
	r.sha256 = NULL;
	ck_assert_int_eq(store_apply_event(s, &r, 0, &nid, NULL), 0);
	ck_assert_uint_eq(nid, id);
	ck_assert_int_eq(store_get(s, id, &e), 0);
	ck_assert_int_eq(e.state, STORE_COMPLETE);
	ck_assert_str_eq(e.sha256, hex);
	store_close(s);
	free(buf);
}
END_TEST

START_TEST(t_unknown_hash_recorded)
{
	size_t len = 2 * BS + 7;
	uint8_t *buf = malloc(len), md[32];
	struct store *s = mk(BS, 0);
	struct store_remote r = { "u/b.ts", STORE_FILE, len, 5, NULL, NULL };
	struct store_ent e;
	char hex[65], other[65];
	uint64_t id, id2, nid = 0;

	fill(buf, len, 12);
	sha_hex(buf, len, hex);
	/* Every block checked alone: the file's hash is computed, recorded. */
	id = add_unknown(s, "u/b.ts", len, 5);
	ck_assert_int_eq(write_all(s, id, buf, len), 0);
	ck_assert_int_eq(store_get(s, id, &e), 0);
	ck_assert_int_eq(e.state, STORE_COMPLETE);
	ck_assert_str_eq(e.sha256, hex);
	/* A different known hash, same size and mtime: a change, dropped. */
	memcpy(other, hex, sizeof(other));
	other[0] = other[0] == 'a' ? 'b' : 'a';
	r.sha256 = other;
	ck_assert_int_eq(store_apply_event(s, &r, 0, &nid, NULL), 0);
	ck_assert_uint_ne(nid, id);
	ck_assert(!data_exists("u/b.ts"));
	ck_assert_int_eq(store_get(s, nid, &e), 0);
	ck_assert_int_eq(e.state, STORE_NONE);

	/* A whole file verified against the origin's digest: recorded. */
	id2 = add_unknown(s, "u/c.ts", len, 5);
	ck_assert_int_eq(store_put_verified(s, id2, buf, len, NULL, 0), -1);
	ck_assert_int_eq(errno, EINVAL);
	EVP_Digest(buf, len, md, NULL, EVP_sha256(), NULL);
	ck_assert_int_eq(store_put_verified(s, id2, buf, len, md, 0), 0);
	ck_assert_int_eq(store_get(s, id2, &e), 0);
	ck_assert_int_eq(e.state, STORE_COMPLETE);
	ck_assert_str_eq(e.sha256, hex);
	ck_assert(data_eq("u/c.ts", buf, len));
	/* Its known hash listed again: the same file, kept. */
	r.name = "u/c.ts";
	r.sha256 = hex;
	ck_assert_int_eq(store_apply_event(s, &r, 0, &nid, NULL), 0);
	ck_assert_uint_eq(nid, id2);
	ck_assert(data_eq("u/c.ts", buf, len));
	store_close(s);
	free(buf);
}
END_TEST

START_TEST(t_unknown_hash_learnt_mismatch)
{
	size_t len = 2 * BS;
	uint8_t *buf = malloc(len);
	struct store *s = mk(BS, 0);
	struct store_remote r = { "u/d.ts", STORE_FILE, len, 5, NULL, NULL };
	struct store_ent e;
	char hex[65];
	uint64_t id, nid = 0;

	fill(buf, len, 13);
	id = add_unknown(s, "u/d.ts", len, 5);
	ck_assert_int_eq(store_write_block(s, id, 0, buf, BS), 0);
	/* The hash learnt is not that of these bytes: the file fails. */
	fill(buf + BS, BS, 99);
	sha_hex(buf, len, hex);
	fill(buf + BS, BS, 13);
	r.sha256 = hex;
	ck_assert_int_eq(store_apply_event(s, &r, 0, &nid, NULL), 0);
	ck_assert_uint_eq(nid, id);
	ck_assert_int_eq(store_write_block(s, id, 1, buf + BS, BS), -1);
	ck_assert_int_eq(errno, EBADMSG);
	ck_assert_int_eq(store_get(s, id, &e), 0);
	ck_assert_int_eq(e.state, STORE_NONE);
	ck_assert_int_eq(store_have(s, id, 0, 1, NULL), 0);
	store_close(s);
	free(buf);
}
END_TEST

START_TEST(t_unchecked_blocks)
{
	size_t len = 3 * BS;
	uint8_t *buf = malloc(len);
	struct store *s = mk(BS, 0);
	struct store_ent e;
	uint64_t id, u, b = 99;

	fill(buf, len, 14);
	u = add_unknown(s, "v/u.ts", len, 5);
	/* No digest at all for a file of no known hash: refused. */
	ck_assert_int_eq(store_write_unchecked(s, u, 0, buf, BS), -1);
	ck_assert_int_eq(errno, EINVAL);
	id = add_file(s, "v/k.ts", buf, len, 5);
	ck_assert_int_eq(store_next_missing(s, id, 0, &b), 1);
	ck_assert_uint_eq(b, 0);
	ck_assert_int_eq(store_write_unchecked(s, id, 0, buf, BS), 0);
	/* Here, but not to be served before the whole file verifies. */
	ck_assert_int_eq(store_have(s, id, 0, BS, NULL), 0);
	ck_assert_int_eq(store_next_missing(s, id, 0, &b), 1);
	ck_assert_uint_eq(b, 1);
	/* Checked blocks are, and an unchecked one never overwrites them. */
	ck_assert_int_eq(store_write_block(s, id, 1, buf + BS, BS), 0);
	ck_assert_int_eq(store_have(s, id, BS, BS, NULL), 1);
	ck_assert_int_eq(store_write_unchecked(s, id, 1, buf, BS), 0);
	ck_assert_int_eq(store_have(s, id, BS, BS, NULL), 1);
	/* Unchecked blocks are never recorded: a restart forgets them. */
	ck_assert_int_eq(store_sync(s), 0);
	store_close(s);
	s = mk(BS, 0);
	ck_assert_int_eq(store_next_missing(s, id, 0, &b), 1);
	ck_assert_uint_eq(b, 0);
	ck_assert_int_eq(store_have(s, id, BS, BS, NULL), 1);
	ck_assert_int_eq(store_write_unchecked(s, id, 0, buf, BS), 0);
	ck_assert_int_eq(store_write_unchecked(s, id, 2, buf + 2 * BS, BS), 0);
	/* The whole file verifies: complete. */
	ck_assert_int_eq(store_get(s, id, &e), 0);
	ck_assert_int_eq(e.state, STORE_COMPLETE);
	ck_assert(data_eq("v/k.ts", buf, len));
	ck_assert_int_eq(store_next_missing(s, id, 0, &b), 0);
	store_close(s);
	free(buf);
}
END_TEST

START_TEST(t_links)
{
	struct store *s = mk(BS, 0);
	struct store_remote v[] = {
		{ "news", STORE_DIR, 0, 1, NULL, NULL },
		{ "news/a.ts", STORE_FILE, 0, 1, NULL, NULL },
		{ "alias", STORE_LINK, 0, 2, NULL, "news" },
		{ "news/up", STORE_LINK, 0, 2, NULL, "../news/./a.ts" },
		{ "news/out", STORE_LINK, 0, 2, NULL, "../../etc" },
		{ "abs", STORE_LINK, 0, 2, NULL, "/etc" },
	};
	struct store_remote moved = { "alias", STORE_LINK, 0, 2, NULL, "x" };
	struct store_ent e;
	uint64_t ids[6], nid = 0;
	char *t;

	ck_assert_int_eq(store_apply_listing(s, "", v, 6, 1, 1, 1, ids), 0);
	ck_assert_int_eq(store_resolve(s, "alias", &e), 0);
	ck_assert_int_eq(e.type, STORE_LINK);
	ck_assert_uint_eq(e.size, 4);
	ck_assert_int_eq(e.mtime, 2);
	ck_assert_ptr_nonnull(t = store_readlink(s, e.id));
	ck_assert_str_eq(t, "news");
	free(t);
	ck_assert_int_eq(store_resolve(s, "news/up", &e), 0);
	ck_assert_ptr_nonnull(t = store_readlink(s, e.id));
	ck_assert_str_eq(t, "../news/./a.ts");
	free(t);
	/* Links that leave the export are not shown. */
	ck_assert_int_eq(store_resolve(s, "news/out", &e), -1);
	ck_assert_int_eq(store_resolve(s, "abs", &e), -1);
	ck_assert_uint_eq(ids[4], 0);
	/* Not a link, no target. */
	ck_assert_ptr_null(store_readlink(s, ids[1]));
	ck_assert_int_eq(errno, EINVAL);
	/* The same link again: the same entry; another target: a new one. */
	ck_assert_int_eq(store_apply_event(s, &v[2], 0, &nid, NULL), 0);
	ck_assert_uint_eq(nid, ids[2]);
	ck_assert_int_eq(store_apply_event(s, &moved, 0, &nid, NULL), 0);
	ck_assert_uint_ne(nid, ids[2]);
	ck_assert_ptr_nonnull(t = store_readlink(s, nid));
	ck_assert_str_eq(t, "x");
	free(t);
	/* A link removed, and one that a complete listing lacks. */
	ck_assert_int_eq(store_apply_event(s, &moved, 1, NULL, NULL), 0);
	ck_assert_int_eq(store_resolve(s, "alias", &e), -1);
	ck_assert_int_eq(store_apply_listing(s, "news", v + 1, 0, 0, 1, 2,
	    NULL), 0);
	ck_assert_int_eq(store_resolve(s, "news/up", &e), -1);
	store_close(s);
}
END_TEST

START_TEST(t_expire)
{
	uint8_t buf[300];
	struct store *s = mk(BS, 0);
	struct store_ent e;
	uint64_t old, young, plain;
	int64_t t0;

	fill(buf, sizeof(buf), 7);
	ck_assert_int_eq(dvrpath_time("n/2026/01/01/00/00/00.ts", &t0,
	    NULL), 0);
	/* mtimes say the opposite of the paths: the path wins. */
	old = add_file(s, "n/2026/01/01/00/00/00.ts", buf, 100, t0 + 99999);
	young = add_file(s, "n/2026/01/02/00/00/00.ts", buf, 200, 0);
	plain = add_file(s, "misc/readme.txt", buf, 300, t0 + 10 * 86400);
	ck_assert_int_eq(store_put_file(s, old, buf, 100), 0);
	ck_assert_int_eq(store_put_file(s, young, buf, 200), 0);
	ck_assert_int_eq(store_put_file(s, plain, buf, 300), 0);
	/* now = Jan 2 12:00, depth 1 day: only Jan 1 goes. */
	ck_assert_int_eq(store_expire(s, t0 + 86400 + 43200, 86400), 1);
	ck_assert(!data_exists("n/2026/01/01/00/00/00.ts"));
	ck_assert(data_eq("n/2026/01/02/00/00/00.ts", buf, 200));
	ck_assert(data_exists("misc/readme.txt"));
	ck_assert_int_eq(store_get(s, old, &e), 0);
	ck_assert_int_eq(e.state, STORE_NONE);
	/* By mtime for other files. */
	ck_assert_int_eq(store_expire(s, t0 + 2 * 86400 + 1, 86400), 1);
	ck_assert(!data_exists("n/2026/01/02/00/00/00.ts"));
	ck_assert(data_exists("misc/readme.txt"));
	ck_assert_int_eq(store_expire(s, t0 + 2 * 86400 + 1, 86400), 0);
	ck_assert_int_eq(store_expire(s, t0 + 11 * 86400 + 1, 86400), 1);
	ck_assert(!data_exists("misc/readme.txt"));
	store_close(s);
}
END_TEST

/*
 * Segment i of stream (one letter) from 2026-01-01 00:00, 2 s apart:
 * its path in rel.
 */
static void
seg_rel(char *rel, size_t len, char stream, int i)
{
	snprintf(rel, len, "%c/2026/01/01/00/%02d/%02d.ts", stream, i / 30,
	    (i % 30) * 2);
}

/*
 * More files than one retention batch, in two streams, one with a depth
 * of its own: all of them go, in several transactions, and only those.
 */
START_TEST(t_expire_many)
{
	uint8_t buf[64];
	struct store *s = mk(BS, 0);
	char rel[64];
	int64_t t0;
	int i;

	fill(buf, sizeof(buf), 9);
	ck_assert_int_eq(dvrpath_time("a/2026/01/01/00/00/00.ts", &t0,
	    NULL), 0);
	for (i = 0; i < 300; i++) {
		seg_rel(rel, sizeof(rel), 'a', i);
		ck_assert_int_eq(store_put_file(s, add_file(s, rel, buf, 64, 0),
		    buf, 64), 0);
		rel[0] = 'b';
		ck_assert_int_eq(store_put_file(s, add_file(s, rel, buf, 64, 0),
		    buf, 64), 0);
	}
	/* Ten minutes later, b keeps 5 minutes: its first half goes. */
	ck_assert_int_eq(store_expire_under(s, "b", t0 + 600, 300), 150);
	ck_assert(!data_exists("b/2026/01/01/00/04/58.ts"));
	ck_assert(data_exists("b/2026/01/01/00/05/00.ts"));
	ck_assert(data_exists("a/2026/01/01/00/00/00.ts"));
	ck_assert_int_eq(store_expire_under(s, "nope", t0 + 600, 300), 0);
	/* A day later, with a depth of an hour: everything else. */
	ck_assert_int_eq(store_expire(s, t0 + 86400, 3600), 450);
	ck_assert(!data_exists("a/2026/01/01/00/09/58.ts"));
	ck_assert(!data_exists("b/2026/01/01/00/09/58.ts"));
	ck_assert_int_eq(store_expire(s, t0 + 86400, 3600), 0);
	store_close(s);
}
END_TEST

START_TEST(t_quota)
{
	uint8_t buf[1000];
	struct store *s = mk(BS, 1500);
	uint64_t a, b, c;

	fill(buf, sizeof(buf), 8);
	a = add_file(s, "q/a", buf, 1000, 1);
	b = add_file(s, "q/b", buf, 600, 1);
	c = add_file(s, "q/c", buf, 400, 1);
	ck_assert_int_eq(store_put_file(s, a, buf, 1000), 0);
	ck_assert_int_eq(store_put_file(s, b, buf, 600), 0);
	ck_assert_int_eq(store_put_file(s, c, buf, 400), 0);
	store_touch(s, a);
	store_touch(s, c);
	ck_assert_int_eq(store_sync(s), 0);
	/* b was never read: it goes first, and that is enough. */
	ck_assert_int_eq(store_expire(s, 0, 0), 1);
	ck_assert(!data_exists("q/b"));
	ck_assert(data_exists("q/a"));
	ck_assert(data_exists("q/c"));
	store_close(s);
}
END_TEST

/* The first column of the first row of sql on the index, as an integer. */
static int64_t
db_int(const char *sql)
{
	char path[PATH_MAX];
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t v = -1;

	snprintf(path, sizeof(path), "%s/index.db", dir);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 10000);
	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL),
	    SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* What the index records of local data, summed: the counter's truth. */
static uint64_t
local_sum(void)
{
	return (uint64_t)db_int("SELECT CAST(total(have) AS INTEGER) FROM"
	    " entries WHERE state IN (1,2)");
}

static void
local_eq(struct store *s, int step)
{
	uint64_t n = 0, used, cap;

	ck_assert_int_eq(store_sync(s), 0);
	ck_assert_int_eq(store_local_bytes(s, &n), 0);
	ck_assert_msg(n == local_sum(), "step %d: counter %llu, sum %llu",
	    step, (unsigned long long)n, (unsigned long long)local_sum());
	ck_assert_int_eq(store_room(s, &used, &cap), 0);
	ck_assert_uint_eq(used, cap ? n : 0);
}

#define EVICT_FILES	150

/*
 * The size cap over more files than one batch: the files never read go
 * first, oldest first, across batches, down to 98 % of the cap; the
 * files read stay. The order comes from an index of its own.
 */
START_TEST(t_evict_batches)
{
	uint8_t buf[100];
	struct store *s = mk(BS, 7000);
	char rel[64];
	uint64_t id;
	int i;

	fill(buf, sizeof(buf), 4);
	ck_assert_int_eq(db_int("SELECT count(*) FROM sqlite_master WHERE"
	    " type='index' AND name='entries_lru'"), 1);
	for (i = 0; i < EVICT_FILES; i++) {
		seg_rel(rel, sizeof(rel), 'e', i);
		id = add_file(s, rel, buf, sizeof(buf), 0);
		ck_assert_int_eq(store_put_file(s, id, buf, sizeof(buf)), 0);
		if (i < 50)
			store_touch(s, id);
	}
	local_eq(s, 0);
	/* 15,000 bytes over a cap of 7,000: down to 6,860, 82 files. */
	ck_assert_int_eq(store_expire(s, 0, 0), 82);
	local_eq(s, 1);
	ck_assert_uint_eq(local_sum(), 6800);
	for (i = 0; i < EVICT_FILES; i++) {
		seg_rel(rel, sizeof(rel), 'e', i);
		ck_assert_msg(data_exists(rel) == (i < 50 || i >= 132),
		    "%s: %s", rel, data_exists(rel) ? "kept" : "dropped");
	}
	ck_assert_int_eq(store_expire(s, 0, 0), 0);
	store_close(s);
}
END_TEST

#define MIX_FILES	24
#define MIX_STEPS	400

/*
 * A random mix of everything that changes what is here (blocks, whole
 * files, hash failures, changed and deleted files, complete listings,
 * retention, the size cap, a lost data file found by the check, a
 * restart): the local bytes counter equals the sum after each step.
 */
START_TEST(t_local_bytes)
{
	static uint8_t buf[BS * 5], bad[BS];
	struct store *s = mk(BS, 0);
	struct store_remote r;
	char rel[64], hex[65], path[PATH_MAX];
	uint64_t id, len;
	unsigned seed = 12345;
	int step, f, k, op;

	fill(buf, sizeof(buf), 3);
	memset(bad, 0xee, sizeof(bad));
	for (step = 0; step < MIX_STEPS; step++) {
		seed = seed * 1103515245u + 12345u;
		f = (int)(seed >> 8) % MIX_FILES;
		op = (int)(seed >> 16) % 10;
		/* Ten minutes apart, the first in 2026/01/01 00:00. */
		snprintf(rel, sizeof(rel), "m/2026/01/01/%02d/%02d/00.ts",
		    f / 6, f % 6 * 10);
		len = BS * (uint64_t)(1 + f % 5) - (uint64_t)(f % 3) * 100;
		k = (int)(seed >> 24) % 5;
		switch (op) {
		case 0:		/* (re)announced with another size */
			len -= (uint64_t)k * 7 + 1;
			/* FALLTHROUGH */
		case 1:
		case 2:
			id = add_file(s, rel, buf, len, 1);
			if (op == 2)
				store_put_file(s, id, buf, len);
			else if ((uint64_t)k * BS < len)
				store_write_block(s, id, (uint64_t)k,
				    buf + k * BS, len - k * BS < BS ?
				    len - k * BS : BS);
			break;
		case 3:		/* the rest of its blocks */
			id = add_file(s, rel, buf, len, 1);
			write_all(s, id, buf, len);
			break;
		case 4:		/* a last block that fails the hash */
			id = add_file(s, rel, buf, len, 1);
			write_all(s, id, buf, len - len % BS ? len - len % BS :
			    len - BS);
			store_write_block(s, id, (len - 1) / BS, bad,
			    len % BS ? len % BS : BS);
			break;
		case 5:
			r = (struct store_remote){ rel, STORE_FILE, 0, 0, NULL,
			    NULL };
			store_apply_event(s, &r, 1, NULL, NULL);
			break;
		case 6:		/* a folder's complete listing drops one */
			sha_hex(buf, len, hex);
			r = (struct store_remote){ "00/00.ts", STORE_FILE, len,
			    1, hex, NULL };
			ck_assert_int_eq(store_apply_listing(s,
			    "m/2026/01/01", &r, 1, 0, 1, 2, NULL), 0);
			break;
		case 7:		/* retention by the segments' time */
			ck_assert_int_ge(store_expire(s, 1767225600 + k * 3600,
			    3600), 0);
			break;
		case 8:		/* a data file lost behind the store's back */
			snprintf(path, sizeof(path), "%s/data/%s", dir, rel);
			unlink(path);
			ck_assert_int_eq(store_check(s), 0);
			break;
		default:	/* a restart, with a size cap now and then */
			store_close(s);
			s = mk(0, k == 0 ? BS * 6 : 0);
			if (k == 0)
				ck_assert_int_ge(store_expire(s, 0, 0), 0);
		}
		local_eq(s, step);
	}
	ck_assert_uint_gt(local_sum(), 0);
	store_close(s);
	s = mk(0, 0);
	local_eq(s, step);
	store_close(s);
}
END_TEST

/* The bytes of file path, malloc'd, their length in *n. */
static uint8_t *
slurp(const char *path, size_t *n)
{
	struct stat sb;
	uint8_t *b;
	int fd;

	ck_assert_int_ne(fd = open(path, O_RDONLY), -1);
	ck_assert_int_eq(fstat(fd, &sb), 0);
	ck_assert_ptr_nonnull(b = malloc((size_t)sb.st_size + 1));
	ck_assert_int_eq(read(fd, b, (size_t)sb.st_size + 1), sb.st_size);
	close(fd);
	*n = (size_t)sb.st_size;
	return b;
}

/* An index of a later version is refused, and stays as it was. */
START_TEST(t_newer_version)
{
	struct store_conf ro = { .readonly = 1 };
	struct store *s = mk(BS, 0);
	char path[PATH_MAX];
	uint8_t *a, *b;
	size_t na, nb;
	sqlite3 *db;

	add_file(s, "v/x", "x", 1, 1);
	store_close(s);
	snprintf(path, sizeof(path), "%s/index.db", dir);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "PRAGMA journal_mode=DELETE;"
	    "PRAGMA user_version=999", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	a = slurp(path, &na);
	ck_assert_ptr_null(store_open(dir, NULL));
	ck_assert_int_eq(errno, EPROTONOSUPPORT);
	ck_assert_ptr_null(store_open(dir, &ro));
	ck_assert_int_eq(errno, EPROTONOSUPPORT);
	b = slurp(path, &nb);
	ck_assert_uint_eq(na, nb);
	ck_assert(memcmp(a, b, na) == 0);
	free(a);
	free(b);
	snprintf(path, sizeof(path), "%s/index.db-wal", dir);
	ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

/* The settings value key of the index, -1 when it has none. */
static int64_t
setting(const char *key)
{
	char sql[128];

	snprintf(sql, sizeof(sql), "SELECT value FROM settings WHERE"
	    " key='%s'", key);
	return db_int(sql);
}

/* Waits (20 s at most) for the background check to end its pass. */
static void
check_pass_end(void)
{
	int i;

	for (i = 0; i < 200 && setting("check_from") != 0; i++)
		usleep(100000);
	ck_assert_int_eq(setting("check_from"), 0);
}

/*
 * The background check goes on where the last open left it: a file lost
 * before that point is not seen in this pass, one after it is; the next
 * open starts a new pass, which finds the first.
 */
START_TEST(t_check_resumes)
{
	uint8_t buf[100];
	struct store *s = mk(BS, 0);
	struct store_ent e;
	char rel[32], path[PATH_MAX];
	uint64_t id[8];
	sqlite3 *db;
	int i;

	fill(buf, sizeof(buf), 4);
	for (i = 0; i < 8; i++) {
		snprintf(rel, sizeof(rel), "c/%d", i);
		id[i] = add_file(s, rel, buf, sizeof(buf), 1);
		ck_assert_int_eq(store_put_file(s, id[i], buf, sizeof(buf)), 0);
	}
	store_close(s);
	snprintf(path, sizeof(path), "%s/index.db", dir);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	snprintf(path, sizeof(path), "INSERT OR REPLACE INTO settings(key,"
	    "value) VALUES('check_from',%llu)", (unsigned long long)id[4]);
	ck_assert_int_eq(sqlite3_exec(db, path, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	snprintf(path, sizeof(path), "%s/data/c/1", dir);
	ck_assert_int_eq(unlink(path), 0);
	/* The wrong size counts as lost too. */
	snprintf(path, sizeof(path), "%s/data/c/6", dir);
	ck_assert_int_eq(truncate(path, 10), 0);
	s = mk(0, 0);
	check_pass_end();
	ck_assert_int_eq(store_get(s, id[6], &e), 0);
	ck_assert_int_eq(e.state, STORE_NONE);
	ck_assert(!data_exists("c/6"));
	ck_assert_int_eq(store_get(s, id[1], &e), 0);
	ck_assert_int_eq(e.state, STORE_COMPLETE);
	ck_assert_int_eq(store_get(s, id[7], &e), 0);
	ck_assert_int_eq(e.state, STORE_COMPLETE);
	store_close(s);
	s = mk(0, 0);
	for (i = 0; i < 200; i++) {
		ck_assert_int_eq(store_get(s, id[1], &e), 0);
		if (e.state == STORE_NONE)
			break;
		usleep(100000);
	}
	ck_assert_int_eq(e.state, STORE_NONE);
	check_pass_end();
	ck_assert_int_eq(store_get(s, id[0], &e), 0);
	ck_assert_int_eq(e.state, STORE_COMPLETE);
	store_close(s);
}
END_TEST

/* The schema of the store before version 2, as it was created then. */
static const char old_schema[] =
    "CREATE TABLE IF NOT EXISTS settings(key TEXT PRIMARY KEY,"
    " value INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS entries("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " parent INTEGER NOT NULL, name TEXT NOT NULL, type INTEGER NOT NULL,"
    " size INTEGER NOT NULL DEFAULT 0, mtime INTEGER NOT NULL DEFAULT 0,"
    " sha BLOB, state INTEGER NOT NULL DEFAULT 0,"
    " have INTEGER NOT NULL DEFAULT 0, bitmap BLOB,"
    " atime INTEGER NOT NULL DEFAULT 0, listed INTEGER NOT NULL DEFAULT 0,"
    " t INTEGER NOT NULL DEFAULT 0, gen INTEGER NOT NULL DEFAULT 0,"
    " target TEXT, UNIQUE(parent, name));"
    "CREATE INDEX IF NOT EXISTS entries_local ON entries(state, t)"
    " WHERE state > 0;"
    "CREATE TABLE IF NOT EXISTS intent(id INTEGER PRIMARY KEY,"
    " path TEXT NOT NULL);"
    "INSERT OR IGNORE INTO entries(id, parent, name, type)"
    " VALUES(1, 0, '', 100);";

/* Writes n bytes of buf to dir/sub at offset off, creating it. */
static void
put_bytes(const char *sub, const void *buf, size_t n, off_t off)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	ck_assert_int_ne(fd = open(path, O_CREAT | O_WRONLY, 0644), -1);
	ck_assert_int_eq(pwrite(fd, buf, n, off), (ssize_t)n);
	close(fd);
}

/*
 * A store of the layout before version 2 (entries with their bitmaps,
 * keyed by an AUTOINCREMENT id) is migrated on open: every entry, state,
 * bitmap, link target, counter and id survives, the intent in flight is
 * recovered, and the store works on (look-ups, listing, marks, a
 * completion, new ids after every old one).
 */
START_TEST(t_migrate)
{
	static uint8_t buf[BS * 3];
	char path[PATH_MAX], sql[2048], hc[65], hp[65];
	struct store_ent e, *v = NULL;
	struct store *s;
	uint64_t n = 0, id;
	size_t nv = 0;
	sqlite3 *db;

	fill(buf, sizeof(buf), 11);
	sha_hex(buf, 100, hc);
	sha_hex(buf, sizeof(buf), hp);
	snprintf(path, sizeof(path), "%s/index.db", dir);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL,
	    NULL, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, old_schema, NULL, NULL, NULL),
	    SQLITE_OK);
	snprintf(sql, sizeof(sql),
	    "INSERT INTO settings VALUES('block_size',%d),('hash_failures',3);"
	    "INSERT INTO entries(id,parent,name,type,mtime,listed) VALUES"
	    " (2,1,'m',100,7,5);"
	    "INSERT INTO entries(id,parent,name,type,size,mtime,sha,state,have,"
	    " t,gen) VALUES(3,2,'c',102,100,8,x'%s',2,100,8,4);"
	    "INSERT INTO entries(id,parent,name,type,size,mtime,sha,state,have,"
	    " bitmap,t,gen) VALUES(4,2,'p',102,%d,9,x'%s',1,%d,x'01',9,"
	    " 2);"
	    "INSERT INTO entries(id,parent,name,type,size,mtime) VALUES"
	    " (5,2,'n',102,50,10);"
	    "INSERT INTO entries(id,parent,name,type,size,mtime,target) VALUES"
	    " (6,2,'l',108,1,11,'c');"
	    "INSERT INTO entries(id,parent,name,type) VALUES(9,2,'gone',102);"
	    "DELETE FROM entries WHERE id=9;"
	    "INSERT INTO intent VALUES(5,'m/n');"
	    /* Pages enough that the old table's are not all reused. */
	    "INSERT INTO entries(id,parent,name,type,size,mtime) VALUES"
	    " (10,1,'bulk',100,0,1);"
	    "WITH RECURSIVE k(i) AS (SELECT 11 UNION ALL SELECT i+1 FROM k"
	    " WHERE i<2009) INSERT INTO entries(id,parent,name,type,size,"
	    " mtime) SELECT i,10,printf('%%040d.ts',i),102,1000,i FROM k;",
	    BS, hc, BS * 3, hp, BS);
	ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	ck_assert_int_eq(db_int("SELECT seq FROM sqlite_sequence"), 2009);
	snprintf(path, sizeof(path), "%s/data", dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/data/m", dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/partial", dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	put_bytes("data/m/c", buf, 100, 0);
	put_bytes("partial/4", buf, BS, 0);

	s = mk(0, 0);
	ck_assert_uint_eq(store_block_size(s), BS);
	ck_assert_int_eq(db_int("PRAGMA user_version"), 2);
	/* The old table's pages are not left free in the file. */
	ck_assert_int_eq(db_int("PRAGMA freelist_count"), 0);
	ck_assert_int_eq(db_int("SELECT count(*) FROM intent"), 0);
	ck_assert_uint_eq(store_hash_failures(s), 3);
	ck_assert_int_eq(store_local_bytes(s, &n), 0);
	ck_assert_uint_eq(n, 100 + BS);
	ck_assert_int_eq(store_get(s, 2, &e), 0);
	ck_assert(e.type == STORE_DIR && e.listed == 5 && e.mtime == 7);
	ck_assert_int_eq(store_lookup(s, 2, "c", &e), 0);
	ck_assert(e.id == 3 && e.state == STORE_COMPLETE && e.have == 100);
	ck_assert_str_eq(e.sha256, hc);
	ck_assert(data_eq("m/c", buf, 100));
	ck_assert_int_eq(store_resolve(s, "m/p", &e), 0);
	ck_assert(e.id == 4 && e.state == STORE_PARTIAL && e.have == BS);
	ck_assert_str_eq(e.sha256, hp);
	ck_assert_int_eq(store_have(s, 4, 0, BS, NULL), 1);
	ck_assert_int_eq(store_have(s, 4, BS, BS, NULL), 0);
	ck_assert_int_eq(store_get(s, 5, &e), 0);
	ck_assert(e.state == STORE_NONE && e.size == 50 && e.sha256[0] == 0);
	ck_assert_str_eq(store_readlink(s, 6), "c");
	ck_assert_int_eq(store_children(s, 2, &v, &nv), 0);
	ck_assert_uint_eq(nv, 4);
	ck_assert(strcmp(v[0].name, "c") == 0 && strcmp(v[1].name, "l") == 0 &&
	    strcmp(v[2].name, "n") == 0 && strcmp(v[3].name, "p") == 0);
	free(v);
	/* The partial file goes on from its old bitmap. */
	ck_assert_int_eq(store_write_block(s, 4, 1, buf + BS, BS), 0);
	ck_assert_int_eq(store_sync(s), 0);
	ck_assert_int_eq(db_int("SELECT length(bitmap) FROM bitmaps"
	    " WHERE id=4"), 1);
	ck_assert_int_eq(store_write_block(s, 4, 2, buf + 2 * BS, BS), 0);
	ck_assert(data_eq("m/p", buf, sizeof(buf)));
	ck_assert_int_eq(db_int("SELECT count(*) FROM bitmaps"), 0);
	id = add_file(s, "m/new", buf, 10, 1);
	ck_assert_uint_gt(id, 2009);
	ck_assert_uint_eq(store_last_id(s), id);
	local_eq(s, 0);
	store_close(s);
	s = mk(0, 0);
	ck_assert_int_eq(store_resolve(s, "m/p", &e), 0);
	ck_assert_int_eq(e.state, STORE_COMPLETE);
	ck_assert_uint_gt(add_file(s, "m/newer", buf, 10, 1), id);
	local_eq(s, 1);
	store_close(s);
}
END_TEST

START_TEST(t_dvr_time)
{
	int64_t t = 0;
	size_t sl = 0;

	ck_assert_int_eq(dvrpath_time("news/2026/11/27/07/13/04.ts", &t,
	    &sl), 0);
	ck_assert_int_eq(t, 1795763584);
	ck_assert_uint_eq(sl, 4);
	ck_assert_int_eq(dvrpath_time("a/b/c/1970/01/01/00/00/00.ts", &t,
	    &sl), 0);
	ck_assert_int_eq(t, 0);
	ck_assert_uint_eq(sl, 5);
	ck_assert_int_eq(dvrpath_time("x/2024/02/29/23/59/60.ts", &t, NULL),
	    0);
	ck_assert_int_eq(t, 1709251200);
}
END_TEST

START_TEST(t_dvr_time_bad)
{
	static const char *bad[] = {
		"news/2026/13/27/07/13/04.ts",	/* month */
		"news/2026/00/27/07/13/04.ts",
		"news/2025/02/29/07/13/04.ts",	/* not a leap year */
		"news/2026/04/31/07/13/04.ts",
		"news/2026/11/00/07/13/04.ts",
		"news/2026/11/27/24/13/04.ts",
		"news/2026/11/27/07/60/04.ts",
		"news/2026/11/27/07/13/61.ts",
		"news/2026/1a/27/07/13/04.ts",	/* non-digits */
		"news/2026/11/27/07/13/+4.ts",
		"news/2026/11/27/07/13/4.ts",	/* width */
		"news/2026/011/27/07/13/04.ts",
		"news/026/11/27/07/13/04.ts",
		"news/2026/11/27/07/13/04",	/* no extension */
		"news/2026/11/27/07/13/04.",
		"news/2026/11/27/07/13/04x.ts",
		"2026/11/27/07/13/04.ts",	/* no stream */
		"/2026/11/27/07/13/04.ts",
		"11/27/07/13/04.ts",		/* too few */
		"news//2026/11/27/07/13/04.ts",
		"",
	};
	size_t i;
	int64_t t;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		ck_assert_msg(dvrpath_time(bad[i], &t, NULL) == -1 &&
		    errno == EINVAL, "%s accepted", bad[i]);
	}
}
END_TEST

START_TEST(t_readonly)
{
	struct store_conf ro = { .readonly = 1 };
	uint8_t buf[10];
	struct store *s = mk(BS, 0), *r;
	struct store_ent e;
	uint64_t id;

	fill(buf, sizeof(buf), 9);
	id = add_file(s, "ro/x", buf, sizeof(buf), 1);
	ck_assert_int_eq(store_put_file(s, id, buf, sizeof(buf)), 0);
	r = store_open(dir, &ro);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(store_block_size(r), BS);
	ck_assert_int_eq(store_resolve(r, "ro/x", &e), 0);
	ck_assert_int_eq(e.state, STORE_COMPLETE);
	ck_assert_int_eq(store_have(r, id, 0, 10, NULL), 1);
	ck_assert_int_eq(store_write_block(r, id, 0, buf, 10), -1);
	ck_assert_int_eq(errno, EROFS);
	ck_assert_int_eq(store_expire(r, 0, 1), -1);
	ck_assert_int_eq(errno, EROFS);
	/* The writer goes on while the reader is open, and it sees that. */
	add_file(s, "ro/y", buf, 5, 1);
	ck_assert_int_eq(store_resolve(r, "ro/y", &e), 0);
	store_close(r);
	store_close(s);
}
END_TEST

START_TEST(t_recovery)
{
	uint8_t buf[BS * 2];
	struct store *s = mk(BS, 0);
	struct store_ent e;
	char path[PATH_MAX];
	uint64_t a, b;
	int fd;

	fill(buf, sizeof(buf), 10);
	a = add_file(s, "r/a", buf, sizeof(buf), 1);
	b = add_file(s, "r/b", buf, 100, 1);
	ck_assert_int_eq(store_put_file(s, a, buf, sizeof(buf)), 0);
	ck_assert_int_eq(store_write_block(s, b, 0, buf, 100) == 0, 1);
	store_close(s);
	/* Leftovers: tmp file, orphan partial, lost data file. */
	snprintf(path, sizeof(path), "%s/tmp/x.123", dir);
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	close(fd);
	snprintf(path, sizeof(path), "%s/partial/99999", dir);
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	close(fd);
	snprintf(path, sizeof(path), "%s/data/r/a", dir);
	ck_assert_int_eq(unlink(path), 0);
	s = mk(0, 0);
	ck_assert_int_eq(store_check(s), 0);
	ck_assert_int_eq(store_get(s, a, &e), 0);
	ck_assert_int_eq(e.state, STORE_NONE);
	ck_assert_int_eq(store_get(s, b, &e), 0);
	ck_assert_int_eq(e.state, STORE_COMPLETE);
	snprintf(path, sizeof(path), "%s/tmp/x.123", dir);
	ck_assert_int_eq(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/partial/99999", dir);
	ck_assert_int_eq(access(path, F_OK), -1);
	store_close(s);
}
END_TEST

START_TEST(t_edges)
{
	static const char empty_sha[] = "e3b0c44298fc1c149afbf4c8996fb924"
	    "27ae41e4649b934ca495991b7852b855";
	uint8_t buf[2 * BS], rd[2 * BS];
	struct store *s = mk(BS, 0);
	struct store_remote z = { "e/empty", STORE_FILE, 0, 1, empty_sha, NULL };
	struct store_ent e;
	uint64_t id;

	/* Empty file: nothing to have, reads give 0 bytes. */
	ck_assert_int_eq(store_apply_event(s, &z, 0, &id, NULL), 0);
	ck_assert_int_eq(store_have(s, id, 0, 100, NULL), 1);
	ck_assert_int_eq(store_pread(s, id, rd, 100, 0), 0);
	ck_assert_int_eq(store_write_block(s, id, 0, buf, 1), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(store_put_file(s, id, buf, 0), 0);
	ck_assert(data_eq("e/empty", buf, 0));
	/* One byte. */
	fill(buf, sizeof(buf), 11);
	id = add_file(s, "e/one", buf, 1, 1);
	ck_assert_int_eq(store_have(s, id, 0, 1, NULL), 0);
	ck_assert_int_eq(store_write_block(s, id, 0, buf, 1), 0);
	ck_assert(data_eq("e/one", buf, 1));
	/* Exact multiple of the block size. */
	id = add_file(s, "e/two", buf, 2 * BS, 1);
	ck_assert_int_eq(store_write_block(s, id, 1, buf + BS, BS), 0);
	ck_assert_int_eq(store_have(s, id, BS, BS, NULL), 1);
	ck_assert_int_eq(store_have(s, id, BS - 1, 2, NULL), 0);
	ck_assert_int_eq(store_write_block(s, id, 2, buf, 1), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(store_write_block(s, id, 0, buf, BS), 0);
	ck_assert(data_eq("e/two", buf, 2 * BS));
	ck_assert_int_eq(store_get(s, id, &e), 0);
	ck_assert_int_eq(e.state, STORE_COMPLETE);
	store_close(s);
}
END_TEST

START_TEST(t_large_sparse)
{
	static const char h[] = "2222222222222222222222222222222222222222"
	    "222222222222222222222222";
	uint64_t size = 5ULL * 1024 * 1024 * 1024 + 3, miss = 0;
	struct store_remote r = { "big/f", STORE_FILE, size, 1, h, NULL };
	uint8_t buf[BS], rd[BS];
	struct store *s = mk(BS, 0);
	struct store_ent e;
	uint64_t id, last = size / BS;

	fill(buf, sizeof(buf), 12);
	ck_assert_int_eq(store_apply_event(s, &r, 0, &id, NULL), 0);
	ck_assert_int_eq(store_write_block(s, id, last, buf, 3), 0);
	ck_assert_int_eq(store_write_block(s, id, last - 1, buf, BS), 0);
	ck_assert_int_eq(store_write_block(s, id, last, buf, 4), -1);
	ck_assert_int_eq(store_sync(s), 0);
	store_close(s);
	s = mk(0, 0);
	ck_assert_int_eq(store_have(s, id, (last - 1) * BS, BS + 3, NULL), 1);
	ck_assert_int_eq(store_have(s, id, (uint64_t)1 << 32, 1, &miss), 0);
	ck_assert_uint_eq(miss, ((uint64_t)1 << 32) / BS * BS);
	ck_assert_int_eq(store_pread(s, id, rd, BS, last * BS), 3);
	ck_assert_mem_eq(rd, buf, 3);
	ck_assert_int_eq(store_get(s, id, &e), 0);
	ck_assert_uint_eq(e.have, BS + 3);
	ck_assert_int_eq(e.state, STORE_PARTIAL);
	store_close(s);
}
END_TEST

START_TEST(t_hostile)
{
	static const char h[] = "3333333333333333333333333333333333333333"
	    "333333333333333333333333";
	char longname[300];
	const char *names[] = { "..", "a/../b", "/abs", "a//b", "a/", ".",
	    "", longname };
	struct store_remote v[2] = { { "ok", STORE_FILE, 1, 1, h, NULL } };
	struct store *s = mk(BS, 0);
	struct store_ent e;
	size_t i;

	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		v[1] = (struct store_remote){ names[i], STORE_FILE, 1, 1, h, NULL };
		ck_assert_int_eq(store_apply_listing(s, "", v, 2, 1, 1, 1, NULL),
		    -1);
		ck_assert_int_eq(errno, EINVAL);
	}
	v[1] = (struct store_remote){ "bad", STORE_FILE, 1, 1, "ABCD", NULL };
	ck_assert_int_eq(store_apply_listing(s, "", v, 2, 1, 1, 1, NULL), -1);
	v[1] = (struct store_remote){ "huge", STORE_FILE, UINT64_MAX, 1, h, NULL };
	ck_assert_int_eq(store_apply_listing(s, "", v, 2, 1, 1, 1, NULL), -1);
	ck_assert_int_eq(store_apply_listing(s, "../x", v, 1, 1, 1, 1, NULL),
	    -1);
	/* Nothing of a rejected listing was kept. */
	ck_assert_int_eq(store_resolve(s, "ok", &e), -1);
	ck_assert_int_eq(store_lookup(s, STORE_ROOT_ID, "..", &e), -1);
	store_close(s);
}
END_TEST

/* A corrupt record in a folder is an error, never a shorter listing. */
/* What store_scan_dir passes: each child in name order, its fields. */
struct rows {
	char		 name[8][16];
	struct store_row r[8];
	size_t		 n;
};

static int
row_add(void *arg, const struct store_row *r)
{
	struct rows *v = arg;

	ck_assert_uint_lt(v->n, 8);
	ck_assert_uint_lt(r->namelen, sizeof(v->name[0]));
	memcpy(v->name[v->n], r->name, r->namelen);
	v->name[v->n][r->namelen] = '\0';
	v->r[v->n++] = *r;
	return v->n == 3;	/* stops after the third */
}

START_TEST(t_scan_dir)
{
	uint8_t buf[100], md[32];
	struct store *s = mk(BS, 0);
	struct store_ent e;
	struct rows v = { .n = 0 };
	uint64_t b;

	fill(buf, sizeof(buf), 3);
	add_file(s, "c/b", buf, 10, 7);
	b = add_file(s, "c/a", buf, sizeof(buf), 9);
	add_file(s, "c/e/x", buf, 1, 1);
	add_file(s, "c/d", buf, 20, 8);
	EVP_Digest(buf, sizeof(buf), md, NULL, EVP_sha256(), NULL);
	ck_assert_int_eq(store_put_verified(s, b, buf, sizeof(buf), md, 0), 0);
	ck_assert_int_eq(store_resolve(s, "c", &e), 0);
	ck_assert_int_eq(store_scan_dir(s, e.id, row_add, &v), 3);
	ck_assert_str_eq(v.name[0], "a");
	ck_assert_str_eq(v.name[1], "b");
	ck_assert_str_eq(v.name[2], "d");
	ck_assert_uint_eq(v.r[0].id, b);
	ck_assert_int_eq(v.r[0].type, STORE_FILE);
	ck_assert_int_eq(v.r[0].state, STORE_COMPLETE);
	ck_assert_uint_eq(v.r[0].size, sizeof(buf));
	ck_assert_uint_eq(v.r[0].have, sizeof(buf));
	ck_assert_int_eq(v.r[0].mtime, 9);
	ck_assert_int_eq(v.r[1].state, STORE_NONE);
	ck_assert_uint_eq(v.r[1].size, 10);
	ck_assert_uint_eq(v.r[1].have, 0);
	v.n = 0;
	ck_assert_int_eq(store_scan_dir(s, e.id, row_add, &v), 3);
	ck_assert_int_eq(store_resolve(s, "c/e", &e), 0);
	v.n = 0;
	ck_assert_int_eq(store_scan_dir(s, e.id, row_add, &v), 1);
	ck_assert_str_eq(v.name[0], "x");
	store_close(s);
}
END_TEST

static int
scan_any(void *arg, const struct store_row *r)
{
	(void)arg;
	(void)r;
	return 0;
}

START_TEST(t_readdir_corrupt)
{
	uint8_t buf[10];
	struct store *s = mk(BS, 0);
	struct store_ent e, keep, *kids;
	struct names nm = { .n = 0 };
	char path[PATH_MAX];
	sqlite3 *db;
	size_t n;

	fill(buf, sizeof(buf), 12);
	add_file(s, "c/a", buf, sizeof(buf), 1);
	add_file(s, "c/b", buf, sizeof(buf), 1);
	add_file(s, "c/d", buf, sizeof(buf), 1);
	store_close(s);
	snprintf(path, sizeof(path), "%s/index.db", dir);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "UPDATE entries SET type=7 WHERE "
	    "name='b'", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	s = mk(0, 0);
	ck_assert_int_eq(store_resolve(s, "c", &e), 0);
	/* A look-up of the bad record: EIO, and out as it was. */
	keep = e;
	errno = 0;
	ck_assert_int_eq(store_lookup(s, e.id, "b", &e), -1);
	ck_assert_int_eq(errno, EIO);
	ck_assert_mem_eq(&e, &keep, sizeof(e));
	errno = 0;
	ck_assert_int_eq(store_readdir(s, e.id, NULL, 10, collect, &nm), -1);
	ck_assert_int_eq(errno, EIO);
	ck_assert_int_eq(store_children(s, e.id, &kids, &n), -1);
	ck_assert_ptr_null(kids);
	errno = 0;
	ck_assert_int_eq(store_scan_dir(s, e.id, scan_any, NULL), -1);
	ck_assert_int_eq(errno, EIO);
	/* Before the bad record, a page is still whole. */
	nm.n = 0;
	ck_assert_int_eq(store_readdir(s, e.id, NULL, 1, collect, &nm), 1);
	ck_assert_str_eq(nm.v[0], "a");
	store_close(s);
}
END_TEST

/*
 * A chain of DEEP folders: inserted, listed, its leaf completed, removed
 * by a feed event and by a complete listing, across reopens; all on a
 * small thread stack, so a walk that recurses per level crashes.
 */
#define DEEP		1900
#define DEEP_STACK	(256 * 1024)

static char *
deep_rel(char top, const char *leaf)
{
	size_t i, n = strlen(leaf);
	char *rel = malloc(2 * DEEP + n + 1);

	for (i = 0; i < DEEP; i++) {
		rel[2 * i] = i == 0 ? top : 'a';
		rel[2 * i + 1] = '/';
	}
	memcpy(rel + 2 * DEEP, leaf, n + 1);
	return rel;
}

static int
one_child(void *arg, const struct store_ent *e)
{
	*(struct store_ent *)arg = *e;
	return 0;
}

#define DEEP_CHECK(c) do { if (!(c)) return #c; } while (0)

static const char *
deep_run(void)
{
	static const char h[] = "4444444444444444444444444444444444444444"
	    "444444444444444444444444";
	struct store_conf conf = { .block_size = BS };
	uint8_t buf[100];
	char *a = deep_rel('a', "f"), *b = deep_rel('b', "g"), hex[65], *p;
	struct store_remote ra = { a, STORE_FILE, sizeof(buf), 1, hex, NULL };
	struct store_remote rb = { b, STORE_FILE, 1, 1, h, NULL };
	struct store_remote top = { "x.ts", STORE_FILE, 1, 1, h, NULL };
	struct store_remote del = { "b", STORE_DIR, 0, 0, NULL, NULL };
	struct store_ent e, k;
	struct store *s;
	uint64_t ida, idb, cur;
	char datapath[PATH_MAX];
	int i;

	fill(buf, sizeof(buf), 13);
	sha_hex(buf, sizeof(buf), hex);
	DEEP_CHECK((s = store_open(dir, &conf)) != NULL);
	DEEP_CHECK(store_apply_event(s, &ra, 0, &ida, NULL) == 0);
	DEEP_CHECK(store_apply_event(s, &rb, 0, &idb, NULL) == 0);
	DEEP_CHECK(store_resolve(s, a, &e) == 0 && e.id == ida);
	DEEP_CHECK((p = store_path(s, ida)) != NULL && strcmp(p, a) == 0);
	free(p);
	/* Listed level by level. */
	for (cur = STORE_ROOT_ID, i = 0; i <= DEEP; i++) {
		DEEP_CHECK(store_readdir(s, cur, i == 0 ? "a" : NULL, 1,
		    one_child, &k) == 1);
		cur = k.id;
	}
	DEEP_CHECK(cur == idb && strcmp(k.name, "g") == 0);
	/* A complete recursive listing of the same chain keeps it. */
	DEEP_CHECK(store_apply_listing(s, "", &ra, 1, 1, 0, 5, NULL) == 0);
	DEEP_CHECK(store_put_file(s, ida, buf, sizeof(buf)) == 0);
	snprintf(datapath, sizeof(datapath), "%s/data/%s", dir, a);
	DEEP_CHECK(access(datapath, F_OK) == 0);
	store_close(s);

	/* A store left with such chains opens, and they go. */
	DEEP_CHECK((s = store_open(dir, &conf)) != NULL);
	DEEP_CHECK(store_apply_event(s, &del, 1, NULL, NULL) == 0);
	DEEP_CHECK(store_get(s, idb, &e) == -1 && errno == ENOENT);
	DEEP_CHECK(store_resolve(s, "b", &e) == -1 && errno == ENOENT);
	DEEP_CHECK(store_resolve(s, a, &e) == 0 && e.state == STORE_COMPLETE);
	DEEP_CHECK(store_apply_listing(s, "", &top, 1, 1, 1, 6, NULL) == 0);
	DEEP_CHECK(store_get(s, ida, &e) == -1 && errno == ENOENT);
	DEEP_CHECK(store_resolve(s, "a", &e) == -1 && errno == ENOENT);
	DEEP_CHECK(store_readdir(s, STORE_ROOT_ID, NULL, 10, one_child,
	    &k) == 1 && strcmp(k.name, "x.ts") == 0);
	snprintf(datapath, sizeof(datapath), "%s/data/a", dir);
	DEEP_CHECK(access(datapath, F_OK) == -1 && errno == ENOENT);
	store_close(s);

	DEEP_CHECK((s = store_open(dir, &conf)) != NULL);
	DEEP_CHECK(store_get(s, ida, &e) == -1 && errno == ENOENT);
	DEEP_CHECK(store_last_id(s) >= idb);
	store_close(s);
	free(a);
	free(b);
	return NULL;
}

static void *
deep_thread(void *arg)
{
	*(const char **)arg = deep_run();
	return NULL;
}

START_TEST(t_deep_chain)
{
	pthread_attr_t attr;
	pthread_t t;
	const char *failed = "not run";

	ck_assert_int_eq(pthread_attr_init(&attr), 0);
	ck_assert_int_eq(pthread_attr_setstacksize(&attr, DEEP_STACK), 0);
	ck_assert_int_eq(pthread_create(&t, &attr, deep_thread, &failed), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	pthread_attr_destroy(&attr);
	ck_assert_msg(failed == NULL, "%s", failed);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("store");
	TCase *core = tcase_create("core"), *limits = tcase_create("limits");

	tcase_add_checked_fixture(core, setup, teardown);
	tcase_add_checked_fixture(limits, setup, teardown);
	tcase_add_test(core, t_block_size_fixed);
	tcase_add_test(core, t_listing);
	tcase_add_test(core, t_lookup_reply);
	tcase_add_test(core, t_listing_flat);
	tcase_add_test(core, t_listing_unsorted);
	tcase_add_test(core, t_event);
	tcase_add_test(core, t_snapshot);
	tcase_add_test(core, t_snapshot_changes);
	tcase_add_test(core, t_blocks);
	tcase_add_test(core, t_hash_failure);
	tcase_add_test(core, t_put_file);
	tcase_add_test(core, t_put_concurrent);
	tcase_add_test(core, t_put_cold);
	tcase_add_test(core, t_coherence_size);
	tcase_add_test(core, t_coherence_mtime);
	tcase_add_test(core, t_coherence_hash);
	tcase_add_test(core, t_coherence_partial);
	tcase_add_test(core, t_unknown_hash_same_file);
	tcase_add_test(core, t_unknown_hash_recorded);
	tcase_add_test(core, t_unknown_hash_learnt_mismatch);
	tcase_add_test(core, t_unchecked_blocks);
	tcase_add_test(core, t_links);
	tcase_add_test(core, t_expire);
	tcase_add_test(core, t_expire_many);
	tcase_add_test(core, t_quota);
	tcase_add_test(core, t_evict_batches);
	tcase_add_test(core, t_dvr_time);
	tcase_add_test(core, t_readonly);
	tcase_add_test(core, t_recovery);
	tcase_add_test(core, t_local_bytes);
	tcase_add_test(core, t_check_resumes);
	tcase_add_test(core, t_migrate);
	tcase_add_test(limits, t_newer_version);
	tcase_add_test(limits, t_dvr_time_bad);
	tcase_add_test(limits, t_edges);
	tcase_add_test(limits, t_large_sparse);
	tcase_add_test(limits, t_hostile);
	tcase_add_test(limits, t_readdir_corrupt);
	tcase_add_test(limits, t_scan_dir);
	tcase_add_test(limits, t_deep_chain);
	tcase_set_timeout(core, 60);
	tcase_set_timeout(limits, 120);
	suite_add_tcase(s, core);
	suite_add_tcase(s, limits);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(suite());
	int nf;

	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}
