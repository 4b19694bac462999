/* The WebSocket protocol (RFC 6455) for a server, without I/O: frame
 * headers, unmasking, UTF-8 validation, the rules that put frames together
 * into messages, close frames and the handshake's accept key.
 *
 * Nothing here allocates or reads a socket. A reader goes like this:
 *
 *     n = ua_ws_parse_header(buf, len, &h, &lim);   0: read more; <0: fail
 *     act = ua_ws_on_frame_start(&conn, &h);         <0: fail
 *     for each piece of the h.len payload bytes as it arrives:
 *         ua_ws_unmask(piece, k, h.mask, offset);    offset: bytes before it
 *         ua_ws_on_data(&conn, piece, k);             <0: fail
 *     r = ua_ws_on_frame_end(&conn, &h);             message done? <0: fail
 *
 * "Fail" is a negative close status: -1002 (protocol error), -1007 (invalid
 * UTF-8 in a text message) or -1009 (too big). The caller then sends a close
 * frame with that code (ua_ws_build_close) and closes the connection.
 *
 * No extension is supported, so every reserved bit must be clear. */
#ifndef UA_WSPROTO_H
#define UA_WSPROTO_H

#include <stddef.h>
#include <stdint.h>

/* Opcodes. 3-7 and 11-15 are reserved: a frame using one is an error. */
enum {
    UA_WS_CONT = 0x0,
    UA_WS_TEXT = 0x1,
    UA_WS_BINARY = 0x2,
    UA_WS_CLOSE = 0x8,
    UA_WS_PING = 0x9,
    UA_WS_PONG = 0xA,
};

/* Close status codes (RFC 6455 section 7.4.1 and the IANA registry). */
enum {
    UA_WS_STATUS_NORMAL = 1000,
    UA_WS_STATUS_GOING_AWAY = 1001,
    UA_WS_STATUS_PROTOCOL_ERROR = 1002,
    UA_WS_STATUS_UNSUPPORTED = 1003,
    UA_WS_STATUS_NONE = 1005,            /* no code in the close frame; never sent */
    UA_WS_STATUS_ABNORMAL = 1006,        /* no close frame at all; never sent */
    UA_WS_STATUS_INVALID_DATA = 1007,    /* e.g. a text message that is not UTF-8 */
    UA_WS_STATUS_POLICY = 1008,
    UA_WS_STATUS_TOO_BIG = 1009,
    UA_WS_STATUS_MANDATORY_EXT = 1010,
    UA_WS_STATUS_INTERNAL_ERROR = 1011,
};

/* The longest control frame payload, and so the longest close reason. */
#define UA_WS_MAX_CONTROL 125
#define UA_WS_MAX_REASON 123
/* The longest frame header: 2 + 8 (64-bit length) + 4 (mask key). */
#define UA_WS_MAX_HEADER 14

/* ---- Frame headers ---------------------------------------------------- */

typedef struct ua_ws_limits {
    /* Payload bytes allowed in one data frame and in one whole message (all
     * of its fragments); more is refused with 1009. UINT64_MAX: no limit. */
    uint64_t max_message;
    /* What the MASK bit of every frame read must be: 1 for a server (a
     * client masks all its frames), 0 for a client (a server never masks).
     * A frame with the other value is refused with 1002. */
    uint8_t masked;
} ua_ws_limits;

typedef struct ua_ws_header {
    uint8_t fin;          /* 1 on the last frame of a message */
    uint8_t rsv;          /* RSV1..RSV3 as bits 2..0 (always 0 once accepted) */
    uint8_t opcode;
    uint8_t masked;
    uint8_t mask[4];      /* the masking key; zeros when not masked */
    uint64_t len;         /* payload length, < 2**63 */
} ua_ws_header;

/* Parses the frame header at the start of buf[0..len).
 *
 * Returns the header's length (2..14) once it is all there, 0 if more bytes
 * are needed, or a negative close status:
 *   -1002  a reserved bit set; a reserved opcode; a MASK bit other than
 *          lim->masked; a control frame (close, ping, pong) with FIN clear
 *          or a payload over 125 bytes; a 64-bit length with the top bit set
 *   -1009  a data frame's payload over lim->max_message
 * Control frames are not held to max_message: they are at most 125 bytes and
 * a close frame must always be readable.
 *
 * Errors are reported as soon as the bytes that show them are in buf (the
 * first byte settles the reserved bits, the opcode and FIN of a control
 * frame; the top bit of a 64-bit length comes before its other 7 bytes), so
 * a peer cannot stall the check by holding back the rest of a bad header.
 * When several errors are present the one in the earliest byte wins. On
 * error or 0, *h holds the fields parsed so far and nothing else is defined.
 *
 * Lengths are judged by value, not by encoding: a length sent in a longer
 * form than needed (e.g. 5 in the 16-bit form) is accepted, though RFC 6455
 * says senders MUST use the shortest; browsers never do otherwise and the
 * value is unambiguous. So a control frame whose 125 or fewer bytes are given
 * in the 16- or 64-bit form is accepted too.
 *
 * O(1): reads at most 14 bytes; call it again from the start when more
 * bytes arrive (it keeps no state). */
int ua_ws_parse_header(const uint8_t *buf, size_t len, ua_ws_header *h,
                       const ua_ws_limits *lim);

/* Writes an unmasked header (what a server sends) for a payload of len bytes
 * (< 2**63) with the shortest length form; returns its length: 2, 4 or 10.
 * opcode is one of UA_WS_*, fin 0 or 1 (control frames need 1). O(1). */
size_t ua_ws_build_header(uint8_t out[UA_WS_MAX_HEADER], int fin, int opcode, uint64_t len);

/* Unmasks (or masks: it is its own inverse) data[0..len) in place with key,
 * where offset is the position of data[0] in the payload, so a payload can
 * be unmasked piece by piece as it arrives. Any alignment of data.
 * O(len), eight bytes a step. */
void ua_ws_unmask(uint8_t *data, size_t len, const uint8_t key[4], size_t offset);

/* ---- UTF-8 validation --------------------------------------------------- */

/* Incremental UTF-8 validation (RFC 3629: no overlong forms, no surrogates
 * U+D800..U+DFFF, nothing above U+10FFFF), in pieces split anywhere, even
 * inside a character. Three bytes of state; zero-initialised is ready. */
typedef struct ua_utf8 {
    uint8_t need;   /* continuation bytes still to come; UA_UTF8_BAD once invalid */
    uint8_t lo;     /* the range the next continuation byte must be in */
    uint8_t hi;
} ua_utf8;

#define UA_UTF8_BAD 0xFF

static inline void ua_utf8_init(ua_utf8 *st)
{
    st->need = 0;
    st->lo = 0x80;
    st->hi = 0xBF;
}

/* Feeds n more bytes. Returns 0 while what has been fed so far can still be
 * the start of valid UTF-8, -1 as soon as it cannot: at the first byte that
 * no valid text could have there (E0 80 fails at the 80, ED A0 at the A0,
 * F4 90 at the 90, F5 at once), not at the end of the character. Invalid is
 * final: every later feed returns -1. O(n); runs of ASCII go eight bytes a
 * step. */
int ua_utf8_feed(ua_utf8 *st, const uint8_t *p, size_t n);

/* 1 if everything fed is valid and does not stop inside a character: the
 * text may end here. */
static inline int ua_utf8_complete(const ua_utf8 *st)
{
    return st->need == 0;
}

/* ---- Messages ------------------------------------------------------------ */

/* What comes of a frame's start and end. */
enum {
    UA_WS_DATA_FRAME = 1,      /* start: text, binary or continuation: message payload */
    UA_WS_CONTROL_FRAME = 2,   /* start: close, ping or pong: keep its <= 125 bytes aside */
    UA_WS_FRAGMENT_DONE = 3,   /* end: a non-final fragment ended; the message goes on */
    UA_WS_MESSAGE_DONE = 4,    /* end: the final frame ended: the message is whole */
    UA_WS_CONTROL_DONE = 5,    /* end: a control frame is whole: act on it */
};

/* The reading side of one connection, as far as message assembly goes. */
typedef struct ua_ws_conn {
    ua_ws_limits limits;
    uint8_t in_message;       /* a data message has started and not ended */
    uint8_t opcode;           /* that message's opcode: UA_WS_TEXT or UA_WS_BINARY */
    uint8_t in_control;       /* the frame being read is a control frame */
    uint8_t close_received;   /* a whole close frame has been read */
    uint8_t close_sent;       /* set by the caller when it has sent its close frame */
    uint64_t msg_len;         /* the message's payload so far: the lengths of its
                                 frames started, this one included */
    ua_utf8 utf8;             /* of the text message so far */
} ua_ws_conn;

/* lim is copied; use the same limits for ua_ws_parse_header. */
void ua_ws_conn_init(ua_ws_conn *c, const ua_ws_limits *lim);

/* A frame whose header ua_ws_parse_header accepted begins. Returns
 * UA_WS_DATA_FRAME or UA_WS_CONTROL_FRAME, or:
 *   -1002  a continuation frame with no message in progress; a text or
 *          binary frame while a fragmented message is in progress; any
 *          frame after a close frame was received (the peer may send
 *          nothing after its close)
 *   -1009  the message's payload, all its fragments counted, over
 *          limits.max_message
 * Control frames may come between the fragments of a message and leave it
 * untouched. Frames that arrive after our own close was sent are accepted:
 * the peer may not have seen it yet. O(1). */
int ua_ws_on_frame_start(ua_ws_conn *c, const ua_ws_header *h);

/* n more (unmasked) payload bytes of the frame begun. In a text message they
 * are checked as UTF-8: -1007 as soon as they cannot be valid, even in the
 * middle of a fragment; otherwise 0. Calling it for a control frame's
 * payload is allowed and checks nothing. O(n). */
int ua_ws_on_data(ua_ws_conn *c, const uint8_t *p, size_t n);

/* The frame begun has had all its payload. Returns UA_WS_FRAGMENT_DONE,
 * UA_WS_MESSAGE_DONE (after which a new message may start) or
 * UA_WS_CONTROL_DONE (after a close frame, close_received is set), or -1007
 * when a text message ends inside a UTF-8 character. O(1). */
int ua_ws_on_frame_end(ua_ws_conn *c, const ua_ws_header *h);

/* ---- Close frames --------------------------------------------------------- */

/* 1 if code may appear in a close frame: 1000-1003, 1007-1014 (1012-1014
 * from the IANA registry), 3000-4999. Not 1004 (reserved), 1005, 1006, 1015
 * (never sent), other codes below 3000 (unassigned) or 5000 and above. */
int ua_ws_close_code_valid(int code);

/* Parses a close frame's (unmasked) payload. Returns 0 and sets *code and
 * the reason (pointing into payload, not NUL-terminated), or:
 *   -1002  a 1-byte payload; a code that is not valid on the wire
 *   -1007  a reason that is not valid UTF-8
 * An empty payload gives *code = 1005 (UA_WS_STATUS_NONE) and no reason. */
int ua_ws_parse_close(const uint8_t *payload, size_t n, int *code,
                      const uint8_t **reason, size_t *reason_len);

/* Writes a close frame's payload: the code, big-endian, then the reason,
 * cut to 123 bytes (UA_WS_MAX_REASON) at a character boundary if longer
 * (the reason is taken to be UTF-8). Returns its length, 2..125. Code 1005
 * (UA_WS_STATUS_NONE) writes the empty payload instead and returns 0, so a
 * close received without a code can be echoed as received. out must hold
 * 2 + 123 bytes; reason may be NULL when reason_len is 0. */
size_t ua_ws_build_close(uint8_t *out, int code, const char *reason, size_t reason_len);

/* ---- Handshake -------------------------------------------------------------- */

/* Sec-WebSocket-Accept for a request's Sec-WebSocket-Key (key_len bytes,
 * as sent, without surrounding spaces): base64(SHA-1(key +
 * "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")), 28 characters and a NUL. */
#define UA_WS_ACCEPT_SIZE 29
void ua_ws_accept_key(const char *key, size_t key_len, char out[UA_WS_ACCEPT_SIZE]);

#endif
