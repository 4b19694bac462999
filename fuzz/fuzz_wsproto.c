/* Fuzz target: WebSocket frame reading (src/core/wsproto.c) the way a
 * server reads a client: frame headers, unmasking, UTF-8 validation of text
 * messages, message assembly and close frames.
 *
 * Input: byte 0 % 16 is the count k of size bytes that follow; the rest is
 * the client's byte stream. The stream arrives in chunks whose sizes cycle
 * through the size bytes (v < 0x80: v + 1 bytes, else (v - 0x7F) * 64; no
 * size bytes: all at once). A reader loop like a real server's runs over
 * it, with limits {max_message, masked = 1}: max_message is 4096 when
 * byte 0 < 0x80, else a small one (0, 1, 2, 7, 64, 125, 126, 300 for
 * byte 0 >> 4 = 8..15), so that short inputs reach the limit's edge:
 *
 *   ua_ws_parse_header on what has arrived (0: wait for the next chunk)
 *   ua_ws_on_frame_start
 *   the payload, as it arrives, in pieces (sizes also taken from the size
 *   bytes): ua_ws_unmask(piece, offset), ua_ws_on_data
 *   ua_ws_on_frame_end; for a close frame, ua_ws_parse_close
 *
 * until an error (a negative status ends the connection, as in a server) or
 * the end of the input. Checks, besides no crash and no undefined behaviour:
 *   headers: the result is 0, -1002, -1009 or a length 2..14, as the rules
 *     in wsproto.h give it (a reference parser); 0 only with fewer than 14
 *     bytes; prefixes of the header give 0 until the byte that settles it,
 *     then the same result (errors are final, nothing past 14 bytes is
 *     read); every prefix is parsed where a heap block ends, so reading past
 *     it is caught; the parsed fields survive ua_ws_build_header and
 *     parsing again;
 *   unmasking: each piece equals the masked bytes XOR the key at its
 *     offset; the whole payload unmasked at once (at another alignment)
 *     equals the pieces; masking again, from an offset near SIZE_MAX that
 *     is a multiple of 4, gives the masked bytes back;
 *   messages: every result of on_frame_start / on_data / on_frame_end is
 *     the one a reference model of RFC 6455's rules gives (fragments,
 *     control frames between them, nothing after a close, 1009 on the whole
 *     message's size), and the conn's fields agree with the model; a text
 *     message is accepted exactly when it is valid UTF-8 by the reference
 *     checker in ref_utf8.h, and on_data fails (1007) exactly at the piece
 *     where the text stops being a prefix of valid UTF-8;
 *   close frames: ua_ws_parse_close's result, code and reason agree with the
 *     reference (code list from wsproto.h, reason UTF-8); a parsed close
 *     survives ua_ws_build_close and parsing again; a whole text message
 *     given to ua_ws_build_close as a reason is cut to 123 bytes at a
 *     character boundary, no shorter than needed. */
#include "ref_utf8.h"
#include "wsproto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                 \
        }                                                                            \
    } while (0)

#define MAX_MESSAGE 4096

static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
    uint8_t *q = malloc(n ? n : 1);
    CHECK(q != NULL);
    if (n)
        memcpy(q, p, n);
    return q;
}

/* ---- headers ------------------------------------------------------------------ */

/* The header rules of wsproto.h for a server (MASK must be 1), checked in
 * the order of the bytes that settle them: byte 0 (reserved bits, opcode,
 * FIN of a control frame), byte 1 (MASK), the top bit of a 64-bit length,
 * then the length's limits once the whole length field is in (a length
 * whose first bytes already show it too big is judged only then, as the
 * implementation does: at most 7 bytes later, within the 14 of a header). */
static int ref_parse_header(const uint8_t *b, size_t n, uint64_t max, ua_ws_header *out)
{
    if (n < 1)
        return 0;
    int fin = b[0] >> 7, rsv = (b[0] >> 4) & 7, op = b[0] & 15;
    int control = op == UA_WS_CLOSE || op == UA_WS_PING || op == UA_WS_PONG;
    int data = op == UA_WS_CONT || op == UA_WS_TEXT || op == UA_WS_BINARY;
    if (rsv != 0 || !(control || data) || (control && !fin))
        return -1002;
    if (n < 2)
        return 0;
    if (!(b[1] & 0x80))
        return -1002;   /* a client frame must be masked */
    uint64_t len;
    size_t at;
    switch (b[1] & 0x7F) {
    case 126:
        if (n < 4)
            return 0;
        len = (uint64_t)b[2] * 256 + b[3];
        at = 4;
        break;
    case 127:
        if (n < 3)
            return 0;
        if (b[2] >= 0x80)
            return -1002;
        if (n < 10)
            return 0;
        len = 0;
        for (size_t i = 0; i < 8; i++)
            len = len * 256 + b[2 + i];
        at = 10;
        break;
    default:
        len = b[1] & 0x7F;
        at = 2;
    }
    if (control && len > 125)
        return -1002;
    if (data && len > max)
        return -1009;
    if (n < at + 4)
        return 0;
    out->fin = (uint8_t)fin;
    out->rsv = 0;
    out->opcode = (uint8_t)op;
    out->masked = 1;
    memcpy(out->mask, b + at, 4);
    out->len = len;
    return (int)(at + 4);
}

static void check_header(const uint8_t *b, size_t n, int r, const ua_ws_header *h,
                         const ua_ws_limits *lim)
{
    ua_ws_header ref;
    int want = ref_parse_header(b, n, lim->max_message, &ref);
    CHECK(r == want);
    if (r > 0) {
        CHECK(r >= 2 && r <= UA_WS_MAX_HEADER);
        CHECK(h->fin == ref.fin && h->rsv == 0 && h->opcode == ref.opcode);
        CHECK(h->masked == 1 && memcmp(h->mask, ref.mask, 4) == 0);
        CHECK(h->len == ref.len);
    } else if (r == 0) {
        CHECK(n < UA_WS_MAX_HEADER);
    } else {
        CHECK(r == -1002 || r == -1009);
    }

    /* Prefixes, each ending where a heap block ends (a read past it is
     * caught): 0 until the byte that settles the result, then that result. */
    size_t top = n < UA_WS_MAX_HEADER ? n : UA_WS_MAX_HEADER;
    uint8_t *block = dup_exact(b, top);
    int settled = 0;
    for (size_t i = 0; i <= top; i++) {
        uint8_t *p = block + top - i;
        memcpy(p, b, i);
        ua_ws_header t;
        int ri = ua_ws_parse_header(p, i, &t, lim);
        if (ri != 0)
            settled = 1;
        if (settled)
            CHECK(ri == r);
        if (r > 0)
            CHECK(ri == ((size_t)r <= i ? r : 0));
    }
    CHECK(settled || r == 0);
    free(block);

    if (r > 0) {
        /* What the server would write for the same frame, unmasked and in
         * the shortest form, reads back the same. */
        uint8_t out[UA_WS_MAX_HEADER + 4];
        size_t hl = ua_ws_build_header(out, h->fin, h->opcode, h->len);
        CHECK(hl == (h->len <= 125 ? 2u : h->len <= 0xFFFF ? 4u : 10u));
        CHECK(hl + 4 <= (size_t)r);
        ua_ws_limits plain = {UINT64_MAX, 0};
        ua_ws_header t;
        CHECK(ua_ws_parse_header(out, hl, &t, &plain) == (int)hl);
        CHECK(t.fin == h->fin && t.opcode == h->opcode && t.len == h->len && t.masked == 0);
        CHECK(t.mask[0] == 0 && t.mask[1] == 0 && t.mask[2] == 0 && t.mask[3] == 0);
        out[1] |= 0x80;
        memcpy(out + hl, h->mask, 4);
        CHECK(ua_ws_parse_header(out, hl + 4, &t, lim) == (int)hl + 4);
        CHECK(t.fin == h->fin && t.opcode == h->opcode && t.len == h->len);
        CHECK(memcmp(t.mask, h->mask, 4) == 0);
    }
}

/* ---- close frames ------------------------------------------------------------- */

static int ref_code_ok(int c)
{
    static const int listed[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014};
    for (size_t i = 0; i < sizeof(listed) / sizeof(listed[0]); i++)
        if (c == listed[i])
            return 1;
    return c >= 3000 && c <= 4999;
}

static void check_close(const uint8_t *payload, size_t n)
{
    uint8_t *p = dup_exact(payload, n);
    int code = -1;
    const uint8_t *reason = p;
    size_t rl = 9999;
    int r = ua_ws_parse_close(p, n, &code, &reason, &rl);
    if (n == 0) {
        CHECK(r == 0 && code == UA_WS_STATUS_NONE && reason == NULL && rl == 0);
    } else if (n == 1) {
        CHECK(r == -1002);
    } else {
        int c = p[0] << 8 | p[1];
        CHECK(ua_ws_close_code_valid(c) == ref_code_ok(c));
        if (!ref_code_ok(c)) {
            CHECK(r == -1002);
        } else if (!ref_utf8_valid(p + 2, n - 2)) {
            CHECK(r == -1007);
        } else {
            CHECK(r == 0 && code == c && reason == p + 2 && rl == n - 2);
        }
    }
    if (r == 0) {
        /* Echoing it gives the same close back. */
        uint8_t out[2 + UA_WS_MAX_REASON];
        size_t k = ua_ws_build_close(out, code, (const char *)reason, rl);
        CHECK(k == (code == UA_WS_STATUS_NONE ? 0 : 2 + rl));
        int code2 = -1;
        const uint8_t *reason2;
        size_t rl2 = 9999;
        CHECK(ua_ws_parse_close(out, k, &code2, &reason2, &rl2) == 0);
        CHECK(code2 == code && rl2 == rl);
        CHECK(rl == 0 || memcmp(reason2, reason, rl) == 0);
    }
    free(p);
}

/* A valid text message as a close reason: cut to at most 123 bytes, at the
 * last character boundary that fits. */
static void check_reason_cut(const uint8_t *msg, size_t n)
{
    uint8_t out[2 + UA_WS_MAX_REASON];
    const char *text = n ? (const char *)msg : NULL;
    size_t k = ua_ws_build_close(out, UA_WS_STATUS_NORMAL, text, n);
    CHECK(k >= 2 && k <= 2 + UA_WS_MAX_REASON);
    CHECK(out[0] == 1000 >> 8 && out[1] == (1000 & 0xFF));
    size_t rl = k - 2;
    CHECK(rl == 0 || memcmp(out + 2, msg, rl) == 0);
    if (n <= UA_WS_MAX_REASON) {
        CHECK(rl == n);
    } else {
        CHECK(ref_utf8_valid(msg, rl));
        CHECK(rl + (size_t)ref_utf8_seq_len(msg[rl]) > UA_WS_MAX_REASON);
    }
}

/* ---- the reader ------------------------------------------------------------------ */

/* RFC 6455's rules for message assembly, as wsproto.h states them. */
typedef struct model {
    uint64_t max;
    int in_message, text, close_received;
    uint64_t msg_len;
    /* The message's unmasked payload so far, and where the reference UTF-8
     * scan has got to in it. */
    uint8_t msg[MAX_MESSAGE];
    size_t msg_n, boundary;
} model;

typedef struct sizes {
    const uint8_t *v;
    size_t n, chunk_i, piece_i;
} sizes;

static size_t next_chunk(sizes *z, size_t left)
{
    if (!z->n)
        return left;
    unsigned v = z->v[z->chunk_i++ % z->n];
    size_t k = v < 0x80 ? v + 1 : (size_t)(v - 0x7F) * 64;
    return k < left ? k : left;
}

static size_t next_piece(sizes *z)
{
    if (!z->n)
        return SIZE_MAX;
    unsigned v = z->v[(z->piece_i++ * 5 + 1) % z->n];
    return v < 0xC0 ? v % 32 + 1 : SIZE_MAX;
}

static int is_control(int op)
{
    return op >= 8;
}

static int expect_start(const model *m, const ua_ws_header *h)
{
    if (m->close_received)
        return -1002;
    if (is_control(h->opcode))
        return UA_WS_CONTROL_FRAME;
    if (h->opcode == UA_WS_CONT) {
        if (!m->in_message)
            return -1002;
        return m->msg_len + h->len > m->max ? -1009 : UA_WS_DATA_FRAME;
    }
    if (m->in_message)
        return -1002;
    return h->len > m->max ? -1009 : UA_WS_DATA_FRAME;
}

static void check_conn(const ua_ws_conn *c, const model *m, int in_control)
{
    CHECK(c->in_message == m->in_message);
    CHECK(c->close_received == m->close_received);
    CHECK(c->in_control == in_control);
    CHECK(c->close_sent == 0);
    if (m->in_message) {
        CHECK(c->msg_len == m->msg_len);
        CHECK(c->opcode == (m->text ? UA_WS_TEXT : UA_WS_BINARY));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static model m;
    static uint8_t masked[MAX_MESSAGE], plain[MAX_MESSAGE], spare[MAX_MESSAGE + 8];
    if (size < 1)
        return 0;
    sizes z = {data + 1, data[0] % 16, 0, 0};
    if (z.n > size - 1)
        z.n = size - 1;
    size_t slen = size - 1 - z.n;
    uint8_t *buf = dup_exact(data + 1 + z.n, slen);

    /* Mostly the 4096 limit; now and then a tiny one, so that the limit's
     * edge is within reach of short inputs. */
    static const uint16_t max_of[16] = {4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096,
                                        0, 1, 2, 7, 64, 125, 126, 300};
    const ua_ws_limits lim = {max_of[data[0] >> 4], 1};
    ua_ws_conn conn;
    ua_ws_conn_init(&conn, &lim);
    CHECK(conn.limits.max_message == lim.max_message && conn.limits.masked == 1);
    m.max = lim.max_message;
    m.in_message = m.text = m.close_received = 0;
    m.msg_len = 0;
    m.msg_n = m.boundary = 0;
    check_conn(&conn, &m, 0);

    size_t avail = 0, pos = 0;   /* bytes arrived; bytes taken */
    int in_payload = 0;
    ua_ws_header h;
    size_t left = 0, off = 0;     /* payload bytes to come; seen */
    unsigned frames = 0;

    for (;;) {
        if (!in_payload) {
            int r = ua_ws_parse_header(buf + pos, avail - pos, &h, &lim);
            check_header(buf + pos, avail - pos, r, &h, &lim);
            if (r < 0)
                break;
            if (r == 0) {
                if (avail == slen)
                    break;
                avail += next_chunk(&z, slen - avail);
                continue;
            }
            pos += (size_t)r;
            int act = ua_ws_on_frame_start(&conn, &h);
            CHECK(act == expect_start(&m, &h));
            if (act < 0)
                break;
            if (act == UA_WS_DATA_FRAME) {
                if (h.opcode != UA_WS_CONT) {
                    m.in_message = 1;
                    m.text = h.opcode == UA_WS_TEXT;
                    m.msg_len = 0;
                    m.msg_n = m.boundary = 0;
                }
                m.msg_len += h.len;
            }
            check_conn(&conn, &m, act == UA_WS_CONTROL_FRAME);
            in_payload = 1;
            left = (size_t)h.len;
            off = 0;
        }

        if (left) {
            if (pos == avail) {
                if (avail == slen)
                    break;
                avail += next_chunk(&z, slen - avail);
                continue;
            }
            size_t k = avail - pos;
            if (k > left)
                k = left;
            size_t most = next_piece(&z);
            if (k > most)
                k = most;
            uint8_t *piece = buf + pos;
            memcpy(masked + off, piece, k);
            ua_ws_unmask(piece, k, h.mask, off);
            for (size_t i = 0; i < k; i++)
                CHECK(piece[i] == (masked[off + i] ^ h.mask[(off + i) & 3]));
            memcpy(plain + off, piece, k);

            int rc = ua_ws_on_data(&conn, piece, k);
            int expect = 0;
            if (!is_control(h.opcode)) {
                CHECK(m.msg_n + k <= MAX_MESSAGE);
                memcpy(m.msg + m.msg_n, piece, k);
                m.msg_n += k;
                if (m.text && ref_utf8_scan(m.msg, m.boundary, m.msg_n, &m.boundary) < m.msg_n)
                    expect = -1007;
            }
            CHECK(rc == expect);
            if (rc < 0)
                break;
            pos += k;
            off += k;
            left -= k;
            if (left)
                continue;
        }

        /* The frame's payload is all there. */
        size_t len = (size_t)h.len;
        size_t align = frames++ % 8;
        memcpy(spare + align, masked, len);
        ua_ws_unmask(spare + align, len, h.mask, 0);
        CHECK(memcmp(spare + align, plain, len) == 0);
        ua_ws_unmask(spare + align, len, h.mask, SIZE_MAX - 3);
        CHECK(memcmp(spare + align, masked, len) == 0);

        int end = ua_ws_on_frame_end(&conn, &h);
        int expect;
        if (is_control(h.opcode)) {
            expect = UA_WS_CONTROL_DONE;
            if (h.opcode == UA_WS_CLOSE)
                m.close_received = 1;
        } else if (!h.fin) {
            expect = UA_WS_FRAGMENT_DONE;
        } else {
            m.in_message = 0;
            expect = m.text && !ref_utf8_valid(m.msg, m.msg_n) ? -1007 : UA_WS_MESSAGE_DONE;
        }
        CHECK(end == expect);
        if (end < 0)
            break;
        check_conn(&conn, &m, 0);
        if (end == UA_WS_CONTROL_DONE && h.opcode == UA_WS_CLOSE)
            check_close(plain, len);
        if (end == UA_WS_MESSAGE_DONE && m.text)
            check_reason_cut(m.msg, m.msg_n);
        in_payload = 0;
    }
    free(buf);
    return 0;
}
