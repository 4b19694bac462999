#include "wsproto.h"
#include "sha1.h"

#include <string.h>

/* ---- Frame headers ---------------------------------------------------- */

static inline int opcode_known(unsigned op)
{
    return op <= UA_WS_BINARY || (op >= UA_WS_CLOSE && op <= UA_WS_PONG);
}

static inline int is_control(unsigned op)
{
    return (op & 0x8) != 0;
}

int ua_ws_parse_header(const uint8_t *buf, size_t len, ua_ws_header *h,
                       const ua_ws_limits *lim)
{
    if (len < 1)
        return 0;
    h->fin = buf[0] >> 7;
    h->rsv = (buf[0] >> 4) & 0x7;
    h->opcode = buf[0] & 0xF;
    if (h->rsv || !opcode_known(h->opcode))
        return -UA_WS_STATUS_PROTOCOL_ERROR;
    /* Control frames cannot be fragmented. */
    if (is_control(h->opcode) && !h->fin)
        return -UA_WS_STATUS_PROTOCOL_ERROR;

    if (len < 2)
        return 0;
    h->masked = buf[1] >> 7;
    if (h->masked != (lim->masked ? 1 : 0))
        return -UA_WS_STATUS_PROTOCOL_ERROR;
    uint64_t n = buf[1] & 0x7F;
    size_t pos = 2;
    if (n == 126) {
        if (len < 4)
            return 0;
        n = (uint64_t)buf[2] << 8 | buf[3];
        pos = 4;
    } else if (n == 127) {
        if (len < 3)
            return 0;
        if (buf[2] & 0x80)
            return -UA_WS_STATUS_PROTOCOL_ERROR;
        if (len < 10)
            return 0;
        n = 0;
        for (int i = 2; i < 10; i++)
            n = n << 8 | buf[i];
        pos = 10;
    }
    h->len = n;
    if (is_control(h->opcode)) {
        if (n > UA_WS_MAX_CONTROL)
            return -UA_WS_STATUS_PROTOCOL_ERROR;
    } else if (n > lim->max_message) {
        return -UA_WS_STATUS_TOO_BIG;
    }

    if (!h->masked) {
        memset(h->mask, 0, sizeof(h->mask));
        return (int)pos;
    }
    if (len < pos + 4)
        return 0;
    memcpy(h->mask, buf + pos, 4);
    return (int)(pos + 4);
}

size_t ua_ws_build_header(uint8_t out[UA_WS_MAX_HEADER], int fin, int opcode, uint64_t len)
{
    out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0xF));
    if (len <= 125) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

void ua_ws_unmask(uint8_t *data, size_t len, const uint8_t key[4], size_t offset)
{
    size_t i = 0;
    /* Bytes one by one up to an 8-byte boundary, so the word loop loads and
     * stores aligned words even where unaligned access is slow. */
    while (i < len && ((uintptr_t)(data + i) & 7) != 0) {
        data[i] ^= key[(offset + i) & 3];
        i++;
    }
    if (len - i >= 8) {
        /* The key as it lines up from data + i, repeated over a word; built
         * in memory order, so it is right on either endianness. */
        uint8_t k[8];
        for (int j = 0; j < 8; j++)
            k[j] = key[(offset + i + (size_t)j) & 3];
        uint64_t kw;
        memcpy(&kw, k, 8);
        for (; len - i >= 8; i += 8) {
            uint64_t w;
            memcpy(&w, data + i, 8);
            w ^= kw;
            memcpy(data + i, &w, 8);
        }
    }
    for (; i < len; i++)
        data[i] ^= key[(offset + i) & 3];
}

/* ---- UTF-8 validation --------------------------------------------------- */

int ua_utf8_feed(ua_utf8 *st, const uint8_t *p, size_t n)
{
    unsigned need = st->need;
    if (need == UA_UTF8_BAD)
        return -1;
    uint8_t lo = st->lo, hi = st->hi;
    size_t i = 0;
    while (i < n) {
        uint8_t b = p[i++];
        if (need) {
            /* The first continuation byte's range after E0, ED, F0 and F4
             * is what rules out overlong forms, surrogates and code points
             * past U+10FFFF, one byte early. */
            if (b < lo || b > hi)
                goto bad;
            need--;
            lo = 0x80;
            hi = 0xBF;
        } else if (b < 0x80) {
            while (n - i >= 8) {
                uint64_t w;
                memcpy(&w, p + i, 8);
                if (w & 0x8080808080808080u)
                    break;
                i += 8;
            }
        } else {
            lo = 0x80;
            hi = 0xBF;
            if (b < 0xC2) {
                goto bad;   /* a stray continuation byte, or C0/C1 (overlong) */
            } else if (b < 0xE0) {
                need = 1;
            } else if (b < 0xF0) {
                need = 2;
                if (b == 0xE0)
                    lo = 0xA0;   /* below U+0800: overlong */
                else if (b == 0xED)
                    hi = 0x9F;   /* U+D800..U+DFFF: surrogates */
            } else if (b < 0xF5) {
                need = 3;
                if (b == 0xF0)
                    lo = 0x90;   /* below U+10000: overlong */
                else if (b == 0xF4)
                    hi = 0x8F;   /* above U+10FFFF */
            } else {
                goto bad;   /* F5..FF: above U+10FFFF, or never UTF-8 */
            }
        }
    }
    st->need = (uint8_t)need;
    st->lo = lo;
    st->hi = hi;
    return 0;
bad:
    st->need = UA_UTF8_BAD;
    return -1;
}

/* ---- Messages ------------------------------------------------------------ */

void ua_ws_conn_init(ua_ws_conn *c, const ua_ws_limits *lim)
{
    memset(c, 0, sizeof(*c));
    c->limits = *lim;
    ua_utf8_init(&c->utf8);
}

int ua_ws_on_frame_start(ua_ws_conn *c, const ua_ws_header *h)
{
    if (c->close_received || !opcode_known(h->opcode))
        return -UA_WS_STATUS_PROTOCOL_ERROR;
    if (is_control(h->opcode)) {
        /* The message in progress, if any, is left as it is. */
        c->in_control = 1;
        return UA_WS_CONTROL_FRAME;
    }
    uint64_t so_far;
    if (h->opcode == UA_WS_CONT) {
        if (!c->in_message)
            return -UA_WS_STATUS_PROTOCOL_ERROR;
        so_far = c->msg_len;
    } else {
        if (c->in_message)
            return -UA_WS_STATUS_PROTOCOL_ERROR;
        so_far = 0;
    }
    /* msg_len <= max_message always, so this cannot wrap. */
    if (h->len > c->limits.max_message - so_far)
        return -UA_WS_STATUS_TOO_BIG;
    if (h->opcode != UA_WS_CONT) {
        c->in_message = 1;
        c->opcode = h->opcode;
        ua_utf8_init(&c->utf8);
    }
    c->in_control = 0;
    c->msg_len = so_far + h->len;
    return UA_WS_DATA_FRAME;
}

int ua_ws_on_data(ua_ws_conn *c, const uint8_t *p, size_t n)
{
    if (c->in_control || c->opcode != UA_WS_TEXT)
        return 0;
    return ua_utf8_feed(&c->utf8, p, n) < 0 ? -UA_WS_STATUS_INVALID_DATA : 0;
}

int ua_ws_on_frame_end(ua_ws_conn *c, const ua_ws_header *h)
{
    if (is_control(h->opcode)) {
        c->in_control = 0;
        if (h->opcode == UA_WS_CLOSE)
            c->close_received = 1;
        return UA_WS_CONTROL_DONE;
    }
    if (!h->fin)
        return UA_WS_FRAGMENT_DONE;
    c->in_message = 0;
    if (c->opcode == UA_WS_TEXT && !ua_utf8_complete(&c->utf8))
        return -UA_WS_STATUS_INVALID_DATA;
    return UA_WS_MESSAGE_DONE;
}

/* ---- Close frames --------------------------------------------------------- */

int ua_ws_close_code_valid(int code)
{
    if (code >= 1000 && code <= 1014)
        return code != 1004 && code != UA_WS_STATUS_NONE && code != UA_WS_STATUS_ABNORMAL;
    return code >= 3000 && code <= 4999;
}

int ua_ws_parse_close(const uint8_t *payload, size_t n, int *code,
                      const uint8_t **reason, size_t *reason_len)
{
    *reason = NULL;
    *reason_len = 0;
    if (n == 0) {
        *code = UA_WS_STATUS_NONE;
        return 0;
    }
    if (n == 1)
        return -UA_WS_STATUS_PROTOCOL_ERROR;
    *code = payload[0] << 8 | payload[1];
    if (!ua_ws_close_code_valid(*code))
        return -UA_WS_STATUS_PROTOCOL_ERROR;
    ua_utf8 st;
    ua_utf8_init(&st);
    if (ua_utf8_feed(&st, payload + 2, n - 2) < 0 || !ua_utf8_complete(&st))
        return -UA_WS_STATUS_INVALID_DATA;
    *reason = payload + 2;
    *reason_len = n - 2;
    return 0;
}

size_t ua_ws_build_close(uint8_t *out, int code, const char *reason, size_t reason_len)
{
    if (code == UA_WS_STATUS_NONE)
        return 0;
    out[0] = (uint8_t)(code >> 8);
    out[1] = (uint8_t)code;
    if (reason_len > UA_WS_MAX_REASON) {
        /* If the first byte cut off continues a character, that character
         * began inside the kept part: drop it whole. */
        reason_len = UA_WS_MAX_REASON;
        while (reason_len && ((uint8_t)reason[reason_len] & 0xC0) == 0x80)
            reason_len--;
    }
    if (reason_len)
        memcpy(out + 2, reason, reason_len);
    return 2 + reason_len;
}

/* ---- Handshake -------------------------------------------------------------- */

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* Standard base64 of a SHA-1 digest: 20 bytes are six groups of three and
 * two bytes over, so 27 digits, one '=' and a NUL. */
static void base64_digest(const uint8_t p[UA_SHA1_SIZE], char out[UA_WS_ACCEPT_SIZE])
{
    static const char digits[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 7; i++) {
        const uint8_t *g = p + 3 * i;
        /* The last group has a zero for its missing third byte. */
        uint32_t v = (uint32_t)g[0] << 16 | (uint32_t)g[1] << 8 | (i < 6 ? g[2] : 0);
        *out++ = digits[v >> 18];
        *out++ = digits[(v >> 12) & 63];
        *out++ = digits[(v >> 6) & 63];
        *out++ = i < 6 ? digits[v & 63] : '=';
    }
    *out = '\0';
}

void ua_ws_accept_key(const char *key, size_t key_len, char out[UA_WS_ACCEPT_SIZE])
{
    ua_sha1_ctx s;
    uint8_t digest[UA_SHA1_SIZE];
    ua_sha1_init(&s);
    ua_sha1_update(&s, key, key_len);
    ua_sha1_update(&s, ws_guid, sizeof(ws_guid) - 1);
    ua_sha1_final(&s, digest);
    base64_digest(digest, out);
}
