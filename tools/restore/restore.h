/*
 * dvrfs-restore's exit statuses (docs/man/dvrfs-restore.8, EXIT STATUS).
 */
#ifndef DVRFS_RESTORE_H
#define DVRFS_RESTORE_H

#define RESTORE_OK		0	/* all copied */
#define RESTORE_USAGE		1	/* bad command line or option */
#define RESTORE_UNREACHABLE	2	/* the peer: down, not exporting
					   SPEC's path, bad answers */
#define RESTORE_KEY		3	/* the peer refused the key (401) */
#define RESTORE_DISKFULL	4	/* no space left in DIR */
#define RESTORE_VERIFY		5	/* files did not match their digest */
#define RESTORE_LOCAL		6	/* DIR: missing, locked, I/O errors */
#define RESTORE_STOPPED		7	/* SIGINT or SIGTERM */

#endif
