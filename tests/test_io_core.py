"""PollEventLoop's I/O registration: add_reader/add_writer, one-shot
delivery, hang-ups, regular files, and the errors around them."""
import os
import socket
import tempfile

import pytest

import uasyncio
from uasyncio import IORead, IOWrite


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


def run_briefly(loop, ms=30):
    loop.run_until_complete(uasyncio.sleep_ms(ms))


def test_add_reader_calls_back_with_args_once(loop, pair):
    a, b = pair
    calls = []
    loop.add_reader(a, calls.append, "readable")
    run_briefly(loop, 5)
    assert calls == []
    b.send(b"x")
    run_briefly(loop)
    run_briefly(loop)
    assert calls == ["readable"]   # one-shot: not again though still readable


def test_add_writer_calls_back_at_once_on_a_writable_socket(loop, pair):
    a, _ = pair
    calls = []
    loop.add_writer(a, lambda *args: calls.append(args), 1, 2)
    run_briefly(loop, 5)
    assert calls == [(1, 2)]


def test_add_reader_with_a_coroutine_starts_it_when_readable(loop, pair):
    a, b = pair
    got = []

    async def on_data():
        got.append(a.recv(10))

    loop.add_reader(a, on_data())
    b.send(b"hi")
    run_briefly(loop)
    assert got == [b"hi"]


def test_a_new_registration_replaces_the_old(loop, pair):
    a, b = pair
    calls = []
    loop.add_reader(a, calls.append, "old")
    loop.add_reader(a, calls.append, "new")
    b.send(b"x")
    run_briefly(loop)
    assert calls == ["new"]


def test_remove_reports_whether_something_waited(loop, pair):
    a, b = pair
    loop.add_reader(a, print)
    assert loop.remove_reader(a) is True
    assert loop.remove_reader(a) is False
    assert loop.remove_writer(a) is False
    b.send(b"x")
    run_briefly(loop)   # the removed callback must not run


def test_reader_and_writer_wait_on_one_socket_at_once(loop, pair):
    a, b = pair
    log = []

    def reader():
        yield IORead(a)
        log.append(("read", a.recv(10)))

    def writer():
        yield IOWrite(a)
        log.append("write")

    loop.create_task(reader())
    loop.create_task(writer())
    run_briefly(loop, 5)
    assert log == ["write"]
    b.send(b"data")
    run_briefly(loop)
    assert log == ["write", ("read", b"data")]


def test_hangup_wakes_reader_and_writer(loop):
    r, w = os.pipe()
    log = []

    def reader():
        yield IORead(r)
        log.append(("read", os.read(r, 10)))

    loop.create_task(reader())
    run_briefly(loop, 5)
    os.close(w)
    run_briefly(loop)
    assert log == [("read", b"")]
    os.close(r)


def test_regular_file_is_always_ready(loop):
    with tempfile.TemporaryFile() as f:
        f.write(b"content")
        f.seek(0)

        def task():
            yield IORead(f)
            data = f.read()
            yield IOWrite(f)
            return data

        assert loop.run_until_complete(task()) == b"content"


def test_second_reader_of_one_fd_gets_runtime_error(loop, pair):
    a, _ = pair
    errors = []

    def first():
        yield IORead(a)

    def second():
        try:
            yield IORead(a)
        except RuntimeError as e:
            errors.append(str(e))

    loop.create_task(first())
    loop.create_task(second())
    run_briefly(loop, 5)
    assert "already waiting" in errors[0]
    loop.remove_reader(a)


def test_objects_without_fileno_are_refused(loop):
    with pytest.raises(TypeError):
        loop.add_reader(object(), print)
    with pytest.raises(TypeError):
        loop.remove_writer("nope")
    with pytest.raises(TypeError, match="callable"):
        loop.add_reader(0, 42)


def test_ioread_on_a_bad_object_raises_in_the_task(loop):
    caught = []

    def task():
        try:
            yield IORead(object())
        except TypeError as e:
            caught.append(e)
        return "survived"

    assert loop.run_until_complete(task()) == "survived"
    assert caught


def test_ioread_on_a_closed_fd_raises_oserror_in_the_task(loop):
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    caught = []

    def task():
        try:
            yield IORead(r)
        except OSError as e:
            caught.append(e)

    loop.run_until_complete(task())
    assert caught


def test_many_sockets_wait_at_once(loop):
    pairs = [socket.socketpair() for _ in range(100)]
    got = []

    def reader(s):
        yield IORead(s)
        got.append(s.recv(4))

    for a, _ in pairs:
        a.setblocking(False)
        loop.create_task(reader(a))
    run_briefly(loop, 5)
    for i, (_, b) in enumerate(pairs):
        b.send(b"%03d" % i)
    run_briefly(loop)
    assert sorted(got) == [b"%03d" % i for i in range(100)]
    for a, b in pairs:
        a.close()
        b.close()
