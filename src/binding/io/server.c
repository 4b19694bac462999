/* start_server(): the accept loop, in C. What it returns is awaitable and
 * is scheduled as a task of its own (as in uasyncio 2.0):
 *     loop.create_task(uasyncio.start_server(serve, "127.0.0.1", 8080))
 * For each connection it schedules serve(reader, writer). Failures of one
 * accept() (a peer gone, no fds left for a moment) never end the server.
 * The accept loop itself (ua_accept_step) is uasyncio.v3's too: its
 * Acceptor (v3/stream.c) gives only how a connection is served. */
#include "io.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define ACCEPTS_PER_WAKE 64   /* then let other tasks run */
#define NO_FD_PAUSE_MS 100    /* EMFILE/ENFILE: wait for fds to be freed */

typedef struct {
    PyObject_HEAD
    PyObject *client_coro;
    PyObject *host, *port;
    PyObject *sock;        /* the listening socket.socket, once bound */
    LoopObject *loop;      /* the loop it runs on, once started */
    int backlog;
    int closed;
    size_t limit;          /* each reader's line limit (UA_NO_LIMIT: none) */
} ServerObject;

extern PyTypeObject Server_Type;
static PyObject *socket_mod, *sock_type, *str_io_refs, *str_closed, *str_close, *str_peername, *zero;

void ua_set_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));   /* not TCP (unix): no harm */
}

/* An IPv4 address in dotted decimal, as inet_ntop() writes it, for a
 * tenth of its cost (glibc's goes through sprintf: ~1,700 instructions,
 * a tenth of a short HTTP connection's). The length written. */
static int ipv4_text(const struct in_addr *in, char *out)
{
    const unsigned char *b = (const unsigned char *)&in->s_addr;
    char *p = out;
    for (int i = 0; i < 4; i++) {
        unsigned v = b[i];
        if (v >= 100)
            *p++ = (char)('0' + v / 100);
        if (v >= 10)
            *p++ = (char)('0' + v / 10 % 10);
        *p++ = (char)('0' + v % 10);
        if (i < 3)
            *p++ = '.';
    }
    return (int)(p - out);
}

PyObject *ua_sockaddr_to_py(const struct sockaddr_storage *ss)
{
    char host[INET6_ADDRSTRLEN];
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        PyObject *h = PyUnicode_DecodeASCII(host, ipv4_text(&a->sin_addr, host), NULL);
        PyObject *port = h ? PyLong_FromLong(ntohs(a->sin_port)) : NULL;
        PyObject *t = port ? PyTuple_Pack(2, h, port) : NULL;
        Py_XDECREF(h);
        Py_XDECREF(port);
        return t;
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        return Py_BuildValue("(siII)", host, ntohs(a->sin6_port), (unsigned)ntohl(a->sin6_flowinfo),
                             (unsigned)a->sin6_scope_id);
    }
    if (ss->ss_family == AF_UNIX)
        return PyUnicode_DecodeFSDefault(((const struct sockaddr_un *)ss)->sun_path);
    return Py_NewRef(Py_None);
}

int ua_extra_set_peer(ua_extra *e, const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET || ss->ss_family == AF_INET6) {
        memcpy(&e->peer, ss, ss->ss_family == AF_INET ? sizeof(e->peer.in4) : sizeof(e->peer.in6));
        return 0;
    }
    PyObject *peer = ua_sockaddr_to_py(ss);   /* a Unix socket's: now (it does not fit) */
    if (!peer)
        return -1;
    if (!e->dict && !(e->dict = PyDict_New())) {
        Py_DECREF(peer);
        return -1;
    }
    int rc = PyDict_SetItem(e->dict, str_peername, peer);
    Py_DECREF(peer);
    return rc;
}

PyObject *ua_extra_dict(ua_extra *e)
{
    if (!e->dict && !(e->dict = PyDict_New()))
        return NULL;
    if (e->peer.sa.sa_family != AF_UNSPEC) {
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof(ss));
        memcpy(&ss, &e->peer, sizeof(e->peer));
        PyObject *peer = ua_sockaddr_to_py(&ss);
        int rc = peer ? PyDict_SetItem(e->dict, str_peername, peer) : -1;
        Py_XDECREF(peer);
        if (rc < 0)
            return NULL;   /* the address still waits: asked again, it is made again */
        e->peer.sa.sa_family = AF_UNSPEC;
    }
    return e->dict;
}

static int listen_now(ServerObject *self)
{
    PyObject *infos = PyObject_CallMethod(socket_mod, "getaddrinfo", "OOii", self->host, self->port, 0,
                                          SOCK_STREAM);
    if (!infos)
        return -1;
    if (!PyList_Check(infos) || !PyList_GET_SIZE(infos)) {
        Py_DECREF(infos);
        PyErr_SetString(PyExc_OSError, "start_server(): no address to listen on");
        return -1;
    }
    PyObject *ai = PyList_GET_ITEM(infos, 0);
    PyObject *kw = Py_BuildValue("{s:O,s:i}", "family", PyTuple_GET_ITEM(ai, 0), "backlog", self->backlog);
    PyObject *args = kw ? PyTuple_Pack(1, PyTuple_GET_ITEM(ai, 4)) : NULL;
    PyObject *create = args ? PyObject_GetAttrString(socket_mod, "create_server") : NULL;
    /* create_server sets SO_REUSEADDR, binds and listens. */
    self->sock = create ? PyObject_Call(create, args, kw) : NULL;
    Py_XDECREF(create);
    Py_XDECREF(args);
    Py_XDECREF(kw);
    Py_DECREF(infos);
    if (!self->sock)
        return -1;
    PyObject *r = PyObject_CallMethod(self->sock, "setblocking", "O", Py_False);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

void ua_listener_close(LoopObject *loop, PyObject *lsock)
{
    PyObject *exc = ua_err_fetch();
    /* Its task, if parked on the socket, is woken and ends at its next step. */
    if (loop && !loop->closed && ua_loop_io_closing(loop, lsock) < 0)
        PyErr_Clear();
    PyObject *r = PyObject_CallMethodNoArgs(lsock, str_close);
    if (!r)
        PyErr_Clear();
    Py_XDECREF(r);
    ua_err_restore(exc);
}

static void close_listener(ServerObject *self)
{
    if (self->closed)
        return;
    self->closed = 1;
    if (self->sock)   /* else never bound: its first step will just end */
        ua_listener_close(self->loop, self->sock);
}

/* A socket.socket for an accepted fd, built as socket.socket(family,
 * SOCK_STREAM, 0, fileno=fd) would be, minus the Python-level __init__
 * frame (a measurable share of a short HTTP connection's cost). */
static PyObject *new_socket(int family, int fd)
{
    PyTypeObject *type = (PyTypeObject *)sock_type, *base = type->tp_base;
    PyObject *args = PyTuple_New(4);   /* (family, SOCK_STREAM, 0, fd), without Py_BuildValue's parsing */
    long vals[4] = {family, SOCK_STREAM, 0, fd};
    for (int i = 0; args && i < 4; i++) {
        PyObject *v = PyLong_FromLong(vals[i]);
        if (!v)
            Py_CLEAR(args);
        else
            PyTuple_SET_ITEM(args, i, v);
    }
    PyObject *s = args ? type->tp_new(type, args, NULL) : NULL;
    if (s && (base->tp_init(s, args, NULL) < 0 || PyObject_SetAttr(s, str_io_refs, zero) < 0 ||
              PyObject_SetAttr(s, str_closed, Py_False) < 0))
        Py_CLEAR(s);
    Py_XDECREF(args);
    return s;
}

/* Schedule client_coro(reader, writer) for a connection. The fd is
 * O_NONBLOCK from accept4(); the socket object is not told (setblocking()
 * costs two fcntl calls per connection): its recv() raises BlockingIOError
 * rather than blocking, as a non-blocking socket's does. TLS sets it
 * properly before the handshake. */
static int serve_connection(PyObject *owner, PyObject *sock, const struct sockaddr_storage *peer)
{
    ServerObject *self = (ServerObject *)owner;
    PyObject *reader = ua_reader_new(sock, NULL);
    if (reader)
        ((ReaderObject *)reader)->limit = self->limit;
    PyObject *writer = reader ? ua_writer_new(sock) : NULL;
    if (writer && ua_extra_set_peer(&((WriterObject *)writer)->extra, peer) < 0)
        Py_CLEAR(writer);
    PyObject *args[2] = {reader, writer};
    PyObject *coro = writer ? PyObject_Vectorcall(self->client_coro, args, 2, NULL) : NULL;
    LoopObject *loop = ua_running_loop_get();
    int rc = coro && loop ? ua_loop_call_soon(loop, coro, NULL) : -1;
    if (coro && !loop)
        PyErr_SetString(PyExc_RuntimeError, "start_server() must run as a task of a running loop");
    Py_XDECREF(coro);
    Py_XDECREF(writer);
    Py_XDECREF(reader);
    return rc;
}

/* An accepted fd as a socket.socket; on failure the fd is closed. */
static PyObject *wrap_accepted(int fd, int family)
{
    ua_set_nodelay(fd);
    PyObject *sock = new_socket(family, fd);
    if (!sock)
        close(fd);
    return sock;
}

PySendResult ua_accept_step(PyObject *owner, PyObject *lsock, const int *closed, ua_serve_fn serve,
                            void (*report)(PyObject *owner), PyObject **result)
{
    *result = NULL;
    for (int i = 0; i < ACCEPTS_PER_WAKE; i++) {
        if (*closed) {   /* close() was called (perhaps by a handler just now): the server ends */
            *result = Py_NewRef(Py_None);
            return PYGEN_RETURN;
        }
        int lfd = ua_fd_of(lsock);
        if (lfd < 0)
            return PYGEN_ERROR;
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        memset(&ss, 0, sizeof(ss));
        int fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            switch (errno) {
            case EAGAIN:
#if EWOULDBLOCK != EAGAIN
            case EWOULDBLOCK:
#endif
                *result = ua_syscall_new(&IORead_Type, lsock);
                return *result ? PYGEN_NEXT : PYGEN_ERROR;
            case EBADF:
            case EFAULT:
            case EINVAL:
            case ENOTSOCK:
            case EOPNOTSUPP:   /* not a listening socket: nothing to serve */
                PyErr_SetFromErrno(PyExc_OSError);
                return PYGEN_ERROR;
            case EMFILE:
            case ENFILE:
            case ENOBUFS:
            case ENOMEM:
                if (ua_debug)
                    ua_log("uasyncio", "accept: %s; retrying in %d ms", strerror(errno), NO_FD_PAUSE_MS);
                *result = ua_sleep_ms_new(NO_FD_PAUSE_MS);
                return *result ? PYGEN_NEXT : PYGEN_ERROR;
            default:   /* EINTR, ECONNABORTED, EPROTO, EPERM, a network error passed on (accept(2)) */
                continue;   /* that connection is gone; the next one may be fine */
            }
        }
        PyObject *sock = wrap_accepted(fd, ss.ss_family);
        if (!sock) {
            report(owner);
            continue;
        }
        if (serve(owner, sock, &ss) < 0) {
            /* The connection is dropped; the first error is the one reported. */
            PyObject *exc = ua_err_fetch();
            PyObject *r = PyObject_CallMethodNoArgs(sock, str_close);
            Py_XDECREF(r);
            ua_err_restore(exc);
            report(owner);
        }
        Py_DECREF(sock);
    }
    *result = Py_NewRef(Py_None);
    return PYGEN_NEXT;
}

static PySendResult server_step(ServerObject *self, PyObject **result)
{
    *result = NULL;
    if (self->closed) {   /* close() was called: the server task ends */
        *result = Py_NewRef(Py_None);
        return PYGEN_RETURN;
    }
    if (!self->loop && ua_running_loop_get())
        self->loop = (LoopObject *)Py_NewRef(ua_running_loop_get());
    if (!self->sock && listen_now(self) < 0)
        return PYGEN_ERROR;
    /* One connection failing (no memory, a refused client_coro) must not
     * end the server: it is reported as unraisable, and the server goes on. */
    return ua_accept_step((PyObject *)self, self->sock, &self->closed, serve_connection, PyErr_WriteUnraisable,
                          result);
}

/* One step; the listener is closed when the server ends, however it ends. */
static PySendResult server_send(ServerObject *self, PyObject *value, PyObject **result)
{
    PySendResult sr = server_step(self, result);
    if (sr != PYGEN_NEXT)
        close_listener(self);
    return sr;
}

static PyObject *server_iternext(ServerObject *self)
{
    PyObject *result;
    PySendResult sr = server_send(self, Py_None, &result);
    return ua_iternext_result(sr, result);
}

static PyObject *server_send_method(ServerObject *self, PyObject *value)
{
    return ua_send_result(server_iternext(self));
}

/* Cancelling the server's task throws here: close, then raise it. */
static PyObject *server_throw(ServerObject *self, PyObject *args)
{
    close_listener(self);
    return ua_raise_thrown(args);
}

static PyObject *server_close(ServerObject *self, PyObject *unused)
{
    if (self->loop && !self->closed && ua_loop_check_thread(self->loop) < 0)   /* it unregisters from the loop */
        return NULL;
    close_listener(self);
    Py_RETURN_NONE;
}

static PyObject *server_get_socket(ServerObject *self, void *closure)
{
    return Py_NewRef(self->sock ? self->sock : Py_None);
}

static int server_traverse(ServerObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->client_coro);
    Py_VISIT(self->host);
    Py_VISIT(self->port);
    Py_VISIT(self->sock);
    Py_VISIT(self->loop);
    return 0;
}

static int server_clear(ServerObject *self)
{
    close_listener(self);
    Py_CLEAR(self->client_coro);
    Py_CLEAR(self->host);
    Py_CLEAR(self->port);
    Py_CLEAR(self->sock);
    Py_CLEAR(self->loop);
    return 0;
}

static void server_dealloc(ServerObject *self)
{
    PyObject_GC_UnTrack(self);
    server_clear(self);
    PyObject_GC_Del(self);
}

static PyObject *server_repr(ServerObject *self)
{
    return PyUnicode_FromFormat("<Server %R:%R%s>", self->host, self->port, self->closed ? " closed" : "");
}


static PyMethodDef server_methods[] = {
    {"send", (PyCFunction)server_send_method, METH_O, NULL},
    {"throw", (PyCFunction)server_throw, METH_VARARGS, NULL},
    {"close", (PyCFunction)server_close, METH_NOARGS, "Stop listening."},
    {NULL},
};

static PyGetSetDef server_getset[] = {
    {"socket", (getter)server_get_socket, NULL, "the listening socket (None before it is bound)", NULL},
    {NULL},
};

static PyAsyncMethods server_async = {
    .am_await = ua_self_await,
    .am_send = (sendfunc)server_send,
};

PyTypeObject Server_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "uasyncio.Server",
    .tp_basicsize = sizeof(ServerObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "What start_server() returns: schedule it with loop.create_task().",
    .tp_dealloc = (destructor)server_dealloc,
    .tp_traverse = (traverseproc)server_traverse,
    .tp_clear = (inquiry)server_clear,
    .tp_repr = (reprfunc)server_repr,
    .tp_as_async = &server_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)server_iternext,
    .tp_methods = server_methods,
    .tp_getset = server_getset,
};

static PyObject *mod_start_server(PyObject *m, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"client_coro", "host", "port", "backlog", "limit", NULL};
    PyObject *client_coro, *host, *port, *limit = Py_None;
    int backlog = 10;
    size_t lim;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO|iO:start_server", kwlist, &client_coro, &host, &port,
                                     &backlog, &limit) ||
        ua_limit_arg(limit, &lim) < 0)
        return NULL;
    if (!PyCallable_Check(client_coro)) {
        PyErr_Format(PyExc_TypeError, "start_server(): client_coro must be callable, not %.100s",
                     Py_TYPE(client_coro)->tp_name);
        return NULL;
    }
    ServerObject *self = PyObject_GC_New(ServerObject, &Server_Type);
    if (!self)
        return NULL;
    self->client_coro = Py_NewRef(client_coro);
    self->host = Py_NewRef(host);
    self->port = Py_NewRef(port);
    self->sock = NULL;
    self->loop = NULL;
    self->backlog = backlog;
    self->closed = 0;
    self->limit = lim;
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

static PyMethodDef server_module_methods[] = {
    {"start_server", (PyCFunction)(void (*)(void))mod_start_server, METH_VARARGS | METH_KEYWORDS,
     "start_server(client_coro, host, port, backlog=10, limit=None): schedule what it returns as a\n"
     "task. limit: each connection's StreamReader line limit (None: no limit)."},
    {NULL},
};

int ua_server_ready(PyObject *module)
{
    socket_mod = PyImport_ImportModule("socket");
    if (!socket_mod || !(sock_type = PyObject_GetAttrString(socket_mod, "socket")) ||
        !(str_io_refs = PyUnicode_InternFromString("_io_refs")) ||
        !(str_closed = PyUnicode_InternFromString("_closed")) ||
        !(str_peername = PyUnicode_InternFromString("peername")) ||
        !(str_close = PyUnicode_InternFromString("close")) || !(zero = PyLong_FromLong(0)) ||
        PyType_Ready(&Server_Type) < 0)
        return -1;
    return PyModule_AddFunctions(module, server_module_methods);
}
