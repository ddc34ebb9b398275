/*
 * faultproxy: a TCP proxy between dvrfs and m4f-origin that injects
 * faults, switchable while it runs.
 *
 *     faultproxy -l PORT -t HOST:PORT -c CONTROL [-s STATS]
 *
 * CONTROL is a text file of "key=value" words, re-read whenever its
 * mtime or size changes (checked every 50 ms) and on SIGHUP:
 *
 *   delay=MS      requests and the first bytes of each response wait MS ms
 *   rate=BPS      origin-to-client bytes per second, all connections (0: any)
 *   stall=1       forward nothing, keep every connection open
 *   down=1        reset every connection and every new one (link cut)
 *   corrupt=PCT   flip one byte in PCT % of response bodies
 *   truncate=PCT  close the connection inside PCT % of response bodies
 *   cut=N         ... after N body bytes (default: a random point)
 *   json=1        corrupt and truncate JSON bodies too (default: files only)
 *
 * Responses are followed through their headers and Content-Length, so
 * corruption and truncation hit body bytes only, and a keep-alive
 * connection's later responses are seen too. A response without
 * Content-Length is passed through untouched.
 *
 * STATS, rewritten when a counter changes, holds "key value" lines:
 * conns, refused, responses, corrupted, truncated, bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FP_CHUNK	16384
#define FP_MAXCONN	1000
#define FP_HDRMAX	16384

struct half {
	char		 data[FP_CHUNK];
	size_t		 len, off;	/* pending bytes are data[off, len) */
	int64_t		 due_ms;	/* not before this time */
	int		 eof;		/* the reading side ended */
};

enum rstate { R_HDR, R_BODY, R_RAW };

struct conn {
	int		 cfd, sfd;
	struct half	 up, down;
	int		 close_after;	/* truncation: close once down drains */
	enum rstate	 rs;
	char		 hdr[FP_HDRMAX];
	size_t		 hdrlen;
	uint64_t	 body_left, body_pos;
	int64_t		 corrupt_at, cut_at;	/* -1: none */
};

struct ctl {
	int		 delay, stall, down, corrupt, truncate, json;
	int64_t		 rate, cut;
};

static struct ctl ctl;
static struct conn *conns[FP_MAXCONN];
static struct addrinfo *target;
static const char *ctl_path, *stats_path;
static volatile sig_atomic_t hup;
static uint64_t st_conns, st_refused, st_resp, st_corrupt, st_trunc, st_bytes;
static int stats_dirty = 1;
static double tokens;
static int64_t tokens_ms;

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
on_hup(int sig)
{
	(void)sig;
	hup = 1;
}

/* Re-reads the control file; unknown words are reported and ignored. */
static void
ctl_load(void)
{
	struct ctl c = { .cut = -1 };
	char word[128];
	FILE *fp;

	if ((fp = fopen(ctl_path, "r")) == NULL)
		return;
	while (fscanf(fp, "%127s", word) == 1) {
		char *eq = strchr(word, '=');
		long long v;

		if (eq == NULL)
			continue;
		*eq = '\0';
		v = strtoll(eq + 1, NULL, 10);
		if (strcmp(word, "delay") == 0) c.delay = (int)v;
		else if (strcmp(word, "rate") == 0) c.rate = v;
		else if (strcmp(word, "stall") == 0) c.stall = (int)v;
		else if (strcmp(word, "down") == 0) c.down = (int)v;
		else if (strcmp(word, "corrupt") == 0) c.corrupt = (int)v;
		else if (strcmp(word, "truncate") == 0) c.truncate = (int)v;
		else if (strcmp(word, "cut") == 0) c.cut = v;
		else if (strcmp(word, "json") == 0) c.json = (int)v;
		else fprintf(stderr, "faultproxy: unknown control %s\n", word);
	}
	fclose(fp);
	ctl = c;
	fprintf(stderr, "faultproxy: delay=%d rate=%lld stall=%d down=%d "
	    "corrupt=%d truncate=%d cut=%lld json=%d\n", c.delay,
	    (long long)c.rate, c.stall, c.down, c.corrupt, c.truncate,
	    (long long)c.cut, c.json);
}

static void
ctl_poll(void)
{
	static struct timespec mt;
	static off_t sz = -1;
	struct stat sb;

	if (stat(ctl_path, &sb) == -1)
		return;
	if (hup || sb.st_size != sz || sb.st_mtim.tv_sec != mt.tv_sec ||
	    sb.st_mtim.tv_nsec != mt.tv_nsec) {
		hup = 0;
		sz = sb.st_size;
		mt = sb.st_mtim;
		ctl_load();
	}
}

static void
stats_write(void)
{
	char tmp[4096];
	FILE *fp;

	if (stats_path == NULL || !stats_dirty)
		return;
	stats_dirty = 0;
	snprintf(tmp, sizeof(tmp), "%s.tmp", stats_path);
	if ((fp = fopen(tmp, "w")) == NULL)
		return;
	fprintf(fp, "conns %llu\nrefused %llu\nresponses %llu\ncorrupted %llu\n"
	    "truncated %llu\nbytes %llu\n", (unsigned long long)st_conns,
	    (unsigned long long)st_refused, (unsigned long long)st_resp,
	    (unsigned long long)st_corrupt, (unsigned long long)st_trunc,
	    (unsigned long long)st_bytes);
	fclose(fp);
	rename(tmp, stats_path);
}

/* Closes fd with a reset rather than a FIN. */
static void
close_rst(int fd)
{
	struct linger l = { 1, 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

static void
conn_close(int i, int rst)
{
	struct conn *c = conns[i];

	if (rst) {
		close_rst(c->cfd);
		close_rst(c->sfd);
	} else {
		close(c->cfd);
		close(c->sfd);
	}
	free(c);
	conns[i] = NULL;
}

static int
roll(int pct)
{
	return pct > 0 && (int)(random() % 100) < pct;
}

/* A complete response header is in c->hdr: decide what its body gets. */
static void
header_done(struct conn *c)
{
	const char *p, *end = c->hdr + c->hdrlen;
	int status = 0, json = 0, have_len = 0;
	uint64_t len = 0;

	st_resp++;
	stats_dirty = 1;
	c->hdr[c->hdrlen] = '\0';
	if (sscanf(c->hdr, "HTTP/%*d.%*d %d", &status) != 1) {
		c->rs = R_RAW;
		return;
	}
	for (p = c->hdr; p < end && (p = strstr(p, "\r\n")) != NULL; ) {
		p += 2;
		if (strncasecmp(p, "Content-Length:", 15) == 0) {
			len = strtoull(p + 15, NULL, 10);
			have_len = 1;
		} else if (strncasecmp(p, "Content-Type:", 13) == 0 &&
		    strstr(p, "json") != NULL && strstr(p, "json") <
		    strstr(p, "\r\n"))
			json = 1;
	}
	if (status < 200 || status == 204 || status == 304) {
		c->rs = R_HDR;
		return;
	}
	if (!have_len) {
		c->rs = R_RAW;
		return;
	}
	c->body_left = len;
	c->body_pos = 0;
	c->corrupt_at = c->cut_at = -1;
	if (len > 0 && (status == 200 || status == 206) && (!json || ctl.json)) {
		if (roll(ctl.corrupt)) {
			c->corrupt_at = (int64_t)((uint64_t)random() % len);
			st_corrupt++;
		}
		if (roll(ctl.truncate)) {
			c->cut_at = ctl.cut >= 0 && (uint64_t)ctl.cut < len ?
			    ctl.cut : (int64_t)((uint64_t)random() % len);
			st_trunc++;
		}
	}
	c->rs = len > 0 ? R_BODY : R_HDR;
}

/*
 * Runs the response parser over a chunk just read from the origin:
 * flips the chosen byte, shortens the chunk at the cut point.
 */
static void
scan_down(struct conn *c)
{
	struct half *h = &c->down;
	size_t i = 0;

	while (i < h->len && !c->close_after) {
		if (c->rs == R_RAW)
			return;
		if (c->rs == R_HDR) {
			if (c->hdrlen + 1 >= FP_HDRMAX) {
				c->rs = R_RAW;
				return;
			}
			c->hdr[c->hdrlen++] = h->data[i++];
			if (c->hdrlen >= 4 &&
			    memcmp(c->hdr + c->hdrlen - 4, "\r\n\r\n", 4) == 0) {
				header_done(c);
				c->hdrlen = 0;
			}
			continue;
		}
		/* R_BODY */
		size_t n = h->len - i;
		if (n > c->body_left)
			n = (size_t)c->body_left;
		if (c->corrupt_at >= 0 && (uint64_t)c->corrupt_at >= c->body_pos &&
		    (uint64_t)c->corrupt_at < c->body_pos + n)
			h->data[i + (c->corrupt_at - c->body_pos)] ^= 0x5a;
		if (c->cut_at >= 0 && (uint64_t)c->cut_at < c->body_pos + n) {
			h->len = i + (size_t)(c->cut_at - (int64_t)c->body_pos);
			c->close_after = 1;
			return;
		}
		c->body_pos += n;
		c->body_left -= n;
		i += n;
		if (c->body_left == 0)
			c->rs = R_HDR;
	}
}

static void
accept_one(int lfd)
{
	struct conn *c;
	int fd, sfd, i, one = 1;

	if ((fd = accept(lfd, NULL, NULL)) == -1)
		return;
	if (ctl.down) {
		st_refused++;
		stats_dirty = 1;
		close_rst(fd);
		return;
	}
	for (i = 0; i < FP_MAXCONN && conns[i] != NULL; i++)
		;
	sfd = socket(target->ai_family, SOCK_STREAM, 0);
	if (i == FP_MAXCONN || sfd == -1 ||
	    connect(sfd, target->ai_addr, target->ai_addrlen) == -1 ||
	    (c = calloc(1, sizeof(*c))) == NULL) {
		if (sfd != -1)
			close(sfd);
		close_rst(fd);
		st_refused++;
		stats_dirty = 1;
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(fd, F_SETFL, O_NONBLOCK);
	fcntl(sfd, F_SETFL, O_NONBLOCK);
	c->cfd = fd;
	c->sfd = sfd;
	c->rs = R_HDR;
	c->corrupt_at = c->cut_at = -1;
	conns[i] = c;
	st_conns++;
	stats_dirty = 1;
}

/* Writes what h may send now to fd; down is the throttled direction. */
static int
flush(struct half *h, int fd, int down, int64_t now)
{
	size_t n = h->len - h->off;
	ssize_t w;

	if (n == 0 || now < h->due_ms || ctl.stall)
		return 0;
	if (down && ctl.rate > 0) {
		if (tokens < 1)
			return 0;
		if ((double)n > tokens)
			n = (size_t)tokens;
	}
	w = write(fd, h->data + h->off, n);
	if (w == -1)
		return errno == EAGAIN ? 0 : -1;
	h->off += (size_t)w;
	if (down) {
		tokens -= (double)w;
		st_bytes += (uint64_t)w;
	}
	if (h->off == h->len)
		h->off = h->len = 0;
	return 0;
}

static int
fill(struct conn *c, struct half *h, int fd, int down, int64_t now)
{
	ssize_t r = read(fd, h->data, sizeof(h->data));

	if (r == 0) {
		h->eof = 1;
		return 0;
	}
	if (r == -1)
		return errno == EAGAIN ? 0 : -1;
	h->len = (size_t)r;
	h->off = 0;
	/* Latency, not a throttle: a body streams once its head is late. */
	h->due_ms = !down || (c->rs == R_HDR && c->hdrlen == 0) ?
	    now + ctl.delay : now;
	if (down)
		scan_down(c);
	return 0;
}

static int
usage(void)
{
	fprintf(stderr, "usage: faultproxy -l PORT -t HOST:PORT -c CONTROL "
	    "[-s STATS]\n");
	return 1;
}

int
main(int argc, char **argv)
{
	static struct pollfd pfd[1 + 2 * FP_MAXCONN];
	static int owner[1 + 2 * FP_MAXCONN];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
	struct sockaddr_in sin = { .sin_family = AF_INET };
	char *host = NULL, *port;
	int ch, lfd, one = 1, lport = 0, i, n;

	while ((ch = getopt(argc, argv, "c:l:s:t:")) != -1) {
		switch (ch) {
		case 'c': ctl_path = optarg; break;
		case 'l': lport = atoi(optarg); break;
		case 's': stats_path = optarg; break;
		case 't': host = optarg; break;
		default: return usage();
		}
	}
	if (ctl_path == NULL || host == NULL || lport <= 0 || lport > 65535 ||
	    (port = strrchr(host, ':')) == NULL)
		return usage();
	*port++ = '\0';
	if (getaddrinfo(host, port, &hints, &target) != 0) {
		fprintf(stderr, "faultproxy: cannot resolve %s\n", host);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, on_hup);
	srandom((unsigned)getpid());
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)lport);
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(lfd, 512) == -1) {
		perror("faultproxy: listen");
		return 1;
	}
	tokens_ms = now_ms();
	for (;;) {
		int64_t now = now_ms();
		int timeout = 50;

		ctl_poll();
		stats_write();
		if (ctl.rate > 0) {
			tokens += (double)ctl.rate * (double)(now - tokens_ms) / 1000;
			if (tokens > (double)ctl.rate / 10 + FP_CHUNK)
				tokens = (double)ctl.rate / 10 + FP_CHUNK;
		}
		tokens_ms = now;
		pfd[0].fd = lfd;
		pfd[0].events = POLLIN;
		n = 1;
		for (i = 0; i < FP_MAXCONN; i++) {
			struct conn *c = conns[i];
			short ce = 0, se = 0;

			if (c == NULL)
				continue;
			if (ctl.down) {
				conn_close(i, 1);
				continue;
			}
			/* Flush first, then decide what to wait for. */
			if (flush(&c->up, c->sfd, 0, now) == -1 ||
			    flush(&c->down, c->cfd, 1, now) == -1 ||
			    (c->down.len == 0 && (c->close_after || c->down.eof)) ||
			    (c->up.len == 0 && c->up.eof)) {
				conn_close(i, c->close_after);
				continue;
			}
			if (c->up.len == 0 && !ctl.stall)
				ce |= POLLIN;
			else if (c->up.len > 0 && now >= c->up.due_ms && !ctl.stall)
				se |= POLLOUT;
			if (c->down.len == 0 && !ctl.stall)
				se |= POLLIN;
			else if (c->down.len > 0 && now >= c->down.due_ms &&
			    !ctl.stall && (ctl.rate == 0 || tokens >= 1))
				ce |= POLLOUT;
			if ((c->up.len > 0 || c->down.len > 0) && !ctl.stall)
				timeout = ctl.rate > 0 || ctl.delay > 0 ? 5 : timeout;
			pfd[n].fd = c->cfd; pfd[n].events = ce; owner[n++] = i;
			pfd[n].fd = c->sfd; pfd[n].events = se; owner[n++] = i;
		}
		if (poll(pfd, (nfds_t)n, timeout) == -1 && errno != EINTR)
			return 1;
		now = now_ms();
		if (pfd[0].revents & POLLIN)
			accept_one(lfd);
		for (i = 1; i < n; i++) {
			struct conn *c = conns[owner[i]];
			int is_c = i % 2 == 1, err = 0;

			if (c == NULL || pfd[i].revents == 0 || ctl.stall)
				continue;
			if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) {
				if (is_c && c->up.len == 0)
					err = fill(c, &c->up, c->cfd, 0, now);
				else if (!is_c && c->down.len == 0)
					err = fill(c, &c->down, c->sfd, 1, now);
			}
			if (!err && (pfd[i].revents & POLLOUT))
				err = is_c ? flush(&c->down, c->cfd, 1, now) :
				    flush(&c->up, c->sfd, 0, now);
			if (err)
				conn_close(owner[i], 0);
		}
	}
}
