#!/usr/bin/env python3
"""Writes the seed corpus, fuzz/corpus/<target>/<name>, in each target's input
format (see the comment at the top of each fuzz_*.c). Run it again after
changing a format; the files it writes are the ones kept in the repository."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = b"\x37\xfa\x21\x3d"


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- wsproto: byte 0 = count of chunk-size bytes, the sizes, the stream ----

def frame(opcode, payload=b"", fin=True, key=KEY, form=None):
    """A client frame (masked). form: 16 or 64 to force a longer length form."""
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if form == 64 or n > 0xFFFF:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    elif form == 16 or n > 125:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | n])
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + masked


# byte 0 >> 4 of 8..15 picks a small max_message instead of 4096
SMALL_MAX = {0: 8, 1: 9, 2: 10, 7: 11, 64: 12, 125: 13, 126: 14, 300: 15}


def ws(stream, sizes=b"", max_message=4096):
    assert len(sizes) < 16
    top = 0 if max_message == 4096 else SMALL_MAX[max_message]
    return bytes([top << 4 | len(sizes)]) + sizes + stream


def close_payload(code, reason=b""):
    return struct.pack(">H", code) + reason


TEXT, BINARY, CONT, CLOSE, PING, PONG = 1, 2, 0, 8, 9, 10

ws_seeds = {
    "text": ws(frame(TEXT, b"Hello, world")),
    "text_bytewise": ws(frame(TEXT, b"Hello, world"), b"\x00"),
    "text_utf8": ws(frame(TEXT, "h\u00e9llo w\u00f6rld \u20ac \U0001F600".encode())),
    "binary_16bit": ws(frame(BINARY, bytes(range(256)) + bytes(range(44))), b"\x10\x05\xc0"),
    "binary_64bit_form": ws(frame(BINARY, b"abcde", form=64)),
    "text_16bit_form": ws(frame(TEXT, b"short", form=16), b"\x02"),
    "empty_text": ws(frame(TEXT, b"")),
    "fragmented": ws(
        frame(TEXT, "h\u00e9llo ".encode(), fin=False)
        + frame(PING, b"ping?")
        + frame(CONT, "w\u00f6r".encode(), fin=False)
        + frame(CONT, b"ld", fin=True),
        b"\x03\x07\x00",
    ),
    # A 4-byte character cut between two fragments.
    "fragmented_split_char": ws(
        frame(TEXT, b"a\xf0\x9f", fin=False) + frame(CONT, b"\x98\x80b", fin=True), b"\x01"
    ),
    "fragmented_binary": ws(
        frame(BINARY, b"\x00\xff" * 40, fin=False) + frame(CONT, b"\x80" * 100, fin=True), b"\x20\x81"
    ),
    "ping_pong": ws(frame(PING, b"are you there") + frame(PONG, b"") + frame(PING, b"")),
    "ping_125_16bit_form": ws(frame(PING, b"p" * 125, form=16), b"\x10"),
    "close_125": ws(frame(CLOSE, close_payload(1001, b"r" * 123))),
    "close_code": ws(frame(TEXT, b"bye") + frame(CLOSE, close_payload(1000, b"done"))),
    "close_empty": ws(frame(CLOSE, b"")),
    "close_4000": ws(frame(CLOSE, close_payload(4000, "r\u00e9ason".encode())), b"\x00\x05"),
    "close_bad_code": ws(frame(CLOSE, close_payload(1005))),
    "close_bad_reason": ws(frame(CLOSE, close_payload(1001, b"\xc0\xaf"))),
    "frame_after_close": ws(frame(CLOSE, close_payload(1000)) + frame(TEXT, b"late")),
    "text_invalid_utf8": ws(frame(TEXT, b"ok \xed\xa0\x80 surrogate"), b"\x02"),
    "text_cut_char": ws(frame(TEXT, b"abc\xe2\x82")),
    "long_text_reason": ws(frame(TEXT, ("\u00e9" * 70 + "x").encode())),
    "max_message": ws(
        frame(BINARY, b"\x01" * 4000, fin=False) + frame(CONT, b"\x02" * 96, fin=True), b"\x9f"
    ),
    "too_big": ws(frame(BINARY, b"\x00" * 4097)),
    # Messages exactly at a small limit (one more byte is too big).
    "limit_7_fragments": ws(
        frame(TEXT, b"abc", fin=False) + frame(PING, b"") + frame(CONT, b"defg"), b"\x02", 7
    ),
    "limit_2_fragments": ws(
        frame(BINARY, b"\x01", fin=False) + frame(CONT, b"", fin=False) + frame(CONT, b"\x02"), b"", 2
    ),
    "limit_125": ws(frame(TEXT, b"x" * 100, fin=False) + frame(CONT, b"y" * 25), b"\x40", 125),
    "limit_64_16bit_form": ws(frame(BINARY, b"z" * 64, form=16), b"", 64),
    "limit_0_empty": ws(frame(TEXT, b"") + frame(BINARY, b"", fin=False) + frame(CONT, b""), b"", 0),
    "text_boundaries": ws(frame(TEXT, "\x7f\x80\u07ff\u0800\ud7ff\ue000\U00010000\U0010ffff".encode())),
    "text_above_max": ws(frame(TEXT, b"ok \xf4\x90\x80\x80"), b"\x01"),
    "text_f5": ws(frame(TEXT, b"ok \xf5")),
    "text_inside_message": ws(frame(TEXT, b"one", fin=False) + frame(TEXT, b"two")),
    "fragments_too_big": ws(frame(BINARY, b"abc", fin=False) + frame(CONT, b"defgh"), b"", 7),
    "close_1_byte": ws(frame(CLOSE, b"\x03")),
    "len64_top_bit": ws(b"\x82\xff\x80" + bytes(7) + KEY, b"\x02"),
    "ping_126": ws(frame(PING, b"p" * 126)),
    "unmasked": ws(b"\x81\x05hello"),
    "reserved_opcode": ws(b"\x83\x80" + KEY),
    "rsv_bit": ws(b"\xc1\x80" + KEY),
    "continuation_first": ws(frame(CONT, b"x")),
    "ping_fragmented": ws(frame(PING, b"x", fin=False)),
}

# ---- utf8: byte 0 chooses the split point, the rest is the text ----

utf8_seeds = {
    "ascii": b"\x05" + b"plain ASCII text, long enough for the word loop",
    "mixed": b"\x03" + "a\u00e9\u20ac\U0001F600z".encode(),
    "split_in_char": b"\x02" + "\u20ac\u20ac".encode(),
    "boundaries": b"\x07"
    + "\x7f\x80\u07ff\u0800\ud7ff\ue000\uffff\U00010000\U0010ffff".encode("utf-8"),
    "overlong_2": b"\x01" + b"\xc0\xaf",
    "overlong_3": b"\x01" + b"\xe0\x80\xaf",
    "overlong_4": b"\x02" + b"\xf0\x80\x80\xaf",
    "surrogate": b"\x01" + b"\xed\xa0\x80",
    "above_max": b"\x01" + b"\xf4\x90\x80\x80",
    "f5": b"\x00" + b"ab\xf5",
    "stray_cont": b"\x04" + b"abc\x80",
    "truncated": b"\x02" + b"ab\xf0\x9f\x98",
    "empty": b"\x00",
}

# ---- linebuf: a program of operations (op % 10, then its operands) ----


def app(data):          # 0: append bytes from the input
    assert len(data) < 256
    return bytes([0, len(data)]) + data


def gen(want, extra=0, every=255):   # 1: append a generated run
    return bytes([1, want >> 8, want & 255, extra, every])


def space(want):        # 2: room, no commit
    return bytes([2, want >> 8, want & 255])


FIND, READLINE, CONSUME_ALL, FREE = b"\x03", b"\x04", b"\x06", b"\x08"


def consume(n):         # 5
    return bytes([5, n >> 8, n & 255])


def huge(k=0):          # 7: space(SIZE_MAX - k) fails
    return bytes([7, k])


def partial(k):         # 9: consume part of the line
    return bytes([9, k])


linebuf_seeds = {
    "lines": app(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") + READLINE * 4,
    "line_in_pieces": app(b"abc") + FIND + app(b"def") + FIND + app(b"gh\nrest") + READLINE + FIND,
    "empty_lines": app(b"\n\n\nx\n") + READLINE * 5,
    "consume_bytes": app(b"0123456789\nabc") + consume(4) + FIND + consume(3) + READLINE + CONSUME_ALL,
    "partial_line": app(b"hello world\nnext\n") + partial(5) + partial(3) + READLINE + READLINE,
    "grow": gen(5000, 10, 99) + READLINE + gen(9000, 0, 255) + FIND + READLINE * 3 + CONSUME_ALL,
    "compact": gen(3000, 0, 255) + consume(2900) + gen(3000, 0, 63) + READLINE * 4,
    "reserve": space(100) + app(b"x\n") + space(8000) + READLINE + space(0),
    "huge": app(b"abc\n") + huge(0) + huge(255) + READLINE,
    "free": app(b"abc\ndef") + FREE + app(b"g\n") + READLINE,
    "no_newline": gen(4096, 0, 255) + FIND + gen(4096, 0, 255) + FIND + app(b"\n") + READLINE,
}

for name, data in ws_seeds.items():
    write("wsproto", name, data)
for name, data in utf8_seeds.items():
    write("utf8", name, data)
for name, data in linebuf_seeds.items():
    write("linebuf", name, data)
