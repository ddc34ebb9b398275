/*
 * store_data: the local data of the store's files. Blocks of partial
 * files, the group commit that makes their bits durable (run by the
 * committer thread of store.c), installing verified files into data/,
 * and dropping an entry's local data. Calls only store_sql.c.
 *
 * A block's bytes go to partial/ID at once and its bit into the pfile's
 * in-memory bitmap (so store_have and store_pread see it); the committer
 * later fdatasyncs every touched partial file once and records all new
 * bits in one transaction. A crash loses only bits not yet committed.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bitmap.h"
#include "log.h"
#include "store.h"
#include "store_impl.h"

int
store_xpath(struct store *s, char *buf, size_t sz, const char *sub,
    const char *rel)
{
	int n;

	if (rel == NULL || *rel == '\0')
		n = snprintf(buf, sz, "%s/%s", s->dir, sub);
	else
		n = snprintf(buf, sz, "%s/%s/%s", s->dir, sub, rel);
	if (n < 0 || (size_t)n >= sz) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int
store_partial_path(struct store *s, char *buf, size_t sz, uint64_t id)
{
	int n = snprintf(buf, sz, "%s/partial/%" PRIu64, s->dir, id);

	if (n < 0 || (size_t)n >= sz) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

static void
pf_free(struct pfile *p)
{
	if (p == NULL)
		return;
	if (p->fd != -1)
		close(p->fd);
	free(p->bits);
	free(p->ubits);
	free(p->durable);
	free(p);
}

/* The live pfile of id, or NULL. s->lock held. */
static struct pfile *
pf_find(struct store *s, uint64_t id)
{
	struct pfile *p;

	for (p = s->pf[id % STORE_PF_HASH]; p != NULL; p = p->next)
		if (p->id == id)
			return p;
	return NULL;
}

/*
 * Takes id's pfile out of the table; freed when its last user goes.
 * Returns whether there was one. s->lock held.
 */
static int
pf_kill(struct store *s, uint64_t id)
{
	struct pfile **pp, *p;

	for (pp = &s->pf[id % STORE_PF_HASH]; (p = *pp) != NULL;
	    pp = &p->next)
		if (p->id == id) {
			*pp = p->next;
			p->dead = 1;
			if (p->refs == 0)
				pf_free(p);
			return 1;
		}
	return 0;
}

/* Drops a reference taken under s->lock; s->lock held. */
static void
pf_unref(struct pfile *p)
{
	if (--p->refs == 0 && p->dead)
		pf_free(p);
}

/*
 * Steps *stp, the read connection's Q_BITMAP, for the recorded bitmap of
 * id at generation gen: returns it when it has nb bytes (valid until the
 * caller resets *stp), else NULL; *stp is NULL if the query could not be
 * made. s->lock held.
 */
static const void *
bitmap_get(struct store *s, uint64_t id, uint64_t gen, size_t nb,
    sqlite3_stmt **stp)
{
	sqlite3_stmt *st;

	if ((*stp = st = store_q(store_rdc(s), Q_BITMAP)) == NULL)
		return NULL;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)gen);
	if (sqlite3_step(st) == SQLITE_ROW &&
	    (size_t)sqlite3_column_bytes(st, 0) == nb)
		return sqlite3_column_blob(st, 0);
	return NULL;
}

/*
 * The pfile of file id, loaded from the index if needed. s->lock held.
 * NULL with EEXIST when the file is complete, ENOENT, EINVAL (a folder).
 */
static struct pfile *
pf_get(struct store *s, uint64_t id)
{
	struct pfile *p;
	struct ent e;
	sqlite3_stmt *st;
	const void *b;
	char path[PATH_MAX];
	size_t nb;
	int i;

	if ((p = pf_find(s, id)) != NULL)
		return p;
	if (store_get_c(store_rdc(s), id, &e) == -1)
		return NULL;
	if (e.e.type != STORE_FILE) {
		errno = EINVAL;
		return NULL;
	}
	if (e.e.state == STORE_COMPLETE) {
		errno = EEXIST;
		return NULL;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->fd = -1;
	p->id = id;
	p->gen = e.gen;
	p->size = e.e.size;
	p->nblocks = bitmap_nblocks(e.e.size, s->bs);
	nb = bitmap_bytes(p->nblocks);
	memcpy(p->sha, e.sha, sizeof(p->sha));
	p->has_sha = e.has_sha;
	if ((p->bits = calloc(1, nb + 1)) == NULL ||
	    (p->durable = calloc(1, nb + 1)) == NULL)
		goto fail;
	if (e.e.state == STORE_PARTIAL) {
		if ((b = bitmap_get(s, id, e.gen, nb, &st)) != NULL)
			memcpy(p->durable, b, nb);
		if (st == NULL)
			goto fail;
		sqlite3_reset(st);
		memcpy(p->bits, p->durable, nb);
		p->nset = bitmap_count(p->bits, p->nblocks);
	}
	if (store_partial_path(s, path, sizeof(path), id) == -1 ||
	    (p->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) == -1)
		goto fail;
	p->next = s->pf[id % STORE_PF_HASH];
	s->pf[id % STORE_PF_HASH] = p;
	return p;
fail:
	i = errno;
	pf_free(p);
	errno = i;
	return NULL;
}

static int
pf_clean(const struct pfile *p)
{
	return p->refs == 0 && !p->dirty && !p->completing &&
	    memcmp(p->bits, p->durable, bitmap_bytes(p->nblocks)) == 0;
}

/*
 * SHA-256 of buf (when not NULL) or of the first size bytes of fd.
 * -1 with EBADMSG if fd is shorter, or errno of the read.
 */
int
store_sha256(int fd, const void *buf, size_t len, uint64_t size,
    uint8_t out[32])
{
	EVP_MD_CTX *ctx;
	unsigned char *b = NULL;
	uint64_t off = 0;
	ssize_t n;
	int r = -1, e = EIO;

	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		goto out;
	if (buf != NULL) {
		if (EVP_DigestUpdate(ctx, buf, len) != 1)
			goto out;
	} else {
		if ((b = malloc(1 << 20)) == NULL) {
			e = ENOMEM;
			goto out;
		}
		while (off < size) {
			size_t want = size - off < (1 << 20) ?
			    (size_t)(size - off) : (1 << 20);

			n = pread(fd, b, want, (off_t)off);
			if (n == -1 && errno == EINTR)
				continue;
			if (n <= 0) {
				e = n == 0 ? EBADMSG : errno;
				goto out;
			}
			if (EVP_DigestUpdate(ctx, b, (size_t)n) != 1)
				goto out;
			off += (uint64_t)n;
		}
	}
	if (EVP_DigestFinal_ex(ctx, out, NULL) != 1)
		goto out;
	r = 0;
out:
	free(b);
	EVP_MD_CTX_free(ctx);
	if (r == -1)
		errno = e;
	return r;
}

static int
fsync_path(const char *path)
{
	int fd, r;

	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	r = fsync(fd);
	close(fd);
	return r;
}

/* mkdir -p of path's parent folders, each new folder synced in its own. */
static int
mkparents(char *path, size_t skip)
{
	char *p;
	int r;

	for (p = path + skip + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		r = mkdir(path, 0755);
		if (r == 0) {
			char *up = strrchr(path, '/');

			*up = '\0';
			r = fsync_path(path);
			*up = '/';
		} else if (errno == EEXIST)
			r = 0;
		*p = '/';
		if (r == -1)
			return -1;
	}
	return 0;
}

/*
 * Installs: each caller queues its verified file and waits; the first
 * caller to find no batch running installs everything queued (group
 * commit), so a batch costs two index commits and one fsync per folder,
 * whatever its size.
 */
struct inst {
	uint64_t	 id, gen;
	const char	*src;
	int		 fd;		/* src open, to fdatasync; or -1 */
	const uint8_t	*sha;		/* the hash to record, or NULL */
	int		 err;		/* 0 or errno, once done */
	int		 done;		/* under s->ilock */
	int		 synced;	/* its folder is synced */
	char		*dst;		/* final path, once the intent is in */
	struct inst	*next;
};

static int
inst_sql(struct store *s, enum q q, uint64_t id, uint64_t gen,
    const char *rel, const char *what)
{
	sqlite3_stmt *st;

	if ((st = store_q(&s->wr, q)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
	if (rel != NULL)
		sqlite3_bind_text(st, 2, rel, -1, SQLITE_STATIC);
	else if (q == Q_COMPLETE)
		sqlite3_bind_int64(st, 2, (sqlite3_int64)gen);
	return store_step(&s->wr, st, what);
}

/*
 * Records the intent of every still-current entry of v, and the hash of
 * those that bring one, in one transaction; s->wlock held. An entry whose
 * hash was meanwhile recorded otherwise gets EBADMSG.
 */
static int
inst_intents(struct store *s, struct inst *v)
{
	char dst[PATH_MAX], *rel;
	struct inst *i;
	struct ent e;
	int r = 0;

	if (store_begin(&s->wr) == -1)
		return -1;
	for (i = v; i != NULL && r == 0; i = i->next) {
		if (i->err != 0)
			continue;
		if (store_get_c(&s->wr, i->id, &e) == -1) {
			i->err = errno;
			continue;
		}
		if (e.gen != i->gen || e.e.type != STORE_FILE) {
			i->err = ENOENT;
			continue;
		}
		if (i->sha != NULL && store_set_sha(s, i->id, &i->gen,
		    i->sha) == -1) {
			if (errno == ENOENT || errno == EBADMSG)
				i->err = errno;
			else
				r = -1;
			continue;
		}
		if ((rel = store_path_c(&s->wr, i->id)) == NULL ||
		    store_xpath(s, dst, sizeof(dst), "data", rel) == -1 ||
		    (i->dst = strdup(dst)) == NULL) {
			i->err = errno;
			free(rel);
			continue;
		}
		r = inst_sql(s, Q_INTENT_ADD, i->id, 0, rel, "intent");
		free(rel);
	}
	return store_end(&s->wr, r);
}

/* Syncs the folder of i->dst once for all entries after i sharing it. */
static void
inst_sync_dir(struct inst *i)
{
	char *slash = strrchr(i->dst, '/');
	struct inst *k;
	size_t n = (size_t)(slash - i->dst);
	int err = 0;

	*slash = '\0';
	if (fsync_path(i->dst) == -1) {
		err = errno;
		log_warn("fsync %s", i->dst);
	}
	*slash = '/';
	for (k = i; k != NULL; k = k->next)
		if (k->err == 0 && k->dst != NULL &&
		    strncmp(k->dst, i->dst, n + 1) == 0 &&
		    strchr(k->dst + n + 1, '/') == NULL) {
			k->synced = 1;
			if (err != 0)
				k->err = err;
		}
}

/* Installs the batch v; takes s->wlock. Sets each entry's err. */
static void
install_batch(struct store *s, struct inst *v)
{
	size_t skip = strlen(s->dir) + strlen("/data");
	struct inst *i;
	char path[PATH_MAX];
	int r;

	for (i = v; i != NULL; i = i->next)
		if (i->fd >= 0 && fdatasync(i->fd) == -1) {
			i->err = errno;
			log_warn("fdatasync %s", i->src);
		}
	pthread_mutex_lock(&s->wlock);
	if (inst_intents(s, v) == -1) {
		for (i = v; i != NULL; i = i->next)
			if (i->err == 0)
				i->err = errno;
		goto out;
	}
	for (i = v; i != NULL; i = i->next) {
		if (i->err != 0)
			continue;
		if (mkparents(i->dst, skip) == -1 || rename(i->src, i->dst) ==
		    -1) {
			i->err = errno;
			log_warn("install %s", i->dst);
			free(i->dst);
			i->dst = NULL;	/* the intent stays for recovery */
		}
	}
	for (i = v; i != NULL; i = i->next)
		if (i->err == 0 && !i->synced)
			inst_sync_dir(i);
	if ((r = store_begin(&s->wr)) == 0) {
		for (i = v; i != NULL && r == 0; i = i->next)
			if (i->err == 0 && (inst_sql(s, Q_COMPLETE, i->id,
			    i->gen, NULL, "complete") == -1 ||
			    inst_sql(s, Q_INTENT_DEL, i->id, 0, NULL,
			    "intent") == -1))
				r = -1;
		r = store_end(&s->wr, r);
	}
	if (r == -1)
		for (i = v; i != NULL; i = i->next)
			if (i->err == 0)
				i->err = errno;
	pthread_mutex_lock(&s->lock);
	for (i = v; i != NULL; i = i->next) {
		if (i->err == 0) {
			/* The partial data, if any, is no longer needed. */
			pf_kill(s, i->id);
			if (store_partial_path(s, path, sizeof(path),
			    i->id) == 0)
				unlink(path);
		} else if (i->dst != NULL)
			/* Nothing unverified-by-the-index at a final path. */
			unlink(i->dst);
	}
	pthread_mutex_unlock(&s->lock);
out:
	pthread_mutex_unlock(&s->wlock);
	for (i = v; i != NULL; i = i->next) {
		free(i->dst);
		i->dst = NULL;
	}
}

/*
 * Moves the verified file src (fd open on it to be synced, or -1 when it
 * is synced already) to id's final path and marks it complete, if id
 * still has generation gen. The index first records the intent, so
 * recovery after a crash checks whatever it finds there; sha, when not
 * NULL, becomes id's hash in the same transaction. -1 with ENOENT when
 * the entry changed meanwhile, EBADMSG when it has another hash.
 */
static int
install(struct store *s, uint64_t id, uint64_t gen, const char *src, int fd,
    const uint8_t *sha)
{
	struct inst me = { .id = id, .gen = gen, .src = src, .fd = fd,
	    .sha = sha }, *v;

	pthread_mutex_lock(&s->ilock);
	*s->iq_tail = &me;
	s->iq_tail = &me.next;
	while (!me.done) {
		if (s->installing) {
			pthread_cond_wait(&s->idone, &s->ilock);
			continue;
		}
		s->installing = 1;
		v = s->iq;
		s->iq = NULL;
		s->iq_tail = &s->iq;
		pthread_mutex_unlock(&s->ilock);
		install_batch(s, v);
		pthread_mutex_lock(&s->ilock);
		for (; v != NULL; v = v->next)
			v->done = 1;
		s->installing = 0;
		pthread_cond_broadcast(&s->idone);
	}
	pthread_mutex_unlock(&s->ilock);
	if (me.err != 0) {
		errno = me.err;
		return -1;
	}
	return 0;
}

/*
 * Resets the record of id (if its generation is *gen, when gen is not
 * NULL): state NONE, no bits, a new generation. s->wlock held, in a
 * transaction.
 */
static int
reset_ent(struct store *s, uint64_t id, const uint64_t *gen)
{
	sqlite3_stmt *st;

	if ((st = store_q(&s->wr, Q_RESET)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
	if (gen != NULL)
		sqlite3_bind_int64(st, 2, (sqlite3_int64)*gen);
	return store_step(&s->wr, st, "reset");
}

/*
 * Drops the local data of file e (at rel, or NULL when its data file is
 * dealt with by the caller): forgets its open partial file, unlinks
 * partial and complete data, then resets its record. Files go first: a
 * record that says complete without its file is repaired later, a file
 * at a final path without its record would be unverified data. Nothing
 * to do for an entry without local data. s->wlock held, inside a
 * transaction.
 */
int
store_drop_local(struct store *s, const struct ent *e, const char *rel)
{
	char path[PATH_MAX];
	sqlite3_stmt *st;

	pthread_mutex_lock(&s->lock);
	if (!pf_kill(s, e->e.id) && e->e.state == STORE_NONE) {
		pthread_mutex_unlock(&s->lock);
		return 0;
	}
	if (store_partial_path(s, path, sizeof(path), e->e.id) == 0 &&
	    unlink(path) == -1 && errno != ENOENT)
		log_warn("unlink %s", path);
	if (e->e.state == STORE_COMPLETE && rel != NULL &&
	    store_xpath(s, path, sizeof(path), "data", rel) == 0 &&
	    unlink(path) == -1 && errno != ENOENT)
		log_warn("unlink %s", path);
	pthread_mutex_unlock(&s->lock);

	if ((st = store_q(&s->wr, Q_INTENT_DEL)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)e->e.id);
	if (store_step(&s->wr, st, "intent") == -1)
		return -1;
	return reset_ent(s, e->e.id, NULL);
}

int
store_set_sha(struct store *s, uint64_t id, const uint64_t *gen,
    const uint8_t sha[32])
{
	sqlite3_stmt *st;
	struct pfile *p;
	struct ent e;

	if ((st = store_q(&s->wr, Q_SETSHA)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
	sqlite3_bind_blob(st, 2, sha, 32, SQLITE_STATIC);
	if (gen != NULL)
		sqlite3_bind_int64(st, 3, (sqlite3_int64)*gen);
	if (store_step(&s->wr, st, "hash") == -1)
		return -1;
	if (sqlite3_changes(s->wr.db) != 1) {
		if (store_get_c(&s->wr, id, &e) == -1)
			return -1;
		errno = (gen != NULL && e.gen != *gen) ||
		    e.e.type != STORE_FILE ? ENOENT : EBADMSG;
		return -1;
	}
	/* Blocks arriving from now on complete against it. */
	pthread_mutex_lock(&s->lock);
	if ((p = pf_find(s, id)) != NULL && (gen == NULL || p->gen == *gen)) {
		memcpy(p->sha, sha, 32);
		p->has_sha = 1;
	}
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* Entry id as the index has it now; takes s->lock. */
static int
ent_read(struct store *s, uint64_t id, struct ent *e)
{
	int r;

	pthread_mutex_lock(&s->lock);
	r = store_get_c(store_rdc(s), id, e);
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* store_set_sha() in a transaction of its own; takes s->wlock. */
static int
record_sha(struct store *s, uint64_t id, uint64_t gen, const uint8_t sha[32])
{
	int r;

	pthread_mutex_lock(&s->wlock);
	if ((r = store_begin(&s->wr)) == 0)
		r = store_end(&s->wr, store_set_sha(s, id, &gen, sha));
	pthread_mutex_unlock(&s->wlock);
	return r;
}

/* Records a hash failure of id and drops its blocks. Takes s->wlock. */
static void
hash_failed(struct store *s, uint64_t id, uint64_t gen)
{
	char path[PATH_MAX];
	int r;

	log_warnx("entry %llu: SHA-256 mismatch, blocks dropped",
	    (unsigned long long)id);
	pthread_mutex_lock(&s->wlock);
	pthread_mutex_lock(&s->lock);
	pf_kill(s, id);
	if (store_partial_path(s, path, sizeof(path), id) == 0)
		unlink(path);
	pthread_mutex_unlock(&s->lock);
	if ((r = store_begin(&s->wr)) == 0) {
		r = reset_ent(s, id, &gen);
		if (r == 0)
			r = store_run(&s->wr, Q_HASHFAIL_ADD);
		r = store_end(&s->wr, r);
	}
	if (r == -1)
		log_warn("entry %llu: hash failure not recorded",
		    (unsigned long long)id);
	pthread_mutex_unlock(&s->wlock);
}

/* All blocks of p are here: verify, sync, install. p is referenced. */
static int
complete(struct store *s, struct pfile *p)
{
	char src[PATH_MAX];
	uint8_t sha[32];
	int r = -1, e, known;

	if (store_sha256(p->fd, NULL, 0, p->size, sha) == -1)
		goto out;
	/*
	 * No hash known: every block was checked against a digest of its
	 * own, so the file's hash is the one the primary would compute.
	 */
	pthread_mutex_lock(&s->lock);
	known = p->has_sha;
	pthread_mutex_unlock(&s->lock);
	if (!known && record_sha(s, p->id, p->gen, sha) == -1) {
		if (errno != EBADMSG)
			goto out;
		known = 1;	/* learnt meanwhile, and another */
	}
	if (known && memcmp(sha, p->sha, 32) != 0) {
		hash_failed(s, p->id, p->gen);
		errno = EBADMSG;
		goto out;
	}
	if (store_partial_path(s, src, sizeof(src), p->id) == -1)
		goto out;
	r = install(s, p->id, p->gen, src, p->fd, NULL);
out:
	e = errno;
	pthread_mutex_lock(&s->lock);
	p->completing = 0;
	pthread_mutex_unlock(&s->lock);
	errno = e;
	return r;
}

static int
pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const char *b = buf;
	ssize_t n;

	while (len > 0) {
		n = pwrite(fd, b, len, (off_t)off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = ENOSPC;
			return -1;
		}
		b += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/*
 * Stores a block (unchecked: see store_write_unchecked). An unchecked
 * block never overwrites one that is here already.
 */
static int
write_block(struct store *s, uint64_t id, uint64_t block, const void *buf,
    size_t len, int unchecked)
{
	struct pfile *p;
	size_t nb;
	int r = -1, done = 0, e, was;

	if (s->ro) {
		errno = EROFS;
		return -1;
	}
	pthread_mutex_lock(&s->lock);
	if ((p = pf_get(s, id)) == NULL) {
		r = errno == EEXIST ? 0 : -1;
		pthread_mutex_unlock(&s->lock);
		return r;
	}
	if (block >= p->nblocks || len == 0 ||
	    len != bitmap_block_len(p->size, s->bs, block) ||
	    (unchecked && !p->has_sha)) {
		pthread_mutex_unlock(&s->lock);
		errno = EINVAL;
		return -1;
	}
	nb = bitmap_bytes(p->nblocks);
	if (unchecked && (bitmap_test(p->bits, block) || (p->ubits == NULL &&
	    (p->ubits = calloc(1, nb + 1)) == NULL))) {
		r = bitmap_test(p->bits, block) ? 0 : -1;
		pthread_mutex_unlock(&s->lock);
		return r;
	}
	p->refs++;
	pthread_mutex_unlock(&s->lock);

	e = pwrite_all(p->fd, buf, len, block * (uint64_t)s->bs) == -1 ?
	    errno : 0;

	pthread_mutex_lock(&s->lock);
	if (e == 0 && p->dead)
		e = ENOENT;
	if (e == 0) {
		/* Checked now, it is recorded with the next batch. */
		was = p->ubits != NULL && bitmap_test(p->ubits, block);
		if (unchecked)
			bitmap_set(p->ubits, block);
		else if (was)
			p->ubits[block / 8] &= (uint8_t)~(1u << (block % 8));
		if (!bitmap_test(p->bits, block)) {
			bitmap_set(p->bits, block);
			p->nset++;
		} else if (!was || unchecked)
			was = -1;	/* no news for the index */
		if (!unchecked && was != -1) {
			p->dirty = 1;
			if (s->ndirty++ == 0 || s->ndirty == STORE_BATCH_N)
				pthread_cond_signal(&s->wake);
		}
		if (!p->completing && p->nset == p->nblocks) {
			p->completing = 1;
			done = 1;
		}
		r = 0;
	}
	pthread_mutex_unlock(&s->lock);
	if (done && complete(s, p) == -1) {
		e = errno;
		r = -1;
	}
	pthread_mutex_lock(&s->lock);
	pf_unref(p);
	pthread_mutex_unlock(&s->lock);
	if (r == -1)
		errno = e;
	return r;
}

int
store_write_block(struct store *s, uint64_t id, uint64_t block,
    const void *buf, size_t len)
{
	return write_block(s, id, block, buf, len, 0);
}

int
store_write_unchecked(struct store *s, uint64_t id, uint64_t block,
    const void *buf, size_t len)
{
	return write_block(s, id, block, buf, len, 1);
}

int
store_put_file(struct store *s, uint64_t id, const void *buf, size_t len)
{
	return store_put_verified(s, id, buf, len, NULL, 0);
}

/*
 * Writes buf as the content of the new file fd. Cold bytes go around the
 * page cache: the aligned head with O_DIRECT, the tail (less than
 * STORE_ALIGN bytes) through the cache. Where the file system refuses
 * O_DIRECT, everything goes through the cache.
 */
static int
write_new(int fd, const char *buf, size_t len, int cold)
{
	size_t head = 0;
	int fl;

	if (cold && ((uintptr_t)buf & (STORE_ALIGN - 1)) == 0 &&
	    len >= STORE_ALIGN && (fl = fcntl(fd, F_GETFL)) != -1 &&
	    fcntl(fd, F_SETFL, fl | O_DIRECT) == 0) {
		head = len & ~(size_t)(STORE_ALIGN - 1);
		if (pwrite_all(fd, buf, head, 0) == -1) {
			if (errno != EINVAL)
				return -1;
			head = 0;
		}
		if (fcntl(fd, F_SETFL, fl) == -1)
			return -1;
	}
	return pwrite_all(fd, buf + head, len - head, head);
}

int
store_put_verified(struct store *s, uint64_t id, const void *buf,
    size_t len, const uint8_t digest[32], int flags)
{
	char tmp[PATH_MAX];
	uint8_t sha[32];
	const uint8_t *record = NULL;
	struct ent e;
	int fd = -1, err;

	if (s->ro) {
		errno = EROFS;
		return -1;
	}
	if (ent_read(s, id, &e) == -1)
		return -1;
	if (e.e.type != STORE_FILE || (!e.has_sha && digest == NULL)) {
		errno = EINVAL;
		return -1;
	}
	if (e.e.state == STORE_COMPLETE)
		return 0;
	if (len != e.e.size) {
		errno = EBADMSG;
		return -1;
	}
	/*
	 * The digest the primary sent with buf becomes its hash, recorded
	 * with the install's intent: a commit of its own for each file
	 * would serialise the crawler's finishers on the index.
	 */
	if (!e.has_sha)
		record = digest;
	else {
		if (digest == NULL && store_sha256(-1, buf, len, 0, sha) == 0)
			digest = sha;
		if (digest == NULL || memcmp(digest, e.sha, 32) != 0) {
			if (digest != NULL)
				hash_failed(s, id, e.gen);
			errno = EBADMSG;
			return -1;
		}
	}
	if (snprintf(tmp, sizeof(tmp), "%s/tmp/%llu.XXXXXX", s->dir,
	    (unsigned long long)id) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = mkstemp(tmp)) == -1)
		return -1;
	if (write_new(fd, buf, len, flags & STORE_COLD) == -1)
		goto fail;
	/* Starts the write-back now; the install batch waits for it. */
	(void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	if (install(s, id, e.gen, tmp, fd, record) == -1) {
		/* Another hash was recorded meanwhile: buf is not that file. */
		if (errno == EBADMSG && record != NULL)
			hash_failed(s, id, e.gen);
		goto fail;
	}
	close(fd);
	return 0;
fail:
	err = errno;
	close(fd);
	unlink(tmp);
	errno = err;
	return -1;
}

int
store_have(struct store *s, uint64_t id, uint64_t off, uint64_t len,
    uint64_t *missing)
{
	struct pfile *p;
	struct ent e;
	sqlite3_stmt *st;
	uint64_t first, last, miss, k;
	int r = -1;

	pthread_mutex_lock(&s->lock);
	if ((p = pf_find(s, id)) != NULL) {
		e.e.size = p->size;
		e.e.state = STORE_PARTIAL;
	} else if (store_get_c(store_rdc(s), id, &e) == -1)
		goto out;
	else if (e.e.type != STORE_FILE) {
		errno = EISDIR;
		goto out;
	}
	if (off >= e.e.size || len == 0 || e.e.state == STORE_COMPLETE) {
		r = 1;
		goto out;
	}
	if (len > e.e.size - off)
		len = e.e.size - off;
	first = off / s->bs;
	last = (off + len - 1) / s->bs;
	if (p != NULL) {
		r = bitmap_range(p->bits, first, last, &miss);
		for (k = first; r == 1 && p->ubits != NULL && k <= last; k++)
			if (bitmap_test(p->ubits, k)) {
				miss = k;
				r = 0;
			}
	} else if (e.e.state == STORE_NONE) {
		miss = first;
		r = 0;
	} else {
		size_t nb = bitmap_bytes(bitmap_nblocks(e.e.size, s->bs));
		const void *b = bitmap_get(s, id, e.gen, nb, &st);

		if (st == NULL)
			goto out;
		if (b != NULL)
			r = bitmap_range(b, first, last, &miss);
		else {
			miss = first;
			r = 0;
		}
		sqlite3_reset(st);
	}
	if (r == 0 && missing != NULL)
		*missing = miss * s->bs;
out:
	pthread_mutex_unlock(&s->lock);
	return r;
}

int
store_next_missing(struct store *s, uint64_t id, uint64_t from,
    uint64_t *block)
{
	struct pfile *p;
	uint64_t b;
	int r = -1;

	pthread_mutex_lock(&s->lock);
	if ((p = pf_get(s, id)) == NULL) {
		if (errno == EEXIST)
			r = 0;	/* complete */
		goto out;
	}
	for (b = from; b < p->nblocks; b++)
		if (!bitmap_test(p->bits, b)) {
			*block = b;
			r = 1;
			goto out;
		}
	r = 0;
out:
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* Queues id for the committer: marked complete, but its file is gone. */
static void
suspect(struct store *s, uint64_t id)
{
	pthread_mutex_lock(&s->lock);
	if (s->nsuspect == s->suspectcap && s->nsuspect < 4096) {
		size_t cap = s->suspectcap ? s->suspectcap * 2 : 16;
		uint64_t *v = realloc(s->suspect, cap * sizeof(*v));

		if (v != NULL) {
			s->suspect = v;
			s->suspectcap = cap;
		}
	}
	if (s->nsuspect < s->suspectcap)
		s->suspect[s->nsuspect++] = id;
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
}

/*
 * Opens id's local data file: its path under the lock, the open without.
 * *size gets the file size. -1 with ENOENT when there is none.
 */
static int
open_data(struct store *s, uint64_t id, int complete_only, uint64_t *size,
    struct pfile **pp)
{
	char path[PATH_MAX], *rel = NULL;
	struct pfile *p;
	struct ent e;
	int fd = -1, tries, st = STORE_NONE;

	for (tries = 0; tries < 3; tries++) {
		pthread_mutex_lock(&s->lock);
		if (!complete_only && (p = pf_find(s, id)) != NULL) {
			p->refs++;
			*pp = p;
			*size = p->size;
			pthread_mutex_unlock(&s->lock);
			return p->fd;
		}
		if (store_get_c(store_rdc(s), id, &e) == -1) {
			pthread_mutex_unlock(&s->lock);
			return -1;
		}
		*size = e.e.size;
		st = e.e.state;
		if (e.e.type != STORE_FILE || st == STORE_NONE ||
		    (complete_only && st != STORE_COMPLETE)) {
			pthread_mutex_unlock(&s->lock);
			errno = e.e.type != STORE_FILE ? EISDIR : ENOENT;
			return -1;
		}
		if (st == STORE_COMPLETE) {
			if ((rel = store_path_c(store_rdc(s), id)) == NULL ||
			    store_xpath(s, path, sizeof(path), "data",
			    rel) == -1) {
				free(rel);
				pthread_mutex_unlock(&s->lock);
				return -1;
			}
			free(rel);
		} else
			store_partial_path(s, path, sizeof(path), id);
		pthread_mutex_unlock(&s->lock);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) != -1)
			return fd;
		if (errno != ENOENT)
			return -1;
		/* Moved into data/ or dropped meanwhile: look again. */
	}
	if (st == STORE_COMPLETE)
		suspect(s, id);
	errno = ENOENT;
	return -1;
}

ssize_t
store_pread(struct store *s, uint64_t id, void *buf, size_t len,
    uint64_t off)
{
	struct pfile *p = NULL;
	uint64_t size = UINT64_MAX;
	size_t got = 0;
	ssize_t n;
	int fd, e;

	if ((fd = open_data(s, id, 0, &size, &p)) == -1) {
		/*
		 * An empty file needs no data; any other whose data is gone
		 * is an error, never an early end of file.
		 */
		if (errno == ENOENT && (size == 0 || off >= size) &&
		    store_have(s, id, off, len, NULL) == 1)
			return 0;
		if (errno == ENOENT)
			errno = EIO;
		return -1;
	}
	if (off >= size)
		len = 0;
	else if (len > size - off)
		len = (size_t)(size - off);
	while (got < len) {
		n = pread(fd, (char *)buf + got, len - got,
		    (off_t)(off + got));
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	e = errno;
	if (p != NULL) {
		pthread_mutex_lock(&s->lock);
		pf_unref(p);
		pthread_mutex_unlock(&s->lock);
	} else
		close(fd);
	if (got < len && got == 0 && len > 0) {
		errno = e ? e : EIO;
		return -1;
	}
	return (ssize_t)got;
}

int
store_open_complete(struct store *s, uint64_t id)
{
	uint64_t size;

	return open_data(s, id, 1, &size, NULL);
}

void
store_touch(struct store *s, uint64_t id)
{
	pthread_mutex_lock(&s->lock);
	if (s->ntouch == s->touchcap && s->touchcap < 65536) {
		size_t cap = s->touchcap ? s->touchcap * 2 : 64;
		struct idtime *v = realloc(s->touch, cap * sizeof(*v));

		if (v != NULL) {
			s->touch = v;
			s->touchcap = cap;
		}
	}
	if (s->ntouch < s->touchcap) {
		s->touch[s->ntouch].id = id;
		s->touch[s->ntouch++].t = (int64_t)time(NULL);
		/* The committer writes them with its next batch. */
		pthread_cond_signal(&s->wake);
	}
	pthread_mutex_unlock(&s->lock);
}

/*
 * Is the data file of complete entry e (at rel) there, a regular file of
 * its size? Else resets e to NONE and unlinks what is at its path, when
 * that is a regular file. s->wlock held, in a transaction.
 */
static void
check_one(struct store *s, const struct ent *e, const char *rel)
{
	char path[PATH_MAX];
	struct stat sb;

	if (store_xpath(s, path, sizeof(path), "data", rel) == -1 ||
	    (stat(path, &sb) == 0 && S_ISREG(sb.st_mode) &&
	    (uint64_t)sb.st_size == e->e.size))
		return;
	log_warnx("%s: data file missing or wrong, dropped", rel);
	/* Only a regular file of ours may be unlinked. */
	if (store_drop_local(s, e, NULL) == -1)
		log_warn("%s", rel);
	if (lstat(path, &sb) == 0 && S_ISREG(sb.st_mode))
		unlink(path);
}

/*
 * Resets the entries of ids[0..n) whose data file a check found missing
 * or wrong, each looked at again under the write lock (it may have been
 * replaced meanwhile): one transaction. Takes s->wlock.
 */
static int
check_reset(struct store *s, const uint64_t *ids, size_t n)
{
	struct ent e;
	char *rel;
	size_t i;
	int r;

	pthread_mutex_lock(&s->wlock);
	if ((r = store_begin(&s->wr)) == 0) {
		for (i = 0; i < n; i++) {
			if (store_get_c(&s->wr, ids[i], &e) == -1 ||
			    e.e.type != STORE_FILE ||
			    e.e.state != STORE_COMPLETE ||
			    (rel = store_path_c(&s->wr, ids[i])) == NULL)
				continue;
			check_one(s, &e, rel);
			free(rel);
		}
		r = store_end(&s->wr, 0);
	}
	pthread_mutex_unlock(&s->wlock);
	return r;
}

/*
 * The data path of row st (id, parent, name, size of Q_CHECKS) into path:
 * the parent's path is computed once per run of entries of one folder
 * (entries of a folder are numbered together), kept in *pid and ppath.
 */
static int
check_path(struct store *s, struct conn *c, sqlite3_stmt *st, uint64_t *pid,
    char *ppath, size_t psz, char *path, size_t sz)
{
	uint64_t parent = (uint64_t)sqlite3_column_int64(st, 1);
	const char *name = (const char *)sqlite3_column_text(st, 2);
	char *rel;
	int n;

	if (name == NULL)
		return -1;
	if (parent != *pid) {
		*pid = 0;
		if ((rel = store_path_c(c, parent)) == NULL)
			return -1;
		n = snprintf(ppath, psz, "%s", rel);
		free(rel);
		if (n < 0 || (size_t)n >= psz)
			return -1;
		*pid = parent;
	}
	n = snprintf(path, sz, "%s/data/%s%s%s", s->dir, ppath,
	    *ppath ? "/" : "", name);
	return n < 0 || (size_t)n >= sz ? -1 : 0;
}

int
store_check_complete(struct store *s, struct conn *c, uint64_t from,
    size_t max, uint64_t *next)
{
	sqlite3_stmt *st = NULL;
	uint64_t *bad = NULL, pid = 0, id = from, *nb;
	size_t n = 0, nbad = 0;
	char path[PATH_MAX], ppath[PATH_MAX];
	struct stat sb;
	int rc, r = -1;

	*next = 0;
	if (store_run(c, Q_BEGIN_READ) == -1)
		return -1;
	if ((st = store_q(c, Q_CHECKS)) == NULL)
		goto out;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)from);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		id = (uint64_t)sqlite3_column_int64(st, 0);
		n++;
		if (check_path(s, c, st, &pid, ppath, sizeof(ppath), path,
		    sizeof(path)) == 0 && stat(path, &sb) == 0 &&
		    S_ISREG(sb.st_mode) && sb.st_size ==
		    sqlite3_column_int64(st, 3))
			continue;
		if ((nb = realloc(bad, (nbad + 1) * sizeof(*bad))) == NULL)
			goto out;
		bad = nb;
		bad[nbad++] = id;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		store_sqlerr(c, rc, "check");
		goto out;
	}
	store_run(c, Q_COMMIT);
	if (nbad > 0 && check_reset(s, bad, nbad) == -1)
		goto out;
	*next = n == max && n > 0 ? id : 0;
	r = 0;
out:
	if (st != NULL)
		sqlite3_reset(st);
	if (!sqlite3_get_autocommit(c->db))
		store_run(c, Q_COMMIT);
	free(bad);
	return r;
}

/* One batch of the committer's work, collected under s->lock. */
struct batch {
	struct pfile	**pf;		/* referenced */
	uint8_t		**snap;		/* pf[i]'s bits when collected */
	int		 *ok;		/* pf[i]'s data is durable */
	size_t		  n;
	struct idtime	 *touch;
	size_t		  ntouch;
	uint64_t	 *suspect;
	size_t		  nsuspect;
};

static void
batch_free(struct batch *b)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		free(b->snap[i]);
	free(b->snap);
	free(b->pf);
	free(b->ok);
	free(b->touch);
	free(b->suspect);
}

/*
 * Takes the dirty bits of every partial file and the queued touches and
 * suspects into b. On failure nothing is taken (the work waits for the
 * next batch) and b is empty. s->lock held.
 */
static int
collect(struct store *s, struct batch *b)
{
	struct pfile *p;
	size_t i, k, n = 0;

	for (i = 0; i < STORE_PF_HASH; i++)
		for (p = s->pf[i]; p != NULL; p = p->next)
			n += p->dirty != 0;
	memset(b, 0, sizeof(*b));
	if (n > 0 && ((b->pf = calloc(n, sizeof(*b->pf))) == NULL ||
	    (b->snap = calloc(n, sizeof(*b->snap))) == NULL ||
	    (b->ok = calloc(n, sizeof(*b->ok))) == NULL))
		goto fail;
	for (i = 0; i < STORE_PF_HASH; i++)
		for (p = s->pf[i]; p != NULL; p = p->next) {
			size_t nb = bitmap_bytes(p->nblocks);

			if (!p->dirty)
				continue;
			if ((b->snap[b->n] = malloc(nb + 1)) == NULL)
				goto fail;
			memcpy(b->snap[b->n], p->bits, nb);
			/* Unchecked blocks are never recorded. */
			for (k = 0; p->ubits != NULL && k < nb; k++)
				b->snap[b->n][k] &= (uint8_t)~p->ubits[k];
			p->dirty = 0;
			p->refs++;
			b->pf[b->n++] = p;
		}
	s->ndirty = 0;
	b->touch = s->touch;
	b->ntouch = s->ntouch;
	s->touch = NULL;
	s->ntouch = s->touchcap = 0;
	b->suspect = s->suspect;
	b->nsuspect = s->nsuspect;
	s->suspect = NULL;
	s->nsuspect = s->suspectcap = 0;
	return 0;
fail:
	for (i = 0; i < b->n; i++) {
		b->pf[i]->dirty = 1;
		b->pf[i]->refs--;
	}
	batch_free(b);
	memset(b, 0, sizeof(*b));
	return -1;
}

/* A complete file's data was found missing: drop it if still so. */
static int
recheck(struct store *s, uint64_t id)
{
	char path[PATH_MAX], *rel;
	struct stat sb;
	struct ent e;
	int r = 0;

	if (store_get_c(&s->wr, id, &e) == -1 ||
	    e.e.state != STORE_COMPLETE ||
	    (rel = store_path_c(&s->wr, e.e.id)) == NULL)
		return 0;
	if (store_xpath(s, path, sizeof(path), "data", rel) == 0 &&
	    stat(path, &sb) == -1 && errno == ENOENT) {
		log_warnx("%s: data file missing, dropped", rel);
		r = store_drop_local(s, &e, NULL);
	}
	free(rel);
	return r;
}

/* Records the batch; s->wlock held, in a transaction. */
static int
record(struct store *s, struct batch *b)
{
	sqlite3_stmt *st;
	size_t i;

	for (i = 0; i < b->n; i++) {
		struct pfile *p = b->pf[i];

		if (!b->ok[i])
			continue;
		if ((st = store_q(&s->wr, Q_MARK)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, (sqlite3_int64)p->id);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)bitmap_have(b->snap[i],
		    p->size, s->bs));
		sqlite3_bind_int64(st, 4, (sqlite3_int64)p->gen);
		if (store_step(&s->wr, st, "mark") == -1)
			return -1;
		if (sqlite3_changes(s->wr.db) == 0)
			continue;
		if ((st = store_q(&s->wr, Q_MARK_BITMAP)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, (sqlite3_int64)p->id);
		sqlite3_bind_blob(st, 2, b->snap[i],
		    (int)bitmap_bytes(p->nblocks), SQLITE_STATIC);
		if (store_step(&s->wr, st, "mark") == -1)
			return -1;
	}
	for (i = 0; i < b->ntouch; i++) {
		if ((st = store_q(&s->wr, Q_TOUCH)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, (sqlite3_int64)b->touch[i].id);
		sqlite3_bind_int64(st, 2, b->touch[i].t);
		if (store_step(&s->wr, st, "touch") == -1)
			return -1;
	}
	for (i = 0; i < b->nsuspect; i++)
		if (recheck(s, b->suspect[i]) == -1)
			log_warn("entry %llu", (unsigned long long)b->suspect[i]);
	return 0;
}

/*
 * Runs one batch: collect, sync, record, publish. s->lock held on entry
 * and on return, released in between; takes s->wlock.
 */
void
store_commit_batch(struct store *s)
{
	struct batch b;
	struct pfile *p, **pp;
	char path[PATH_MAX];
	uint64_t seq;
	size_t i;
	int recorded;

	seq = ++s->seq_started;
	s->sync_req = 0;
	if (collect(s, &b) == -1)
		log_warn("commit");
	pthread_mutex_unlock(&s->lock);

	/* The partial files' names must be durable too. */
	if (b.n > 0 && store_xpath(s, path, sizeof(path), "partial",
	    NULL) == 0 && fsync_path(path) == -1)
		log_warn("fsync %s", path);
	for (i = 0; i < b.n; i++) {
		b.ok[i] = fdatasync(b.pf[i]->fd) == 0;
		if (!b.ok[i])
			log_warn("fdatasync partial/%llu",
			    (unsigned long long)b.pf[i]->id);
	}
	pthread_mutex_lock(&s->wlock);
	recorded = store_begin(&s->wr) == 0 &&
	    store_end(&s->wr, record(s, &b)) == 0;
	pthread_mutex_unlock(&s->wlock);

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < b.n; i++) {
		size_t nb;

		p = b.pf[i];
		nb = bitmap_bytes(p->nblocks);
		if (!b.ok[i]) {
			/* Data that failed to sync is not here. */
			memcpy(p->bits, p->durable, nb);
			p->nset = bitmap_count(p->bits, p->nblocks);
			free(p->ubits);
			p->ubits = NULL;
		} else if (recorded)
			memcpy(p->durable, b.snap[i], nb);
		else if (!p->dead) {
			p->dirty = 1;
			s->ndirty++;
		}
		pf_unref(p);
	}
	/* Forget partial files nobody uses whose bits are all recorded. */
	for (i = 0; i < STORE_PF_HASH; i++)
		for (pp = &s->pf[i]; (p = *pp) != NULL;) {
			if (pf_clean(p)) {
				*pp = p->next;
				pf_free(p);
			} else
				pp = &p->next;
		}
	batch_free(&b);
	s->seq_done = seq;
	pthread_cond_broadcast(&s->done);
}

/* Frees every partial file; the store is closing, no thread uses them. */
void
store_pf_free_all(struct store *s)
{
	struct pfile *p, *next;
	size_t i;

	for (i = 0; i < STORE_PF_HASH; i++) {
		for (p = s->pf[i]; p != NULL; p = next) {
			next = p->next;
			pf_free(p);
		}
		s->pf[i] = NULL;
	}
}
