/* SHA-1 (FIPS 180-4), for the WebSocket handshake's Sec-WebSocket-Accept.
 *
 * SHA-1 is broken for collision resistance; RFC 6455 uses it only to show
 * that the server understood the handshake, which needs no security from it.
 * Do not use it for anything else that matters.
 *
 * Streaming: init, update any number of times with pieces of any size, final.
 * O(n), one 64-byte block at a time; no allocation. */
#ifndef UA_SHA1_H
#define UA_SHA1_H

#include <stddef.h>
#include <stdint.h>

#define UA_SHA1_SIZE 20

typedef struct ua_sha1_ctx {
    uint32_t h[5];
    uint64_t total;       /* bytes hashed so far */
    uint8_t block[64];    /* a partial block */
    size_t used;          /* bytes in block */
} ua_sha1_ctx;

void ua_sha1_init(ua_sha1_ctx *s);
void ua_sha1_update(ua_sha1_ctx *s, const void *data, size_t n);
/* Writes the digest; s must be initialised again before reuse. */
void ua_sha1_final(ua_sha1_ctx *s, uint8_t out[UA_SHA1_SIZE]);

/* The digest of one buffer. */
void ua_sha1(const void *data, size_t n, uint8_t out[UA_SHA1_SIZE]);

#endif
