/*
 * relay: a TCP proxy that delays each direction by a fixed time, to put a
 * WAN-like round trip between two programs on loopback for benchmarks.
 *
 *     relay [-d ms] -c host:port -l [host:]port
 *
 * Every chunk read from one side is forwarded to the other side once it
 * is ms milliseconds old (default 10, so the round trip grows by 20 ms).
 * Bandwidth is not limited beyond what a window of RELAY_WINDOW bytes in
 * flight per direction allows. Per connection, each direction has a
 * reader thread and a writer thread joined by a time-stamped queue.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RELAY_CHUNK	65536
#define RELAY_WINDOW	(16 * 1024 * 1024)

struct chunk {
	struct chunk	*next;
	uint64_t	 due_ns;	/* CLOCK_MONOTONIC */
	size_t		 len;		/* 0: end of stream */
	char		 data[];
};

struct dir {
	int		 from, to;
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;
	struct chunk	*head, *tail;	/* under lock */
	size_t		 queued;	/* under lock */
	int		 dead;		/* under lock: writer failed */
	struct conn	*conn;
};

struct conn {
	struct dir	 d[2];
	int		 refs;		/* under refs_lock */
	pthread_mutex_t	 refs_lock;
};

static uint64_t delay_ns = 10 * 1000000ULL;
static struct addrinfo *target;

static uint64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Drops one reference; the last one closes both sockets and frees. */
static void
conn_unref(struct conn *c)
{
	int last, i;

	pthread_mutex_lock(&c->refs_lock);
	last = --c->refs == 0;
	pthread_mutex_unlock(&c->refs_lock);
	if (!last)
		return;
	close(c->d[0].from);
	close(c->d[0].to);
	for (i = 0; i < 2; i++) {
		while (c->d[i].head != NULL) {
			struct chunk *n = c->d[i].head->next;
			free(c->d[i].head);
			c->d[i].head = n;
		}
		pthread_mutex_destroy(&c->d[i].lock);
		pthread_cond_destroy(&c->d[i].cond);
	}
	pthread_mutex_destroy(&c->refs_lock);
	free(c);
}

static void
enqueue(struct dir *d, struct chunk *ch)
{
	pthread_mutex_lock(&d->lock);
	while (d->queued > RELAY_WINDOW && !d->dead)
		pthread_cond_wait(&d->cond, &d->lock);
	ch->next = NULL;
	if (d->tail != NULL)
		d->tail->next = ch;
	else
		d->head = ch;
	d->tail = ch;
	d->queued += ch->len;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

static void *
reader(void *arg)
{
	struct dir *d = arg;
	struct chunk *ch;
	ssize_t n;

	for (;;) {
		if ((ch = malloc(sizeof(*ch) + RELAY_CHUNK)) == NULL)
			break;
		n = recv(d->from, ch->data, RELAY_CHUNK, 0);
		if (n < 0 && errno == EINTR) {
			free(ch);
			continue;
		}
		ch->len = n > 0 ? (size_t)n : 0;
		ch->due_ns = mono_ns() + delay_ns;
		enqueue(d, ch);
		if (n <= 0)
			break;
	}
	conn_unref(d->conn);
	return NULL;
}

static void *
writer(void *arg)
{
	struct dir *d = arg;
	struct chunk *ch;
	struct timespec ts;
	uint64_t now;
	size_t off;
	ssize_t n;
	int eof = 0;

	while (!eof) {
		pthread_mutex_lock(&d->lock);
		while (d->head == NULL)
			pthread_cond_wait(&d->cond, &d->lock);
		ch = d->head;
		while ((now = mono_ns()) < ch->due_ns) {
			ts.tv_sec = (time_t)(ch->due_ns / 1000000000ULL);
			ts.tv_nsec = (long)(ch->due_ns % 1000000000ULL);
			pthread_cond_timedwait(&d->cond, &d->lock, &ts);
		}
		d->head = ch->next;
		if (d->head == NULL)
			d->tail = NULL;
		d->queued -= ch->len;
		pthread_cond_broadcast(&d->cond);
		pthread_mutex_unlock(&d->lock);

		if (ch->len == 0) {
			shutdown(d->to, SHUT_WR);
			eof = 1;
		}
		for (off = 0; off < ch->len && !eof; off += (size_t)n) {
			n = send(d->to, ch->data + off, ch->len - off,
			    MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR) {
				n = 0;
				continue;
			}
			if (n < 0) {
				/* Peer gone: stop the reader of this side. */
				shutdown(d->from, SHUT_RD);
				pthread_mutex_lock(&d->lock);
				d->dead = 1;
				pthread_cond_broadcast(&d->cond);
				pthread_mutex_unlock(&d->lock);
				n = 0;
				break;
			}
		}
		free(ch);
	}
	conn_unref(d->conn);
	return NULL;
}

static int
start(void *(*fn)(void *), void *arg)
{
	pthread_attr_t a;
	pthread_t t;
	int rc;

	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&a, 64 * 1024);
	rc = pthread_create(&t, &a, fn, arg);
	pthread_attr_destroy(&a);
	return rc;
}

static void
serve(int cfd)
{
	struct conn *c;
	pthread_condattr_t ca;
	int sfd, one = 1, i;

	sfd = socket(target->ai_family, SOCK_STREAM, 0);
	if (sfd == -1 || connect(sfd, target->ai_addr, target->ai_addrlen)) {
		perror("relay: connect");
		if (sfd != -1)
			close(sfd);
		close(cfd);
		return;
	}
	setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(cfd);
		close(sfd);
		return;
	}
	c->refs = 4;
	pthread_mutex_init(&c->refs_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	for (i = 0; i < 2; i++) {
		c->d[i].from = i == 0 ? cfd : sfd;
		c->d[i].to = i == 0 ? sfd : cfd;
		c->d[i].conn = c;
		pthread_mutex_init(&c->d[i].lock, NULL);
		pthread_cond_init(&c->d[i].cond, &ca);
	}
	pthread_condattr_destroy(&ca);
	for (i = 0; i < 2; i++) {
		if (start(reader, &c->d[i]) != 0 ||
		    start(writer, &c->d[i]) != 0) {
			/* Cannot happen short of memory: give up loudly. */
			perror("relay: pthread_create");
			exit(1);
		}
	}
}

static struct addrinfo *
resolve(const char *spec, int passive)
{
	struct addrinfo hints, *res;
	char host[256];
	const char *colon = strrchr(spec, ':'), *port;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = passive ? AI_PASSIVE : 0;
	if (colon == NULL) {
		snprintf(host, sizeof(host), "127.0.0.1");
		port = spec;
	} else {
		snprintf(host, sizeof(host), "%.*s", (int)(colon - spec), spec);
		port = colon + 1;
	}
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		fprintf(stderr, "relay: %s: %s\n", spec, gai_strerror(rc));
		return NULL;
	}
	return res;
}

static void
usage(void)
{
	fprintf(stderr, "usage: relay [-d ms] -c host:port -l [host:]port\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	struct addrinfo *la;
	const char *listen_spec = NULL, *connect_spec = NULL;
	int ch, lfd, cfd, one = 1;
	long ms;
	char *end;

	while ((ch = getopt(argc, argv, "c:d:l:")) != -1) {
		switch (ch) {
		case 'c':
			connect_spec = optarg;
			break;
		case 'd':
			errno = 0;
			ms = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || ms < 0 ||
			    ms > 10000) {
				fprintf(stderr, "relay: -d: expected 0..10000 "
				    "ms: '%s'\n", optarg);
				return 2;
			}
			delay_ns = (uint64_t)ms * 1000000ULL;
			break;
		case 'l':
			listen_spec = optarg;
			break;
		default:
			usage();
		}
	}
	if (listen_spec == NULL || connect_spec == NULL || optind != argc)
		usage();
	if ((target = resolve(connect_spec, 0)) == NULL ||
	    (la = resolve(listen_spec, 1)) == NULL)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	lfd = socket(la->ai_family, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd == -1 || bind(lfd, la->ai_addr, la->ai_addrlen) == -1 ||
	    listen(lfd, 512) == -1) {
		perror("relay: listen");
		return 1;
	}
	for (;;) {
		cfd = accept(lfd, NULL, NULL);
		if (cfd == -1) {
			if (errno == EINTR || errno == ECONNABORTED ||
			    errno == EMFILE || errno == ENFILE)
				continue;
			perror("relay: accept");
			return 1;
		}
		serve(cfd);
	}
}
