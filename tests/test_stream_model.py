"""StreamReader against a model, with generated input (hypothesis): a byte
stream cut into random chunks, sent over a socket pair with random pauses,
read by a random sequence of read(n), read(), readline() and readexactly(n),
some of them timed out (wait_for) or cancelled after a random few ms.

Whatever the chunking, every result must be what the model says: readline()
the bytes up to and including the next newline (the rest at EOF),
readexactly(n) the next n bytes (fewer only at EOF), read(n) between 1 and n
next bytes and read() one or more (b"" only at EOF). Nothing is lost,
duplicated or reordered; a read that was interrupted part way took nothing
(what it had received is all there for the next read). Lines range from empty to larger than the reader's
buffer, so the buffer's growth, compaction and release are all exercised
(under `make asan` with the sanitizers)."""
import os
import socket

from hypothesis import HealthCheck, given, settings, strategies as st

import uasyncio
from conftest import open_fds

# Line lengths: mostly short, sometimes beyond the reader's 64 KiB chunks.
line_len = st.one_of(st.integers(0, 40), st.integers(0, 3000), st.integers(60000, 200000))
lines = st.lists(st.tuples(line_len, st.booleans()), min_size=0, max_size=12)
chunk_cuts = st.lists(st.integers(1, 70000), min_size=1, max_size=8)
pauses = st.lists(st.sampled_from([None, 0, 1, 4]), min_size=1, max_size=8)
op = st.one_of(
    st.tuples(st.just("readline"), st.none()),
    st.tuples(st.just("read"), st.integers(1, 100000)),
    st.tuples(st.just("read"), st.none()),
    st.tuples(st.just("readexactly"), st.integers(0, 100000)),
)
# Mostly plain reads; some are timed out or cancelled after 0-3 ms.
interrupt = st.one_of(st.none(), st.none(), st.none(),
                      st.tuples(st.sampled_from(["timeout", "cancel"]), st.integers(0, 3)))
ops = st.lists(st.tuples(op, interrupt), min_size=1, max_size=30)


def make_stream(spec):
    """Bytes of lines (each with its newline, or not: then it runs into the
    next), content varying so a misplaced byte shows."""
    out = bytearray()
    for i, (n, newline) in enumerate(spec):
        out += bytes((i * 7 + j) % 251 % 200 + 32 for j in range(n)).replace(b"\n", b"#")
        if newline:
            out += b"\n"
    return bytes(out)


class Model:
    """What each read returns, given the stream and how much was consumed."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def check(self, name, arg, got):
        rest = self.data[self.pos:]
        if name == "readline":
            nl = rest.find(b"\n")
            want = rest if nl < 0 else rest[:nl + 1]
            assert got == want, (name, self.pos, len(got), len(want))
        elif name == "readexactly":
            assert got == rest[:arg], (name, arg, self.pos, len(got))
        else:
            if rest:
                assert 1 <= len(got) <= (arg or len(rest)), (name, arg, self.pos, len(got))
            assert got == rest[:len(got)], (name, arg, self.pos)
        self.pos += len(got)


# Pauses only between the first chunks: 1-byte chunks of a 500 KB stream
# with a 1 ms pause after each would take minutes.
MAX_PAUSES = 64


async def send_all(sock, data, cuts, waits):
    """Write data in the given chunk sizes, pausing between some of the first
    ones, then EOF."""
    writer = uasyncio.StreamWriter(sock, {})
    pos, i = 0, 0
    while pos < len(data):
        n = cuts[i % len(cuts)]
        await writer.awrite(data[pos:pos + n])
        pos += n
        wait = waits[i % len(waits)]
        if wait is not None and i < MAX_PAUSES:
            await uasyncio.sleep_ms(wait)
        i += 1
    sock.shutdown(socket.SHUT_WR)


async def interrupted(loop, how, ms, aw):
    """aw, timed out (wait_for_ms) or its task cancelled after ms: what it
    gave, or None if it was interrupted first."""
    if how == "timeout":
        try:
            return await uasyncio.wait_for_ms(aw, ms)
        except uasyncio.TimeoutError:
            return None
    box = {}

    async def task():
        try:
            box["got"] = await aw
        except uasyncio.CancelledError:
            box["got"] = None

    t = task()
    loop.create_task(t)
    await uasyncio.sleep_ms(ms)
    if "got" not in box:
        uasyncio.cancel(t)
    while "got" not in box:
        await uasyncio.sleep_ms(0)
    return box["got"]


def run_case(data, cuts, waits, plan):
    before = open_fds()
    loop = uasyncio.PollEventLoop()
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    model = Model(data)
    try:
        reader = uasyncio.StreamReader(a)

        async def main():
            loop.create_task(send_all(b, data, cuts, waits))
            for (name, arg), intr in plan:
                method = getattr(reader, name)
                aw = method() if arg is None else method(arg)
                got = await aw if intr is None else await interrupted(loop, intr[0], intr[1], aw)
                if got is not None:   # an interrupted read must have taken nothing
                    model.check(name, arg, got)
            while True:   # the rest, up to EOF
                got = await reader.read()
                model.check("read", None, got)
                if not got:
                    break
            # At EOF every kind of read answers b"".
            assert await reader.readline() == b""
            assert await reader.read(10) == b""

        loop.run_until_complete(uasyncio.wait_for(main(), 60))
    finally:
        a.close()
        b.close()
        loop.close()
    assert model.pos == len(data)
    assert not {fd for fd in open_fds() - before if os.path.exists("/proc/self/fd/" + fd)}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines, chunk_cuts, pauses, ops)
def test_reads_over_a_socket_match_the_model(spec, cuts, waits, plan):
    run_case(make_stream(spec), cuts, waits, plan)


def test_the_model_catches_a_lost_byte():
    """The check is not vacuous: a result one byte short fails it."""
    m = Model(b"abc\ndef")
    try:
        m.check("readline", None, b"abc")
    except AssertionError:
        return
    raise AssertionError("a short line passed the model")
