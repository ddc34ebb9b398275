/*
 * verify: what vouches for an answer of the primary (docs/protocol.md,
 * "Digests and signed answers"). With a cluster key, the origin's
 * signature binds the answer's status, range and digest to the request
 * it answers; the digest then vouches for the body: a whole file's
 * Repr-Digest, a range's Content-Digest, a bundle's X-M4F-Digests, a JSON
 * answer's X-M4F-SHA256. No byte is served that was not checked against
 * a digest the origin computed from its disk: the listing's sha256 when
 * it knows it, else the one its answer carries. Calls job.c only; lock
 * order: see fetch_int.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "fetch_int.h"
#include "log.h"

/* The field that vouches for the body of j's answer, signed with it. */
static const char *
vouching(const struct job *j, long status)
{
	if (status == 206)
		return j->cdigest;
	if (status != 200)
		return "";
	if (j->kind == JOB_LIST || j->kind == JOB_FEED)
		return j->bsha;
	if (j->file.members != NULL)
		return j->digests != NULL ? j->digests : "";
	return j->rdigest;
}

/* Refuses j's answer: a log line, EBADMSG when its transfer ends. */
static void
refuse(struct job *j, const char *why)
{
	log_warnx("answer for \"%s\": %s, refused", j->rel != NULL ? j->rel :
	    "", why);
	j->bad = 1;
}

/*
 * The whole-file hash a digest field says, in hex, into hex; 0, or -1
 * when the field is malformed.
 */
static int
digest_hex(const char *field, char hex[M4F_SHA256_HEX + 1])
{
	unsigned char md[32];

	if (answer_digest_parse(field, md) == -1)
		return -1;
	m4f_hex_encode(md, 32, hex);
	return 0;
}

/* A whole file's answer: its Repr-Digest, needed when no hash is known. */
static void
head_file(struct fetcher *f, struct job *j)
{
	char hex[M4F_SHA256_HEX + 1];

	if (j->rdigest[0] == '\0') {
		if (j->file.sha[0] == '\0')
			refuse(j, "no " ANSWER_REPR_DIGEST " for a file whose "
			    "hash is not known");
		return;
	}
	if (digest_hex(j->rdigest, hex) == -1) {
		refuse(j, "malformed " ANSWER_REPR_DIGEST);
		return;
	}
	if (j->file.sha[0] != '\0' && strcmp(hex, j->file.sha) != 0) {
		refuse(j, ANSWER_REPR_DIGEST " is not the listed hash");
		j->changed = 1;
		return;
	}
	pthread_mutex_lock(&f->lock);
	memcpy(j->file.dsha, hex, sizeof(hex));
	pthread_mutex_unlock(&f->lock);
}

/* A bundle's answer: X-M4F-Digests, needed for members of no known hash. */
static void
head_bundle(struct fetcher *f, struct job *j)
{
	char (*v)[M4F_SHA256_HEX + 1];
	size_t i, n = 0, unknown = 0;
	struct job *m;

	for (i = 0; i < j->file.nmembers; i++)
		unknown += j->file.members[i]->file.sha[0] == '\0';
	if (j->digests == NULL) {
		if (unknown > 0)
			refuse(j, "no " M4F_FILES_DIGESTS " for files whose "
			    "hash is not known");
		return;
	}
	if ((v = calloc(M4F_FILES_MAX, sizeof(*v))) == NULL) {
		refuse(j, "out of memory");
		return;
	}
	if (m4f_digests_parse(j->digests, v, M4F_FILES_MAX, &n) == -1 ||
	    n != j->file.nmembers) {
		refuse(j, "malformed " M4F_FILES_DIGESTS);
		goto out;
	}
	for (i = 0; i < n; i++) {
		m = j->file.members[i];
		if (m->file.sha[0] != '\0' && strcmp(m->file.sha, v[i]) != 0) {
			refuse(m, M4F_FILES_DIGESTS " is not the listed hash");
			j->bad = j->changed = 1;
			goto out;
		}
	}
	pthread_mutex_lock(&f->lock);
	for (i = 0; i < n; i++)
		memcpy(j->file.members[i]->file.dsha, v[i], sizeof(v[i]));
	pthread_mutex_unlock(&f->lock);
out:
	free(v);
}

/* A block's answer: the digest of exactly its bytes. */
static void
head_block(struct job *j, long status)
{
	/* The whole file as one block: its Repr-Digest is the same. */
	const char *d = status == 206 ? j->cdigest : j->rdigest;

	j->blk.has_cmd = 0;
	if (d[0] == '\0') {
		if (!j->blk.known)
			refuse(j, "no " ANSWER_CONTENT_DIGEST " for a file "
			    "whose hash is not known");
		return;	/* checked with the whole file */
	}
	if (answer_digest_parse(d, j->blk.cmd) == -1) {
		refuse(j, status == 206 ? "malformed " ANSWER_CONTENT_DIGEST :
		    "malformed " ANSWER_REPR_DIGEST);
		return;
	}
	j->blk.has_cmd = 1;
}

void
verify_head(struct fetcher *f, struct job *j, long status)
{
	const char *range = status == 206 || status == 416 ? j->crange : "";

	/* A 401 carries no signature: the origin could not check ours. */
	if (f->key != NULL && status != 401 &&
	    answer_check(f->key, f->conf.keylen, j->reqsig, (int)status,
	    range, vouching(j, status), j->asig[0] != '\0' ? j->asig :
	    NULL) == -1) {
		refuse(j, errno == EACCES ? "wrong " ANSWER_SIGNATURE :
		    "no " ANSWER_SIGNATURE);
		atomic_fetch_add(&f->st_badsig, 1);
		return;
	}
	if (status != 200 && status != 206)
		return;
	switch (j->kind) {
	case JOB_BLOCK:
		head_block(j, status);
		break;
	case JOB_FILE:
		if (status != 200)
			break;	/* head_check refuses it */
		if (j->file.members != NULL)
			head_bundle(f, j);
		else
			head_file(f, j);
		break;
	case JOB_LIST:
	case JOB_FEED:
		break;	/* X-M4F-SHA256: job_json_ok() */
	}
}

int
verify_block(struct fetcher *f, struct job *j)
{
	unsigned char md[32];
	int ok;

	if (!j->blk.has_cmd) {
		pthread_mutex_lock(&f->lock);
		j->blk.unchecked = 1;
		pthread_mutex_unlock(&f->lock);
		return -1;
	}
	ok = m4f_sha256(j->body.buf, j->blk.len, md) == 0 &&
	    memcmp(md, j->blk.cmd, 32) == 0;
	if (!ok) {
		log_warnx("block %" PRIu64 " of \"%s\": does not match its "
		    ANSWER_CONTENT_DIGEST, j->body.key, j->rel);
		return 0;
	}
	pthread_mutex_lock(&f->lock);
	j->body.whole_ok = 1;
	pthread_cond_broadcast(&j->cond);
	pthread_mutex_unlock(&f->lock);
	return 1;
}
