/*
 * dvrfs_status: the contract between a dvrfs mount and dvrfs-status, as
 * m4f.h is the one between the origin and the fetcher. Both sides spell
 * every name through this header.
 *
 * A mount writes STORE/DVRFS_MOUNT_FILE when it mounts (so a stopped
 * store can be read too) and answers two extended attributes on its
 * root: DVRFS_XATTR_STORE (the store's path) and DVRFS_XATTR_STATUS (the
 * live counters, a JSON object). Readers ignore keys they do not know
 * and read a missing counter as 0, so either side may add keys.
 */
#ifndef DVRFS_STATUS_CONTRACT_H
#define DVRFS_STATUS_CONTRACT_H

#define DVRFS_XATTR_STORE	"user.dvrfs.store"
#define DVRFS_XATTR_STATUS	"user.dvrfs.status"

/* STORE/dvrfs.json, written through a temporary name and a rename. */
#define DVRFS_MOUNT_FILE	"dvrfs.json"
#define DVRFS_MOUNT_TMP		".dvrfs.json.tmp"

/* The keys of dvrfs.json. */
#define DS_SPEC			"spec"		/* string: SPEC as mounted */
#define DS_MOUNTPOINT		"mountpoint"	/* string: absolute */
#define DS_DEPTH		"depth"		/* integer: seconds */
#define DS_REPLICATE		"replicate"	/* boolean */
#define DS_STREAMS		"streams"	/* array of names, or null */
#define DS_PID			"pid"		/* integer */
#define DS_MAX_SIZE		"max_size"	/* integer: bytes, 0 no cap */

/* The keys of the live counters; integers unless said otherwise. */
#define DS_READS_LOCAL		"reads_local"
#define DS_READS_FETCHED	"reads_fetched"
#define DS_READS_FAILED		"reads_failed"
#define DS_BYTES_LOCAL		"bytes_local"
#define DS_BYTES_FETCHED	"bytes_fetched"
#define DS_HASH_FAILURES	"hash_failures"
#define DS_FETCHER		"fetcher"	/* object: */
#define DS_F_BYTES_VIEWER	"bytes_viewer"
#define DS_F_BYTES_LIVE		"bytes_live"
#define DS_F_BYTES_BACKFILL	"bytes_backfill"
#define DS_F_REQUESTS		"requests"
#define DS_F_FAILURES		"failures"
#define DS_F_RETRIES		"retries"
#define DS_F_BAD_ANSWERS	"bad_answers"
#define DS_F_CONNECTED		"connected"	/* boolean */
#define DS_F_AUTH_FAILED	"auth_failed"	/* boolean */
#define DS_CRAWLER		"crawler"	/* object: */
#define DS_C_DONE		"done"
#define DS_C_DONE_BYTES		"done_bytes"
#define DS_C_FAILED		"failed"
#define DS_C_QUEUED		"queued"
#define DS_C_EXPIRED		"expired"
#define DS_C_LISTING		"listing"	/* boolean: first walk on */
#define DS_C_RATES		"rates"		/* object: stream -> bytes a
						   second the crawler copied
						   over the last seconds */

#endif
