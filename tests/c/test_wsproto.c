/* Unit tests of wsproto.h / wsproto.c (and sha1.h / sha1.c): WebSocket frame
 * headers, unmasking, UTF-8 validation, message assembly, close frames and
 * the handshake's accept key. */
#include "check.h"
#include "sha1.h"
#include "wsproto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const ua_ws_limits SERVER = {.max_message = 1 << 20, .masked = 1};
static const ua_ws_limits CLIENT_NOLIMIT = {.max_message = UINT64_MAX, .masked = 0};

/* ---- SHA-1 and the accept key --------------------------------------------- */

static int sha1_hex_is(const void *data, size_t n, const char *hex)
{
    uint8_t d[UA_SHA1_SIZE];
    char got[2 * UA_SHA1_SIZE + 1];
    ua_sha1(data, n, d);
    for (int i = 0; i < UA_SHA1_SIZE; i++)
        snprintf(got + 2 * i, 3, "%02x", d[i]);
    if (strcmp(got, hex) != 0) {
        printf("  sha1 of %zu bytes: got %s, want %s\n", n, got, hex);
        return 0;
    }
    return 1;
}

static void test_sha1_vectors(void)
{
    /* FIPS 180 examples. */
    CHECK(sha1_hex_is("abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d"));
    CHECK(sha1_hex_is("", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709"));
    CHECK(sha1_hex_is(NULL, 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709"));
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    CHECK_EQ(strlen(m448), 56);
    CHECK(sha1_hex_is(m448, 56, "84983e441c3bd26ebaae4aa1f95129e5e54670f1"));
    const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
                       "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    CHECK_EQ(strlen(m896), 112);
    CHECK(sha1_hex_is(m896, 112, "a49b2446a02c645bf419f995b67091253a04a259"));
    CHECK(sha1_hex_is("The quick brown fox jumps over the lazy dog", 43,
                      "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"));

    char *million = malloc(1000000);
    CHECK(million != NULL);
    if (!million)
        return;
    memset(million, 'a', 1000000);
    CHECK(sha1_hex_is(million, 1000000, "34aa973cd4c4daa4f61eeb2bdbad27316534016f"));
    free(million);
}

/* The padding goes into one block or spills into a second one depending on
 * the length mod 64: each edge once. */
static void test_sha1_padding_edges(void)
{
    static const struct {
        size_t n;
        const char *hex;
    } cases[] = {
        {55, "c1c8bbdc22796e28c0e15163d20899b65621d65a"},
        {56, "c2db330f6083854c99d4b5bfb6e8f29f201be699"},
        {63, "03f09f5b158a7a8cdad920bddc29b81c18a551f5"},
        {64, "0098ba824b5c16427bd7a1122a5a442a25ec644d"},
        {65, "11655326c708d70319be2610e8a57d9a5b959d3b"},
        {119, "ee971065aaa017e0632a8ca6c77bb3bf8b1dfc56"},
        {120, "f34c1488385346a55709ba056ddd08280dd4c6d6"},
        {128, "ad5b3fdbcb526778c2839d2f151ea753995e26a0"},
    };
    char a[128];
    memset(a, 'a', sizeof(a));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        CHECK(sha1_hex_is(a, cases[i].n, cases[i].hex));
}

/* A million 'a's in pieces of random sizes (some empty, some over a block)
 * hash the same as in one piece. */
static void test_sha1_in_pieces(void)
{
    uint8_t whole[UA_SHA1_SIZE], pieces[UA_SHA1_SIZE];
    char *million = malloc(1000000);
    CHECK(million != NULL);
    if (!million)
        return;
    memset(million, 'a', 1000000);
    ua_sha1(million, 1000000, whole);
    ua_sha1_ctx s;
    ua_sha1_init(&s);
    size_t done = 0;
    while (done < 1000000) {
        size_t k = check_rand_below(200);
        if (k > 1000000 - done)
            k = 1000000 - done;
        ua_sha1_update(&s, million + done, k);
        done += k;
    }
    ua_sha1_final(&s, pieces);
    CHECK(memcmp(whole, pieces, UA_SHA1_SIZE) == 0);
    free(million);
}

static void test_accept_key(void)
{
    char out[UA_WS_ACCEPT_SIZE];
    /* RFC 6455 section 1.3. */
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    memset(out, 'x', sizeof(out));
    ua_ws_accept_key(key, strlen(key), out);
    CHECK(strcmp(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
    CHECK_EQ(strlen(out), 28);

    ua_ws_accept_key("x3JJHMbDL1EzLkh9GBhXDw==", 24, out);
    CHECK(strcmp(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=") == 0);
    ua_ws_accept_key("", 0, out);
    CHECK(strcmp(out, "Kfh9QIsMVZcl6xEPYxPHzW8SZ8w=") == 0);
    /* key_len bounds the key: what follows it is not read. */
    ua_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==\r\nHost: x", 24, out);
    CHECK(strcmp(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
}

/* ---- Frame headers ---------------------------------------------------- */

/* Writes a client frame (masked with key) for data; returns its length. */
static size_t client_frame(uint8_t *out, int fin, int opcode, const void *data, size_t len,
                           const uint8_t key[4])
{
    size_t hl = ua_ws_build_header(out, fin, opcode, len);
    out[1] |= 0x80;
    memcpy(out + hl, key, 4);
    hl += 4;
    if (len)
        memcpy(out + hl, data, len);
    ua_ws_unmask(out + hl, len, key, 0);
    return hl + len;
}

/* The header parses to hlen only once all of it is there: every shorter
 * prefix asks for more. Extra bytes after it change nothing. */
static int parses_only_when_whole(const uint8_t *hdr, size_t hlen, const ua_ws_limits *lim)
{
    uint8_t buf[UA_WS_MAX_HEADER + 8];
    ua_ws_header h;
    int ok = 1;
    memcpy(buf, hdr, hlen);
    memset(buf + hlen, 0xFF, 8);
    for (size_t k = 0; k < hlen; k++)
        ok = CHECK_EQ(ua_ws_parse_header(buf, k, &h, lim), 0) && ok;
    ok = CHECK_EQ(ua_ws_parse_header(buf, hlen, &h, lim), (int)hlen) && ok;
    ok = CHECK_EQ(ua_ws_parse_header(buf, hlen + 8, &h, lim), (int)hlen) && ok;
    return ok;
}

static void test_parse_header_rfc_example(void)
{
    /* RFC 6455 section 5.7: a masked "Hello". */
    uint8_t f[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    ua_ws_header h;
    CHECK_EQ(ua_ws_parse_header(f, sizeof(f), &h, &SERVER), 6);
    CHECK_EQ(h.fin, 1);
    CHECK_EQ(h.rsv, 0);
    CHECK_EQ(h.opcode, UA_WS_TEXT);
    CHECK_EQ(h.masked, 1);
    CHECK_EQ(h.len, 5);
    CHECK(memcmp(h.mask, "\x37\xfa\x21\x3d", 4) == 0);
    ua_ws_unmask(f + 6, 5, h.mask, 0);
    CHECK(memcmp(f + 6, "Hello", 5) == 0);
    /* The same unmasked, as a server sends it, read the way a client does. */
    uint8_t u[] = {0x81, 0x05, 'H', 'e', 'l', 'l', 'o'};
    CHECK_EQ(ua_ws_parse_header(u, sizeof(u), &h, &CLIENT_NOLIMIT), 2);
    CHECK_EQ(h.masked, 0);
    CHECK(memcmp(h.mask, "\0\0\0\0", 4) == 0);
    CHECK_EQ(h.len, 5);
    /* A fragmented unmasked text message and a ping, from the same section. */
    uint8_t f1[] = {0x01, 0x03, 'H', 'e', 'l'};
    CHECK_EQ(ua_ws_parse_header(f1, sizeof(f1), &h, &CLIENT_NOLIMIT), 2);
    CHECK_EQ(h.fin, 0);
    CHECK_EQ(h.opcode, UA_WS_TEXT);
    uint8_t f2[] = {0x80, 0x02, 'l', 'o'};
    CHECK_EQ(ua_ws_parse_header(f2, sizeof(f2), &h, &CLIENT_NOLIMIT), 2);
    CHECK_EQ(h.fin, 1);
    CHECK_EQ(h.opcode, UA_WS_CONT);
    uint8_t ping[] = {0x89, 0x05, 'H', 'e', 'l', 'l', 'o'};
    CHECK_EQ(ua_ws_parse_header(ping, sizeof(ping), &h, &CLIENT_NOLIMIT), 2);
    CHECK_EQ(h.opcode, UA_WS_PING);
}

static void test_parse_header_byte_at_a_time(void)
{
    static const uint8_t key[4] = {1, 2, 3, 4};
    static const uint64_t lens[] = {0, 1, 125, 126, 127, 1000, 65535, 65536, 1 << 20};
    uint8_t hdr[UA_WS_MAX_HEADER];
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        for (int fin = 0; fin <= 1; fin++) {
            size_t hl = ua_ws_build_header(hdr, fin, UA_WS_BINARY, lens[i]);
            /* As a client sends it: masked, key after the length. */
            hdr[1] |= 0x80;
            memcpy(hdr + hl, key, 4);
            CHECK(parses_only_when_whole(hdr, hl + 4, &SERVER));
            ua_ws_header h;
            CHECK_EQ(ua_ws_parse_header(hdr, hl + 4, &h, &SERVER), (int)hl + 4);
            CHECK_EQ(h.len, lens[i]);
            CHECK_EQ(h.fin, fin);
            CHECK(memcmp(h.mask, key, 4) == 0);
        }
    }
    /* Control frames too, with and without payload. */
    for (int op = UA_WS_CLOSE; op <= UA_WS_PONG; op++) {
        size_t hl = ua_ws_build_header(hdr, 1, op, op == UA_WS_CLOSE ? 0 : 125);
        hdr[1] |= 0x80;
        memcpy(hdr + hl, key, 4);
        CHECK(parses_only_when_whole(hdr, hl + 4, &SERVER));
    }
    /* Unmasked, for the client side: 2, 4 and 10 bytes. */
    CHECK_EQ(ua_ws_build_header(hdr, 1, UA_WS_TEXT, 3), 2);
    CHECK(parses_only_when_whole(hdr, 2, &CLIENT_NOLIMIT));
    CHECK_EQ(ua_ws_build_header(hdr, 1, UA_WS_TEXT, 300), 4);
    CHECK(parses_only_when_whole(hdr, 4, &CLIENT_NOLIMIT));
    CHECK_EQ(ua_ws_build_header(hdr, 1, UA_WS_TEXT, 70000), 10);
    CHECK(parses_only_when_whole(hdr, 10, &CLIENT_NOLIMIT));
}

static void test_parse_header_reserved_bits(void)
{
    ua_ws_header h;
    for (int bit = 0; bit < 3; bit++) {
        uint8_t f[6] = {(uint8_t)(0x81 | (0x10 << bit)), 0x80, 0, 0, 0, 0};
        /* Known from the first byte. */
        CHECK_EQ(ua_ws_parse_header(f, 1, &h, &SERVER), -1002);
        CHECK_EQ(ua_ws_parse_header(f, 6, &h, &SERVER), -1002);
        CHECK_EQ(h.rsv, 1 << bit);
    }
    uint8_t all[6] = {0xF1, 0x80, 0, 0, 0, 0};
    CHECK_EQ(ua_ws_parse_header(all, 6, &h, &SERVER), -1002);
    /* On a control frame as well. */
    uint8_t ping[6] = {0xC9, 0x80, 0, 0, 0, 0};
    CHECK_EQ(ua_ws_parse_header(ping, 6, &h, &SERVER), -1002);
}

static void test_parse_header_opcodes(void)
{
    ua_ws_header h;
    for (int op = 0; op < 16; op++) {
        uint8_t f[6] = {(uint8_t)(0x80 | op), 0x80, 9, 9, 9, 9};
        int known = op <= 2 || (op >= 8 && op <= 10);
        if (known) {
            CHECK_EQ(ua_ws_parse_header(f, 1, &h, &SERVER), 0);
            CHECK_EQ(ua_ws_parse_header(f, 6, &h, &SERVER), 6);
            CHECK_EQ(h.opcode, op);
        } else {
            CHECK_EQ(ua_ws_parse_header(f, 1, &h, &SERVER), -1002);
            CHECK_EQ(ua_ws_parse_header(f, 6, &h, &SERVER), -1002);
        }
    }
}

static void test_parse_header_mask_rule(void)
{
    ua_ws_header h;
    /* A server refuses an unmasked frame, once the second byte is there. */
    uint8_t unmasked[] = {0x81, 0x05, 'H', 'e', 'l', 'l', 'o'};
    CHECK_EQ(ua_ws_parse_header(unmasked, 1, &h, &SERVER), 0);
    CHECK_EQ(ua_ws_parse_header(unmasked, 2, &h, &SERVER), -1002);
    CHECK_EQ(ua_ws_parse_header(unmasked, sizeof(unmasked), &h, &SERVER), -1002);
    uint8_t unmasked_ping[] = {0x89, 0x00};
    CHECK_EQ(ua_ws_parse_header(unmasked_ping, 2, &h, &SERVER), -1002);
    /* A client refuses a masked one. */
    uint8_t masked[] = {0x81, 0x80, 1, 2, 3, 4};
    CHECK_EQ(ua_ws_parse_header(masked, 2, &h, &CLIENT_NOLIMIT), -1002);
    CHECK_EQ(ua_ws_parse_header(masked, sizeof(masked), &h, &SERVER), 6);
    /* Any non-zero masked in the limits means "must be masked". */
    ua_ws_limits odd = {.max_message = 100, .masked = 7};
    CHECK_EQ(ua_ws_parse_header(masked, sizeof(masked), &h, &odd), 6);
    CHECK_EQ(ua_ws_parse_header(unmasked, sizeof(unmasked), &h, &odd), -1002);
}

static void test_parse_header_control_frames(void)
{
    ua_ws_header h;
    for (int op = UA_WS_CLOSE; op <= UA_WS_PONG; op++) {
        /* Fragmented: known from the first byte. */
        uint8_t frag[6] = {(uint8_t)op, 0x80, 0, 0, 0, 0};
        CHECK_EQ(ua_ws_parse_header(frag, 1, &h, &SERVER), -1002);
        CHECK_EQ(ua_ws_parse_header(frag, 6, &h, &SERVER), -1002);
        /* 125 bytes is the most. */
        uint8_t ok[6] = {(uint8_t)(0x80 | op), 0x80 | 125, 0, 0, 0, 0};
        CHECK_EQ(ua_ws_parse_header(ok, 6, &h, &SERVER), 6);
        CHECK_EQ(h.len, 125);
        /* 126 in the 16-bit form: known once the length is there. */
        uint8_t l126[8] = {(uint8_t)(0x80 | op), 0x80 | 126, 0, 126, 0, 0, 0, 0};
        CHECK_EQ(ua_ws_parse_header(l126, 3, &h, &SERVER), 0);
        CHECK_EQ(ua_ws_parse_header(l126, 4, &h, &SERVER), -1002);
        CHECK_EQ(ua_ws_parse_header(l126, 8, &h, &SERVER), -1002);
        /* A large 64-bit length. */
        uint8_t l64[14] = {(uint8_t)(0x80 | op), 0x80 | 127, 0, 0, 0, 1, 0, 0, 0, 0};
        CHECK_EQ(ua_ws_parse_header(l64, 9, &h, &SERVER), 0);
        CHECK_EQ(ua_ws_parse_header(l64, 10, &h, &SERVER), -1002);
        /* The limit on messages does not apply to control frames. */
        ua_ws_limits tiny = {.max_message = 4, .masked = 1};
        CHECK_EQ(ua_ws_parse_header(ok, 6, &h, &tiny), 6);
    }
    /* The first frame byte settles FIN before anything about masking. */
    uint8_t frag_unmasked[2] = {UA_WS_PING, 0x00};
    CHECK_EQ(ua_ws_parse_header(frag_unmasked, 2, &h, &SERVER), -1002);
}

static void test_parse_header_64bit_top_bit(void)
{
    ua_ws_header h;
    uint8_t f[14] = {0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4};
    CHECK_EQ(ua_ws_parse_header(f, 2, &h, &SERVER), 0);
    /* Refused at its first length byte, without waiting for the rest. */
    CHECK_EQ(ua_ws_parse_header(f, 3, &h, &SERVER), -1002);
    CHECK_EQ(ua_ws_parse_header(f, 14, &h, &SERVER), -1002);
    /* Even with no limit at all. */
    CHECK_EQ(ua_ws_parse_header(f, 14, &h, &CLIENT_NOLIMIT), -1002);
    uint8_t u[10] = {0x82, 127, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    CHECK_EQ(ua_ws_parse_header(u, 10, &h, &CLIENT_NOLIMIT), -1002);
    /* 2**63 - 1 is the largest length there is. */
    u[2] = 0x7F;
    CHECK_EQ(ua_ws_parse_header(u, 10, &h, &CLIENT_NOLIMIT), 10);
    CHECK_EQ(h.len, INT64_MAX);
}

static void test_parse_header_too_big(void)
{
    ua_ws_header h;
    ua_ws_limits lim = {.max_message = 100, .masked = 1};
    /* 7-bit form. */
    uint8_t a[6] = {0x82, 0x80 | 100, 1, 2, 3, 4};
    CHECK_EQ(ua_ws_parse_header(a, 6, &h, &lim), 6);
    a[1] = 0x80 | 101;
    /* Known before the mask key is there. */
    CHECK_EQ(ua_ws_parse_header(a, 2, &h, &lim), -1009);
    CHECK_EQ(ua_ws_parse_header(a, 6, &h, &lim), -1009);
    /* 16-bit form. */
    lim.max_message = 1000;
    uint8_t b[8] = {0x81, 0x80 | 126, 1000 >> 8, 1000 & 0xFF, 1, 2, 3, 4};
    CHECK_EQ(ua_ws_parse_header(b, 8, &h, &lim), 8);
    b[3]++;
    CHECK_EQ(ua_ws_parse_header(b, 3, &h, &lim), 0);
    CHECK_EQ(ua_ws_parse_header(b, 4, &h, &lim), -1009);
    /* 64-bit form. */
    lim.max_message = (uint64_t)1 << 40;
    uint8_t c[14] = {0x80, 0x80 | 127, 0, 0, 1, 0, 0, 0, 0, 0, 1, 2, 3, 4};
    CHECK_EQ(ua_ws_parse_header(c, 14, &h, &lim), 14);
    CHECK_EQ(h.len, (uint64_t)1 << 40);
    c[9] = 1;
    CHECK_EQ(ua_ws_parse_header(c, 9, &h, &lim), 0);
    CHECK_EQ(ua_ws_parse_header(c, 10, &h, &lim), -1009);
    /* A limit of zero allows only empty data frames. */
    lim.max_message = 0;
    uint8_t e[6] = {0x81, 0x80, 1, 2, 3, 4};
    CHECK_EQ(ua_ws_parse_header(e, 6, &h, &lim), 6);
    e[1] = 0x81;
    CHECK_EQ(ua_ws_parse_header(e, 6, &h, &lim), -1009);
}

/* Lengths in a longer form than needed are accepted (see wsproto.h). */
static void test_parse_header_non_minimal_lengths(void)
{
    ua_ws_header h;
    uint8_t s16[8] = {0x82, 0x80 | 126, 0, 5, 1, 2, 3, 4};
    CHECK_EQ(ua_ws_parse_header(s16, 8, &h, &SERVER), 8);
    CHECK_EQ(h.len, 5);
    uint8_t s64[14] = {0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4};
    CHECK_EQ(ua_ws_parse_header(s64, 14, &h, &SERVER), 14);
    CHECK_EQ(h.len, 5);
    uint8_t m64[14] = {0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 1, 2, 3, 4};
    CHECK_EQ(ua_ws_parse_header(m64, 14, &h, &SERVER), 14);
    CHECK_EQ(h.len, 65535);
    /* A control frame's short payload given in a long form. */
    uint8_t ping[8] = {0x89, 0x80 | 126, 0, 125, 1, 2, 3, 4};
    CHECK_EQ(ua_ws_parse_header(ping, 8, &h, &SERVER), 8);
    CHECK_EQ(h.len, 125);
    CHECK(parses_only_when_whole(s64, 14, &SERVER));
}

static void test_build_header_bytes(void)
{
    uint8_t out[UA_WS_MAX_HEADER];
    CHECK_EQ(ua_ws_build_header(out, 1, UA_WS_TEXT, 0), 2);
    CHECK(memcmp(out, "\x81\x00", 2) == 0);
    CHECK_EQ(ua_ws_build_header(out, 0, UA_WS_BINARY, 125), 2);
    CHECK(memcmp(out, "\x02\x7d", 2) == 0);
    CHECK_EQ(ua_ws_build_header(out, 0, UA_WS_CONT, 126), 4);
    CHECK(memcmp(out, "\x00\x7e\x00\x7e", 4) == 0);
    CHECK_EQ(ua_ws_build_header(out, 1, UA_WS_CONT, 65535), 4);
    CHECK(memcmp(out, "\x80\x7e\xff\xff", 4) == 0);
    CHECK_EQ(ua_ws_build_header(out, 1, UA_WS_BINARY, 65536), 10);
    CHECK(memcmp(out, "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10) == 0);
    CHECK_EQ(ua_ws_build_header(out, 1, UA_WS_CLOSE, 2), 2);
    CHECK(memcmp(out, "\x88\x02", 2) == 0);
    CHECK_EQ(ua_ws_build_header(out, 1, UA_WS_PONG, 0x0102030405060708ull), 10);
    CHECK(memcmp(out, "\x8a\x7f\x01\x02\x03\x04\x05\x06\x07\x08", 10) == 0);
    /* fin is a truth value. */
    CHECK_EQ(ua_ws_build_header(out, 5, UA_WS_TEXT, 1), 2);
    CHECK_EQ(out[0], 0x81);
}

static void test_build_header_round_trip(void)
{
    static const uint64_t lens[] = {
        0, 1, 124, 125, 126, 127, 128, 255, 256, 65534, 65535, 65536, 65537,
        0xFFFFFFFFull, 0x100000000ull, 0x7FFFFFFFFFFFFFFFull,
    };
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        uint8_t out[UA_WS_MAX_HEADER];
        size_t hl = ua_ws_build_header(out, 1, UA_WS_BINARY, lens[i]);
        size_t want = lens[i] <= 125 ? 2 : lens[i] <= 65535 ? 4 : 10;
        CHECK_EQ(hl, want);
        ua_ws_header h;
        CHECK_EQ(ua_ws_parse_header(out, hl, &h, &CLIENT_NOLIMIT), (int)hl);
        CHECK_EQ(h.len, lens[i]);
        CHECK_EQ(h.fin, 1);
        CHECK_EQ(h.opcode, UA_WS_BINARY);
        CHECK_EQ(h.masked, 0);
    }
    int ok = 1;
    for (int i = 0; i < 3000 && ok; i++) {
        /* Random lengths of every size class, random opcodes and fin. */
        int bits = (int)check_rand_below(63) + 1;
        uint64_t len = (((uint64_t)check_rand() << 32) | check_rand()) >> (64 - bits);
        static const int ops[] = {UA_WS_CONT, UA_WS_TEXT, UA_WS_BINARY};
        int op = ops[check_rand_below(3)];
        int fin = (int)check_rand_below(2);
        uint8_t out[UA_WS_MAX_HEADER];
        size_t hl = ua_ws_build_header(out, fin, op, len);
        ua_ws_header h;
        ok = CHECK_EQ(ua_ws_parse_header(out, hl, &h, &CLIENT_NOLIMIT), (int)hl) &&
             CHECK_EQ(h.len, len) && CHECK_EQ(h.opcode, op) && CHECK_EQ(h.fin, fin) &&
             CHECK_EQ(hl, len <= 125 ? 2 : len <= 65535 ? 4 : 10);
    }
}

/* ---- Unmasking ---------------------------------------------------------------- */

static void ref_unmask(uint8_t *d, size_t n, const uint8_t key[4], size_t offset)
{
    for (size_t i = 0; i < n; i++)
        d[i] ^= key[(offset + i) % 4];
}

static void test_unmask_edges(void)
{
    const uint8_t key[4] = {0x11, 0x22, 0x44, 0x88};
    uint8_t d[1] = {0xFF};
    ua_ws_unmask(d, 0, key, 0);
    CHECK_EQ(d[0], 0xFF);
    ua_ws_unmask(NULL, 0, key, 3);
    /* Offsets select the key byte, and wrap. */
    for (size_t off = 0; off < 9; off++) {
        d[0] = 0;
        ua_ws_unmask(d, 1, key, off);
        CHECK_EQ(d[0], key[off % 4]);
    }
    d[0] = 0;
    ua_ws_unmask(d, 1, key, SIZE_MAX);   /* SIZE_MAX % 4 == 3 */
    CHECK_EQ(d[0], key[3]);
    /* Masking twice gives the data back. */
    uint8_t buf[100], copy[100];
    for (int i = 0; i < 100; i++)
        buf[i] = copy[i] = (uint8_t)(i * 7);
    ua_ws_unmask(buf, 100, key, 1);
    CHECK(memcmp(buf, copy, 100) != 0);
    ua_ws_unmask(buf, 100, key, 1);
    CHECK(memcmp(buf, copy, 100) == 0);
}

/* Unmasking in pieces at any alignment gives what one pass of the plain
 * byte loop gives. */
static void test_unmask_in_pieces_random(void)
{
    enum { MAX = 600 };
    uint8_t *orig = malloc(MAX), *ref = malloc(MAX), *work = malloc(MAX + 16);
    CHECK(orig && ref && work);
    if (!orig || !ref || !work)
        goto out;
    int ok = 1;
    for (int iter = 0; iter < 4000 && ok; iter++) {
        size_t len = check_rand_below(MAX + 1);
        size_t offset = check_rand_below(1000);
        size_t shift = check_rand_below(16);   /* start at any alignment */
        uint8_t key[4];
        for (int i = 0; i < 4; i++)
            key[i] = (uint8_t)check_rand();
        for (size_t i = 0; i < len; i++)
            orig[i] = (uint8_t)check_rand();
        memcpy(ref, orig, len);
        ref_unmask(ref, len, key, offset);

        uint8_t *d = work + shift;
        /* All at once. */
        memcpy(d, orig, len);
        ua_ws_unmask(d, len, key, offset);
        ok = CHECK(len == 0 || memcmp(d, ref, len) == 0) && ok;
        /* In random pieces, each told where it starts in the payload. */
        memcpy(d, orig, len);
        size_t done = 0;
        while (done < len) {
            size_t k = check_rand_below(check_rand_below(2) ? 20 : (unsigned)(len - done) + 1);
            if (k > len - done)
                k = len - done;
            ua_ws_unmask(d + done, k, key, offset + done);
            done += k;
        }
        ok = CHECK(len == 0 || memcmp(d, ref, len) == 0) && ok;
    }
out:
    free(orig);
    free(ref);
    free(work);
}

/* ---- UTF-8 ------------------------------------------------------------------- */

/* An independent check: after each byte, is there still a valid text that
 * starts like this? Returns the index of the first byte where there is not,
 * or -1 (then *complete says whether no character is left open). */
static long ref_utf8(const uint8_t *s, size_t n, int *complete)
{
    int total = 0, have = 0;
    uint32_t cp = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = s[i];
        if (total == 0) {
            if (b < 0x80)
                continue;
            if ((b & 0xE0) == 0xC0) {
                total = 2;
                cp = b & 0x1F;
            } else if ((b & 0xF0) == 0xE0) {
                total = 3;
                cp = b & 0x0F;
            } else if ((b & 0xF8) == 0xF0) {
                total = 4;
                cp = b & 0x07;
            } else {
                return (long)i;
            }
            have = 1;
        } else {
            if ((b & 0xC0) != 0x80)
                return (long)i;
            cp = cp << 6 | (b & 0x3F);
            have++;
        }
        /* The code points this can still become, against the ones its
         * length may encode. */
        int rest = 6 * (total - have);
        uint32_t lo = cp << rest, hi = lo | ((1u << rest) - 1);
        uint32_t min = total == 2 ? 0x80 : total == 3 ? 0x800 : 0x10000;
        uint32_t max = total == 2 ? 0x7FF : total == 3 ? 0xFFFF : 0x10FFFF;
        if (lo < min)
            lo = min;
        if (hi > max)
            hi = max;
        if (lo > hi || (lo >= 0xD800 && hi <= 0xDFFF))
            return (long)i;
        if (have == total)
            total = 0;
    }
    *complete = total == 0;
    return -1;
}

/* Encodes cp the UTF-8 way, surrogates included (to test their refusal). */
static size_t encode(uint32_t cp, uint8_t *o)
{
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xC0 | cp >> 6);
        o[1] = (uint8_t)(0x80 | (cp & 63));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | cp >> 12);
        o[1] = (uint8_t)(0x80 | ((cp >> 6) & 63));
        o[2] = (uint8_t)(0x80 | (cp & 63));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | cp >> 18);
    o[1] = (uint8_t)(0x80 | ((cp >> 12) & 63));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 63));
    o[3] = (uint8_t)(0x80 | (cp & 63));
    return 4;
}

/* Feeds s one byte at a time: the index of the byte that got -1, or -1 if
 * none did; *complete as after the last byte. Checks that -1 stays. */
static long fail_index_bytewise(const uint8_t *s, size_t n, int *complete)
{
    ua_utf8 st;
    ua_utf8_init(&st);
    long bad = -1;
    for (size_t i = 0; i < n; i++) {
        int r = ua_utf8_feed(&st, s + i, 1);
        if (bad >= 0) {
            if (r != -1)
                return -2;   /* invalid must be final */
        } else if (r < 0) {
            bad = (long)i;
        }
    }
    *complete = ua_utf8_complete(&st);
    return bad;
}

/* Whole, byte by byte and in random pieces, the validator agrees with the
 * reference: where it fails (the piece holding the first bad byte) and
 * whether the text is complete. */
static int utf8_agrees(const uint8_t *s, size_t n)
{
    int ref_complete = 0, complete = 0;
    long ref_bad = ref_utf8(s, n, &ref_complete);
    long bad = fail_index_bytewise(s, n, &complete);
    int ok = CHECK_EQ(bad, ref_bad);
    if (ref_bad < 0)
        ok = CHECK_EQ(complete, ref_complete) && ok;
    else
        ok = CHECK_EQ(complete, 0) && ok;

    ua_utf8 st;
    ua_utf8_init(&st);
    ok = CHECK_EQ(ua_utf8_feed(&st, s, n), ref_bad < 0 ? 0 : -1) && ok;
    ok = CHECK_EQ(ua_utf8_complete(&st), ref_bad < 0 && ref_complete) && ok;

    ua_utf8_init(&st);
    size_t done = 0;
    int r = 0;
    while (done < n) {
        size_t k = check_rand_below(12);
        if (k > n - done)
            k = n - done;
        r = ua_utf8_feed(&st, s + done, k);
        if (r < 0)
            break;
        done += k;
    }
    if (ref_bad < 0) {
        ok = CHECK_EQ(r, 0) && ok;
    } else {
        /* Refused by the piece that holds the bad byte. */
        ok = CHECK_EQ(r, -1) && ok;
        ok = CHECK((size_t)ref_bad >= done && (size_t)ref_bad < done + 12) && ok;
    }
    if (!ok) {
        printf("  input:");
        for (size_t i = 0; i < n && i < 64; i++)
            printf(" %02X", s[i]);
        printf("\n");
    }
    return ok;
}

static void test_utf8_valid_samples(void)
{
    static const char *samples[] = {
        "",
        "hello, world",
        "\xc2\x80",                 /* U+0080, the first 2-byte */
        "\xdf\xbf",                 /* U+07FF */
        "\xe0\xa0\x80",             /* U+0800, the first 3-byte */
        "\xed\x9f\xbf",             /* U+D7FF, just below the surrogates */
        "\xee\x80\x80",             /* U+E000, just above them */
        "\xef\xbf\xbf",             /* U+FFFF */
        "\xef\xbb\xbf",             /* BOM */
        "\xf0\x90\x80\x80",         /* U+10000, the first 4-byte */
        "\xf4\x8f\xbf\xbf",         /* U+10FFFF, the last */
        "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5",   /* "kosme" in Greek */
        "Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!",
        "\xf0\x9f\x98\x80 \xe2\x82\xac \xd0\xaf \x7f \x01",
    };
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        const uint8_t *s = (const uint8_t *)samples[i];
        size_t n = strlen(samples[i]);
        ua_utf8 st;
        ua_utf8_init(&st);
        CHECK_EQ(ua_utf8_feed(&st, s, n), 0);
        CHECK(ua_utf8_complete(&st));
        CHECK(utf8_agrees(s, n));
    }
    /* A NUL byte is a character like any other. */
    ua_utf8 st;
    ua_utf8_init(&st);
    CHECK_EQ(ua_utf8_feed(&st, (const uint8_t *)"a\0b", 3), 0);
    CHECK(ua_utf8_complete(&st));
}

static void test_utf8_invalid_samples(void)
{
    static const struct {
        const char *s;
        size_t n;
        long bad;   /* index of the first byte refused; -1: valid but incomplete */
    } cases[] = {
        /* Stray continuation bytes and bytes never in UTF-8. */
        {"\x80", 1, 0},
        {"\xbf", 1, 0},
        {"ab\x80", 3, 2},
        {"\xfe", 1, 0},
        {"\xff", 1, 0},
        /* Overlong forms. */
        {"\xc0\x80", 2, 0},
        {"\xc1\xbf", 2, 0},
        {"\xe0\x80\x80", 3, 1},
        {"\xe0\x9f\xbf", 3, 1},
        {"\xf0\x80\x80\x80", 4, 1},
        {"\xf0\x8f\xbf\xbf", 4, 1},
        {"\xf8\x88\x80\x80\x80", 5, 0},
        {"\xfc\x84\x80\x80\x80\x80", 6, 0},
        /* Surrogates, alone and paired (CESU-8). */
        {"\xed\xa0\x80", 3, 1},
        {"\xed\xbf\xbf", 3, 1},
        {"\xed\xad\xbf", 3, 1},
        {"\xed\xa0\x80\xed\xb0\x80", 6, 1},
        /* Above U+10FFFF. */
        {"\xf4\x90\x80\x80", 4, 1},
        {"\xf4\xbf\xbf\xbf", 4, 1},
        {"\xf5\x80\x80\x80", 4, 0},
        {"\xf7\xbf\xbf\xbf", 4, 0},
        /* A character cut short by something else. */
        {"\xc3\x41", 2, 1},
        {"\xe2\x82\x41", 3, 2},
        {"\xf0\x9f\x98\x41", 4, 3},
        {"\xe2\x82\xe2\x82\xac", 5, 2},
        {"\xc3\xa9\xc3", 3, -1},
        /* A character cut short by the end: not refused, not complete. */
        {"\xc3", 1, -1},
        {"\xe2\x82", 2, -1},
        {"\xf0\x9f\x98", 3, -1},
        {"abc\xf4\x8f", 5, -1},
        {"\xed\x9f", 2, -1},
        /* Invalid after a long valid run, past the ASCII fast path. */
        {"0123456789abcdefghij\xc0\xaf", 22, 20},
        {"0123456789abcdefghi\xed\xa0\x80", 22, 20},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const uint8_t *s = (const uint8_t *)cases[i].s;
        int complete = 1;
        long bad = fail_index_bytewise(s, cases[i].n, &complete);
        if (!CHECK_EQ(bad, cases[i].bad))
            printf("  case %zu\n", i);
        CHECK_EQ(complete, 0);
        ua_utf8 st;
        ua_utf8_init(&st);
        CHECK_EQ(ua_utf8_feed(&st, s, cases[i].n), cases[i].bad >= 0 ? -1 : 0);
        CHECK(!ua_utf8_complete(&st));
        CHECK(utf8_agrees(s, cases[i].n));
    }
}

/* Every code point, encoded: all valid but the surrogates, which are
 * refused at their second byte. */
static void test_utf8_every_code_point(void)
{
    int ok = 1;
    for (uint32_t cp = 0; cp <= 0x10FFFF && ok; cp++) {
        uint8_t b[4];
        size_t n = encode(cp, b);
        int complete = 0;
        long bad = fail_index_bytewise(b, n, &complete);
        if (cp >= 0xD800 && cp <= 0xDFFF) {
            ok = CHECK_EQ(bad, 1);
        } else {
            ok = CHECK_EQ(bad, -1) && CHECK(complete);
            if (!ok)
                printf("  U+%04X\n", (unsigned)cp);
        }
    }
    /* And beyond, up to what 4 bytes can hold. */
    for (uint32_t cp = 0x110000; cp < 0x200000 && ok; cp += 0x1111) {
        uint8_t b[4];
        int complete;
        ok = CHECK_EQ(fail_index_bytewise(b, encode(cp, b), &complete), cp < 0x140000 ? 1 : 0);
    }
    /* Overlong forms of every code point that has a shorter one. */
    for (uint32_t cp = 0; cp < 0x10000 && ok; cp++) {
        uint8_t b[4] = {0xF0, (uint8_t)(0x80 | cp >> 12), (uint8_t)(0x80 | ((cp >> 6) & 63)),
                        (uint8_t)(0x80 | (cp & 63))};
        int complete;
        ok = CHECK_EQ(fail_index_bytewise(b, 4, &complete), 1);
        if (cp < 0x800) {
            uint8_t c[3] = {0xE0, (uint8_t)(0x80 | cp >> 6), (uint8_t)(0x80 | (cp & 63))};
            ok = CHECK_EQ(fail_index_bytewise(c, 3, &complete), 1) && ok;
        }
        if (cp < 0x80) {
            uint8_t c[2] = {(uint8_t)(0xC0 | cp >> 6), (uint8_t)(0x80 | (cp & 63))};
            ok = CHECK_EQ(fail_index_bytewise(c, 2, &complete), 0) && ok;
        }
    }
}

/* All strings of one and two bytes, the 3- and 4-byte ones over a set of
 * bytes that covers every boundary, against the reference. */
static void test_utf8_short_strings_exhaustive(void)
{
    static const uint8_t edge[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0,
                                   0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xED, 0xEF,
                                   0xF0, 0xF4, 0xF5, 0xFF};
    enum { NE = sizeof(edge) };
    int ok = 1;
    for (int a = 0; a < 256 && ok; a++) {
        uint8_t s[4] = {(uint8_t)a};
        int rc = 0, c = 0;
        long r = ref_utf8(s, 1, &rc);
        long f = fail_index_bytewise(s, 1, &c);
        ok = CHECK_EQ(f, r) && (r >= 0 || CHECK_EQ(c, rc));
        for (int b = 0; b < 256 && ok; b++) {
            s[1] = (uint8_t)b;
            r = ref_utf8(s, 2, &rc);
            f = fail_index_bytewise(s, 2, &c);
            ok = CHECK_EQ(f, r) && (r >= 0 || CHECK_EQ(c, rc));
            for (int x = 0; x < NE && ok; x++) {
                s[2] = edge[x];
                r = ref_utf8(s, 3, &rc);
                f = fail_index_bytewise(s, 3, &c);
                ok = CHECK_EQ(f, r) && (r >= 0 || CHECK_EQ(c, rc));
                if (a < 0xF0 || a > 0xF4)
                    continue;
                for (int y = 0; y < NE && ok; y++) {
                    s[3] = edge[y];
                    r = ref_utf8(s, 4, &rc);
                    f = fail_index_bytewise(s, 4, &c);
                    ok = CHECK_EQ(f, r) && (r >= 0 || CHECK_EQ(c, rc));
                }
            }
        }
        if (!ok)
            printf("  first byte %02X\n", a);
    }
}

/* Random mixes of valid characters, ASCII runs (for the fast path at every
 * alignment) and random bytes, whole and in pieces, against the reference. */
static void test_utf8_random_vs_reference(void)
{
    enum { MAX = 256 };
    uint8_t s[MAX + 8];
    int ok = 1;
    for (int iter = 0; iter < 20000 && ok; iter++) {
        size_t n = 0;
        int valid_only = check_rand_below(3) == 0;
        while (n < MAX) {
            unsigned kind = check_rand_below(10);
            if (kind < 3) {
                size_t run = check_rand_below(24);
                for (size_t i = 0; i < run && n < MAX; i++)
                    s[n++] = (uint8_t)(0x20 + check_rand_below(0x5F));
            } else if (kind < 9 || valid_only) {
                static const uint32_t top[] = {0x80, 0x800, 0x10000, 0x110000};
                uint32_t cp;
                do
                    cp = check_rand_below(top[check_rand_below(4)]);
                while (cp >= 0xD800 && cp <= 0xDFFF);
                n += encode(cp, s + n);
            } else {
                s[n++] = (uint8_t)check_rand();
            }
            if (check_rand_below(8) == 0)
                break;
        }
        /* Sometimes cut inside the last character. */
        if (n && check_rand_below(4) == 0)
            n--;
        ok = utf8_agrees(s, n);
    }
}

static void test_utf8_invalid_is_final(void)
{
    ua_utf8 st;
    ua_utf8_init(&st);
    CHECK_EQ(ua_utf8_feed(&st, (const uint8_t *)"ok \xff", 4), -1);
    CHECK_EQ(ua_utf8_feed(&st, (const uint8_t *)"fine", 4), -1);
    CHECK_EQ(ua_utf8_feed(&st, NULL, 0), -1);
    CHECK(!ua_utf8_complete(&st));
    /* Zero-initialised state works as initialised state does. */
    ua_utf8 z = {0, 0, 0};
    CHECK_EQ(ua_utf8_feed(&z, (const uint8_t *)"\xc3", 1), 0);
    CHECK(!ua_utf8_complete(&z));
    CHECK_EQ(ua_utf8_feed(&z, (const uint8_t *)"\xa9", 1), 0);
    CHECK(ua_utf8_complete(&z));
    /* An empty feed changes nothing, in the middle of a character too. */
    ua_utf8_init(&st);
    CHECK_EQ(ua_utf8_feed(&st, (const uint8_t *)"\xf0\x9f", 2), 0);
    CHECK_EQ(ua_utf8_feed(&st, NULL, 0), 0);
    CHECK_EQ(ua_utf8_feed(&st, (const uint8_t *)"\x98\x80", 2), 0);
    CHECK(ua_utf8_complete(&st));
}

/* ---- Messages ------------------------------------------------------------ */

static ua_ws_header hdr(int fin, int opcode, uint64_t len)
{
    ua_ws_header h;
    memset(&h, 0, sizeof(h));
    h.fin = (uint8_t)fin;
    h.opcode = (uint8_t)opcode;
    h.masked = 1;
    h.len = len;
    return h;
}

/* One whole frame through start, data (in one piece) and end. Returns the
 * first error, or what the end gave. */
static int frame(ua_ws_conn *c, int fin, int opcode, const char *data, size_t len)
{
    ua_ws_header h = hdr(fin, opcode, len);
    int r = ua_ws_on_frame_start(c, &h);
    if (r < 0)
        return r;
    int want = opcode & 8 ? UA_WS_CONTROL_FRAME : UA_WS_DATA_FRAME;
    if (r != want)
        return -1;
    r = ua_ws_on_data(c, (const uint8_t *)data, len);
    if (r < 0)
        return r;
    return ua_ws_on_frame_end(c, &h);
}

#define FRAME(c, fin, op, s) frame(c, fin, op, s, sizeof(s) - 1)

static void test_conn_single_frame_messages(void)
{
    ua_ws_conn c;
    ua_ws_conn_init(&c, &SERVER);
    CHECK_EQ(c.in_message, 0);
    CHECK_EQ(FRAME(&c, 1, UA_WS_TEXT, "hello"), UA_WS_MESSAGE_DONE);
    CHECK_EQ(c.in_message, 0);
    CHECK_EQ(c.opcode, UA_WS_TEXT);
    CHECK_EQ(c.msg_len, 5);
    CHECK_EQ(FRAME(&c, 1, UA_WS_BINARY, "\xff\xfe\x00"), UA_WS_MESSAGE_DONE);
    CHECK_EQ(c.opcode, UA_WS_BINARY);
    CHECK_EQ(FRAME(&c, 1, UA_WS_TEXT, ""), UA_WS_MESSAGE_DONE);
    CHECK_EQ(FRAME(&c, 1, UA_WS_TEXT, "\xe2\x82\xac"), UA_WS_MESSAGE_DONE);
    CHECK_EQ(FRAME(&c, 1, UA_WS_PING, "p"), UA_WS_CONTROL_DONE);
    CHECK_EQ(FRAME(&c, 1, UA_WS_PONG, ""), UA_WS_CONTROL_DONE);
    CHECK_EQ(c.close_received, 0);
}

static void test_conn_fragmented_with_control_between(void)
{
    ua_ws_conn c;
    ua_ws_conn_init(&c, &SERVER);
    CHECK_EQ(FRAME(&c, 0, UA_WS_TEXT, "Hel"), UA_WS_FRAGMENT_DONE);
    CHECK_EQ(c.in_message, 1);
    CHECK_EQ(c.opcode, UA_WS_TEXT);
    /* A ping with a payload that is not UTF-8 does not touch the message. */
    CHECK_EQ(FRAME(&c, 1, UA_WS_PING, "\xff\xc3"), UA_WS_CONTROL_DONE);
    CHECK_EQ(c.in_message, 1);
    CHECK_EQ(c.opcode, UA_WS_TEXT);
    CHECK_EQ(c.msg_len, 3);
    CHECK_EQ(FRAME(&c, 0, UA_WS_CONT, ""), UA_WS_FRAGMENT_DONE);
    CHECK_EQ(FRAME(&c, 1, UA_WS_PONG, "x"), UA_WS_CONTROL_DONE);
    CHECK_EQ(FRAME(&c, 1, UA_WS_CONT, "lo"), UA_WS_MESSAGE_DONE);
    CHECK_EQ(c.in_message, 0);
    CHECK_EQ(c.msg_len, 5);
    /* A binary message in fragments, then a new text message. */
    CHECK_EQ(FRAME(&c, 0, UA_WS_BINARY, "\x80"), UA_WS_FRAGMENT_DONE);
    CHECK_EQ(FRAME(&c, 0, UA_WS_CONT, "\xff"), UA_WS_FRAGMENT_DONE);
    CHECK_EQ(FRAME(&c, 1, UA_WS_CONT, "\xc0"), UA_WS_MESSAGE_DONE);
    CHECK_EQ(c.msg_len, 3);
    CHECK_EQ(FRAME(&c, 1, UA_WS_TEXT, "ok"), UA_WS_MESSAGE_DONE);
    CHECK_EQ(c.msg_len, 2);
    /* A close between fragments ends the reading. */
    CHECK_EQ(FRAME(&c, 0, UA_WS_TEXT, "a"), UA_WS_FRAGMENT_DONE);
    CHECK_EQ(FRAME(&c, 1, UA_WS_CLOSE, "\x03\xe8"), UA_WS_CONTROL_DONE);
    CHECK_EQ(c.close_received, 1);
}

static void test_conn_continuation_without_message(void)
{
    ua_ws_conn c;
    ua_ws_conn_init(&c, &SERVER);
    CHECK_EQ(FRAME(&c, 1, UA_WS_CONT, "x"), -1002);
    ua_ws_conn_init(&c, &SERVER);
    CHECK_EQ(FRAME(&c, 0, UA_WS_CONT, "x"), -1002);
    /* After a whole message there is none to continue either. */
    ua_ws_conn_init(&c, &SERVER);
    CHECK_EQ(FRAME(&c, 1, UA_WS_TEXT, "done"), UA_WS_MESSAGE_DONE);
    CHECK_EQ(FRAME(&c, 1, UA_WS_CONT, "more"), -1002);
    ua_ws_conn_init(&c, &SERVER);
    CHECK_EQ(FRAME(&c, 0, UA_WS_BINARY, "a"), UA_WS_FRAGMENT_DONE);
    CHECK_EQ(FRAME(&c, 1, UA_WS_CONT, "b"), UA_WS_MESSAGE_DONE);
    CHECK_EQ(FRAME(&c, 0, UA_WS_CONT, "c"), -1002);
    /* A control frame does not start a message. */
    ua_ws_conn_init(&c, &SERVER);
    CHECK_EQ(FRAME(&c, 1, UA_WS_PING, ""), UA_WS_CONTROL_DONE);
    CHECK_EQ(FRAME(&c, 1, UA_WS_CONT, ""), -1002);
}

static void test_conn_data_frame_inside_fragmented_message(void)
{
    static const int ops[] = {UA_WS_TEXT, UA_WS_BINARY};
    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 2; j++) {
            for (int fin = 0; fin <= 1; fin++) {
                ua_ws_conn c;
                ua_ws_conn_init(&c, &SERVER);
                CHECK_EQ(FRAME(&c, 0, ops[i], "a"), UA_WS_FRAGMENT_DONE);
                CHECK_EQ(FRAME(&c, 0, UA_WS_CONT, "b"), UA_WS_FRAGMENT_DONE);
                CHECK_EQ(FRAME(&c, fin, ops[j], "c"), -1002);
            }
        }
    }
}

static void test_conn_invalid_utf8_across_fragments(void)
{
    ua_ws_conn c;
    /* The first fragment ends inside a character that the second breaks:
     * refused in the data of the second, before its end. */
    ua_ws_conn_init(&c, &SERVER);
    CHECK_EQ(FRAME(&c, 0, UA_WS_TEXT, "caf\xc3"), UA_WS_FRAGMENT_DONE);
    ua_ws_header h = hdr(1, UA_WS_CONT, 2);
    CHECK_EQ(ua_ws_on_frame_start(&c, &h), UA_WS_DATA_FRAME);
    CHECK_EQ(ua_ws_on_data(&c, (const uint8_t *)"A", 1), -1007);
    /* A surrogate split across three fragments, refused at its second byte. */
    ua_ws_conn_init(&c, &SERVER);
    CHECK_EQ(FRAME(&c, 0, UA_WS_TEXT, "x\xed"), UA_WS_FRAGMENT_DONE);
    CHECK_EQ(FRAME(&c, 0, UA_WS_CONT, "\xa0"), -1007);
    /* A code point over U+10FFFF split 1 + 3. */
    ua_ws_conn_init(&c, &SERVER);
    CHECK_EQ(FRAME(&c, 0, UA_WS_TEXT, "\xf4"), UA_WS_FRAGMENT_DONE);
    CHECK_EQ(FRAME(&c, 1, UA_WS_CONT, "\x90\x80\x80"), -1007);
    /* Overlong split 1 + 1. */
    ua_ws_conn_init(&c, &SERVER);
    CHECK_EQ(FRAME(&c, 0, UA_WS_TEXT, "\xe0"), UA_WS_FRAGMENT_DONE);
    CHECK_EQ(FRAME(&c, 1, UA_WS_CONT, "\x80\x80"), -1007);
    /* Refused in the middle of a fragment, as soon as the bad byte is in:
     * the rest of the frame need not be read. */
    ua_ws_conn_init(&c, &SERVER);
    h = hdr(0, UA_WS_TEXT, 1000);
    CHECK_EQ(ua_ws_on_frame_start(&c, &h), UA_WS_DATA_FRAME);
    CHECK_EQ(ua_ws_on_data(&c, (const uint8_t *)"fine so far ", 12), 0);
    CHECK_EQ(ua_ws_on_data(&c, (const uint8_t *)"\xc0\xaf", 2), -1007);
}

/* A valid text split into three fragments at every pair of points, each
 * fragment's data given in two pieces at every point: always accepted. */
static void test_conn_valid_utf8_split_anywhere(void)
{
    const char *text = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z";
    size_t n = strlen(text);
    int ok = 1;
    for (size_t i = 0; i <= n && ok; i++) {
        for (size_t j = i; j <= n && ok; j++) {
            size_t cut[4] = {0, i, j, n};
            ua_ws_conn c;
            ua_ws_conn_init(&c, &SERVER);
            for (int f = 0; f < 3 && ok; f++) {
                size_t len = cut[f + 1] - cut[f];
                ua_ws_header h = hdr(f == 2, f ? UA_WS_CONT : UA_WS_TEXT, len);
                ok = CHECK_EQ(ua_ws_on_frame_start(&c, &h), UA_WS_DATA_FRAME);
                size_t half = len / 2;
                const uint8_t *p = (const uint8_t *)text + cut[f];
                ok = ok && CHECK_EQ(ua_ws_on_data(&c, p, half), 0) &&
                     CHECK_EQ(ua_ws_on_data(&c, p + half, len - half), 0);
                ok = ok && CHECK_EQ(ua_ws_on_frame_end(&c, &h),
                                    f == 2 ? UA_WS_MESSAGE_DONE : UA_WS_FRAGMENT_DONE);
            }
            ok = ok && CHECK_EQ(c.msg_len, n);
        }
    }
}

static void test_conn_text_ends_inside_character(void)
{
    ua_ws_conn c;
    ua_ws_conn_init(&c, &SERVER);
    CHECK_EQ(FRAME(&c, 1, UA_WS_TEXT, "abc\xe2\x82"), -1007);
    /* The same bytes end a fragment without complaint... */
    ua_ws_conn_init(&c, &SERVER);
    CHECK_EQ(FRAME(&c, 0, UA_WS_TEXT, "abc\xe2\x82"), UA_WS_FRAGMENT_DONE);
    /* ...and the message can still be finished, or end cut short. */
    CHECK_EQ(FRAME(&c, 1, UA_WS_CONT, "\xac"), UA_WS_MESSAGE_DONE);
    CHECK_EQ(FRAME(&c, 0, UA_WS_TEXT, "\xf0\x9f"), UA_WS_FRAGMENT_DONE);
    CHECK_EQ(FRAME(&c, 1, UA_WS_CONT, "\x98"), -1007);
    ua_ws_conn_init(&c, &SERVER);
    CHECK_EQ(FRAME(&c, 0, UA_WS_TEXT, "\xc3"), UA_WS_FRAGMENT_DONE);
    CHECK_EQ(FRAME(&c, 1, UA_WS_CONT, ""), -1007);
    /* A binary message may end any way it likes. */
    ua_ws_conn_init(&c, &SERVER);
    CHECK_EQ(FRAME(&c, 1, UA_WS_BINARY, "abc\xe2\x82"), UA_WS_MESSAGE_DONE);
    CHECK_EQ(FRAME(&c, 1, UA_WS_BINARY, "\xed\xa0\x80\xff"), UA_WS_MESSAGE_DONE);
}

/* The UTF-8 state starts afresh with each text message, and binary
 * messages never touch it. */
static void test_conn_utf8_state_per_message(void)
{
    ua_ws_conn c;
    ua_ws_conn_init(&c, &SERVER);
    CHECK_EQ(FRAME(&c, 1, UA_WS_TEXT, "\xc3\xa9"), UA_WS_MESSAGE_DONE);
    /* Were "\xc3" fed to the validator, the "\xa9" after it would pass. */
    CHECK_EQ(FRAME(&c, 1, UA_WS_BINARY, "\xc3"), UA_WS_MESSAGE_DONE);
    CHECK_EQ(FRAME(&c, 1, UA_WS_TEXT, "\xa9"), -1007);
    ua_ws_conn_init(&c, &SERVER);
    CHECK_EQ(FRAME(&c, 0, UA_WS_BINARY, "\xe2"), UA_WS_FRAGMENT_DONE);
    CHECK_EQ(FRAME(&c, 1, UA_WS_CONT, "\x82"), UA_WS_MESSAGE_DONE);
    CHECK_EQ(FRAME(&c, 0, UA_WS_TEXT, "\xac"), -1007);
}

static void test_conn_message_size_limit(void)
{
    ua_ws_limits lim = {.max_message = 10, .masked = 1};
    ua_ws_conn c;
    ua_ws_conn_init(&c, &lim);
    /* Exactly the limit over three fragments, with control frames between
     * that do not count. */
    CHECK_EQ(FRAME(&c, 0, UA_WS_TEXT, "1234"), UA_WS_FRAGMENT_DONE);
    CHECK_EQ(FRAME(&c, 1, UA_WS_PING, "0123456789abcdef"), UA_WS_CONTROL_DONE);
    CHECK_EQ(FRAME(&c, 0, UA_WS_CONT, "567"), UA_WS_FRAGMENT_DONE);
    CHECK_EQ(FRAME(&c, 1, UA_WS_CONT, "890"), UA_WS_MESSAGE_DONE);
    CHECK_EQ(c.msg_len, 10);
    /* The count starts again with each message. */
    CHECK_EQ(FRAME(&c, 1, UA_WS_BINARY, "0123456789"), UA_WS_MESSAGE_DONE);
    /* One byte over, in the last fragment: refused at its start. */
    CHECK_EQ(FRAME(&c, 0, UA_WS_BINARY, "12345"), UA_WS_FRAGMENT_DONE);
    CHECK_EQ(FRAME(&c, 0, UA_WS_CONT, ""), UA_WS_FRAGMENT_DONE);
    ua_ws_header h = hdr(1, UA_WS_CONT, 6);
    CHECK_EQ(ua_ws_on_frame_start(&c, &h), -1009);
    /* A single frame over the limit. */
    ua_ws_conn_init(&c, &lim);
    h = hdr(1, UA_WS_TEXT, 11);
    CHECK_EQ(ua_ws_on_frame_start(&c, &h), -1009);
    /* Counted by declared lengths, with no overflow even near 2**64. */
    ua_ws_limits big = {.max_message = UINT64_MAX, .masked = 1};
    ua_ws_conn_init(&c, &big);
    h = hdr(0, UA_WS_BINARY, INT64_MAX);
    CHECK_EQ(ua_ws_on_frame_start(&c, &h), UA_WS_DATA_FRAME);
    CHECK_EQ(ua_ws_on_frame_end(&c, &h), UA_WS_FRAGMENT_DONE);
    h = hdr(0, UA_WS_CONT, INT64_MAX);
    CHECK_EQ(ua_ws_on_frame_start(&c, &h), UA_WS_DATA_FRAME);
    CHECK_EQ(ua_ws_on_frame_end(&c, &h), UA_WS_FRAGMENT_DONE);
    CHECK_EQ(c.msg_len, UINT64_MAX - 1);
    h = hdr(0, UA_WS_CONT, 2);
    CHECK_EQ(ua_ws_on_frame_start(&c, &h), -1009);
    h = hdr(0, UA_WS_CONT, UINT64_MAX);
    CHECK_EQ(ua_ws_on_frame_start(&c, &h), -1009);
    h = hdr(0, UA_WS_CONT, 1);
    CHECK_EQ(ua_ws_on_frame_start(&c, &h), UA_WS_DATA_FRAME);
    CHECK_EQ(ua_ws_on_frame_end(&c, &h), UA_WS_FRAGMENT_DONE);
    CHECK_EQ(c.msg_len, UINT64_MAX);
    h = hdr(1, UA_WS_CONT, 1);
    CHECK_EQ(ua_ws_on_frame_start(&c, &h), -1009);
    h = hdr(1, UA_WS_CONT, 0);
    CHECK_EQ(ua_ws_on_frame_start(&c, &h), UA_WS_DATA_FRAME);
    CHECK_EQ(ua_ws_on_frame_end(&c, &h), UA_WS_MESSAGE_DONE);
}

static void test_conn_close_rules(void)
{
    ua_ws_conn c;
    ua_ws_conn_init(&c, &SERVER);
    CHECK_EQ(FRAME(&c, 1, UA_WS_CLOSE, ""), UA_WS_CONTROL_DONE);
    CHECK_EQ(c.close_received, 1);
    /* Nothing may follow the peer's close. */
    CHECK_EQ(FRAME(&c, 1, UA_WS_TEXT, "late"), -1002);
    CHECK_EQ(FRAME(&c, 1, UA_WS_PING, ""), -1002);
    CHECK_EQ(FRAME(&c, 1, UA_WS_CLOSE, ""), -1002);
    /* After our own close, the peer's frames still come until its close. */
    ua_ws_conn_init(&c, &SERVER);
    c.close_sent = 1;
    CHECK_EQ(FRAME(&c, 0, UA_WS_TEXT, "still "), UA_WS_FRAGMENT_DONE);
    CHECK_EQ(FRAME(&c, 1, UA_WS_CONT, "talking"), UA_WS_MESSAGE_DONE);
    CHECK_EQ(FRAME(&c, 1, UA_WS_PING, ""), UA_WS_CONTROL_DONE);
    CHECK_EQ(FRAME(&c, 1, UA_WS_CLOSE, "\x03\xe8"), UA_WS_CONTROL_DONE);
    CHECK_EQ(c.close_received, 1);
    CHECK_EQ(c.close_sent, 1);
    /* Starting a close frame is not receiving it. */
    ua_ws_conn_init(&c, &SERVER);
    ua_ws_header h = hdr(1, UA_WS_CLOSE, 2);
    CHECK_EQ(ua_ws_on_frame_start(&c, &h), UA_WS_CONTROL_FRAME);
    CHECK_EQ(c.close_received, 0);
    CHECK_EQ(ua_ws_on_data(&c, (const uint8_t *)"\x03\xe8", 2), 0);
    CHECK_EQ(ua_ws_on_frame_end(&c, &h), UA_WS_CONTROL_DONE);
    CHECK_EQ(c.close_received, 1);
}

/* ---- A whole client stream through the pipeline ------------------------- */

typedef struct reader {
    ua_ws_conn conn;
    ua_ws_limits lim;
    char log[4096];        /* messages and control frames as read */
    size_t log_len;
} reader;

static void log_put(reader *r, const void *p, size_t n)
{
    if (n > sizeof(r->log) - r->log_len)
        n = sizeof(r->log) - r->log_len;
    if (n)
        memcpy(r->log + r->log_len, p, n);
    r->log_len += n;
}

/* Reads a client byte stream the way a server does, the header from
 * prefixes that grow by random amounts and the payload unmasked and checked
 * in random pieces. Messages go to the log followed by '|', control frames
 * as "[opcode:payload]". Returns 0 at the end of the stream or the first
 * negative status. */
static int read_stream(reader *r, uint8_t *s, size_t n)
{
    size_t pos = 0;
    while (pos < n) {
        ua_ws_header h;
        size_t avail = 0;
        int hl = 0;
        while (hl == 0) {
            if (avail == n - pos)
                return 0;   /* the stream ends inside a header */
            avail += 1 + check_rand_below(4);
            if (avail > n - pos)
                avail = n - pos;
            hl = ua_ws_parse_header(s + pos, avail, &h, &r->lim);
        }
        if (hl < 0)
            return hl;
        pos += (size_t)hl;
        int act = ua_ws_on_frame_start(&r->conn, &h);
        if (act < 0)
            return act;
        if (h.len > n - pos)
            return 0;   /* truncated stream: not expected in these tests */
        if (act == UA_WS_CONTROL_FRAME) {
            char tag[8];
            snprintf(tag, sizeof(tag), "[%d:", h.opcode);
            log_put(r, tag, strlen(tag));
        }
        size_t done = 0;
        while (done < h.len) {
            size_t k = 1 + check_rand_below(9);
            if (k > h.len - done)
                k = (size_t)h.len - done;
            ua_ws_unmask(s + pos + done, k, h.mask, done);
            int e = ua_ws_on_data(&r->conn, s + pos + done, k);
            if (e < 0)
                return e;
            log_put(r, s + pos + done, k);
            done += k;
        }
        pos += (size_t)h.len;
        int end = ua_ws_on_frame_end(&r->conn, &h);
        if (end < 0)
            return end;
        if (end == UA_WS_MESSAGE_DONE)
            log_put(r, "|", 1);
        else if (end == UA_WS_CONTROL_DONE)
            log_put(r, "]", 1);
    }
    return 0;
}

static void reader_init(reader *r, uint64_t max)
{
    r->lim.max_message = max;
    r->lim.masked = 1;
    ua_ws_conn_init(&r->conn, &r->lim);
    r->log_len = 0;
}

static int log_is(const reader *r, const char *want)
{
    size_t n = strlen(want);
    if (r->log_len == n && memcmp(r->log, want, n) == 0)
        return 1;
    printf("  log: %.*s\n  want: %s\n", (int)r->log_len, r->log, want);
    return 0;
}

static void test_stream_end_to_end(void)
{
    uint8_t s[1024];
    for (int round = 0; round < 200; round++) {
        uint8_t key[4];
        for (int i = 0; i < 4; i++)
            key[i] = (uint8_t)check_rand();
        size_t n = 0;
        n += client_frame(s + n, 1, UA_WS_TEXT, "Hello", 5, key);
        n += client_frame(s + n, 0, UA_WS_TEXT, "caf\xc3", 4, key);
        n += client_frame(s + n, 1, UA_WS_PING, "are you there", 13, key);
        n += client_frame(s + n, 0, UA_WS_CONT, "\xa9 ", 2, key);
        n += client_frame(s + n, 1, UA_WS_CONT, "au lait", 7, key);
        char big[300];
        for (int i = 0; i < 300; i++)
            big[i] = (char)('a' + i % 26);
        n += client_frame(s + n, 1, UA_WS_BINARY, big, 300, key);
        n += client_frame(s + n, 1, UA_WS_CLOSE, "\x03\xe8" "bye", 5, key);
        reader r;
        reader_init(&r, 1000);
        if (!CHECK_EQ(read_stream(&r, s, n), 0))
            break;
        /* The ping arrives inside the text message, and is logged there. */
        char want[600];
        int w = snprintf(want, sizeof(want), "Hello|caf\xc3[9:are you there]\xa9 au lait|%.300s|[8:\x03\xe8" "bye]",
                     big);
        if (!CHECK(w > 0 && log_is(&r, want)))
            break;
        CHECK_EQ(r.conn.close_received, 1);
        /* The close payload read back. */
        int code;
        const uint8_t *reason;
        size_t reason_len;
        const char *close_at = memmem(r.log, r.log_len, "[8:", 3);
        CHECK(close_at != NULL);
        if (close_at) {
            CHECK_EQ(ua_ws_parse_close((const uint8_t *)close_at + 3, 5, &code, &reason,
                                       &reason_len), 0);
            CHECK_EQ(code, 1000);
            CHECK(reason_len == 3 && memcmp(reason, "bye", 3) == 0);
        }
    }
}

static void test_stream_errors(void)
{
    uint8_t s[512];
    const uint8_t key[4] = {0xde, 0xad, 0xbe, 0xef};
    reader r;
    size_t n;

    /* Invalid UTF-8 split across fragments, with a ping between. */
    n = client_frame(s, 0, UA_WS_TEXT, "ok \xe2\x82", 5, key);
    n += client_frame(s + n, 1, UA_WS_PING, "", 0, key);
    n += client_frame(s + n, 1, UA_WS_CONT, "(", 1, key);
    reader_init(&r, 1000);
    CHECK_EQ(read_stream(&r, s, n), -1007);

    /* A reserved bit. */
    n = client_frame(s, 1, UA_WS_TEXT, "x", 1, key);
    s[0] |= 0x40;
    reader_init(&r, 1000);
    CHECK_EQ(read_stream(&r, s, n), -1002);

    /* An unmasked frame after a good one. */
    n = client_frame(s, 1, UA_WS_TEXT, "x", 1, key);
    n += ua_ws_build_header(s + n, 1, UA_WS_TEXT, 1);
    s[n++] = 'y';
    reader_init(&r, 1000);
    CHECK_EQ(read_stream(&r, s, n), -1002);
    CHECK(log_is(&r, "x|"));

    /* Too big, counting fragments. */
    char data[60];
    memset(data, 'd', sizeof(data));
    n = client_frame(s, 0, UA_WS_BINARY, data, 60, key);
    n += client_frame(s + n, 1, UA_WS_CONT, data, 41, key);
    reader_init(&r, 100);
    CHECK_EQ(read_stream(&r, s, n), -1009);
    reader_init(&r, 101);
    CHECK_EQ(read_stream(&r, s, n), 0);

    /* A fragmented ping. */
    n = client_frame(s, 0, UA_WS_PING, "p", 1, key);
    reader_init(&r, 100);
    CHECK_EQ(read_stream(&r, s, n), -1002);

    /* A text frame in the middle of a fragmented binary message. */
    n = client_frame(s, 0, UA_WS_BINARY, "a", 1, key);
    n += client_frame(s + n, 1, UA_WS_TEXT, "b", 1, key);
    reader_init(&r, 100);
    CHECK_EQ(read_stream(&r, s, n), -1002);
}

/* ---- Close frames --------------------------------------------------------- */

/* Written out the long way, from RFC 6455 section 7.4 and the IANA
 * registry, to check ua_ws_close_code_valid against. */
static int code_valid_by_list(int code)
{
    static const int assigned[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009,
                                   1010, 1011, 1012, 1013, 1014};
    for (size_t i = 0; i < sizeof(assigned) / sizeof(assigned[0]); i++)
        if (code == assigned[i])
            return 1;
    return code >= 3000 && code < 5000;
}

static void test_close_codes(void)
{
    int ok = 1;
    for (int code = 0; code < 65536 && ok; code++) {
        ok = CHECK_EQ(ua_ws_close_code_valid(code), code_valid_by_list(code));
        uint8_t p[2] = {(uint8_t)(code >> 8), (uint8_t)code};
        int got = -1;
        const uint8_t *reason = (const uint8_t *)"junk";
        size_t reason_len = 99;
        int r = ua_ws_parse_close(p, 2, &got, &reason, &reason_len);
        if (code_valid_by_list(code)) {
            ok = CHECK_EQ(r, 0) && CHECK_EQ(got, code) && CHECK_EQ(reason_len, 0) && ok;
        } else {
            ok = CHECK_EQ(r, -1002) && ok;
        }
        if (!ok)
            printf("  code %d\n", code);
    }
    static const int bad[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(!ua_ws_close_code_valid(bad[i]));
    static const int good[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011,
                               1012, 1013, 1014, 3000, 3999, 4000, 4999};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        CHECK(ua_ws_close_code_valid(good[i]));
    CHECK(!ua_ws_close_code_valid(-1000));
}

static void test_close_parse(void)
{
    int code = 0;
    const uint8_t *reason = (const uint8_t *)"x";
    size_t reason_len = 5;
    /* Empty: no status. */
    CHECK_EQ(ua_ws_parse_close(NULL, 0, &code, &reason, &reason_len), 0);
    CHECK_EQ(code, UA_WS_STATUS_NONE);
    CHECK(reason == NULL);
    CHECK_EQ(reason_len, 0);
    /* One byte: half a code. */
    CHECK_EQ(ua_ws_parse_close((const uint8_t *)"\x03", 1, &code, &reason, &reason_len), -1002);
    /* A code and a reason. */
    const uint8_t p[] = "\x03\xe9going \xe2\x86\x92 away";
    CHECK_EQ(ua_ws_parse_close(p, sizeof(p) - 1, &code, &reason, &reason_len), 0);
    CHECK_EQ(code, 1001);
    CHECK(reason == p + 2);
    CHECK_EQ(reason_len, sizeof(p) - 3);
    /* Reasons that are not UTF-8. */
    CHECK_EQ(ua_ws_parse_close((const uint8_t *)"\x03\xe8\xff", 3, &code, &reason, &reason_len),
             -1007);
    CHECK_EQ(ua_ws_parse_close((const uint8_t *)"\x03\xe8" "ab\xed\xa0\x80", 7, &code, &reason,
                               &reason_len),
             -1007);
    /* Cut inside a character. */
    CHECK_EQ(ua_ws_parse_close((const uint8_t *)"\x03\xe8" "ab\xe2\x86", 6, &code, &reason,
                               &reason_len),
             -1007);
    /* A bad code is reported before a bad reason. */
    CHECK_EQ(ua_ws_parse_close((const uint8_t *)"\x03\xed\xff", 3, &code, &reason, &reason_len),
             -1002);
    /* A 125-byte payload, the most a control frame has. */
    uint8_t full[125];
    full[0] = 0x0F;
    full[1] = 0xA0;   /* 4000 */
    memset(full + 2, 'r', 123);
    CHECK_EQ(ua_ws_parse_close(full, 125, &code, &reason, &reason_len), 0);
    CHECK_EQ(code, 4000);
    CHECK_EQ(reason_len, 123);
}

static void test_close_build_round_trip(void)
{
    uint8_t out[2 + UA_WS_MAX_REASON];
    int code;
    const uint8_t *reason;
    size_t reason_len;

    size_t n = ua_ws_build_close(out, 1000, NULL, 0);
    CHECK_EQ(n, 2);
    CHECK(memcmp(out, "\x03\xe8", 2) == 0);
    CHECK_EQ(ua_ws_parse_close(out, n, &code, &reason, &reason_len), 0);
    CHECK_EQ(code, 1000);
    CHECK_EQ(reason_len, 0);

    const char *why = "server going d\xc3\xb6wn";
    n = ua_ws_build_close(out, 1001, why, strlen(why));
    CHECK_EQ(n, 2 + strlen(why));
    CHECK_EQ(ua_ws_parse_close(out, n, &code, &reason, &reason_len), 0);
    CHECK_EQ(code, 1001);
    CHECK(reason_len == strlen(why) && memcmp(reason, why, reason_len) == 0);

    static const int codes[] = {1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
                                3000, 4321, 4999};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        n = ua_ws_build_close(out, codes[i], "r", 1);
        CHECK_EQ(n, 3);
        CHECK_EQ(ua_ws_parse_close(out, n, &code, &reason, &reason_len), 0);
        CHECK_EQ(code, codes[i]);
    }

    /* No status: the empty payload, which parses back to no status. */
    memset(out, 0xAA, sizeof(out));
    CHECK_EQ(ua_ws_build_close(out, UA_WS_STATUS_NONE, "ignored", 7), 0);
    CHECK_EQ(out[0], 0xAA);
    CHECK_EQ(ua_ws_parse_close(out, 0, &code, &reason, &reason_len), 0);
    CHECK_EQ(code, UA_WS_STATUS_NONE);
}

/* Reasons over 123 bytes are cut there, or just before the character that
 * byte 123 would split. The result always parses. */
static void test_close_build_truncates(void)
{
    static const struct {
        const char *unit;   /* repeated to make the reason */
        size_t kept;        /* reason bytes kept */
    } cases[] = {
        {"a", 123},
        {"\xc3\xa9", 122},            /* 2-byte: 123 is odd */
        {"\xe2\x82\xac", 123},        /* 3-byte: 41 of them fit exactly */
        {"\xf0\x9f\x98\x80", 120},    /* 4-byte: the 31st would need 124 */
        {"ab\xf0\x9f\x98\x80", 122},  /* 6-byte units: 20 fit, then "ab" */
    };
    char reason[400];
    uint8_t out[2 + UA_WS_MAX_REASON + 16];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t ul = strlen(cases[i].unit), n = 0;
        while (n + ul <= sizeof(reason)) {
            memcpy(reason + n, cases[i].unit, ul);
            n += ul;
        }
        memset(out, 0xAA, sizeof(out));
        size_t got = ua_ws_build_close(out, 1000, reason, n);
        if (!CHECK_EQ(got, 2 + cases[i].kept))
            printf("  case %zu\n", i);
        CHECK(memcmp(out + 2, reason, cases[i].kept) == 0);
        CHECK_EQ(out[2 + UA_WS_MAX_REASON], 0xAA);   /* nothing past the room */
        int code;
        const uint8_t *r;
        size_t rl;
        CHECK_EQ(ua_ws_parse_close(out, got, &code, &r, &rl), 0);
        CHECK_EQ(rl, cases[i].kept);
    }
    /* 123 bytes exactly, and 124 that end in the middle of a character. */
    memset(reason, 'x', 123);
    CHECK_EQ(ua_ws_build_close(out, 1000, reason, 123), 125);
    memcpy(reason + 122, "\xc3\xa9", 2);
    CHECK_EQ(ua_ws_build_close(out, 1000, reason, 124), 124);
    /* Every reason length of a mixed text: never over 125, always valid. */
    const char *unit = "z\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
    size_t n = 0;
    while (n + 10 <= sizeof(reason)) {
        memcpy(reason + n, unit, 10);
        n += 10;
    }
    for (size_t len = 0; len <= n; len += 10) {
        size_t got = ua_ws_build_close(out, 3000, reason, len);
        CHECK(got <= 125 && got >= 2);
        CHECK(got == 2 + len || (len > 123 && got >= 2 + 120));
        int code;
        const uint8_t *r;
        size_t rl;
        CHECK_EQ(ua_ws_parse_close(out, got, &code, &r, &rl), 0);
    }
}

int main(void)
{
    RUN(test_sha1_vectors);
    RUN(test_sha1_padding_edges);
    RUN(test_sha1_in_pieces);
    RUN(test_accept_key);
    RUN(test_parse_header_rfc_example);
    RUN(test_parse_header_byte_at_a_time);
    RUN(test_parse_header_reserved_bits);
    RUN(test_parse_header_opcodes);
    RUN(test_parse_header_mask_rule);
    RUN(test_parse_header_control_frames);
    RUN(test_parse_header_64bit_top_bit);
    RUN(test_parse_header_too_big);
    RUN(test_parse_header_non_minimal_lengths);
    RUN(test_build_header_bytes);
    RUN(test_build_header_round_trip);
    RUN(test_unmask_edges);
    RUN(test_unmask_in_pieces_random);
    RUN(test_utf8_valid_samples);
    RUN(test_utf8_invalid_samples);
    RUN(test_utf8_every_code_point);
    RUN(test_utf8_short_strings_exhaustive);
    RUN(test_utf8_random_vs_reference);
    RUN(test_utf8_invalid_is_final);
    RUN(test_conn_single_frame_messages);
    RUN(test_conn_fragmented_with_control_between);
    RUN(test_conn_continuation_without_message);
    RUN(test_conn_data_frame_inside_fragmented_message);
    RUN(test_conn_invalid_utf8_across_fragments);
    RUN(test_conn_valid_utf8_split_anywhere);
    RUN(test_conn_text_ends_inside_character);
    RUN(test_conn_utf8_state_per_message);
    RUN(test_conn_message_size_limit);
    RUN(test_conn_close_rules);
    RUN(test_stream_end_to_end);
    RUN(test_stream_errors);
    RUN(test_close_codes);
    RUN(test_close_parse);
    RUN(test_close_build_round_trip);
    RUN(test_close_build_truncates);
    return check_summary("test_wsproto");
}
