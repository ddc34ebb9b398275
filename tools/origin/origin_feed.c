/*
 * origin_feed: inotify → ring of numbered events → long-poll answers.
 *
 * The feed thread alone reads inotify and owns the watch table (wd →
 * export and folder). The ring, seq and stop flag are under f->lock;
 * requests wait on f->cond. Files are hashed outside the lock.
 *
 * A new file is hashed when it appears (closed after writing, or renamed
 * in), while its bytes are in the page cache, and announced with its
 * hash; one larger than M4F_DIGEST_MAX is announced at once with a null
 * hash and left to the background hasher. Symbolic links are announced
 * as links (ofs_link).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include <openssl/rand.h>

#include "log.h"
#include "m4f.h"
#include "origin_feed.h"
#include "origin_fs.h"
#include "origin_hash.h"
#include "origin_hasher.h"

#define RING_CAP	65536		/* events kept for late followers */
#define ANSWER_MAX	10000		/* events in one answer */
#define WATCH_MASK	(IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | \
			 IN_DELETE | IN_MOVED_FROM | IN_ONLYDIR | IN_DONT_FOLLOW)

struct watch {
	const struct oexport *ex;	/* NULL: slot unused */
	char		*rel;		/* folder relative to the export */
};

struct rec {
	const struct oexport *ex;
	struct m4f_event ev;		/* ev.e.name malloc'd */
};

struct ofeed {
	const struct oexport *ex;
	size_t		 nex;
	struct ohash	*hash;
	struct ohasher	*hasher;	/* may be NULL */
	int		 ifd, stopfd;
	pthread_t	 thr;
	int		 started;
	struct watch	*w;		/* feed thread only, indexed by wd */
	size_t		 nw;		/* feed thread only */
	char		 epoch[17];

	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;
	struct rec	*ring;		/* under lock, seq s at s % RING_CAP */
	uint64_t	 seq;		/* under lock, the last one given */
	uint64_t	 lost;		/* under lock, events up to it may be lost */
	int		 stopping;	/* under lock */
	int		 ready;		/* under lock: every folder watched */
};

static int
is_stopping(struct ofeed *f)
{
	int v;

	pthread_mutex_lock(&f->lock);
	v = f->stopping;
	pthread_mutex_unlock(&f->lock);
	return v;
}

/* Numbers an event and wakes the waiters. Takes name and e->target. */
static void
feed_push(struct ofeed *f, const struct oexport *ex, enum m4f_op op,
    const struct m4f_entry *e, char *name)
{
	struct rec *r;

	pthread_mutex_lock(&f->lock);
	f->seq++;
	r = &f->ring[f->seq % RING_CAP];
	free(r->ev.e.name);
	free(r->ev.e.target);
	r->ex = ex;
	r->ev.seq = f->seq;
	r->ev.op = op;
	r->ev.e = *e;
	r->ev.e.name = name;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	log_debug("feed %llu %s %s%s%s", (unsigned long long)f->seq,
	    op == M4F_ADD ? "add" : "del", ex->url, *name ? "/" : "", name);
}

static char *
join(const char *a, const char *b)
{
	char *s;

	if (asprintf(&s, "%s%s%s", a, *a ? "/" : "", b) < 0)
		return NULL;
	return s;
}

/*
 * An add event for the file rel (open as fd, st its fstat), with its hash:
 * known, or computed now from the page cache, or null for a large one
 * (queued to the hasher) or one still changing. Takes rel.
 */
static void
emit_file(struct ofeed *f, const struct oexport *ex, char *rel, int fd,
    const struct stat *st)
{
	struct m4f_entry e = { .type = M4F_FILE };
	char *abs;

	e.size = (uint64_t)st->st_size;
	e.mtime = st->st_mtim.tv_sec;
	if (asprintf(&abs, "%s/%s", ex->real, rel) < 0) {
		free(rel);
		return;
	}
	if (ohash_lookup(f->hash, abs, st, e.sha256) == 0) {
		if (e.size > M4F_DIGEST_MAX)
			ohasher_queue(f->hasher, ex, rel);
		else if (ohash_file(f->hash, abs, fd, st, e.sha256, NULL,
		    NULL) == -1) {
			log_debug("feed: hash %s: %s", abs, strerror(errno));
			e.sha256[0] = '\0';
		}
	}
	free(abs);
	feed_push(f, ex, M4F_ADD, &e, rel);
}

/*
 * An add event for what rel names now, if it is to be shown: a regular
 * file (emit_file) or a symbolic link (ofs_link); with links_only (it was
 * just created: a file is announced once written) only a link. Takes rel.
 */
static void
emit_entry(struct ofeed *f, const struct oexport *ex, char *rel,
    int links_only)
{
	struct m4f_entry e = { .type = M4F_LINK };
	struct stat st;
	const char *why;
	char *abs;
	int fd, link;

	if (asprintf(&abs, "%s/%s", ex->real, rel) < 0) {
		free(rel);
		return;
	}
	/* Only tells link from file: every open below is confined. */
	link = lstat(abs, &st) == 0 && S_ISLNK(st.st_mode);
	free(abs);
	if (link) {
		if (ofs_link(ex, rel, &st, &e.target)) {
			e.mtime = st.st_mtim.tv_sec;
			feed_push(f, ex, M4F_ADD, &e, rel);
		} else
			free(rel);
		return;
	}
	if (links_only || ofs_open(ex, rel, &fd, &st, &why) != 200) {
		free(rel);
		return;
	}
	if (S_ISREG(st.st_mode))
		emit_file(f, ex, rel, fd, &st);
	else
		free(rel);
	close(fd);
}

/* Remembers wd → folder rel; 0 or -1. */
static int
watch_set(struct ofeed *f, int wd, const struct oexport *ex, const char *rel)
{
	struct watch *nw;
	size_t n;

	if ((size_t)wd >= f->nw) {
		n = (size_t)wd * 2 + 16;
		if ((nw = realloc(f->w, n * sizeof(*nw))) == NULL)
			return -1;
		memset(nw + f->nw, 0, (n - f->nw) * sizeof(*nw));
		f->w = nw;
		f->nw = n;
	}
	free(f->w[wd].rel);
	f->w[wd].ex = ex;
	f->w[wd].rel = strdup(rel);
	return f->w[wd].rel ? 0 : -1;
}

/*
 * Watches folder rel and everything below it. With announce, also emits
 * add events for rel and its contents (they may have appeared before the
 * watch did).
 */
static void
watch_tree(struct ofeed *f, const struct oexport *ex, const char *rel,
    int announce)
{
	struct dirent *de;
	struct stat st;
	char *abs, *child;
	DIR *d = NULL;
	int wd;

	/* Deeper than a client accepts: not watched, nor walked further. */
	if (m4f_path_check(rel) == -1) {
		log_warnx("feed: %s/%.64s...: deeper than %d levels or "
		    "longer than %d bytes, not watched", ex->real, rel,
		    M4F_DEPTH_MAX, M4F_PATH_MAX);
		return;
	}
	if (asprintf(&abs, "%s%s%s", ex->real, *rel ? "/" : "", rel) < 0)
		return;
	wd = inotify_add_watch(f->ifd, abs, WATCH_MASK);
	if (wd == -1 && (errno == ENOENT || errno == ENOTDIR))
		goto out;	/* gone again, or renamed away: nothing to watch */
	if (wd == -1 || watch_set(f, wd, ex, rel) == -1) {
		log_warn("watch %s", abs);
		goto out;
	}
	if (announce && *rel && stat(abs, &st) == 0) {
		struct m4f_entry e = { .type = M4F_DIR,
		    .mtime = st.st_mtim.tv_sec };
		char *name = strdup(rel);

		if (name != NULL)
			feed_push(f, ex, M4F_ADD, &e, name);
	}
	if ((d = opendir(abs)) == NULL || is_stopping(f))
		goto out;
	while ((de = readdir(d)) != NULL) {
		if (m4f_name_hidden(de->d_name) ||
		    m4f_name_check(de->d_name, strlen(de->d_name)) == -1)
			continue;
		/* At start only folders matter: no stat of every segment. */
		if (!announce && de->d_type != DT_UNKNOWN &&
		    de->d_type != DT_DIR)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
		    (child = join(rel, de->d_name)) == NULL)
			continue;
		if (S_ISDIR(st.st_mode))
			watch_tree(f, ex, child, announce);
		else if (announce && (S_ISREG(st.st_mode) ||
		    S_ISLNK(st.st_mode))) {
			emit_entry(f, ex, child, 0);
			continue;	/* emit_entry took child */
		}
		free(child);
	}
out:
	if (d != NULL)
		closedir(d);
	free(abs);
}

/* One inotify event. */
static void
feed_event(struct ofeed *f, const struct inotify_event *ie)
{
	struct m4f_entry e = { .type = (ie->mask & IN_ISDIR) ? M4F_DIR : M4F_FILE };
	struct watch *w;
	char *rel;

	if (ie->mask & IN_Q_OVERFLOW) {
		log_warnx("inotify queue overflow: followers must list again");
		pthread_mutex_lock(&f->lock);
		f->lost = f->seq + 1;
		f->seq++;
		pthread_mutex_unlock(&f->lock);
		return;
	}
	if (ie->wd < 0 || (size_t)ie->wd >= f->nw || f->w[ie->wd].ex == NULL)
		return;
	w = &f->w[ie->wd];
	if (ie->mask & IN_IGNORED) {
		free(w->rel);
		w->rel = NULL, w->ex = NULL;
		return;
	}
	if (ie->len == 0 || m4f_name_hidden(ie->name) ||
	    m4f_name_check(ie->name, strlen(ie->name)) == -1 ||
	    (rel = join(w->rel, ie->name)) == NULL)
		return;
	/* A client refuses names deeper than M4F_DEPTH_MAX: never sent. */
	if (m4f_path_check(rel) == -1) {
		free(rel);
		return;
	}
	if (ie->mask & (IN_DELETE | IN_MOVED_FROM))
		feed_push(f, w->ex, M4F_DEL, &e, rel);
	else if ((ie->mask & IN_ISDIR) && (ie->mask & (IN_CREATE | IN_MOVED_TO))) {
		watch_tree(f, w->ex, rel, 1);
		free(rel);
	} else if (!(ie->mask & IN_ISDIR) &&
	    (ie->mask & (IN_MOVED_TO | IN_CLOSE_WRITE | IN_CREATE)))
		emit_entry(f, w->ex, rel,
		    !(ie->mask & (IN_MOVED_TO | IN_CLOSE_WRITE)));
	else
		free(rel);
}

static void *
feed_main(void *arg)
{
	struct ofeed *f = arg;
	char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct pollfd pfd[2] = { { f->ifd, POLLIN, 0 }, { f->stopfd, POLLIN, 0 } };
	const struct inotify_event *ie;
	ssize_t n;
	size_t i;
	char *p;

	/*
	 * Watching every folder of a large archive takes seconds: done here,
	 * while the origin already serves listings and files. Feed answers
	 * wait until it is done (ofeed_get), so a follower's first answer
	 * comes after every folder is watched.
	 */
	for (i = 0; i < f->nex; i++)
		watch_tree(f, &f->ex[i], "", 0);
	pthread_mutex_lock(&f->lock);
	f->ready = 1;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	for (;;) {
		if (poll(pfd, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			log_warn("poll");
			break;
		}
		if (pfd[1].revents)
			break;
		n = read(f->ifd, buf, sizeof(buf));
		if (n <= 0) {
			if (n == -1 && (errno == EINTR || errno == EAGAIN))
				continue;
			log_warn("inotify read");
			break;
		}
		for (p = buf; p < buf + n; p += sizeof(*ie) + ie->len) {
			ie = (const struct inotify_event *)p;
			feed_event(f, ie);
		}
	}
	return NULL;
}

struct ofeed *
ofeed_open(const struct oexport *ex, size_t nex, struct ohash *hash,
    struct ohasher *hasher)
{
	unsigned char rnd[8];
	struct ofeed *f;
	pthread_condattr_t ca;
	size_t i;

	if ((f = calloc(1, sizeof(*f))) == NULL)
		return NULL;
	f->ex = ex, f->nex = nex, f->hash = hash, f->hasher = hasher;
	f->ifd = f->stopfd = -1;
	pthread_mutex_init(&f->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&f->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		goto fail;
	for (i = 0; i < sizeof(rnd); i++)
		snprintf(f->epoch + 2 * i, 3, "%02x", rnd[i]);
	if ((f->ring = calloc(RING_CAP, sizeof(*f->ring))) == NULL ||
	    (f->ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK)) == -1 ||
	    (f->stopfd = eventfd(0, EFD_CLOEXEC)) == -1)
		goto fail;
	if ((errno = pthread_create(&f->thr, NULL, feed_main, f)) != 0)
		goto fail;
	f->started = 1;
	return f;
fail:
	log_warn("feed");
	ofeed_close(f);
	return NULL;
}

void
ofeed_stop(struct ofeed *f)
{
	if (f == NULL)
		return;
	pthread_mutex_lock(&f->lock);
	f->stopping = 1;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

void
ofeed_close(struct ofeed *f)
{
	uint64_t one = 1;
	size_t i;

	if (f == NULL)
		return;
	ofeed_stop(f);
	if (f->started) {
		if (write(f->stopfd, &one, sizeof(one)) != sizeof(one))
			log_warn("eventfd");
		pthread_join(f->thr, NULL);
	}
	for (i = 0; i < f->nw; i++)
		free(f->w[i].rel);
	free(f->w);
	for (i = 0; f->ring != NULL && i < RING_CAP; i++) {
		free(f->ring[i].ev.e.name);
		free(f->ring[i].ev.e.target);
	}
	free(f->ring);
	if (f->ifd != -1)
		close(f->ifd);
	if (f->stopfd != -1)
		close(f->stopfd);
	pthread_cond_destroy(&f->cond);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

/*
 * Copies the events after since for ex under sub into *out (grown as
 * needed, up to ANSWER_MAX; *cap is its room) with names relative to sub,
 * and returns how many; sets *last to the seq of the last one looked at.
 * A waiting request holds no room: it is sized to what there is to say.
 * Called under f->lock.
 */
static size_t
collect(struct ofeed *f, const struct oexport *ex, const char *sub,
    uint64_t since, struct m4f_event **out, size_t *cap, uint64_t *last)
{
	struct m4f_event *nv;
	size_t n = 0, sl = strlen(sub), ncap;
	uint64_t s;
	struct rec *r;

	*last = f->seq;
	for (s = since + 1; s <= f->seq; s++) {
		r = &f->ring[s % RING_CAP];
		if (r->ex != ex || r->ev.seq != s || r->ev.e.name == NULL)
			continue;
		if (sl > 0 && (strncmp(r->ev.e.name, sub, sl) != 0 ||
		    r->ev.e.name[sl] != '/'))
			continue;
		if (n == ANSWER_MAX) {
			*last = s - 1;
			break;
		}
		if (n == *cap) {
			ncap = *cap ? *cap * 2 : 16;
			if (ncap > ANSWER_MAX)
				ncap = ANSWER_MAX;
			if ((nv = realloc(*out, ncap * sizeof(*nv))) == NULL) {
				*last = s - 1;
				break;
			}
			*out = nv;
			*cap = ncap;
		}
		(*out)[n] = r->ev;
		(*out)[n].e.name = strdup(r->ev.e.name + sl + (sl > 0));
		(*out)[n].e.target = r->ev.e.target ? strdup(r->ev.e.target) :
		    NULL;
		if ((*out)[n].e.name == NULL || (r->ev.e.target != NULL &&
		    (*out)[n].e.target == NULL)) {
			free((*out)[n].e.name);
			free((*out)[n].e.target);
			*last = s - 1;
			break;
		}
		n++;
	}
	return n;
}

/* Has since fallen out of the ring, or does it come from the future? */
static int
need_reset(const struct ofeed *f, uint64_t since)
{
	uint64_t oldest = f->seq >= RING_CAP ? f->seq - RING_CAP + 1 : 1;

	return since > f->seq || since + 1 < oldest || since < f->lost;
}

char *
ofeed_get(struct ofeed *f, const struct oexport *ex, const char *sub,
    int has_since, uint64_t since, unsigned wait)
{
	struct m4f_feed ans = { .reset = 0 };
	struct timespec dl;
	char *json;
	size_t i, cap = 0;

	memcpy(ans.epoch, f->epoch, sizeof(f->epoch));
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += wait;
	pthread_mutex_lock(&f->lock);
	while (!f->ready && !f->stopping)
		if (pthread_cond_timedwait(&f->cond, &f->lock, &dl) == ETIMEDOUT)
			break;
	if (!f->ready) {
		pthread_mutex_unlock(&f->lock);
		errno = EAGAIN;
		return NULL;
	}
	for (;;) {
		ans.seq = f->seq;
		if (!has_since || f->stopping)
			break;
		if (need_reset(f, since)) {
			ans.reset = 1;
			break;
		}
		ans.n = collect(f, ex, sub, since, &ans.events, &cap, &ans.seq);
		if (ans.n > 0)
			break;
		if (pthread_cond_timedwait(&f->cond, &f->lock, &dl) == ETIMEDOUT) {
			ans.seq = f->seq;
			ans.n = collect(f, ex, sub, since, &ans.events, &cap,
			    &ans.seq);
			break;
		}
	}
	pthread_mutex_unlock(&f->lock);
	json = m4f_feed_encode(&ans);
	for (i = 0; i < ans.n; i++) {
		free(ans.events[i].e.name);
		free(ans.events[i].e.target);
	}
	free(ans.events);
	return json;
}
