/*
 * dvr-fake: records fake live streams into a DVR tree, like Flussonic's
 * "input fake://". Segments go to DIR/STREAM/YYYY/MM/DD/HH/MM/SS.ts (the
 * UTC start of the segment); each is written under ".SS.ts.tmp" in the
 * same folder and renamed into place when complete, so a reader never
 * sees a half-written segment under its final name.
 *
 * -b writes the archive that a recorder would have produced over the
 * given duration up to now, with the mtimes it would have had; -L then
 * keeps recording in real time until SIGTERM or SIGINT.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "tswriter.h"

#define FAKE_DEF_SEGDUR_MS	2000
#define FAKE_DEF_BITRATE	4000000
#define FAKE_MAX_SEGDUR_MS	60000
#define FAKE_MAX_SEGSIZE	(UINT64_C(1) << 30)
#define FAKE_MAX_BACKFILL_MS	(UINT64_C(366) * 86400 * 1000)

struct fake {
	const char	 *root;
	char		**streams;
	int		  nstreams;
	uint64_t	  segdur_ms;
	struct tsw	 *tsw;
	char		  lastdir[PATH_MAX];	/* last folder known to exist */
};

static void
usage(void)
{
	fprintf(stderr, "usage: dvr-fake [-L] [-b duration] [-d segdur] "
	    "[-R bitrate | -S size] -r dir\n"
	    "                -s stream [-s stream ...]\n");
}

static void
bad(const char *opt, const char *why, const char *arg)
{
	if (arg != NULL)
		fprintf(stderr, "dvr-fake: %s: %s: '%s'\n", opt, why, arg);
	else
		fprintf(stderr, "dvr-fake: %s: %s\n", opt, why);
	exit(2);
}

/*
 * Parses a decimal number followed by a suffix looked up in units (pairs
 * of suffix and multiplier, "" allowed, NULL-terminated). Rejects
 * overflow, an empty number and an unknown suffix. Returns 0 or -1.
 */
struct unit {
	const char	*suffix;
	uint64_t	 mult;
};

static int
parse_num(const char *s, const struct unit *units, uint64_t *out)
{
	const char *p = s;
	uint64_t v = 0;
	int i;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	for (i = 0; units[i].suffix != NULL; i++) {
		if (strcmp(p, units[i].suffix) != 0)
			continue;
		if (units[i].mult != 0 && v > UINT64_MAX / units[i].mult)
			return -1;
		*out = v * units[i].mult;
		return 0;
	}
	return -1;
}

static const struct unit dur_units[] = {
	{ "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 },
	{ "h", 3600000 }, { "d", 86400000 }, { NULL, 0 }
};
static const struct unit rate_units[] = {
	{ "", 1 }, { "k", 1000 }, { "K", 1000 }, { "M", 1000000 },
	{ "G", 1000000000 }, { NULL, 0 }
};
static const struct unit size_units[] = {
	{ "", 1 }, { "k", 1024 }, { "K", 1024 }, { "KiB", 1024 },
	{ "M", 1048576 }, { "MiB", 1048576 }, { "G", 1073741824 },
	{ "GiB", 1073741824 }, { NULL, 0 }
};

/* A stream name is one path component that is not hidden. */
static int
valid_stream(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > 255 || s[0] == '.')
		return 0;
	for (i = 0; i < n; i++)
		if (s[i] == '/' || (unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

/* FNV-1a of the stream name: the per-stream part of the payload seed. */
static uint64_t
stream_seed(const char *s)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

/*
 * mkdir -p, remembering the last folder made so the next one is cheap.
 * With when (not NULL), a folder under the root that gets a new folder
 * is dated when, as a recorder making it then would have left it.
 */
static int
make_dirs(struct fake *f, const char *dir, const struct timespec *when)
{
	struct timespec ts[2];
	size_t rootlen = strlen(f->root);
	char buf[PATH_MAX];
	char *p, *slash;
	int made;

	if (strcmp(dir, f->lastdir) == 0)
		return 0;
	if (strlen(dir) >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(buf, dir);
	for (p = buf + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if ((made = mkdir(buf, 0755) == 0) == 0 && errno != EEXIST)
			return -1;
		/* A new folder: its parent changed then. */
		if (made && when != NULL && (slash = strrchr(buf, '/')) != NULL &&
		    slash - buf > (ptrdiff_t)rootlen) {
			*slash = '\0';
			ts[0] = ts[1] = *when;
			if (utimensat(AT_FDCWD, buf, ts, 0) == -1)
				return -1;
			*slash = '/';
		}
		*p = c;
		if (c == '\0')
			break;
	}
	strcpy(f->lastdir, dir);
	return 0;
}

/*
 * Writes the segment of stream that starts at start_ms. With set_mtime,
 * its mtime becomes the segment's end, as a recorder would have left it.
 * Returns 0, or -1 after logging; no temp file is left behind.
 */
static int
write_segment(struct fake *f, const char *stream, uint64_t start_ms,
    int set_mtime)
{
	char dir[PATH_MAX - 32], tmp[PATH_MAX], fin[PATH_MAX];
	time_t t = (time_t)(start_ms / 1000);
	struct timespec ts[2];
	struct tm tm;
	int fd = -1, n, saved;

	if (gmtime_r(&t, &tm) == NULL) {
		log_warnx("%" PRIu64 ": time out of range", start_ms);
		return -1;
	}
	n = snprintf(dir, sizeof(dir), "%s/%s/%04d/%02d/%02d/%02d/%02d",
	    f->root, stream, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
	    tm.tm_hour, tm.tm_min);
	if (n < 0 || (size_t)n >= sizeof(dir)) {
		errno = ENAMETOOLONG;
		log_warn("%s/%s", f->root, stream);
		return -1;
	}
	snprintf(tmp, sizeof(tmp), "%s/.%02d.ts.tmp", dir, tm.tm_sec % 61);
	snprintf(fin, sizeof(fin), "%s/%02d.ts", dir, tm.tm_sec % 61);
	ts[0].tv_sec = ts[1].tv_sec = t;
	ts[0].tv_nsec = ts[1].tv_nsec = (long)(start_ms % 1000) * 1000000;
	if (make_dirs(f, dir, set_mtime ? ts : NULL) == -1) {
		log_warn("mkdir %s", dir);
		return -1;
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644)) == -1) {
		log_warn("%s", tmp);
		return -1;
	}
	if (tsw_write(f->tsw, fd, start_ms, start_ms / f->segdur_ms,
	    stream_seed(stream) ^ start_ms) == -1) {
		log_warn("write %s", tmp);
		goto fail;
	}
	if (set_mtime) {
		ts[0].tv_sec = ts[1].tv_sec =
		    (time_t)((start_ms + f->segdur_ms) / 1000);
		ts[0].tv_nsec = ts[1].tv_nsec =
		    (long)((start_ms + f->segdur_ms) % 1000) * 1000000;
		if (futimens(fd, ts) == -1) {
			log_warn("futimens %s", tmp);
			goto fail;
		}
	}
	if (close(fd) == -1) {
		fd = -1;
		log_warn("close %s", tmp);
		goto fail;
	}
	fd = -1;
	if (rename(tmp, fin) == -1) {
		log_warn("rename %s", fin);
		goto fail;
	}
	/* The rename changed the folder: dated by the segment's end too. */
	if (set_mtime && utimensat(AT_FDCWD, dir, ts, 0) == -1) {
		log_warn("utimensat %s", dir);
		return -1;
	}
	return 0;
fail:
	saved = errno;
	if (fd != -1)
		close(fd);
	unlink(tmp);
	errno = saved;
	return -1;
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Was SIGTERM or SIGINT delivered (they are blocked, so pending)? */
static int
stop_pending(void)
{
	sigset_t p;

	if (sigpending(&p) == -1)
		return 0;
	return sigismember(&p, SIGTERM) == 1 || sigismember(&p, SIGINT) == 1;
}

/*
 * Writes segments [from_ms, to_ms) of every stream, oldest first.
 * Returns 0, 1 when stopped by a signal, -1 on error.
 */
static int
backfill(struct fake *f, uint64_t from_ms, uint64_t to_ms)
{
	uint64_t t;
	int i;

	for (t = from_ms; t < to_ms; t += f->segdur_ms) {
		for (i = 0; i < f->nstreams; i++)
			if (write_segment(f, f->streams[i], t, 1) == -1)
				return -1;
		if (stop_pending())
			return 1;
	}
	return 0;
}

/*
 * Records from next_ms on: each segment is written as soon as its end
 * has passed. Returns 0 when SIGTERM or SIGINT arrives, -1 on error.
 */
static int
live(struct fake *f, uint64_t next_ms, const sigset_t *stop)
{
	struct timespec wait;
	uint64_t now, due;
	int i;

	for (;;) {
		due = next_ms + f->segdur_ms;
		now = now_ms();
		if (now < due) {
			wait.tv_sec = (time_t)((due - now) / 1000);
			wait.tv_nsec = (long)((due - now) % 1000) * 1000000;
			if (sigtimedwait(stop, NULL, &wait) > 0)
				return 0;
			continue;	/* EAGAIN or EINTR: look at the clock */
		}
		for (i = 0; i < f->nstreams; i++)
			if (write_segment(f, f->streams[i], next_ms, 0) == -1)
				return -1;
		next_ms = due;
		if (stop_pending())
			return 0;
	}
}

int
main(int argc, char *argv[])
{
	static struct fake f;	/* static: reachable when bad() exits */
	uint64_t back_ms = 0, bitrate = FAKE_DEF_BITRATE, size = 0, npk;
	uint64_t end_ms, start_ms, n;
	int ch, livemode = 0, have_rate = 0, rc;
	sigset_t stop;

	memset(&f, 0, sizeof(f));
	f.segdur_ms = FAKE_DEF_SEGDUR_MS;
	log_init("dvr-fake", LOG_LVL_INFO);
	if ((f.streams = calloc((size_t)argc, sizeof(char *))) == NULL) {
		perror("dvr-fake");
		return 1;
	}

	while ((ch = getopt(argc, argv, "LR:S:b:d:hr:s:")) != -1) {
		switch (ch) {
		case 'L':
			livemode = 1;
			break;
		case 'R':
			if (parse_num(optarg, rate_units, &bitrate) == -1 ||
			    bitrate == 0 || bitrate > UINT64_C(100000000000))
				bad("-R", "expected a bitrate like 4M, 500k "
				    "or 8000000", optarg);
			have_rate = 1;
			break;
		case 'S':
			if (parse_num(optarg, size_units, &size) == -1 ||
			    size < TSW_MIN_PACKETS * TSW_PACKET ||
			    size > FAKE_MAX_SEGSIZE)
				bad("-S", "expected a size from 752 to 1G, "
				    "like 1M or 500k", optarg);
			break;
		case 'b':
			if (parse_num(optarg, dur_units, &back_ms) == -1 ||
			    back_ms > FAKE_MAX_BACKFILL_MS)
				bad("-b", "expected a duration up to 366d, "
				    "like 30s, 10m, 2h or 1d", optarg);
			break;
		case 'd':
			if (parse_num(optarg, dur_units, &f.segdur_ms) == -1 ||
			    f.segdur_ms == 0 || f.segdur_ms % 1000 != 0 ||
			    f.segdur_ms > FAKE_MAX_SEGDUR_MS)
				bad("-d", "expected whole seconds from 1 to 60, "
				    "like 2 or 2s", optarg);
			break;
		case 'r':
			if (*optarg == '\0')
				bad("-r", "empty folder name", NULL);
			f.root = optarg;
			break;
		case 's':
			if (!valid_stream(optarg))
				bad("-s", "not a valid stream name", optarg);
			f.streams[f.nstreams++] = optarg;
			break;
		case 'h':
		default:
			usage();
			return 2;
		}
	}
	if (optind != argc)
		bad(argv[optind], "unexpected argument", NULL);
	if (f.root == NULL)
		bad("-r", "missing: the DVR folder to write to", NULL);
	if (f.nstreams == 0)
		bad("-s", "missing: at least one stream name", NULL);
	if (back_ms == 0 && !livemode)
		bad("-b", "nothing to do: give -b, -L or both", NULL);
	if (have_rate && size != 0)
		bad("-S", "-R and -S exclude each other", NULL);

	if (size != 0)
		npk = (size + TSW_PACKET / 2) / TSW_PACKET;
	else {
		/* bits in a segment / (8 * 188), rounded to nearest. */
		npk = bitrate / 1000 * f.segdur_ms + bitrate % 1000 *
		    f.segdur_ms / 1000;
		npk = (npk + 4 * TSW_PACKET) / (8 * TSW_PACKET);
		if (npk < TSW_MIN_PACKETS)
			bad("-R", "too low for the segment duration", NULL);
		if (npk * TSW_PACKET > FAKE_MAX_SEGSIZE)
			bad("-R", "segments would exceed 1 GiB", NULL);
	}
	if ((f.tsw = tsw_new((size_t)npk, (uint32_t)f.segdur_ms)) == NULL) {
		log_warn("tsw_new");
		return 1;
	}

	/* Signals stay blocked: they are polled between segments. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigprocmask(SIG_BLOCK, &stop, NULL);

	end_ms = now_ms() / f.segdur_ms * f.segdur_ms;
	n = (back_ms + f.segdur_ms - 1) / f.segdur_ms;
	start_ms = end_ms - n * f.segdur_ms;
	rc = backfill(&f, start_ms, end_ms);
	if (rc == 0 && livemode)
		rc = live(&f, end_ms, &stop);
	tsw_free(f.tsw);
	free(f.streams);
	return rc == -1 ? 1 : 0;
}
