#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <pthread.h>

#include "log.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *log_prog = "dvrfs";	/* under log_lock */
static enum log_level log_max = LOG_LVL_INFO;	/* under log_lock */
static int log_to_syslog;		/* under log_lock */

void
log_init(const char *progname, enum log_level level)
{
	pthread_mutex_lock(&log_lock);
	log_prog = progname;
	log_max = level;
	pthread_mutex_unlock(&log_lock);
}

void
log_syslog(void)
{
	pthread_mutex_lock(&log_lock);
	openlog(log_prog, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	log_to_syslog = 1;
	pthread_mutex_unlock(&log_lock);
}

void
log_set_level(enum log_level level)
{
	pthread_mutex_lock(&log_lock);
	log_max = level;
	pthread_mutex_unlock(&log_lock);
}

int
log_enabled(enum log_level level)
{
	return level <= __atomic_load_n(&log_max, __ATOMIC_RELAXED);
}

void
log_msg(enum log_level level, int with_errno, const char *file, int line,
    const char *fmt, ...)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	static const char *name[] = { "error", "warning", "info", "debug" };
	int saved = errno;
	char msg[1024], ebuf[128];
	const char *es = "";
	va_list ap;

	if (!log_enabled(level)) {
		errno = saved;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (with_errno)
		es = strerror_r(saved, ebuf, sizeof(ebuf));

	pthread_mutex_lock(&log_lock);
	if (log_to_syslog)
		syslog(prio[level], "%s%s%s (%s:%d)", msg, with_errno ? ": " : "",
		    es, file, line);
	else
		fprintf(stderr, "%s: %s: %s%s%s (%s:%d)\n", log_prog, name[level],
		    msg, with_errno ? ": " : "", es, file, line);
	pthread_mutex_unlock(&log_lock);
	errno = saved;
}
