/*
 * store_crasher: drives a store for tests/it_store_crash.sh and
 * tests/it_store_enospc.sh.
 *
 *   store_crasher write DIR SEED	writes blocks and whole files forever
 *   store_crasher fill DIR		writes until ENOSPC, then reports
 *   store_crasher verify DIR		checks the store after a crash
 *   store_crasher expire DIR		drops every local file
 *
 * The content of byte j of file i is a function of (i, j), so what the
 * store says it has can be checked after any crash.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"

#define BS	4096
#define NFILES	48
#define MAXSZ	(19 * BS * scale)	/* no file is larger */

static struct store *st;
static uint64_t scale = 1;	/* STORE_SCALE: bigger files to fill a disk */
static char *sdir;
static int bad;

static uint64_t
fsize(int i)
{
	return ((uint64_t)(i % 7) * BS * 3 + (uint64_t)(i * 37 % BS) + 1) *
	    scale;
}

static void
content(int i, uint64_t off, uint8_t *b, size_t n)
{
	size_t k;

	for (k = 0; k < n; k++) {
		uint64_t j = off + k;

		b[k] = (uint8_t)((j / BS) * 131 + (uint64_t)i * 17 + j % 251);
	}
}

static void
name(int i, char *buf, size_t sz)
{
	snprintf(buf, sz, "cam%d/2026/03/%02d/10/%02d/%02d.ts", i % 3,
	    1 + i % 28, i % 60, (i * 7) % 60);
}

static void
sha_hex(const void *buf, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int n;
	int k;

	EVP_Digest(buf, len, md, &n, EVP_sha256(), NULL);
	for (k = 0; k < 32; k++)
		sprintf(out + 2 * k, "%02x", md[k]);
}

static uint64_t
file_id(int i, int64_t mtime)
{
	struct store_remote r;
	char nm[128], hex[65];
	uint64_t sz = fsize(i), id = 0;
	uint8_t *b = malloc(sz);

	content(i, 0, b, sz);
	sha_hex(b, sz, hex);
	free(b);
	name(i, nm, sizeof(nm));
	r = (struct store_remote){ nm, STORE_FILE, sz, mtime, hex, NULL };
	if (store_apply_event(st, &r, 0, &id, NULL) == -1)
		return 0;
	return id;
}

static int
writer(unsigned seed, int until_full)
{
	uint64_t ids[NFILES];
	int64_t mtime[NFILES];
	uint8_t *b = malloc(MAXSZ);
	int i, n = 0;

	srandom(seed);
	for (i = 0; i < NFILES; i++) {
		struct store_ent e;
		char nm[128];

		name(i, nm, sizeof(nm));
		mtime[i] = store_resolve(st, nm, &e) == 0 ? e.mtime : 1;
		if ((ids[i] = file_id(i, mtime[i])) == 0)
			return 1;
	}
	for (;;) {
		uint64_t nb, blk, len;
		struct store_ent e;
		int r;

		i = (int)(random() % NFILES);
		if (store_get(st, ids[i], &e) == -1)
			return 1;
		if (e.state == STORE_COMPLETE) {
			if (until_full)
				continue;
			/* A new identity: the old copy must go. */
			mtime[i]++;
			if ((ids[i] = file_id(i, mtime[i])) == 0)
				return 1;
			continue;
		}
		nb = (fsize(i) + BS - 1) / BS;
		if (random() % 8 == 0) {
			content(i, 0, b, fsize(i));
			r = store_put_file(st, ids[i], b, fsize(i));
		} else {
			blk = (uint64_t)random() % nb;
			len = blk + 1 < nb ? BS : fsize(i) - blk * BS;
			content(i, blk * BS, b, len);
			r = store_write_block(st, ids[i], blk, b, len);
		}
		if (r == -1 && errno == ENOSPC && until_full) {
			printf("enospc after %d writes\n", n);
			fflush(stdout);
			return 0;
		}
		if (r == -1 && errno != ENOENT) {
			fprintf(stderr, "write %d: %s\n", i, strerror(errno));
			return 1;
		}
		n++;
	}
}

static int
check_data(const char *path, const struct stat *sb, int type,
    struct FTW *ftw)
{
	struct store_ent e;
	const char *rel = path + strlen(sdir) + strlen("/data/");

	if (type != FTW_F)
		return 0;
	if (store_resolve(st, rel, &e) == -1 || e.state != STORE_COMPLETE ||
	    e.size != (uint64_t)sb->st_size) {
		fprintf(stderr, "data/%s: not complete in the index\n", rel);
		bad++;
	}
	return 0;
}

static int
verify(void)
{
	char path[PATH_MAX];
	uint8_t *want = malloc(MAXSZ + 1), *got = malloc(MAXSZ + 1);
	struct dirent *de;
	DIR *d;
	int i, files = 0, blocks = 0;

	if (store_check(st) == -1)
		return 1;
	for (i = 0; i < NFILES; i++) {
		struct store_ent e;
		char nm[128], hex[65];
		uint64_t sz = fsize(i), blk;

		name(i, nm, sizeof(nm));
		if (store_resolve(st, nm, &e) == -1)
			continue;
		content(i, 0, want, sz);
		if (e.state == STORE_COMPLETE) {
			int fd = store_open_complete(st, e.id);

			if (fd == -1 || pread(fd, got, sz + 1, 0) !=
			    (ssize_t)sz) {
				fprintf(stderr, "%s: complete file unreadable\n",
				    nm);
				bad++;
			} else {
				sha_hex(got, sz, hex);
				if (strcmp(hex, e.sha256) != 0 ||
				    memcmp(got, want, sz) != 0) {
					fprintf(stderr, "%s: wrong bytes\n", nm);
					bad++;
				}
				files++;
			}
			if (fd != -1)
				close(fd);
			continue;
		}
		for (blk = 0; blk * BS < sz; blk++) {
			uint64_t len = sz - blk * BS < BS ? sz - blk * BS : BS;

			if (store_have(st, e.id, blk * BS, len, NULL) != 1)
				continue;
			if (store_pread(st, e.id, got, len, blk * BS) !=
			    (ssize_t)len ||
			    memcmp(got, want + blk * BS, len) != 0) {
				fprintf(stderr, "%s: block %llu wrong\n", nm,
				    (unsigned long long)blk);
				bad++;
			}
			blocks++;
		}
	}
	snprintf(path, sizeof(path), "%s/tmp", sdir);
	if ((d = opendir(path)) != NULL) {
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.') {
				fprintf(stderr, "tmp/%s left\n", de->d_name);
				bad++;
			}
		closedir(d);
	}
	snprintf(path, sizeof(path), "%s/data", sdir);
	nftw(path, check_data, 16, FTW_PHYS);
	printf("verified %d complete files, %d blocks, %d errors\n", files,
	    blocks, bad);
	free(want);
	free(got);
	return bad != 0;
}

int
main(int argc, char *argv[])
{
	struct store_conf c = { .block_size = BS };
	int r;

	if (argc < 3) {
		fprintf(stderr, "usage: store_crasher write|fill|verify|expire "
		    "dir [seed]\n");
		return 2;
	}
	sdir = argv[2];
	if (getenv("STORE_SCALE") != NULL)
		scale = strtoull(getenv("STORE_SCALE"), NULL, 10);
	if (scale < 1 || scale > 1024)
		scale = 1;
	if ((st = store_open(sdir, &c)) == NULL) {
		fprintf(stderr, "store_open %s: %s\n", sdir, strerror(errno));
		return 1;
	}
	if (strcmp(argv[1], "write") == 0)
		r = writer(argc > 3 ? (unsigned)atoi(argv[3]) : 1, 0);
	else if (strcmp(argv[1], "fill") == 0)
		r = writer(argc > 3 ? (unsigned)atoi(argv[3]) : 1, 1);
	else if (strcmp(argv[1], "verify") == 0)
		r = verify();
	else if (strcmp(argv[1], "expire") == 0) {
		ssize_t n = store_expire(st, INT64_MAX / 2, 1);

		printf("expired %zd\n", n);
		r = n < 0;
	} else
		r = 2;
	store_close(st);
	return r;
}
