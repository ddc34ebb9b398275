#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "answer.h"
#include "m4f.h"

#define B64_LEN		44	/* 32 bytes, one '=' of padding */

void
answer_digest_format(const uint8_t md[32], char buf[ANSWER_DIGEST_LEN])
{
	memcpy(buf, "sha-256=:", 9);
	EVP_EncodeBlock((unsigned char *)buf + 9, md, 32);
	buf[9 + B64_LEN] = ':';
	buf[9 + B64_LEN + 1] = '\0';
}

/* 44 base64 characters of 32 bytes, canonical (re-encoding gives them). */
static int
b64_decode(const char *s, uint8_t md[32])
{
	unsigned char out[36], again[B64_LEN + 1];

	if (EVP_DecodeBlock(out, (const unsigned char *)s, B64_LEN) != 33)
		return -1;
	memcpy(md, out, 32);
	EVP_EncodeBlock(again, md, 32);
	return memcmp(again, s, B64_LEN) == 0 ? 0 : -1;
}

int
answer_digest_parse(const char *field, uint8_t md[32])
{
	const char *p = field, *end;
	size_t n;

	if (field == NULL)
		goto bad;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		end = strchrnul(p, ',');
		n = (size_t)(end - p);
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == 0)
			goto bad;
		if (n == 9 + B64_LEN + 1 && strncmp(p, "sha-256=:", 9) == 0 &&
		    p[n - 1] == ':')
			return b64_decode(p + 9, md) == 0 ? 0 : (errno = EINVAL,
			    -1);
		if (*end == '\0')
			goto bad;
		p = end + 1;
	}
bad:
	errno = EINVAL;
	return -1;
}

int
answer_sign(const void *key, size_t keylen, const char *reqsig, int status,
    const char *range, const char *digest, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	char *msg = NULL;
	int len, rc = -1;

	if (reqsig == NULL || status < 100 || status > 599) {
		errno = EINVAL;
		return -1;
	}
	len = asprintf(&msg, "M4F-ANSWER\n%s\n%d\n%s\n%s", reqsig, status,
	    range ? range : "", digest ? digest : "");
	if (len < 0) {
		errno = ENOMEM;
		return -1;
	}
	if (HMAC(EVP_sha256(), key, (int)keylen, (unsigned char *)msg,
	    (size_t)len, md, &n) == NULL || n != 32) {
		errno = EIO;
		goto out;
	}
	m4f_hex_encode(md, n, hex);
	rc = 0;
out:
	free(msg);
	return rc;
}

int
answer_check(const void *key, size_t keylen, const char *reqsig, int status,
    const char *range, const char *digest, const char *header)
{
	char want[65];

	if (header == NULL || strlen(header) != 64) {
		errno = EBADMSG;
		return -1;
	}
	if (answer_sign(key, keylen, reqsig, status, range, digest, want) == -1)
		return -1;
	if (CRYPTO_memcmp(want, header, 64) != 0) {
		errno = EACCES;
		return -1;
	}
	return 0;
}
