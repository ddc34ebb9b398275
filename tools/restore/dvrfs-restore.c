/*
 * dvrfs-restore: copies into a local DVR folder what a peer's m4f-origin
 * has and the folder lacks, filling only the gaps of the local
 * recording; with -w keeps following the peer's feed (cross-replication).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "answer.h"
#include "copy.h"
#include "local.h"
#include "log.h"
#include "opts.h"
#include "peer.h"
#include "plan.h"
#include "restore.h"

#define WATCH_WAIT	2	/* s: feed long-poll, so DIR is rescanned */
#define WATCH_BACKOFF	30	/* s after a failed round in -w */
#define RANGES_SHOWN	8

static volatile sig_atomic_t stop;

struct ctx {
	struct dvrfs_opts o;
	struct peer	*peer;
	int		 dirfd;
	int		 dry, watch, verbose, tty;
	struct m4f_entry *files;	/* the peer's, sorted by name */
	size_t		 nfiles, nsorted;
	struct copy_stats st;
	size_t		 planned, overlap;
	uint64_t	 planned_bytes;
	double		 t0;
};

static void
usage(void)
{
	fprintf(stderr, "usage: dvrfs-restore [-nvw] [-o OPTION[,OPTION...]] "
	    "SPEC DIR\n");
}

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* 1234567 as "1,234,567" into buf. */
static const char *
commas(uint64_t v, char *buf, size_t len)
{
	char tmp[32];
	size_t n, i, o = 0;

	n = (size_t)snprintf(tmp, sizeof(tmp), "%" PRIu64, v);
	for (i = 0; i < n && o + 2 < len; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = tmp[i];
	}
	buf[o] = '\0';
	return buf;
}

static const char *
utc(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

/* The progress line on a terminal, like rsync --info=progress2. */
static void
progress(void *arg, const struct copy_stats *st, const char *rel)
{
	struct ctx *c = arg;
	double el = now_s() - c->t0, rate = el > 0 ? st->bytes_now / el : 0;
	uint64_t left = c->planned_bytes > st->bytes_now ?
	    c->planned_bytes - st->bytes_now : 0;
	long eta = rate > 0 ? (long)(left / rate) : 0;
	char b[32];

	if (rel != NULL && c->verbose) {
		if (c->tty)
			fputs("\r\033[K", stdout);
		printf("%s\n", rel);
	}
	if (!c->tty)
		return;
	printf("\r%15s %3d%% %7.2fMB/s %4ld:%02ld:%02ld (xfr#%zu, "
	    "to-chk=%zu/%zu)\033[K", commas(st->bytes_now, b, sizeof(b)),
	    c->planned_bytes ? (int)(st->bytes_now * 100 /
	    c->planned_bytes) : 100, rate / 1e6, eta / 3600, eta / 60 % 60,
	    eta % 60, st->done, c->planned > st->done ? c->planned -
	    st->done : 0, c->planned);
	fflush(stdout);
}

static int
cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct m4f_entry *)a)->name,
	    ((const struct m4f_entry *)b)->name);
}

/* Lists the peer (each stream of streams=, or all) into c->files. */
static int
list_peer(struct ctx *c)
{
	struct m4f_entry *v = NULL, *nv, *part;
	size_t n = 0, np, i;

	peer_entries_free(c->files, c->nfiles);
	c->files = NULL;
	c->nfiles = c->nsorted = 0;
	if (c->o.streams == NULL)
		return peer_list(c->peer, "", &c->files, &c->nfiles) == -1 ?
		    -1 : (c->nsorted = c->nfiles, qsort(c->files, c->nfiles,
		    sizeof(*c->files), cmp_entry), 0);
	for (i = 0; i < c->o.nstreams; i++) {
		if (peer_list(c->peer, c->o.streams[i], &part, &np) == -1) {
			peer_entries_free(v, n);
			return -1;
		}
		if ((nv = realloc(v, (n + np + 1) * sizeof(*nv))) == NULL) {
			peer_entries_free(part, np);
			peer_entries_free(v, n);
			return errno = ENOMEM, -1;
		}
		v = nv;
		memcpy(v + n, part, np * sizeof(*part));
		n += np;
		free(part);
	}
	qsort(v, n, sizeof(*v), cmp_entry);
	c->files = v;
	c->nfiles = c->nsorted = n;
	return 0;
}

/* Applies the feed's events to c->files, keeping it sorted. */
static int
apply_events(struct ctx *c, const struct m4f_feed *f)
{
	struct m4f_entry key, *e, *nv;
	size_t i, k;

	for (i = 0; i < f->n; i++) {
		const struct m4f_event *ev = &f->events[i];

		if (ev->e.type != M4F_FILE || m4f_name_hidden(ev->e.name))
			continue;
		key.name = ev->e.name;
		e = bsearch(&key, c->files, c->nsorted, sizeof(*e), cmp_entry);
		for (k = c->nsorted; e == NULL && k < c->nfiles; k++)
			if (c->files[k].name != NULL &&
			    strcmp(c->files[k].name, ev->e.name) == 0)
				e = &c->files[k];
		if (ev->op == M4F_DEL) {
			if (e != NULL) {
				free(e->name);
				e->name = NULL;
			}
			continue;
		}
		if (e == NULL) {
			if ((nv = realloc(c->files, (c->nfiles + 1) *
			    sizeof(*nv))) == NULL)
				return -1;
			c->files = nv;
			e = &c->files[c->nfiles++];
			e->name = NULL;
		}
		free(e->name);
		*e = ev->e;
		if ((e->name = strdup(ev->e.name)) == NULL)
			return -1;
	}
	/* Deleted entries go, the appended ones take their place. */
	for (i = k = 0; i < c->nfiles; i++)
		if (c->files[i].name != NULL)
			c->files[k++] = c->files[i];
	c->nfiles = c->nsorted = k;
	qsort(c->files, c->nfiles, sizeof(*c->files), cmp_entry);
	return 0;
}

static void
print_plan(struct ctx *c, const struct plan *p)
{
	char b[32], f[32], t[32];
	const struct plan_stream *s;
	size_t i, k;

	for (i = 0; i < p->ncopy; i++)
		printf("%s\n", c->files[p->copy[i]].name);
	for (i = 0; i < p->ns; i++) {
		s = &p->s[i];
		printf("%s: %zu files, %s bytes", *s->name ? s->name : ".",
		    s->files, commas(s->bytes, b, sizeof(b)));
		if (s->overlap > 0)
			printf(", %zu segments left out (the local recording "
			    "covers their time)", s->overlap);
		for (k = 0; k < s->nr && k < RANGES_SHOWN; k++)
			printf("%s %s..%s", k ? "," : ";",
			    utc(s->r[k].from, f, sizeof(f)),
			    utc(s->r[k].to, t, sizeof(t)));
		if (s->nr > RANGES_SHOWN)
			printf(" and %zu more ranges", s->nr - RANGES_SHOWN);
		printf("\n");
	}
	printf("would copy %zu files, %s bytes\n", p->ncopy,
	    commas(p->bytes, b, sizeof(b)));
}

/* One round: scan DIR, plan, copy (or print). 0, or -1 with errno. */
static int
round_once(struct ctx *c)
{
	struct plan *p;
	char **names;
	size_t nl, cleaned = 0, i;
	int rc = 0;

	if (local_scan(c->dirfd, c->o.streams, !c->dry, &names, &nl,
	    &cleaned) == -1) {
		log_warn("%s", c->o.mountpoint);
		c->st.failed++;
		return -1;
	}
	if (cleaned > 0)
		log_info("removed %zu temporary files of an earlier run",
		    cleaned);
	p = plan_make(c->files, c->nfiles, names, nl, &c->o, time(NULL));
	local_names_free(names, nl);
	if (p == NULL) {
		log_warn("plan");
		c->st.failed++;
		return -1;
	}
	for (i = 0; i < p->ns; i++)
		c->overlap += p->s[i].overlap;
	if (c->dry) {
		print_plan(c, p);
		c->planned += p->ncopy;
		c->planned_bytes += p->bytes;
	} else if (p->ncopy > 0) {
		c->planned += p->ncopy;
		c->planned_bytes += p->bytes;
		rc = copy_run(c->peer, c->dirfd, c->files, p->copy, p->ncopy,
		    &c->o, &c->st, progress, c, &stop);
		if (c->tty)
			printf("\n");
	}
	plan_free(p);
	return rc;
}

/* The exit status for what happened, and one line saying why. */
static int
verdict(struct ctx *c, int list_errno)
{
	const struct copy_stats *st = &c->st;
	const char *pre = "dvrfs-restore: ";

	if (list_errno == EACCES || st->fatal == EACCES) {
		fprintf(stderr, "%sthe peer refused the cluster key (401): "
		    "check cluster_key= or cluster_key_file=\n", pre);
		return RESTORE_KEY;
	}
	if (st->fatal == ENOSPC) {
		fprintf(stderr, "%s%s: no space left on the device; nothing "
		    "partial is left\n", pre, c->o.mountpoint);
		return RESTORE_DISKFULL;
	}
	if (list_errno == ENOENT) {
		fprintf(stderr, "%s%s: the peer does not export %s\n", pre,
		    c->o.fsname, c->o.export);
		return RESTORE_UNREACHABLE;
	}
	if (list_errno == EKEYREJECTED) {
		fprintf(stderr, "%s%s: the peer's listing is not signed with "
		    "the cluster key (%s); nothing was copied\n", pre,
		    c->o.fsname, ANSWER_SIGNATURE);
		return RESTORE_VERIFY;
	}
	if (list_errno != 0 || st->fatal == ECONNREFUSED ||
	    st->unreachable > 0) {
		fprintf(stderr, "%s%s: %s\n", pre, c->o.fsname,
		    list_errno == EBADMSG ? "bad answers from the peer" :
		    "the peer is unreachable or does not answer");
		return RESTORE_UNREACHABLE;
	}
	if (st->fatal == EINTR) {
		fprintf(stderr, "%sstopped; nothing partial is left\n", pre);
		return RESTORE_STOPPED;
	}
	if (st->bad_digest > 0) {
		fprintf(stderr, "%s%zu files failed verification against the "
		    "peer's SHA-256 and were not copied\n", pre,
		    st->bad_digest);
		return RESTORE_VERIFY;
	}
	if (st->failed > 0) {
		fprintf(stderr, "%s%zu files could not be written into %s\n",
		    pre, st->failed, c->o.mountpoint);
		return RESTORE_LOCAL;
	}
	return RESTORE_OK;
}

static void
summary(struct ctx *c)
{
	double el = now_s() - c->t0;
	char b[32];

	if (c->dry)
		return;
	printf("copied %zu of %zu files, %s bytes in %.1f s (%.2f MB/s)",
	    c->st.done, c->planned, commas(c->st.bytes, b, sizeof(b)), el,
	    el > 0 ? c->st.bytes / el / 1e6 : 0.0);
	if (c->overlap > 0)
		printf("; %zu peer segments left out (the local recording "
		    "covers their time)", c->overlap);
	if (c->st.vanished + c->st.existed > 0)
		printf("; %zu gone from the peer, %zu appeared locally "
		    "meanwhile", c->st.vanished, c->st.existed);
	printf("\n");
	fflush(stdout);
}

/*
 * -w: follows the peer's feed, a round after each answer (at least every
 * WATCH_WAIT s), until SIGTERM. Errors are logged and retried.
 */
static int
watch(struct ctx *c, int relist)
{
	struct m4f_feed *f;
	char epoch[sizeof(f->epoch)] = "";
	uint64_t seq = 0;
	int known = 0, rc;
	time_t calm = 0;

	while (!stop) {
		if (peer_feed(c->peer, known, seq, WATCH_WAIT, &f) == -1) {
			if (errno == EACCES)
				return -1;
			log_warn("%s: the peer's feed", c->o.fsname);
			known = 0;
			relist = 1;
			sleep(5);
			continue;
		}
		if (known && (f->reset || strcmp(f->epoch, epoch) != 0))
			relist = 1;
		if (!relist && known && apply_events(c, f) == -1)
			relist = 1;
		snprintf(epoch, sizeof(epoch), "%s", f->epoch);
		seq = f->seq;
		known = 1;
		m4f_feed_free(f);
		if (relist) {
			if (list_peer(c) == -1) {
				if (errno == EACCES)
					return -1;
				log_warn("%s: listing", c->o.fsname);
				sleep(5);
				continue;
			}
			relist = 0;
		}
		if (time(NULL) < calm)
			continue;
		memset(&c->st, 0, sizeof(c->st));
		c->planned = c->overlap = 0;
		c->planned_bytes = 0;
		c->t0 = now_s();
		rc = round_once(c);
		if (c->st.done > 0)
			summary(c);
		if (c->st.fatal == EACCES)
			return -1;
		if (rc == -1 && !stop) {
			(void)verdict(c, 0);
			calm = time(NULL) + WATCH_BACKOFF;
		}
	}
	return 0;
}

static int
parse(struct ctx *c, int argc, char **argv)
{
	char err[512];
	int ch;

	opts_init(&c->o);
	while ((ch = getopt(argc, argv, "hno:vw")) != -1) {
		switch (ch) {
		case 'n': c->dry = 1; break;
		case 'o':
			if (opts_list(&c->o, optarg, OPTS_RESTORE, 0, err,
			    sizeof(err)) == -1)
				goto bad;
			break;
		case 'v': c->verbose = 1; break;
		case 'w': c->watch = 1; break;
		default:
			usage();
			return -1;
		}
	}
	if (argc - optind != 2) {
		usage();
		return -1;
	}
	if ((c->o.fsname = strdup(argv[optind])) == NULL ||
	    (c->o.mountpoint = strdup(argv[optind + 1])) == NULL) {
		snprintf(err, sizeof(err), "out of memory");
		goto bad;
	}
	/* SPEC after -o: an explicit m4f://HOST:PORT wins over port=. */
	if (opts_spec(&c->o, argv[optind], err, sizeof(err)) == -1)
		goto bad;
	opts_default_port(&c->o);
	if (c->dry && c->watch) {
		snprintf(err, sizeof(err), "-n and -w do not go together");
		goto bad;
	}
	return 0;
bad:
	fprintf(stderr, "dvrfs-restore: %s\n", err);
	return -1;
}

int
main(int argc, char **argv)
{
	struct ctx c = { .dirfd = -1 };
	struct sigaction sa = { .sa_handler = on_signal };
	int rc, list_errno = 0;

	if (parse(&c, argc, argv) == -1) {
		opts_clear(&c.o);
		return RESTORE_USAGE;
	}
	log_init("dvrfs-restore", c.verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	c.tty = isatty(STDOUT_FILENO) && !c.dry;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((c.dirfd = local_open(c.o.mountpoint, c.dry)) == -1) {
		if (errno == EWOULDBLOCK)
			fprintf(stderr, "dvrfs-restore: %s: another "
			    "dvrfs-restore is running on it\n",
			    c.o.mountpoint);
		else
			fprintf(stderr, "dvrfs-restore: %s: %s\n",
			    c.o.mountpoint, strerror(errno));
		opts_clear(&c.o);
		return RESTORE_LOCAL;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if ((c.peer = peer_new(&c.o)) == NULL) {
		rc = RESTORE_LOCAL;
		goto out;
	}
	c.t0 = now_s();
	if (list_peer(&c) == -1)
		list_errno = errno;
	else
		(void)round_once(&c);
	summary(&c);
	rc = verdict(&c, list_errno);
	if (c.watch && rc != RESTORE_KEY && rc != RESTORE_STOPPED) {
		if (watch(&c, list_errno != 0) == -1)
			c.st.fatal = EACCES;
		rc = verdict(&c, 0);
	}
out:
	peer_entries_free(c.files, c.nfiles);
	peer_free(c.peer);
	curl_global_cleanup();
	close(c.dirfd);
	opts_clear(&c.o);
	return rc;
}
