/*
 * log: one place for diagnostics. stderr in the foreground, syslog once
 * log_syslog() has been called (the daemon does so after it forks).
 * All functions are thread-safe and keep errno unchanged.
 */
#ifndef DVRFS_LOG_H
#define DVRFS_LOG_H

#include <stdarg.h>

enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Names the program in every line; level is the most verbose one printed. */
void	log_init(const char *progname, enum log_level level);
/* From now on, send lines to syslog(3) instead of stderr. */
void	log_syslog(void);
void	log_set_level(enum log_level level);
int	log_enabled(enum log_level level);

void	log_msg(enum log_level, int with_errno, const char *file, int line,
	    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* log_warn appends strerror(errno); log_warnx does not. */
#define log_warn(...)  log_msg(LOG_LVL_WARN, 1, __FILE__, __LINE__, __VA_ARGS__)
#define log_warnx(...) log_msg(LOG_LVL_WARN, 0, __FILE__, __LINE__, __VA_ARGS__)
#define log_err(...)   log_msg(LOG_LVL_ERR, 1, __FILE__, __LINE__, __VA_ARGS__)
#define log_errx(...)  log_msg(LOG_LVL_ERR, 0, __FILE__, __LINE__, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, 0, __FILE__, __LINE__, __VA_ARGS__)
#define log_debug(...) do { if (log_enabled(LOG_LVL_DEBUG)) \
	log_msg(LOG_LVL_DEBUG, 0, __FILE__, __LINE__, __VA_ARGS__); } while (0)

#endif
