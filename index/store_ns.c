/*
 * store_ns: the store's namespace. Look-ups, folder listings, and the
 * primary's listings and feed events applied to the index. Calls
 * store_sql.c and store_data.c (an entry removed takes its local data
 * with it); see store_impl.h for the layering and the locks.
 *
 * Walks over the tree never recurse: the primary decides how deep the
 * tree is, and a folder ~2,000 levels deep (the most PATH_MAX allows)
 * must not take a stack frame per level.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dvrpath.h"
#include "log.h"
#include "m4f.h"
#include "store.h"
#include "store_impl.h"

#define READDIR_BATCH	256	/* children copied out per lock */
#define NAME_LEN	255	/* longest path component */

/* A single path component the primary may send. */
static int
name_ok(const char *s, size_t n)
{
	if (n == 0 || n > NAME_LEN || (n == 1 && s[0] == '.') ||
	    (n == 2 && s[0] == '.' && s[1] == '.'))
		return 0;
	return memchr(s, '/', n) == NULL;
}

/*
 * The path splitter: copies the component at *p into comp and moves *p
 * past its slash, or to NULL after the last component. Returns the
 * component's length (0 for an empty one), or -1 with ENAMETOOLONG.
 * Walk a path with: for (p = *rel ? rel : NULL; p != NULL;) ...
 */
static ssize_t
path_next(const char **p, char comp[NAME_LEN + 1])
{
	const char *q = strchr(*p, '/');
	size_t n = q != NULL ? (size_t)(q - *p) : strlen(*p);

	if (n > NAME_LEN) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(comp, *p, n);
	comp[n] = '\0';
	*p = q != NULL ? q + 1 : NULL;
	return (ssize_t)n;
}

/* A relative path of valid components ("" only when empty_ok). */
static int
rel_ok(const char *rel, int empty_ok)
{
	char comp[NAME_LEN + 1];
	const char *p;
	ssize_t n;

	if (rel == NULL)
		return 0;
	if (*rel == '\0')
		return empty_ok;
	if (strlen(rel) >= PATH_MAX - 64)
		return 0;
	for (p = rel; p != NULL;)
		if ((n = path_next(&p, comp)) == -1 ||
		    !name_ok(comp, (size_t)n))
			return 0;
	return 1;
}

/*
 * Is r an entry the store takes, at full (its path from the root)? *known
 * tells whether sha got the file's hash.
 */
static int
remote_ok(const struct store_remote *r, const char *full, uint8_t sha[32],
    int *known)
{
	*known = 0;
	if (!rel_ok(r->name, 0) || r->mtime < 0)
		return 0;
	if (r->type == STORE_DIR)
		return 1;
	/* A link that leaves the export is never shown. */
	if (r->type == STORE_LINK)
		return m4f_link_check(full, r->target) == 0;
	if (r->type != STORE_FILE || r->size > STORE_MAX_SIZE)
		return 0;
	if (r->sha256 == NULL || r->sha256[0] == '\0')
		return 1;
	*known = 1;
	return store_sha_parse(r->sha256, sha) == 0;
}

/*
 * v, an array of n elements of size bytes with room for *cap, with room
 * for one more: v itself, or its new place (*cap updated), or NULL.
 */
static void *
grow(void *v, size_t n, size_t *cap, size_t size)
{
	size_t c;

	if (n < *cap)
		return v;
	c = *cap ? *cap * 2 : 64;
	if ((v = reallocarray(v, c, size)) != NULL)
		*cap = c;
	return v;
}

/* Sorted set of ids seen in a complete listing. */
struct idset {
	uint64_t	*v;
	size_t		 n, cap;
};

static int
idset_add(struct idset *set, uint64_t id)
{
	uint64_t *v;

	if ((v = grow(set->v, set->n, &set->cap, sizeof(*v))) == NULL)
		return -1;
	set->v = v;
	set->v[set->n++] = id;
	return 0;
}

static int
id_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static int
idset_has(const struct idset *set, uint64_t id)
{
	return bsearch(&id, set->v, set->n, sizeof(id), id_cmp) != NULL;
}

/*
 * What one apply changes, added to ch (NULL: not wanted) from its length
 * at the start, from, so that a failed apply takes its part back. The
 * apply's first new entry is fresh: a folder from there on was created
 * by it, and nobody showed its names before.
 */
struct report {
	struct store_changes *ch;
	size_t		 from;
	uint64_t	 fresh;		/* 0 until an entry is created */
};

void
store_changes_clear(struct store_changes *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n; i++)
		free(c->v[i].name);
	free(c->v);
	memset(c, 0, sizeof(*c));
}

/*
 * Adds a change of kind k to rep (may be NULL): entry id of folder parent
 * named name, or (name NULL) folder id itself, unless created by this
 * apply or just reported so. 0, or -1 (ENOMEM).
 */
static int
report_add(struct report *rep, enum store_change_kind k, uint64_t id,
    uint64_t parent, const char *name)
{
	struct store_changes *ch = rep != NULL ? rep->ch : NULL;
	struct store_change *c, *v;

	if (ch == NULL)
		return 0;
	if (name == NULL && rep->fresh != 0 && id >= rep->fresh)
		return 0;
	if (name == NULL && ch->n > rep->from && ch->v[ch->n - 1].kind == k &&
	    ch->v[ch->n - 1].id == id)
		return 0;	/* listings are sorted: the same folder */
	if ((v = grow(ch->v, ch->n, &ch->cap, sizeof(*v))) == NULL)
		return -1;
	ch->v = v;
	c = &ch->v[ch->n];
	memset(c, 0, sizeof(*c));
	if (name != NULL && (c->name = strdup(name)) == NULL)
		return -1;
	c->kind = k;
	c->id = id;
	c->parent = parent;
	ch->n++;
	return 0;
}

static int
change_cmp(const void *a, const void *b)
{
	const struct store_change *x = a, *y = b;

	if (x->kind != y->kind)
		return (x->kind > y->kind) - (x->kind < y->kind);
	return (x->id > y->id) - (x->id < y->id);
}

/*
 * Ends rep's apply: on failure (ok 0) takes back what it added, else
 * leaves each folder's change once.
 */
static void
report_end(struct report *rep, int ok)
{
	struct store_changes *ch = rep->ch;
	struct store_change *v;
	size_t i, k;

	if (ch == NULL)
		return;
	if (!ok) {
		for (i = rep->from; i < ch->n; i++)
			free(ch->v[i].name);
		ch->n = rep->from;
		return;
	}
	v = ch->v + rep->from;
	qsort(v, ch->n - rep->from, sizeof(*v), change_cmp);
	for (i = k = 0; i < ch->n - rep->from; i++) {
		if (k > 0 && v[i].name == NULL && v[k - 1].name == NULL &&
		    change_cmp(&v[i], &v[k - 1]) == 0)
			continue;
		v[k++] = v[i];
	}
	ch->n = rep->from + k;
}

/*
 * Tree walks. Entries to visit wait on an explicit stack with their
 * names; one buffer holds the path of the entry being visited. An
 * entry's path is its parent's (a prefix of the buffer that no entry
 * above the parent on the stack changes) plus its name, so it is
 * rebuilt in place when the entry comes up.
 *
 * W_SWEEP visits a folder a complete listing covered: marks it listed,
 * then removes the children the listing lacks and, when recursive,
 * sweeps the folders it has. W_REMOVE removes an entry with its subtree
 * and local data, children first.
 */
enum wkind { W_SWEEP, W_REMOVE };

#define NOPATH	SIZE_MAX	/* a path too long for the buffer */

struct wframe {
	uint64_t	 id;
	char		*name;		/* NULL: the walk's first entry */
	size_t		 len;		/* of its path, or NOPATH */
	int		 type;
	int		 state;
	enum wkind	 kind;
	int		 open;		/* W_REMOVE folder: children pushed */
};

struct walk {
	struct store	*s;
	struct wframe	*v;
	size_t		 n, cap;
	char		 rel[PATH_MAX];
	const struct idset *seen;	/* W_SWEEP: ids the listing has */
	int		 recursive;
	int64_t		 now;
	uint64_t	 before;	/* W_SWEEP: newer ids stay */
	struct report	*rep;		/* W_SWEEP: the names removed */
};

static int
walk_push(struct walk *w, uint64_t id, int type, int state,
    const char *name, size_t plen, enum wkind kind)
{
	struct wframe *f;
	size_t n;

	if ((f = grow(w->v, w->n, &w->cap, sizeof(*f))) == NULL)
		return -1;
	w->v = f;
	f = &w->v[w->n];
	memset(f, 0, sizeof(*f));
	f->id = id;
	f->type = type;
	f->state = state;
	f->kind = kind;
	f->len = plen;
	if (name != NULL) {
		if ((f->name = strdup(name)) == NULL)
			return -1;
		n = strlen(name);
		if (plen != NOPATH)
			f->len = plen + (plen > 0) + n < sizeof(w->rel) ?
			    plen + (plen > 0) + n : NOPATH;
	}
	w->n++;
	return 0;
}

static void
walk_free(struct walk *w)
{
	while (w->n > 0)
		free(w->v[--w->n].name);
	free(w->v);
}

/* The path of f, rebuilt in the buffer; NULL when too long. */
static const char *
walk_rel(struct walk *w, const struct wframe *f)
{
	size_t n;

	if (f->len == NOPATH)
		return NULL;
	if (f->name != NULL) {
		n = strlen(f->name);
		if (f->len > n)
			w->rel[f->len - n - 1] = '/';
		memcpy(w->rel + f->len - n, f->name, n);
	}
	w->rel[f->len] = '\0';
	return w->rel;
}

/* Pushes the children of folder id (path length len) to visit. */
static int
walk_children(struct walk *w, uint64_t id, size_t len, enum wkind kind)
{
	struct conn *c = &w->s->wr;
	const unsigned char *name;
	sqlite3_stmt *st;
	enum wkind k;
	uint64_t kid;
	int rc, type;

	if ((st = store_q(c, Q_CHILDREN)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		kid = (uint64_t)sqlite3_column_int64(st, 0);
		type = sqlite3_column_int(st, 1);
		if (kid == STORE_ROOT_ID)
			continue;	/* a corrupt root would loop */
		k = W_REMOVE;
		/*
		 * Seen files need no work; keep memory to what does. An
		 * entry newer than the listing was added by the feed
		 * meanwhile: it stays.
		 */
		if (kind == W_SWEEP && idset_has(w->seen, kid)) {
			if (!w->recursive || type != STORE_DIR)
				continue;
			k = W_SWEEP;
		} else if (kind == W_SWEEP && kid > w->before)
			continue;
		if ((name = sqlite3_column_text(st, 2)) == NULL)
			name = (const unsigned char *)"";
		if ((kind == W_SWEEP && k == W_REMOVE && report_add(w->rep,
		    STORE_CH_REMOVED, kid, id, (const char *)name) == -1) ||
		    walk_push(w, kid, type, sqlite3_column_int(st, 3),
		    (const char *)name, len, k) == -1) {
			sqlite3_reset(st);
			return -1;
		}
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_sqlerr(c, rc, "children");
}

/*
 * Visits f, popped, at rel (NULL when too long): the only visit of a
 * W_SWEEP folder, the last of a W_REMOVE entry.
 */
static int
walk_visit(struct walk *w, const struct wframe *f, const char *rel)
{
	struct store *s = w->s;
	char path[PATH_MAX];
	sqlite3_stmt *st;
	struct ent e;

	if (f->kind == W_SWEEP) {
		if ((st = store_q(&s->wr, Q_LISTED)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, (sqlite3_int64)f->id);
		sqlite3_bind_int64(st, 2, w->now);
		if (store_step(&s->wr, st, "listed") == -1)
			return -1;
		return walk_children(w, f->id, f->len, W_SWEEP);
	}
	if (f->type == STORE_FILE) {
		memset(&e, 0, sizeof(e));
		e.e.id = f->id;
		e.e.type = STORE_FILE;
		e.e.state = (enum store_state)f->state;
		if (store_drop_local(s, &e, rel) == -1)
			return -1;
	} else if (f->type == STORE_DIR && rel != NULL && *rel != '\0' &&
	    store_xpath(s, path, sizeof(path), "data", rel) == 0 &&
	    rmdir(path) == -1 && errno != ENOENT && errno != ENOTEMPTY)
		log_warn("rmdir %s", path);
	if (f->id == STORE_ROOT_ID)
		return 0;
	if ((st = store_q(&s->wr, Q_DELETE)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)f->id);
	return store_step(&s->wr, st, "delete");
}

/* Runs the walk until its stack is empty; s->wlock held, in a txn. */
static int
walk_loop(struct walk *w)
{
	struct wframe *top, f;
	const char *rel;
	int r;

	while (w->n > 0) {
		top = &w->v[w->n - 1];
		rel = walk_rel(w, top);
		if (top->kind == W_REMOVE && top->type == STORE_DIR &&
		    !top->open) {
			top->open = 1;
			if (walk_children(w, top->id, top->len,
			    W_REMOVE) == -1)
				return -1;
			continue;
		}
		f = *top;
		w->n--;
		r = walk_visit(w, &f, rel);
		free(f.name);
		if (r == -1)
			return -1;
	}
	return 0;
}

/*
 * Runs walk w (set up but empty) from entry id at rel, then frees it.
 * s->wlock held, in a transaction.
 */
static int
walk_run(struct walk *w, const char *rel, uint64_t id, int type, int state,
    enum wkind kind)
{
	size_t len = strlen(rel);
	int r;

	if (len < sizeof(w->rel))
		memcpy(w->rel, rel, len + 1);
	else
		len = NOPATH;
	if ((r = walk_push(w, id, type, state, NULL, len, kind)) == 0)
		r = walk_loop(w);
	walk_free(w);
	return r;
}

/*
 * Removes entry e at rel with its subtree and local data. s->wlock held,
 * inside a transaction.
 */
static int
ent_remove(struct store *s, const struct ent *e, const char *rel)
{
	struct walk w = { .s = s };

	return walk_run(&w, rel, e->e.id, e->e.type, e->e.state, W_REMOVE);
}

/*
 * Removes what is below folder id (at rel) and not in seen, except
 * entries newer than before; with recursive, below the folders in seen
 * too. Marks the folders covered listed at now. Each name removed goes
 * to rep. s->wlock held, in a transaction.
 */
static int
sweep(struct store *s, uint64_t id, const char *rel,
    const struct idset *seen, int recursive, int64_t now, uint64_t before,
    struct report *rep)
{
	struct walk w = { .s = s, .seen = seen, .recursive = recursive,
	    .now = now, .before = before, .rep = rep };

	return walk_run(&w, rel, id, STORE_DIR, STORE_NONE, W_SWEEP);
}

static int
ent_insert(struct store *s, uint64_t parent, const char *name,
    const struct store_remote *r, const uint8_t *sha, const char *full,
    uint64_t *id)
{
	sqlite3_stmt *st;
	int64_t t = r->mtime;
	int rc;

	if (r->type == STORE_FILE && dvrpath_time(full, &t, NULL) == -1)
		t = r->mtime;
	if ((st = store_q(&s->wr, Q_NEXT_ID)) == NULL)
		return -1;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		*id = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return store_sqlerr(&s->wr, rc, "next id");
	if ((st = store_q(&s->wr, Q_INSERT)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 9, (sqlite3_int64)*id);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)parent);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, (int)r->type);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)(r->type == STORE_FILE ?
	    r->size : r->type == STORE_LINK ? strlen(r->target) : 0));
	sqlite3_bind_int64(st, 5, r->mtime);
	if (sha != NULL)
		sqlite3_bind_blob(st, 6, sha, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, t);
	if (r->type == STORE_LINK)
		sqlite3_bind_text(st, 8, r->target, -1, SQLITE_STATIC);
	return store_step(&s->wr, st, "insert");
}

/* Is link e's target target? -1 on error. */
static int
same_target(struct store *s, const struct ent *e, const char *target)
{
	sqlite3_stmt *st;
	const unsigned char *t;
	int rc, same = 0;

	if ((st = store_q(&s->wr, Q_TARGET)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)e->e.id);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW &&
	    (t = sqlite3_column_text(st, 0)) != NULL)
		same = strcmp((const char *)t, target) == 0;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_sqlerr(&s->wr, rc, "target");
	return same;
}

/*
 * Is e, a file, the file r says (sha: its hash when known)? The same size
 * and mtime, and no two different known hashes: a hash not known on one
 * side is no difference. When r brings the hash e lacked, it is recorded.
 * 1 or 0, -1 on error.
 */
static int
same_file(struct store *s, const struct ent *e, const struct store_remote *r,
    const uint8_t *sha)
{
	if (e->e.size != r->size || e->e.mtime != r->mtime)
		return 0;
	if (sha == NULL)
		return 1;
	if (e->has_sha)
		return memcmp(e->sha, sha, 32) == 0;
	/* Verified blocks stay: each was checked against its own digest. */
	if (store_set_sha(s, e->e.id, NULL, sha) == -1)
		return errno == EBADMSG || errno == ENOENT ? 0 : -1;
	return 1;
}

/*
 * Creates or updates entry name in parent (at full) as r says (sha: a
 * file's hash, NULL when not known). A file or link whose identity
 * changed, or an entry whose type changed, is replaced: the old one goes
 * with its data and the new one gets a new id. What changed goes to rep.
 */
static int
ent_upsert(struct store *s, uint64_t parent, const char *name,
    const struct store_remote *r, const uint8_t *sha, const char *full,
    uint64_t *id, struct report *rep)
{
	struct ent e;
	sqlite3_stmt *st;
	int same;

	if (store_lookup_c(&s->wr, parent, name, &e) == -1) {
		if (errno != ENOENT ||
		    report_add(rep, STORE_CH_NAMES, parent, 0, NULL) == -1 ||
		    ent_insert(s, parent, name, r, sha, full, id) == -1)
			return -1;
		if (rep->fresh == 0)
			rep->fresh = *id;
		return 0;
	}
	if (e.e.type == r->type && r->type == STORE_DIR) {
		*id = e.e.id;
		if (e.e.mtime == r->mtime || r->mtime == 0)
			return 0;
		if (report_add(rep, STORE_CH_ATTR, e.e.id, 0, NULL) == -1 ||
		    (st = store_q(&s->wr, Q_DIRMTIME)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, (sqlite3_int64)e.e.id);
		sqlite3_bind_int64(st, 2, r->mtime);
		return store_step(&s->wr, st, "update");
	}
	if (e.e.type == r->type) {
		if (r->type == STORE_FILE)
			same = same_file(s, &e, r, sha);
		else
			same = e.e.mtime == r->mtime ? same_target(s, &e,
			    r->target) : 0;
		if (same == -1)
			return -1;
		if (same) {
			*id = e.e.id;
			return 0;
		}
	}
	if (report_add(rep, STORE_CH_REPLACED, e.e.id, parent, name) == -1 ||
	    ent_remove(s, &e, full) == -1 ||
	    ent_insert(s, parent, name, r, sha, full, id) == -1)
		return -1;
	if (rep->fresh == 0)
		rep->fresh = *id;
	return 0;
}

/*
 * Finds or creates the folder rel (from the root), returning its id in
 * *id. A file in the way is replaced by a folder. The id of each folder
 * on the way goes into seen, when not NULL; what changed, to rep.
 */
static int
mkdirs(struct store *s, const char *rel, uint64_t *id, struct idset *seen,
    struct report *rep)
{
	struct store_remote d = { .type = STORE_DIR };
	char comp[NAME_LEN + 1], full[PATH_MAX];
	const char *p = *rel != '\0' ? rel : NULL;
	uint64_t cur = STORE_ROOT_ID;
	size_t n;

	if (strlen(rel) >= sizeof(full)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	while (p != NULL) {
		if (path_next(&p, comp) == -1)
			return -1;
		n = p != NULL ? (size_t)(p - rel - 1) : strlen(rel);
		memcpy(full, rel, n);
		full[n] = '\0';
		d.name = comp;
		if (ent_upsert(s, cur, comp, &d, NULL, full, &cur, rep) == -1)
			return -1;
		if (seen != NULL && idset_add(seen, cur) == -1)
			return -1;
	}
	*id = cur;
	return 0;
}

/* Applies v inside an open transaction; s->wlock held. */
static int
apply(struct store *s, const char *dir, const struct store_remote *v,
    size_t n, int recursive, int complete, int64_t now, uint64_t before,
    uint64_t *ids, struct report *rep)
{
	struct idset seen = { 0 };
	char full[PATH_MAX], pdir[PATH_MAX], cached[PATH_MAX] = "";
	uint8_t sha[32];
	uint64_t dirid, pid, cid = 0, id;
	const char *base;
	size_t i, len;
	int r = -1, known;

	if (mkdirs(s, dir, &dirid, NULL, rep) == -1)
		goto out;
	for (i = 0; i < n; i++) {
		if (v[i].name == NULL || snprintf(full, sizeof(full),
		    "%s%s%s", dir, *dir ? "/" : "", v[i].name) >=
		    (int)sizeof(full)) {
			errno = v[i].name == NULL ? EINVAL : ENAMETOOLONG;
			goto out;
		}
		if (v[i].type == STORE_LINK && rel_ok(v[i].name, 0) &&
		    m4f_link_check(full, v[i].target) == -1) {
			/* Hidden, as the origin should have kept it. */
			log_warnx("%s: link leaves the export, not shown", full);
			if (ids != NULL)
				ids[i] = 0;
			continue;
		}
		if (!remote_ok(&v[i], full, sha, &known)) {
			errno = EINVAL;
			goto out;
		}
		/*
		 * The parent folder: listings are sorted, so the last one
		 * (or the last folder listed), cid, is cached.
		 */
		base = strrchr(full, '/');
		base = base ? base + 1 : full;
		memcpy(pdir, full, (size_t)(base - full));
		pdir[base > full ? base - full - 1 : 0] = '\0';
		if (strcmp(pdir, dir) == 0)
			pid = dirid;
		else if (cid != 0 && strcmp(pdir, cached) == 0)
			pid = cid;
		else {
			if (mkdirs(s, pdir, &pid, complete ? &seen : NULL,
			    rep) == -1)
				goto out;
			memcpy(cached, pdir, strlen(pdir) + 1);
			cid = pid;
		}
		if (ent_upsert(s, pid, base, &v[i], known ? sha : NULL, full,
		    &id, rep) == -1)
			goto out;
		if (complete && idset_add(&seen, id) == -1)
			goto out;
		if (ids != NULL)
			ids[i] = id;
		/*
		 * A folder is the likely parent of what follows. A file may
		 * have replaced the cached folder or one above it.
		 */
		len = strlen(full);
		if (v[i].type == STORE_DIR) {
			memcpy(cached, full, len + 1);
			cid = id;
		} else if (strncmp(cached, full, len) == 0 &&
		    (cached[len] == '\0' || cached[len] == '/'))
			cid = 0;
	}
	if (complete) {
		qsort(seen.v, seen.n, sizeof(*seen.v), id_cmp);
		if (sweep(s, dirid, dir, &seen, recursive, now, before,
		    rep) == -1)
			goto out;
	}
	r = 0;
out:
	free(seen.v);
	return r;
}

/* apply() in a transaction of its own; what changed goes to ch. */
static int
apply_txn(struct store *s, const char *dir, const struct store_remote *v,
    size_t n, int recursive, int complete, int64_t now, uint64_t before,
    uint64_t *ids, struct store_changes *ch)
{
	struct report rep = { ch, ch != NULL ? ch->n : 0, 0 };
	int r;

	if (s->ro) {
		errno = EROFS;
		return -1;
	}
	if (!rel_ok(dir, 1)) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&s->wlock);
	if ((r = store_begin(&s->wr)) == 0)
		r = store_end(&s->wr, apply(s, dir, v, n, recursive, complete,
		    now, before, ids, &rep));
	pthread_mutex_unlock(&s->wlock);
	report_end(&rep, r == 0);
	return r;
}

int
store_apply_listing(struct store *s, const char *dir,
    const struct store_remote *v, size_t n, int recursive, int complete,
    int64_t now, uint64_t *ids)
{
	return apply_txn(s, dir, v, n, recursive, complete, now, UINT64_MAX,
	    ids, NULL);
}

int
store_apply_snapshot(struct store *s, const char *dir,
    const struct store_remote *v, size_t n, int recursive, int64_t now,
    uint64_t before, uint64_t *ids, struct store_changes *changes)
{
	return apply_txn(s, dir, v, n, recursive, 1, now, before, ids,
	    changes);
}

uint64_t
store_last_id(struct store *s)
{
	sqlite3_stmt *st;
	uint64_t id = 0;

	pthread_mutex_lock(&s->wlock);
	if ((st = store_q(&s->wr, Q_LAST_ID)) != NULL) {
		if (sqlite3_step(st) == SQLITE_ROW)
			id = (uint64_t)sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
	}
	pthread_mutex_unlock(&s->wlock);
	return id;
}

/*
 * Removes the entry at rel, if there is one (a deletion of something
 * unknown is no change); *parent gets its parent's id, or 0. s->wlock
 * held, in a transaction.
 */
static int
remove_path(struct store *s, const char *rel, uint64_t *parent)
{
	char comp[NAME_LEN + 1];
	const char *p = rel;
	uint64_t cur = STORE_ROOT_ID;
	struct ent e;

	while (p != NULL) {
		if (path_next(&p, comp) == -1)
			return -1;
		if (store_lookup_c(&s->wr, cur, comp, &e) == -1)
			return errno == ENOENT ? 0 : -1;
		if (p == NULL) {
			*parent = cur;
			return ent_remove(s, &e, rel);
		}
		cur = e.e.id;
	}
	return 0;
}

int
store_apply_event(struct store *s, const struct store_remote *r,
    int deleted, uint64_t *id, uint64_t *parent)
{
	struct ent e;
	uint64_t nid = 0, pid = 0;
	int rc;

	if (!deleted) {
		if (apply_txn(s, "", r, 1, 0, 0, 0, UINT64_MAX, &nid,
		    NULL) == -1)
			return -1;
		if (id != NULL)
			*id = nid;
		if (parent != NULL) {
			pthread_mutex_lock(&s->lock);
			rc = store_get_c(store_rdc(s), nid, &e);
			pthread_mutex_unlock(&s->lock);
			*parent = rc == 0 ? e.e.parent : 0;
		}
		return 0;
	}
	if (s->ro || !rel_ok(r->name, 0)) {
		errno = s->ro ? EROFS : EINVAL;
		return -1;
	}
	pthread_mutex_lock(&s->wlock);
	if ((rc = store_begin(&s->wr)) == 0)
		rc = store_end(&s->wr, remove_path(s, r->name, &pid));
	pthread_mutex_unlock(&s->wlock);
	if (id != NULL)
		*id = 0;
	if (parent != NULL)
		*parent = rc == 0 ? pid : 0;
	return rc;
}

int
store_get(struct store *s, uint64_t id, struct store_ent *out)
{
	struct ent e;
	int r;

	pthread_mutex_lock(&s->lock);
	r = store_get_c(store_rdc(s), id, &e);
	pthread_mutex_unlock(&s->lock);
	if (r == 0)
		*out = e.e;
	return r;
}

int
store_lookup(struct store *s, uint64_t parent, const char *name,
    struct store_ent *out)
{
	size_t n;
	int r;

	if (name == NULL || !name_ok(name, (n = strlen(name)))) {
		errno = ENOENT;
		return -1;
	}
	pthread_mutex_lock(&s->lock);
	r = store_find_c(store_rdc(s), parent, name, n, out);
	pthread_mutex_unlock(&s->lock);
	return r;
}

int
store_resolve(struct store *s, const char *rel, struct store_ent *out)
{
	char comp[NAME_LEN + 1];
	const char *p;
	struct ent e;
	int r;

	if (rel == NULL || !rel_ok(rel, 1)) {
		errno = ENOENT;
		return -1;
	}
	pthread_mutex_lock(&s->lock);
	r = store_get_c(store_rdc(s), STORE_ROOT_ID, &e);
	for (p = *rel ? rel : NULL; r == 0 && p != NULL;)
		if ((r = (int)path_next(&p, comp)) >= 0)
			r = store_lookup_c(store_rdc(s), e.e.id, comp, &e);
	pthread_mutex_unlock(&s->lock);
	if (r == 0)
		*out = e.e;
	return r;
}

char *
store_path(struct store *s, uint64_t id)
{
	char *p;

	pthread_mutex_lock(&s->lock);
	p = store_path_c(store_rdc(s), id);
	pthread_mutex_unlock(&s->lock);
	return p;
}

char *
store_readlink(struct store *s, uint64_t id)
{
	sqlite3_stmt *st;
	const unsigned char *t;
	char *p = NULL;
	int rc;

	pthread_mutex_lock(&s->lock);
	if ((st = store_q(store_rdc(s), Q_TARGET)) == NULL)
		goto out;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW &&
	    (t = sqlite3_column_text(st, 0)) != NULL)
		p = strdup((const char *)t);
	else if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		errno = EINVAL;
	else
		store_sqlerr(&s->rd, rc, "readlink");
	sqlite3_reset(st);
out:
	pthread_mutex_unlock(&s->lock);
	return p;
}

/*
 * Reads the children in batches of READDIR_BATCH, each copied out under
 * the lock and handed to cb without it, so a folder of any size is
 * walked whole in bounded memory. A corrupt record ends the walk with
 * EIO: a listing is whole or an error, never silently short.
 */
ssize_t
store_readdir(struct store *s, uint64_t dir, const char *after, size_t max,
    int (*cb)(void *, const struct store_ent *), void *arg)
{
	struct store_ent *v;
	struct ent e;
	sqlite3_stmt *st;
	char last[sizeof(v->name)];
	const char *from = after != NULL ? after : "";
	size_t n, i, batch, total = 0;
	ssize_t r = -1;
	int rc = SQLITE_DONE, bad;

	if (max == 0)
		return 0;
	/* No larger than asked: a batch is not cleared, but a large one is
	 * fresh pages from the kernel at every call. */
	if ((v = reallocarray(NULL, max < READDIR_BATCH ? max : READDIR_BATCH,
	    sizeof(*v))) == NULL)
		return -1;
	for (;;) {
		batch = max - total < READDIR_BATCH ? max - total :
		    READDIR_BATCH;
		n = 0;
		bad = 0;
		pthread_mutex_lock(&s->lock);
		if ((st = store_q(store_rdc(s), Q_READDIR)) == NULL) {
			pthread_mutex_unlock(&s->lock);
			goto out;
		}
		sqlite3_bind_int64(st, 1, (sqlite3_int64)dir);
		sqlite3_bind_text(st, 2, from, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)batch);
		while (n < batch && (rc = sqlite3_step(st)) == SQLITE_ROW) {
			if ((bad = store_ent_row(st, &e) == -1))
				break;
			v[n++] = e.e;
		}
		if (n == batch)
			rc = SQLITE_DONE;	/* LIMIT: no more rows */
		sqlite3_reset(st);
		if (!bad && rc != SQLITE_DONE)
			store_sqlerr(&s->rd, rc, "readdir");
		pthread_mutex_unlock(&s->lock);
		if (bad) {
			errno = EIO;
			goto out;
		}
		if (rc != SQLITE_DONE)
			goto out;
		for (i = 0; i < n; i++) {
			total++;
			if (cb(arg, &v[i]) != 0)
				goto done;
		}
		if (n < batch || total == max)
			break;
		memcpy(last, v[n - 1].name, sizeof(last));
		from = last;
	}
done:
	r = (ssize_t)total;
out:
	free(v);
	return r;
}

struct entv {
	struct store_ent *v;
	size_t		 n, cap;
};

static int
entv_add(void *arg, const struct store_ent *e)
{
	struct entv *a = arg;
	struct store_ent *v;

	if ((v = grow(a->v, a->n, &a->cap, sizeof(*v))) == NULL)
		return -1;
	a->v = v;
	a->v[a->n++] = *e;
	return 0;
}

ssize_t
store_scan_dir(struct store *s, uint64_t dir,
    int (*cb)(void *, const struct store_row *), void *arg)
{
	struct store_row r;
	sqlite3_stmt *st;
	sqlite3_int64 size;
	ssize_t n = 0;
	int rc, type, state, len;

	pthread_mutex_lock(&s->lock);
	if ((st = store_q(store_rdc(s), Q_SCAN)) == NULL) {
		pthread_mutex_unlock(&s->lock);
		return -1;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)dir);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		r.name = (const char *)sqlite3_column_text(st, 1);
		len = sqlite3_column_bytes(st, 1);
		type = sqlite3_column_int(st, 2);
		size = sqlite3_column_int64(st, 3);
		state = sqlite3_column_int(st, 5);
		/* Below a folder, no name is empty. */
		if (store_row_check(sqlite3_column_int64(st, 0),
		    (const unsigned char *)r.name, len < 1 ? -1 : len, type,
		    state, size) == -1) {
			n = -1;
			break;
		}
		r.id = (uint64_t)sqlite3_column_int64(st, 0);
		r.namelen = (size_t)len;
		r.type = (enum store_type)type;
		r.size = (uint64_t)size;
		r.mtime = sqlite3_column_int64(st, 4);
		r.state = (enum store_state)state;
		r.have = (uint64_t)sqlite3_column_int64(st, 6);
		n++;
		if (cb(arg, &r) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(st);
	if (n >= 0 && rc != SQLITE_DONE) {
		store_sqlerr(store_rdc(s), rc, "scan");
		n = -1;
	}
	pthread_mutex_unlock(&s->lock);
	if (n == -1)
		errno = EIO;
	return n;
}

int
store_children(struct store *s, uint64_t dir, struct store_ent **v,
    size_t *n)
{
	struct entv a = { NULL, 0, 0 };
	ssize_t got;

	got = store_readdir(s, dir, NULL, SIZE_MAX, entv_add, &a);
	if (got >= 0 && (size_t)got != a.n) {
		errno = ENOMEM;	/* entv_add stopped the walk */
		got = -1;
	}
	if (got < 0) {
		free(a.v);
		*v = NULL;
		*n = 0;
		return -1;
	}
	*v = a.v;
	*n = a.n;
	return 0;
}
