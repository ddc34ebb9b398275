/*
 * peer: dvrfs-restore's requests to the peer's m4f-origin
 * (docs/protocol.md): the listing (recursive, paged), the feed, and the
 * curl handles of a file GET and of a GET of several files of a folder,
 * each request signed when a cluster key is set. Requests go to
 * replication_port when set, else to port.
 *
 * Convention: 0 on success, -1 with errno: ECONNREFUSED (the peer could
 * not be reached or did not answer in time), EACCES (401: the key was
 * refused), ENOENT (404), EBADMSG (a malformed or damaged answer),
 * EKEYREJECTED (with a key: an answer without the peer's signature, or
 * with a wrong one), EIO (another error status), ENOMEM.
 */
#ifndef DVRFS_PEER_H
#define DVRFS_PEER_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "m4f.h"

struct dvrfs_opts;
struct peer;

/* A peer for o's SPEC and options (kept by reference). NULL, errno. */
struct peer	*peer_new(const struct dvrfs_opts *o);
void		 peer_free(struct peer *);

/*
 * Every file under the export's folder sub ("" for the whole export),
 * with names relative to the export, in the listing's order, into a
 * malloc'd *v of *n entries (free with peer_entries_free). Folders are
 * left out. A missing sub is an empty list.
 */
int	peer_list(struct peer *, const char *sub, struct m4f_entry **v,
	    size_t *n);
void	peer_entries_free(struct m4f_entry *v, size_t n);

/*
 * One feed request: with *known 0 learns the current seq and epoch
 * (immediate), else the events after since, waiting up to wait s. The
 * answer is *out (free with m4f_feed_free).
 */
int	peer_feed(struct peer *, int known, uint64_t since, int wait,
	    struct m4f_feed **out);

/*
 * A curl handle set up for GET of the export's file rel: URL, signature
 * (its sig= into reqsig, "" without a key), TLS, the timeouts of
 * timeout=. *hdrs is the header list to free with curl_slist_free_all
 * after the transfer. NULL, errno.
 */
CURL	*peer_file_easy(struct peer *, const char *rel,
	    struct curl_slist **hdrs, char reqsig[M4F_SHA256_HEX + 1]);

/*
 * As peer_file_easy, for GET /m4f/v1/files/ of the n files rel[0..n)
 * (1 to M4F_FILES_MAX), all in one folder, in that order.
 */
CURL	*peer_files_easy(struct peer *, const char *const *rel, size_t n,
	    struct curl_slist **hdrs, char reqsig[M4F_SHA256_HEX + 1]);

/*
 * Whether to ask the peer for several files at once at time now (ms,
 * clock_ms): not for PEER_FILES_OFF_MS after peer_files_refused(), when
 * it answered such a request with a client error (an origin without the
 * API, or one that will not hash that much for one answer).
 */
#define PEER_FILES_OFF_MS	60000
int	peer_files_ok(const struct peer *, int64_t now);
void	peer_files_refused(struct peer *, int64_t now);

/* The errno of a failed transfer: curl's code and the HTTP status. */
int	peer_errno(CURLcode rc, long status);

#endif
