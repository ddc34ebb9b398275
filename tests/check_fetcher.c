/*
 * Unit tests of the fetcher against a real m4f-origin (bin/m4f-origin,
 * forked per test over a temporary tree of random files), a small fake
 * origin in python3 for wrong answers, and a real store.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "fetcher.h"
#include "log.h"
#include "m4f.h"
#include "store.h"

#define KEY	"right-key"
#define BS	(1024 * 1024)

static char top[256], root[300], exportp[300], storedir[300], logpath[300];
static pid_t origin = -1;
static int port;

struct tfile {
	const char	*rel;
	size_t		 size;
	unsigned char	*data;
};

static struct tfile files[] = {
	{ "cam1/2026/01/01/00/00/00.ts", 3 * BS + 1234, NULL },
	{ "cam1/2026/01/01/00/00/02.ts", 2 * BS + 17, NULL },
	{ "cam1/2026/01/01/00/00/04.ts", 1000, NULL },
	{ "cam1/2026/01/01/00/00/06.ts", BS, NULL },
	{ "cam2/a.ts", 600 * 1024, NULL },
	{ "cam2/b.ts", 600 * 1024, NULL },
	{ "cam2/c.ts", 600 * 1024, NULL },
	{ "cam2/d.ts", 600 * 1024, NULL },
	{ "cam2/e.ts", 300 * 1024, NULL },
	{ "empty.bin", 0, NULL },
};
#define NFILES (sizeof(files) / sizeof(files[0]))
#define NSMALL 23	/* small files in many/ for paging */

static int
free_port(void)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int s, p;

	s = socket(AF_INET, SOCK_STREAM, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	getsockname(s, (struct sockaddr *)&a, &len);
	p = ntohs(a.sin_port);
	close(s);
	return p;
}

static int
wait_port(int p)
{
	struct sockaddr_in a;
	int i, s, ok;

	for (i = 0; i < 200; i++) {
		s = socket(AF_INET, SOCK_STREAM, 0);
		memset(&a, 0, sizeof(a));
		a.sin_family = AF_INET;
		a.sin_port = htons(p);
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ok = connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
		close(s);
		if (ok)
			return 0;
		usleep(50000);
	}
	return -1;
}

static void
mkdirs(const char *path)
{
	char buf[600], *p;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = buf + 1; *p != '\0'; p++)
		if (*p == '/') {
			*p = '\0';
			mkdir(buf, 0755);
			*p = '/';
		}
}

static void
write_file(const char *rel, const void *data, size_t size)
{
	char path[600];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	mkdirs(path);
	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	ck_assert_uint_eq(fwrite(data, 1, size, fp), size);
	ck_assert_int_eq(fclose(fp), 0);
}

static void
make_tree(void)
{
	char rel[64], small[32];
	size_t i, k;

	srand(42);
	for (i = 0; i < NFILES; i++) {
		files[i].data = malloc(files[i].size + 1);
		for (k = 0; k < files[i].size; k++)
			files[i].data[k] = (unsigned char)rand();
		write_file(files[i].rel, files[i].data, files[i].size);
	}
	for (i = 0; i < NSMALL; i++) {
		snprintf(rel, sizeof(rel), "many/d%zu/f%02zu.ts", i % 3, i);
		snprintf(small, sizeof(small), "small %zu", i);
		write_file(rel, small, strlen(small));
	}
}

static void
origin_start(const char *keyfile)
{
	char listen[64], db[320];

	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	snprintf(db, sizeof(db), "%s/hash.db", top);
	origin = fork();
	ck_assert_int_ge(origin, 0);
	if (origin == 0) {
		int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);

		dup2(fd, 2);
		if (keyfile != NULL)
			execl("bin/m4f-origin", "m4f-origin", "-v", "-r", root,
			    "-l", listen, "-c", db, "-k", keyfile, (char *)NULL);
		else
			execl("bin/m4f-origin", "m4f-origin", "-v", "-r", root,
			    "-l", listen, "-c", db, (char *)NULL);
		_exit(127);
	}
	if (wait_port(port) == -1) {
		char cmd[400];

		snprintf(cmd, sizeof(cmd), "cat %s >&2", logpath);
		if (system(cmd) != 0)
			fprintf(stderr, "no log\n");
		ck_abort_msg("m4f-origin does not listen on %d", port);
	}
}

static void
origin_stop(void)
{
	if (origin > 0) {
		kill(origin, SIGKILL);
		waitpid(origin, NULL, 0);
		origin = -1;
	}
}

/* How many requests the origin logged for target. */
static int
origin_count(const char *target)
{
	char line[1024], pat[700];
	FILE *fp;
	int n = 0;

	snprintf(pat, sizeof(pat), "GET %s (", target);
	if ((fp = fopen(logpath, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), fp) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (strstr(line, pat) != NULL)
			n++;
	}
	fclose(fp);
	return n;
}

static void
setup(void)
{
	char tmpl[] = "/tmp/check_fetcher.XXXXXX";

	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	snprintf(top, sizeof(top), "%s", tmpl);
	snprintf(root, sizeof(root), "%s/storage", top);
	snprintf(exportp, sizeof(exportp), "%s", root);
	snprintf(storedir, sizeof(storedir), "%s/store", top);
	snprintf(logpath, sizeof(logpath), "%s/origin.log", top);
	mkdir(root, 0755);
	mkdir(storedir, 0755);
	make_tree();
	port = free_port();
	signal(SIGPIPE, SIG_IGN);
}

static void
teardown(void)
{
	char cmd[300];
	size_t i;

	origin_stop();
	for (i = 0; i < NFILES; i++) {
		free(files[i].data);
		files[i].data = NULL;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", top);
}

static struct fetcher_conf
conf_for(int p)
{
	struct fetcher_conf c;

	memset(&c, 0, sizeof(c));
	c.host = "127.0.0.1";
	c.port = p;
	c.export = exportp;
	c.connect_timeout_ms = 1000;
	return c;
}

static struct store *
open_store(void)
{
	struct store *s;

	s = store_open(storedir, NULL);
	ck_assert_msg(s != NULL, "store_open: %s", strerror(errno));
	ck_assert_uint_eq(store_block_size(s), BS);
	return s;
}

static uint64_t
file_id(struct store *s, const char *rel)
{
	struct store_ent e;

	ck_assert_msg(store_resolve(s, rel, &e) == 0, "resolve %s: %s", rel,
	    strerror(errno));
	return e.id;
}

/*
 * Starts the origin, a store and a fetcher with conf c (port filled in),
 * and lists the whole tree into the store.
 */
static struct fetcher *
listed(struct store **s, struct fetcher_conf c)
{
	struct fetcher *f;

	origin_start(NULL);
	*s = open_store();
	c.port = port;
	ck_assert_ptr_nonnull(f = fetcher_new(&c, *s));
	ck_assert_int_eq(fetcher_list(f, "", 1, FETCH_VIEWER, 10000), 0);
	return f;
}

/* Reads [off, off+len) of files[i] and compares with the tree. */
static void
read_eq(struct fetcher *f, struct store *s, size_t i, uint64_t off,
    size_t len)
{
	unsigned char *buf = malloc(len + 1);
	ssize_t n;
	size_t want = off >= files[i].size ? 0 :
	    (files[i].size - off < len ? files[i].size - off : len);

	n = fetcher_read(f, file_id(s, files[i].rel), buf, len, off,
	    FETCH_VIEWER, 10000);
	ck_assert_msg(n >= 0, "read %s: %s", files[i].rel, strerror(errno));
	ck_assert_uint_eq((size_t)n, want);
	ck_assert(memcmp(buf, files[i].data + off, want) == 0);
	free(buf);
}

START_TEST(t_read)
{
	struct fetcher_conf c;
	struct fetcher_stats st, st2;
	struct fetcher *f;
	struct store *s;
	char target[600];

	/* _i 0: files fetched whole; 1: block by block. */
	int want = _i == 0 ? 1 : 4, n;

	c = conf_for(port);
	c.whole_max = _i == 0 ? 0 : 1;
	f = listed(&s, c);

	/*
	 * A missing range: one request for the whole file, verified whole;
	 * or by blocks, each checked against its Content-Digest, only the
	 * ones the range touches (an origin that sends no Content-Digest:
	 * all of them, once, for the whole file to be verified). Then the
	 * same ranges again, across blocks too, from the store alone.
	 */
	read_eq(f, s, 0, 100, 5000);
	snprintf(target, sizeof(target), "%s/%s", root, files[0].rel);
	n = origin_count(target);
	ck_assert_msg(n == want || (_i == 1 && n <= 2), "%d requests", n);
	fetcher_stats(f, &st);
	if (n == want)
		ck_assert_uint_ge(st.bytes[FETCH_VIEWER], files[0].size);
	read_eq(f, s, 0, 100, 5000);
	read_eq(f, s, 0, 0, 4096);
	read_eq(f, s, 0, BS - 10, 20);
	read_eq(f, s, 0, 0, files[0].size);
	fetcher_stats(f, &st2);
	if (n == want)
		ck_assert_uint_eq(st2.requests, st.requests);
	/* Each block fetched once, whatever the order of the reads. */
	ck_assert_int_eq(origin_count(target), want);
	ck_assert_int_eq(st2.connected, 1);
	/* At and after the end, and the short last block. */
	read_eq(f, s, 1, files[1].size - 10, 4096);
	read_eq(f, s, 1, files[1].size, 4096);
	read_eq(f, s, 1, files[1].size + 100, 4096);
	read_eq(f, s, 2, 0, 1000);
	read_eq(f, s, 9, 0, 10);

	fetcher_free(f);
	store_close(s);
}
END_TEST

/* Waits up to 10 s for file id to be complete in the store; *e gets it. */
static void
wait_complete(struct store *s, uint64_t id, struct store_ent *e)
{
	int i;

	for (i = 0; i < 1000; i++) {
		ck_assert_int_eq(store_get(s, id, e), 0);
		if (e->state == STORE_COMPLETE)
			return;
		usleep(10000);
	}
	ck_abort_msg("entry %llu not complete", (unsigned long long)id);
}

/* Checks that d serves files[i]'s bytes [off, off+len). */
static void
served_eq(const struct fetch_data *d, size_t i, uint64_t off, size_t len)
{
	unsigned char *b = malloc(len + 1);

	ck_assert_uint_eq(d->len, len);
	if (d->fd >= 0)
		ck_assert_int_eq(pread(d->fd, b, len, (off_t)off),
		    (ssize_t)len);
	else
		memcpy(b, d->p, len);
	ck_assert(memcmp(b, files[i].data + off, len) == 0);
	free(b);
}

/*
 * fetcher_serve, the one decision: with the primary known away a cold
 * file fails at once and asks nothing; a cold file up to whole_max is
 * served from its verified body in memory, which stays valid while held,
 * also after the finisher has installed the file; a complete file from
 * its data file; an entry looked up before the install is served too.
 * At and past the end: 0 bytes; a folder, a bad priority: errors, and
 * nothing held. Every byte compared.
 */
START_TEST(t_serve)
{
	struct fetcher_stats st, st2;
	struct fetch_data d, d2;
	struct store_ent e, now, dir;
	struct fetcher *f;
	struct store *s;
	uint64_t id;

	f = listed(&s, conf_for(port));
	id = file_id(s, files[0].rel);
	ck_assert_int_eq(store_get(s, id, &e), 0);
	ck_assert_int_ne(e.state, STORE_COMPLETE);

	fetcher_stats(f, &st);
	ck_assert_int_eq(fetcher_serve(f, &e, 0, 100, FETCH_VIEWER, 10000,
	    FETCH_LOCAL, &d), -1);
	ck_assert_int_eq(errno, EHOSTDOWN);
	ck_assert_ptr_null(d.hold);
	fetcher_stats(f, &st2);
	ck_assert_uint_eq(st2.requests, st.requests);

	ck_assert_msg(fetcher_serve(f, &e, 0, files[0].size + 99, FETCH_VIEWER,
	    10000, 0, &d) == 0, "serve: %s", strerror(errno));
	ck_assert_int_eq(d.fd, -1);
	ck_assert_int_eq(d.local, 0);
	served_eq(&d, 0, 0, files[0].size);
	wait_complete(s, id, &now);
	served_eq(&d, 0, 0, files[0].size);

	ck_assert_int_eq(fetcher_serve(f, &now, BS - 10, 5000, FETCH_VIEWER,
	    10000, FETCH_LOCAL, &d2), 0);
	ck_assert_int_ge(d2.fd, 0);
	ck_assert_int_eq(d2.local, 1);
	served_eq(&d2, 0, BS - 10, 5000);
	close(d2.fd);
	fetcher_release(f, &d2);
	fetcher_release(f, &d);

	ck_assert_int_eq(fetcher_serve(f, &e, BS - 10, 5000, FETCH_VIEWER,
	    10000, 0, &d), 0);
	served_eq(&d, 0, BS - 10, 5000);
	if (d.fd >= 0)
		close(d.fd);
	fetcher_release(f, &d);

	ck_assert_int_eq(fetcher_serve(f, &now, files[0].size, 100,
	    FETCH_VIEWER, 10000, 0, &d), 0);
	ck_assert_uint_eq(d.len, 0);
	fetcher_release(f, &d);

	ck_assert_int_eq(store_get(s, STORE_ROOT_ID, &dir), 0);
	ck_assert_int_eq(fetcher_serve(f, &dir, 0, 100, FETCH_VIEWER, 1000, 0,
	    &d), -1);
	ck_assert_int_eq(errno, EISDIR);
	ck_assert_ptr_null(d.hold);
	ck_assert_int_eq(fetcher_serve(f, &now, 0, 100, 7, 1000, 0, &d), -1);
	ck_assert_int_eq(errno, EINVAL);
	fetcher_release(f, &d);
	fetcher_free(f);
	store_close(s);
}
END_TEST

/*
 * Read-ahead: fetcher_prefetch of every block of a file brings all of it
 * into the store without a reader, in one request when it is fetched
 * whole, one per block otherwise; a second prefetch while it is in
 * flight or complete asks nothing more.
 */
START_TEST(t_prefetch)
{
	struct fetcher_conf c;
	struct store_ent e;
	struct fetcher *f;
	struct store *s;
	char target[600];
	uint64_t id;

	c = conf_for(port);
	c.whole_max = _i == 0 ? 0 : 1;
	f = listed(&s, c);
	id = file_id(s, files[0].rel);
	ck_assert_int_eq(store_get(s, id, &e), 0);
	ck_assert_int_eq(fetcher_prefetch(f, &e, 0, 100, FETCH_VIEWER), 0);
	ck_assert_int_eq(fetcher_prefetch(f, &e, 0, 100, FETCH_LIVE), 0);
	wait_complete(s, id, &e);
	ck_assert_int_eq(fetcher_prefetch(f, &e, 0, 100, FETCH_VIEWER), 0);
	snprintf(target, sizeof(target), "%s/%s", root, files[0].rel);
	ck_assert_int_eq(origin_count(target), _i == 0 ? 1 : 4);
	read_eq(f, s, 0, 0, files[0].size);
	ck_assert_int_eq(fetcher_prefetch(f, &e, 0, 1, 9), -1);
	ck_assert_int_eq(errno, EINVAL);
	fetcher_free(f);
	store_close(s);
}
END_TEST

struct reader {
	struct fetcher	*f;
	uint64_t	 id;
	uint64_t	 off;
	pthread_barrier_t *bar;
	unsigned char	 buf[4096];
	ssize_t		 n;
};

static void *
reader_main(void *arg)
{
	struct reader *r = arg;

	pthread_barrier_wait(r->bar);
	r->n = fetcher_read(r->f, r->id, r->buf, sizeof(r->buf), r->off,
	    FETCH_VIEWER, 10000);
	return NULL;
}

START_TEST(t_coalesce)
{
	struct fetcher *f;
	struct store *s;
	struct reader r[16];
	pthread_t th[16];
	pthread_barrier_t bar;
	char target[600];
	int i;

	f = listed(&s, conf_for(port));
	pthread_barrier_init(&bar, NULL, 16);
	for (i = 0; i < 16; i++) {
		r[i].f = f;
		r[i].id = file_id(s, files[3].rel);
		r[i].off = (uint64_t)i * 60000;
		r[i].bar = &bar;
		ck_assert_int_eq(pthread_create(&th[i], NULL, reader_main,
		    &r[i]), 0);
	}
	for (i = 0; i < 16; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(r[i].n, 4096);
		ck_assert(memcmp(r[i].buf, files[3].data + r[i].off, 4096) == 0);
	}
	snprintf(target, sizeof(target), "%s/%s", root, files[3].rel);
	ck_assert_int_eq(origin_count(target), 1);
	pthread_barrier_destroy(&bar);
	fetcher_free(f);
	store_close(s);
}
END_TEST

struct walk {
	uint64_t	 dirs[64];
	int		 ndirs, files;
};

static int
walk_cb(void *arg, const struct store_ent *e)
{
	struct walk *w = arg;

	if (e->type == STORE_DIR) {
		ck_assert_int_lt(w->ndirs, 64);
		w->dirs[w->ndirs++] = e->id;
	} else
		w->files++;
	return 0;
}

/* Counts files and folders below the root, without nesting readdirs. */
static void
walk(struct store *s, struct walk *w)
{
	int i;

	memset(w, 0, sizeof(*w));
	ck_assert_int_ge(store_readdir(s, STORE_ROOT_ID, NULL, SIZE_MAX,
	    walk_cb, w), 0);
	for (i = 0; i < w->ndirs; i++)
		ck_assert_int_ge(store_readdir(s, w->dirs[i], NULL, SIZE_MAX,
		    walk_cb, w), 0);
}

START_TEST(t_list_paging)
{
	struct fetcher_conf c;
	struct fetcher *f;
	struct store *s;
	struct store_ent e;
	struct walk w;
	struct fetcher_stats st;
	char target[600];
	size_t i;

	origin_start(NULL);
	s = open_store();
	c = conf_for(port);
	setenv("DVRFS_LIST_LIMIT", "7", 1);
	ck_assert_ptr_nonnull(f = fetcher_new(&c, s));
	unsetenv("DVRFS_LIST_LIMIT");
	ck_assert_int_eq(fetcher_list(f, "", 1, FETCH_VIEWER, 10000), 0);
	for (i = 0; i < NFILES; i++) {
		ck_assert_int_eq(store_resolve(s, files[i].rel, &e), 0);
		ck_assert_int_eq(e.type, STORE_FILE);
		ck_assert_uint_eq(e.size, files[i].size);
	}
	walk(s, &w);
	ck_assert_int_eq(w.files, (int)(NFILES + NSMALL));
	/* cam1 + 5 levels, cam2, many + 3 */
	ck_assert_int_eq(w.ndirs, 6 + 1 + 4);
	/* Paged: more than one request for the listing. */
	snprintf(target, sizeof(target), "/m4f/v1/list%s?recursive=1&limit=7",
	    root);
	ck_assert_int_eq(origin_count(target), 1);
	fetcher_stats(f, &st);
	ck_assert_uint_eq(st.requests, (44 + 6) / 7);

	/* A folder alone, and a missing one. */
	ck_assert_int_eq(fetcher_list(f, "many", 1, FETCH_LIVE, 10000), 0);
	ck_assert_int_eq(fetcher_list(f, "nosuch", 0, FETCH_LIVE, 10000), -1);
	ck_assert_int_eq(errno, ENOENT);
	fetcher_free(f);
	store_close(s);
}
END_TEST

START_TEST(t_wrong_key)
{
	struct fetcher_conf c;
	struct fetcher_stats st;
	struct fetcher *f;
	struct store *s;
	char keyfile[320];
	FILE *fp;

	snprintf(keyfile, sizeof(keyfile), "%s/key", top);
	ck_assert_ptr_nonnull(fp = fopen(keyfile, "w"));
	fputs(KEY "\n", fp);
	fclose(fp);
	origin_start(keyfile);
	s = open_store();

	c = conf_for(port);
	c.key = "wrong-key";
	c.keylen = strlen(c.key);
	ck_assert_ptr_nonnull(f = fetcher_new(&c, s));
	ck_assert_int_eq(fetcher_list(f, "", 1, FETCH_VIEWER, 10000), -1);
	ck_assert_int_eq(errno, EACCES);
	fetcher_stats(f, &st);
	ck_assert_int_eq(st.auth_failed, 1);
	fetcher_free(f);

	c.key = KEY;
	c.keylen = strlen(KEY);
	ck_assert_ptr_nonnull(f = fetcher_new(&c, s));
	ck_assert_int_eq(fetcher_list(f, "", 1, FETCH_VIEWER, 10000), 0);
	read_eq(f, s, 1, 12345, 100000);
	fetcher_stats(f, &st);
	ck_assert_int_eq(st.auth_failed, 0);
	fetcher_free(f);
	store_close(s);
}
END_TEST

START_TEST(t_origin_down)
{
	struct fetcher *f;
	struct store *s;
	struct timespec a, b;
	unsigned char buf[100];
	uint64_t id;
	ssize_t n;
	double took;

	f = listed(&s, conf_for(port));
	id = file_id(s, files[1].rel);
	origin_stop();

	clock_gettime(CLOCK_MONOTONIC, &a);
	n = fetcher_read(f, id, buf, sizeof(buf), 0, FETCH_VIEWER, 2000);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ck_assert_int_eq(n, -1);
	ck_assert_msg(errno == EHOSTDOWN || errno == ETIMEDOUT, "errno %s",
	    strerror(errno));
	took = (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
	ck_assert_msg(took < 2.0 + 5.0, "a read waited %.1f s", took);

	/* The origin is back: reads work again. */
	origin_start(NULL);
	read_eq(f, s, 1, 0, sizeof(buf));
	fetcher_free(f);
	store_close(s);
}
END_TEST

/*
 * A fake origin that answers every range GET with the right Content-Range
 * but a body one byte short of it (and a matching Content-Length), with a
 * wrong total size, or with a 200; and every whole-file GET with one byte
 * less or more than the file has, or the right size of wrong bytes.
 */
static const char fake_py[] =
"import http.server, sys, re\n"
"mode = sys.argv[2]\n"
"class H(http.server.BaseHTTPRequestHandler):\n"
"    protocol_version = 'HTTP/1.1'\n"
"    def log_message(self, *a): pass\n"
"    def do_GET(self):\n"
"        if 'Range' not in self.headers:\n"
"            n = int(sys.argv[3]) + {'short': -1, 'size': 1}.get(mode, 0)\n"
"            self.send_response(200)\n"
"            self.send_header('Content-Length', str(n))\n"
"            self.end_headers()\n"
"            self.wfile.write(b'x' * n)\n"
"            return\n"
"        m = re.match(r'bytes=(\\d+)-(\\d+)', self.headers.get('Range', ''))\n"
"        a, b = int(m.group(1)), int(m.group(2))\n"
"        n = b - a + 1\n"
"        if mode == 'short':\n"
"            self.send_response(206)\n"
"            self.send_header('Content-Range', 'bytes %d-%d/%s' % (a, b, sys.argv[3]))\n"
"            n -= 1\n"
"        elif mode == 'size':\n"
"            self.send_response(206)\n"
"            self.send_header('Content-Range', 'bytes %d-%d/%d' % (a, b, int(sys.argv[3]) + 1))\n"
"        else:\n"
"            self.send_response(200)\n"
"        self.send_header('Content-Length', str(n))\n"
"        self.end_headers()\n"
"        self.wfile.write(b'x' * n)\n"
"http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()\n";

static pid_t
fake_start(int p, const char *mode, size_t size)
{
	char ps[16], ss[32];
	pid_t pid;

	snprintf(ps, sizeof(ps), "%d", p);
	snprintf(ss, sizeof(ss), "%zu", size);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);

		dup2(fd, 2);
		execlp("python3", "python3", "-c", fake_py, ps, mode, ss,
		    (char *)NULL);
		_exit(127);
	}
	ck_assert_int_eq(wait_port(p), 0);
	return pid;
}

START_TEST(t_bad_answer)
{
	static const char *modes[] = { "short", "size", "whole" };
	struct fetcher_conf c;
	struct fetcher_stats st;
	struct fetcher *f, *good;
	struct store *s;
	unsigned char buf[100];
	uint64_t id;
	int fp, i;
	pid_t pid;

	origin_start(NULL);
	s = open_store();
	c = conf_for(port);
	ck_assert_ptr_nonnull(good = fetcher_new(&c, s));
	ck_assert_int_eq(fetcher_list(good, "", 1, FETCH_VIEWER, 10000), 0);
	id = file_id(s, files[0].rel);
	/* 0-2: block by block; 3-5: whole files. */
	for (i = 0; i < 6; i++) {
		fp = free_port();
		pid = fake_start(fp, modes[i % 3], files[0].size);
		c = conf_for(fp);
		c.whole_max = i < 3 ? 1 : 0;
		ck_assert_ptr_nonnull(f = fetcher_new(&c, s));
		ck_assert_int_eq(fetcher_read(f, id, buf, sizeof(buf), BS + 5,
		    FETCH_VIEWER, 10000), -1);
		/* Every bad answer is asked again: refused after 3 tries. */
		ck_assert_msg(errno == EIO, "%s: %s", modes[i % 3],
		    strerror(errno));
		fetcher_stats(f, &st);
		if (i == 5)
			ck_assert_uint_eq(st.requests, 3);
		else
			ck_assert_uint_ge(st.bad_answers, 1);
		ck_assert_int_eq(store_have(s, id, BS, 100, NULL), 0);
		fetcher_free(f);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	/* Nothing bad was kept: the right bytes come from the real origin. */
	read_eq(good, s, 0, BS + 5, sizeof(buf));
	fetcher_free(good);
	store_close(s);
}
END_TEST

static atomic_int order;
static int done_at[8], done_err[8];
static uint64_t done_ids[8];

static void
on_done(void *arg, uint64_t id, int err)
{
	int i = (int)(intptr_t)arg;

	done_ids[i] = id;
	done_err[i] = err;
	done_at[i] = atomic_fetch_add(&order, 1) + 1;
}

/* Queues files[4 + i] for i < n at BACKFILL together; waits for all. */
static void
get_together(struct fetcher *f, struct store *s, int n)
{
	int i, t;

	atomic_store(&order, 0);
	memset(done_at, 0, sizeof(done_at));
	fetcher_hold(f, 1);
	for (i = 0; i < n; i++)
		ck_assert_int_eq(fetcher_get_file(f, file_id(s,
		    files[4 + i].rel), FETCH_BACKFILL, on_done,
		    (void *)(intptr_t)i), 0);
	fetcher_hold(f, 0);
	for (t = 0; t < 300 && atomic_load(&order) < n; t++)
		usleep(50000);
	ck_assert_int_eq(atomic_load(&order), n);
}

/*
 * The crawler's files of one folder share a request: cam2/a-e in one;
 * every file complete and byte-equal.
 */
START_TEST(t_bundle)
{
	struct fetcher *f;
	struct store *s;
	char target[700];
	int i;

	f = listed(&s, conf_for(port));
	get_together(f, s, 5);
	for (i = 0; i < 5; i++) {
		ck_assert_int_eq(done_err[i], 0);
		read_eq(f, s, 4 + (size_t)i, 0, files[4 + i].size);
	}
	snprintf(target, sizeof(target), "/m4f/v1/files%s/cam2?name=a.ts&"
	    "name=b.ts&name=c.ts&name=d.ts&name=e.ts", exportp);
	ck_assert_int_eq(origin_count(target), 1);
	for (i = 0; i < 5; i++) {
		snprintf(target, sizeof(target), "%s/%s", exportp,
		    files[4 + i].rel);
		ck_assert_int_eq(origin_count(target), 0);
	}
	fetcher_free(f);
	store_close(s);
}
END_TEST

/*
 * A file gone from the primary fails its bundle (404): the others are
 * fetched alone and complete, the gone one ends with ENOENT.
 */
START_TEST(t_bundle_missing)
{
	struct fetcher *f;
	struct store *s;
	char path[700];
	int i;

	f = listed(&s, conf_for(port));
	snprintf(path, sizeof(path), "%s/%s", root, files[6].rel);
	ck_assert_int_eq(unlink(path), 0);
	get_together(f, s, 4);
	for (i = 0; i < 4; i++) {
		if (i == 2) {
			ck_assert_int_eq(done_err[i], ENOENT);
			continue;
		}
		ck_assert_int_eq(done_err[i], 0);
		read_eq(f, s, 4 + (size_t)i, 0, files[4 + i].size);
		snprintf(path, sizeof(path), "%s/%s", exportp,
		    files[4 + i].rel);
		ck_assert_int_eq(origin_count(path), 1);
	}
	fetcher_free(f);
	store_close(s);
}
END_TEST

START_TEST(t_priorities)
{
	struct fetcher_conf c;
	struct fetcher *f;
	struct store *s;
	struct store_ent e;
	int i, viewer_at, t;

	origin_start(NULL);
	s = open_store();
	c = conf_for(port);
	c.transfers = 1;
	c.bwlimit = 512 * 1024;
	ck_assert_ptr_nonnull(f = fetcher_new(&c, s));
	ck_assert_int_eq(fetcher_list(f, "", 1, FETCH_VIEWER, 10000), 0);
	atomic_store(&order, 0);
	memset(done_at, 0, sizeof(done_at));
	fetcher_hold(f, 1);
	for (i = 0; i < 5; i++)
		ck_assert_int_eq(fetcher_get_file(f, file_id(s, files[4 + i].rel),
		    FETCH_BACKFILL, on_done, (void *)(intptr_t)i), 0);
	fetcher_hold(f, 0);
	read_eq(f, s, 0, 2 * BS, 1000);
	viewer_at = atomic_fetch_add(&order, 1) + 1;
	for (t = 0; t < 300 && atomic_load(&order) < 6; t++)
		usleep(100000);
	ck_assert_int_eq(atomic_load(&order), 6);
	/* The viewer did not wait for the queue of backfill. */
	ck_assert_int_lt(viewer_at, 6);
	for (i = 0; i < 5; i++) {
		ck_assert_int_eq(done_err[i], 0);
		ck_assert_int_eq(store_get(s, done_ids[i], &e), 0);
		ck_assert_int_eq(e.state, STORE_COMPLETE);
	}
	fetcher_free(f);
	store_close(s);
}
END_TEST

#define NAHEAD	48		/* files read ahead in t_ahead */
#define AHEAD_SIZE (128 * 1024)	/* bytes each */

/* The end of a test behind slow_proxy(). */
static void
slow_end(struct fetcher *f, struct store *s, pid_t proxy,
    unsigned char *data)
{
	fetcher_free(f);
	store_close(s);
	kill(proxy, SIGKILL);
	waitpid(proxy, NULL, 0);
	free(data);
}

/*
 * Writes n files named pre, i (two digits, i < n), suf, then last, of AHEAD_SIZE
 * bytes each; returns their bytes, for the caller to free.
 */
static unsigned char *
slow_files(const char *pre, int n, const char *suf, const char *last)
{
	unsigned char *data;
	char rel[64];
	int i;

	ck_assert_ptr_nonnull(data = malloc(AHEAD_SIZE));
	for (i = 0; i < AHEAD_SIZE; i++)
		data[i] = (unsigned char)(i * 7);
	for (i = 0; i < n; i++) {
		snprintf(rel, sizeof(rel), "%s%02d%s", pre, i, suf);
		write_file(rel, data, AHEAD_SIZE);
	}
	write_file(last, data, AHEAD_SIZE);
	return data;
}

/*
 * Starts the fault proxy in front of the origin, every request and
 * answer held delay_ms; returns its pid, its port in *pport.
 */
static pid_t
slow_proxy(int delay_ms, int *pport)
{
	char ctl[320], listen[32], target[32];
	pid_t proxy;
	FILE *fp;

	snprintf(ctl, sizeof(ctl), "%s/proxy.ctl", top);
	ck_assert_ptr_nonnull(fp = fopen(ctl, "w"));
	fprintf(fp, "delay=%d\n", delay_ms);
	ck_assert_int_eq(fclose(fp), 0);
	*pport = free_port();
	snprintf(listen, sizeof(listen), "%d", *pport);
	snprintf(target, sizeof(target), "127.0.0.1:%d", port);
	proxy = fork();
	ck_assert_int_ge(proxy, 0);
	if (proxy == 0) {
		execl("build/tests/faultproxy", "faultproxy", "-l", listen,
		    "-t", target, "-c", ctl, (char *)NULL);
		_exit(127);
	}
	ck_assert_msg(wait_port(*pport) == 0, "faultproxy does not listen");
	return proxy;
}

/* How many of the files ahead/fNN.ts are complete in the store. */
static int
ahead_complete(struct store *s, const uint64_t *ids)
{
	struct store_ent e;
	int i, n = 0;

	for (i = 0; i < NAHEAD; i++) {
		ck_assert_int_eq(store_get(s, ids[i], &e), 0);
		n += e.state == STORE_COMPLETE;
	}
	return n;
}

/*
 * Read-ahead never holds up a reader: behind a link where every request
 * and answer waits 150 ms (the fault proxy), NAHEAD files queued as
 * read-ahead arrive FETCH_AHEAD_RUNNING at a time; a read of another
 * file, then a read of the last file queued ahead (raised from the
 * read-ahead queue), each come back while most of the read-ahead is
 * still to come, and every file read ahead arrives in the end.
 */
START_TEST(t_ahead)
{
	struct fetcher_conf c;
	struct fetcher *f;
	struct store *s;
	struct store_ent e;
	unsigned char *data, buf[4096];
	uint64_t ids[NAHEAD], xid;
	char rel[64];
	pid_t proxy;
	int i, pport, t, n1, n2;

	data = slow_files("ahead/f", NAHEAD, ".ts", "ahead/x.ts");
	origin_start(NULL);
	proxy = slow_proxy(150, &pport);

	s = open_store();
	c = conf_for(pport);
	ck_assert_ptr_nonnull(f = fetcher_new(&c, s));
	ck_assert_int_eq(fetcher_list(f, "", 1, FETCH_VIEWER, 10000), 0);
	for (i = 0; i < NAHEAD; i++) {
		snprintf(rel, sizeof(rel), "ahead/f%02d.ts", i);
		ids[i] = file_id(s, rel);
		ck_assert_int_eq(store_get(s, ids[i], &e), 0);
		ck_assert_int_eq(fetcher_fetching(f, &e), 0);
		ck_assert_int_eq(fetcher_prefetch(f, &e, 0, 1, FETCH_AHEAD), 0);
		ck_assert_int_eq(fetcher_fetching(f, &e), 1);
	}
	xid = file_id(s, "ahead/x.ts");
	ck_assert_int_eq(fetcher_read(f, xid, buf, sizeof(buf), 1000,
	    FETCH_VIEWER, 10000), (ssize_t)sizeof(buf));
	ck_assert(memcmp(buf, data + 1000, sizeof(buf)) == 0);
	n1 = ahead_complete(s, ids);
	ck_assert_int_eq(fetcher_read(f, ids[NAHEAD - 1], buf, sizeof(buf), 0,
	    FETCH_VIEWER, 10000), (ssize_t)sizeof(buf));
	ck_assert(memcmp(buf, data, sizeof(buf)) == 0);
	n2 = ahead_complete(s, ids);
	ck_assert_msg(n1 < NAHEAD / 2 && n2 < NAHEAD / 2,
	    "the reads waited for the read-ahead: %d, then %d of %d done",
	    n1, n2, NAHEAD);
	for (t = 0; t < 200 && ahead_complete(s, ids) < NAHEAD; t++)
		usleep(100000);
	ck_assert_int_eq(ahead_complete(s, ids), NAHEAD);
	ck_assert_int_eq(store_get(s, ids[0], &e), 0);
	ck_assert_int_eq(fetcher_fetching(f, &e), 0);
	slow_end(f, s, proxy, data);
}
END_TEST

#define NSHY	8		/* the crawler's files in t_shy */

/*
 * The crawler makes room for readers: behind a link where every request
 * and answer waits 500 ms, NSHY files of the crawler (transfers=4, each
 * in a folder of its own: no bundles) are let go while a read-ahead
 * runs; a reader waiting for that file finds at most 2 of the crawler's
 * transfers started when it is answered (FETCH_SHY_TRANSFERS at a time),
 * not 4 at once, and every file of the crawler arrives in the end.
 */
START_TEST(t_shy)
{
	struct fetcher_conf c;
	struct fetcher_stats st0, st1;
	struct fetcher *f;
	struct store *s;
	struct store_ent e;
	unsigned char *data, buf[4096];
	char rel[64];
	uint64_t xid;
	pid_t proxy;
	int i, pport, t;

	data = slow_files("shy/d", NSHY, "/f.ts", "shy/x.ts");
	origin_start(NULL);
	proxy = slow_proxy(500, &pport);

	s = open_store();
	c = conf_for(pport);
	c.transfers = 4;
	ck_assert_ptr_nonnull(f = fetcher_new(&c, s));
	ck_assert_int_eq(fetcher_list(f, "", 1, FETCH_VIEWER, 20000), 0);
	atomic_store(&order, 0);
	memset(done_at, 0, sizeof(done_at));
	fetcher_hold(f, 1);
	for (i = 0; i < NSHY; i++) {
		snprintf(rel, sizeof(rel), "shy/d%02d/f.ts", i);
		ck_assert_int_eq(fetcher_get_file(f, file_id(s, rel),
		    FETCH_BACKFILL, on_done, (void *)(intptr_t)i), 0);
	}
	xid = file_id(s, "shy/x.ts");
	ck_assert_int_eq(store_get(s, xid, &e), 0);
	ck_assert_int_eq(fetcher_prefetch(f, &e, 0, 1, FETCH_AHEAD), 0);
	fetcher_stats(f, &st0);
	fetcher_hold(f, 0);
	ck_assert_int_eq(fetcher_read(f, xid, buf, sizeof(buf), 0,
	    FETCH_VIEWER, 20000), (ssize_t)sizeof(buf));
	fetcher_stats(f, &st1);
	ck_assert(memcmp(buf, data, sizeof(buf)) == 0);
	/* The read-ahead may have started before st0 or after it. */
	ck_assert_msg(st1.requests - st0.requests <= 3,
	    "%d requests started while a reader waited",
	    (int)(st1.requests - st0.requests));
	for (t = 0; t < 300 && atomic_load(&order) < NSHY; t++)
		usleep(100000);
	ck_assert_int_eq(atomic_load(&order), NSHY);
	for (i = 0; i < NSHY; i++) {
		ck_assert_int_eq(done_err[i], 0);
		ck_assert_int_eq(store_get(s, done_ids[i], &e), 0);
		ck_assert_int_eq(e.state, STORE_COMPLETE);
	}
	slow_end(f, s, proxy, data);
}
END_TEST

static atomic_int changes, resets;
static char seen[256];
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;

static void
on_change(void *arg, const struct fetcher_change *ch)
{
	if (ch->reset) {
		atomic_fetch_add(&resets, 1);
		return;
	}
	pthread_mutex_lock(&seen_lock);
	if (!ch->deleted)
		snprintf(seen, sizeof(seen), "%s", ch->name);
	pthread_mutex_unlock(&seen_lock);
	atomic_fetch_add(&changes, 1);
}

START_TEST(t_follow)
{
	struct fetcher *f;
	struct store *s;
	struct store_ent e;
	char target[700];
	int t, found = 0;

	f = listed(&s, conf_for(port));
	ck_assert_int_eq(fetcher_follow(f, on_change, NULL), 0);
	for (t = 0; t < 100 && atomic_load(&resets) == 0; t++)
		usleep(100000);
	ck_assert_int_eq(atomic_load(&resets), 1);
	/*
	 * The first answer relists what was listed before it, one level
	 * at a time (t_relist), on the relister thread: the root, cam2;
	 * never the whole tree from the root again.
	 */
	snprintf(target, sizeof(target), "/m4f/v1/list%s?limit=%d", exportp,
	    M4F_LIST_LIMIT_DEFAULT);
	for (t = 0; t < 50 && origin_count(target) == 0; t++)
		usleep(100000);
	ck_assert_int_eq(origin_count(target), 1);
	snprintf(target, sizeof(target), "/m4f/v1/list%s/cam2?limit=%d",
	    exportp, M4F_LIST_LIMIT_DEFAULT);
	for (t = 0; t < 50 && origin_count(target) == 0; t++)
		usleep(100000);
	ck_assert_int_eq(origin_count(target), 1);
	snprintf(target, sizeof(target), "/m4f/v1/list%s?recursive=1&"
	    "limit=%d", exportp, M4F_LIST_LIMIT_DEFAULT);
	ck_assert_int_eq(origin_count(target), 1);	/* listed()'s own */
	write_file("cam1/2026/01/01/00/00/08.ts", "new segment", 11);
	for (t = 0; t < 150 && !found; t++) {
		usleep(100000);
		pthread_mutex_lock(&seen_lock);
		found = strcmp(seen, "cam1/2026/01/01/00/00/08.ts") == 0;
		pthread_mutex_unlock(&seen_lock);
	}
	ck_assert_msg(found, "no feed event for the new file");
	ck_assert_int_eq(store_resolve(s, "cam1/2026/01/01/00/00/08.ts", &e), 0);
	ck_assert_uint_eq(e.size, 11);
	fetcher_free(f);
	store_close(s);
}
END_TEST

/* Sets the mtime of folder rel of the primary's tree to t. */
static void
set_mtime(const char *rel, time_t t)
{
	struct timespec ts[2] = { { t, 0 }, { t, 0 } };
	char path[600];

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	ck_assert_int_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
}

/* Requests of the origin for a listing of rel (recursive or not). */
static int
list_count(const char *rel, int recursive)
{
	char target[700];

	snprintf(target, sizeof(target), "/m4f/v1/list%s%s%s?%slimit=%d",
	    exportp, *rel != '\0' ? "/" : "", rel,
	    recursive ? "recursive=1&" : "", M4F_LIST_LIMIT_DEFAULT);
	return origin_count(target);
}

#define HOUR0	"cam1/2026/01/01/00"
#define HOUR1	"cam1/2026/01/01/01"
#define HOUR2	"cam1/2026/01/01/02"

START_TEST(t_relist)
{
	struct fetcher *f;
	struct store *s;
	struct store_ent e;
	char path[600];
	time_t past = 1767229199;	/* 2026-01-01 00:59:59 UTC */

	write_file(HOUR1 "/00/00.ts", "one", 3);
	set_mtime(HOUR0, past);
	set_mtime(HOUR1, past + 3600);
	f = listed(&s, conf_for(port));
	ck_assert_int_eq(list_count("", 1), 1);

	/*
	 * While nothing followed the primary: a minute folder comes into
	 * hour 01 (its folder's mtime moves), a segment leaves a minute
	 * folder of hour 00 (its folder's does not), hour 02 comes into the
	 * day, a file leaves cam2.
	 */
	write_file(HOUR1 "/01/00.ts", "two", 3);
	snprintf(path, sizeof(path), "%s/" HOUR0 "/00/06.ts", root);
	ck_assert_int_eq(unlink(path), 0);
	set_mtime(HOUR0, past);
	write_file(HOUR2 "/00/00.ts", "three", 5);
	snprintf(path, sizeof(path), "%s/cam2/e.ts", root);
	ck_assert_int_eq(unlink(path), 0);

	ck_assert_int_eq(fetcher_relist(f, "", 0, FETCH_LIVE, 10000), 0);
	/* Each folder above the hours one level, the root included. */
	ck_assert_int_eq(list_count("", 0), 1);
	ck_assert_int_eq(list_count("cam1", 0), 1);
	ck_assert_int_eq(list_count("cam1/2026/01/01", 0), 1);
	ck_assert_int_eq(list_count("cam2", 0), 1);
	ck_assert_int_eq(store_resolve(s, "cam2/e.ts", &e), -1);
	ck_assert_int_eq(errno, ENOENT);
	/* Hour 01 changed: listed with its subtree. */
	ck_assert_int_eq(list_count(HOUR1, 1), 1);
	ck_assert_int_eq(store_resolve(s, HOUR1 "/01/00.ts", &e), 0);
	ck_assert_uint_eq(e.size, 3);
	/* Hour 00 was listed after it was over and has not changed. */
	ck_assert_int_eq(list_count(HOUR0, 0) + list_count(HOUR0, 1), 0);
	/* Hour 02 is new: known, not listed (no one has opened it). */
	ck_assert_int_eq(store_resolve(s, HOUR2, &e), 0);
	ck_assert_int_eq(e.listed, 0);
	ck_assert_int_eq(list_count(HOUR2, 1), 0);

	/* complete (the crawler's): a folder never listed is, whole. */
	ck_assert_int_eq(fetcher_relist(f, "cam1", 1, FETCH_BACKFILL, 10000),
	    0);
	ck_assert_int_eq(list_count(HOUR2, 1), 1);
	ck_assert_int_eq(store_resolve(s, HOUR2 "/00/00.ts", &e), 0);
	ck_assert_uint_eq(e.size, 5);
	ck_assert_int_eq(list_count(HOUR0, 0) + list_count(HOUR0, 1), 0);
	ck_assert_int_eq(list_count("cam2", 0), 1);

	/* The same hour folder, its mtime moved: listed again. */
	set_mtime(HOUR0, time(NULL));
	ck_assert_int_eq(fetcher_relist(f, "cam1", 0, FETCH_LIVE, 10000), 0);
	ck_assert_int_eq(list_count(HOUR0, 1), 1);
	ck_assert_int_eq(store_resolve(s, HOUR0 "/00/06.ts", &e), -1);
	ck_assert_int_eq(errno, ENOENT);

	ck_assert_int_eq(fetcher_relist(f, "cam2/a.ts", 0, FETCH_LIVE, 1000),
	    -1);
	ck_assert_int_eq(errno, ENOTDIR);
	ck_assert_int_eq(fetcher_relist(f, "../x", 0, FETCH_LIVE, 1000), -1);
	ck_assert_int_eq(errno, EINVAL);
	fetcher_free(f);
	store_close(s);
}
END_TEST

/* Waits up to 10 s for the store to have rel (want 1) or not (want 0). */
static int
wait_resolve(struct store *s, const char *rel, int want)
{
	struct store_ent e;
	int t;

	for (t = 0; t < 100; t++) {
		if ((store_resolve(s, rel, &e) == 0) == want)
			return 1;
		usleep(100000);
	}
	return 0;
}

START_TEST(t_resume)
{
	struct fetcher *f;
	struct store *s;
	struct fetcher_conf c = conf_for(port);
	char path[600], target[700];
	uint64_t seq;
	char tok[400];

	f = listed(&s, c);
	ck_assert_int_eq(store_feed_get(s, tok, sizeof(tok), &seq), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(fetcher_follow(f, on_change, NULL), 0);
	/* Followed, relisted (the root one level), then a change. */
	write_file("cam2/f.ts", "f", 1);
	ck_assert(wait_resolve(s, "cam2/f.ts", 1));
	ck_assert_int_eq(list_count("", 0), 1);
	ck_assert_int_eq(atomic_load(&resets), 1);
	fetcher_free(f);
	ck_assert_int_eq(store_feed_get(s, tok, sizeof(tok), &seq), 0);
	ck_assert_uint_gt(seq, 0);

	/* Unfollowed, the primary changes; the same origin holds it all. */
	write_file("cam2/g.ts", "gg", 2);
	snprintf(path, sizeof(path), "%s/cam2/d.ts", root);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_ptr_nonnull(f = fetcher_new(&c, s));
	ck_assert_int_eq(fetcher_follow(f, on_change, NULL), 0);
	ck_assert(wait_resolve(s, "cam2/g.ts", 1));
	ck_assert(wait_resolve(s, "cam2/d.ts", 0));
	snprintf(target, sizeof(target), "/m4f/v1/feed%s?since=%llu&wait=0",
	    exportp, (unsigned long long)seq);
	ck_assert_int_eq(origin_count(target), 1);
	/* No reset, nothing listed again. */
	ck_assert_int_eq(atomic_load(&resets), 1);
	ck_assert_int_eq(list_count("", 0), 1);
	ck_assert_int_eq(list_count("cam2", 0), 1);
	fetcher_free(f);

	/* A restarted origin (a new epoch): listed again. */
	origin_stop();
	origin_start(NULL);
	write_file("cam2/h.ts", "h", 1);
	ck_assert_ptr_nonnull(f = fetcher_new(&c, s));
	ck_assert_int_eq(fetcher_follow(f, on_change, NULL), 0);
	ck_assert(wait_resolve(s, "cam2/h.ts", 1));
	ck_assert_int_eq(atomic_load(&resets), 2);
	ck_assert_int_eq(list_count("cam2", 0), 2);
	fetcher_free(f);
	store_close(s);
}
END_TEST

START_TEST(t_limits)
{
	struct fetcher_conf c;
	struct fetcher *f;
	struct store *s;
	unsigned char buf[16];
	struct store_ent e;

	s = open_store();
	c = conf_for(0);
	ck_assert_ptr_null(fetcher_new(&c, s));
	ck_assert_int_eq(errno, EINVAL);
	c = conf_for(port);
	c.export = "relative";
	ck_assert_ptr_null(fetcher_new(&c, s));
	ck_assert_int_eq(errno, EINVAL);
	c = conf_for(port);
	c.export = "/a/../b";
	ck_assert_ptr_null(fetcher_new(&c, s));
	ck_assert_int_eq(errno, EINVAL);
	c = conf_for(port);
	ck_assert_ptr_null(fetcher_new(&c, NULL));

	/* Nothing listens: listing fails quickly and clearly. */
	ck_assert_ptr_nonnull(f = fetcher_new(&c, s));
	ck_assert_int_eq(fetcher_list(f, "", 1, FETCH_VIEWER, 5000), -1);
	ck_assert_msg(errno == EHOSTDOWN || errno == ETIMEDOUT, "%s",
	    strerror(errno));
	ck_assert_int_eq(fetcher_list(f, "../x", 1, FETCH_VIEWER, 100), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(fetcher_read(f, 999999, buf, sizeof(buf), 0,
	    FETCH_VIEWER, 100), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(store_get(s, STORE_ROOT_ID, &e), 0);
	ck_assert_int_eq(fetcher_read(f, STORE_ROOT_ID, buf, sizeof(buf), 0,
	    FETCH_VIEWER, 100), -1);
	ck_assert_int_eq(errno, EISDIR);
	ck_assert_int_eq(fetcher_read(f, 1, buf, sizeof(buf), 0, 7, 100), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(fetcher_follow(f, on_change, NULL), 0);
	ck_assert_int_eq(fetcher_follow(f, on_change, NULL), -1);
	fetcher_free(f);
	fetcher_free(NULL);
	store_close(s);
}
END_TEST

static Suite *
fetcher_suite(void)
{
	Suite *s = suite_create("fetcher");
	TCase *core = tcase_create("core"), *limits = tcase_create("limits");

	tcase_add_checked_fixture(core, setup, teardown);
	tcase_set_timeout(core, 60);
	tcase_add_loop_test(core, t_read, 0, 2);
	tcase_add_test(core, t_serve);
	tcase_add_loop_test(core, t_prefetch, 0, 2);
	tcase_add_test(core, t_coalesce);
	tcase_add_test(core, t_list_paging);
	tcase_add_test(core, t_wrong_key);
	tcase_add_test(core, t_origin_down);
	tcase_add_test(core, t_bad_answer);
	tcase_add_test(core, t_priorities);
	tcase_add_test(core, t_relist);
	tcase_add_test(core, t_ahead);
	tcase_add_test(core, t_shy);
	tcase_add_test(core, t_bundle);
	tcase_add_test(core, t_bundle_missing);
	tcase_add_test(core, t_follow);
	tcase_add_test(core, t_resume);
	suite_add_tcase(s, core);
	tcase_add_checked_fixture(limits, setup, teardown);
	tcase_add_test(limits, t_limits);
	suite_add_tcase(s, limits);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(fetcher_suite());
	int failed;

	log_init("check_fetcher", LOG_LVL_WARN);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
