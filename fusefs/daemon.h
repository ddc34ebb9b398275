/*
 * daemon: the life of a dvrfs mount — open the store, reach the primary,
 * mount, detach from the terminal once the mount is usable, serve until
 * unmounted or signalled, then release everything.
 */
#ifndef DVRFS_DAEMON_H
#define DVRFS_DAEMON_H

struct dvrfs_opts;

/*
 * Runs the mount described by o. Without o->foreground it forks; the
 * calling process returns when the mount is usable (0) or has failed (the
 * error was printed, OPT_EXIT_FAIL). Returns the process exit status.
 */
int	daemon_run(const struct dvrfs_opts *o, const char *progname);

#endif
