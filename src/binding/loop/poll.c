/* The loop's I/O side: parking tasks on file descriptors, waiting in the
 * poller, and PollEventLoop's add_reader/add_writer/remove_* methods. */
#include "internal.h"

#include <errno.h>
#include <limits.h>

static const char *const dir_name[2] = {"read", "write"};

uint32_t ua_poll_epoch;

/* Queue whatever the poller hands out. Runs with the GIL held, and never
 * fails: the run queue was reserved beforehand. */
static void on_ready(void *ctx, void *waiter, int fd, int dir, int hangup)
{
    LoopObject *self = ctx;
    ua_task *t = waiter;
    (void)fd, (void)dir, (void)hangup;
    ua_runq_push(&self->runq, t);
    t->state = ST_QUEUED;
    ua_loop_stamp(self, t);
}

/* ---- the fd of what a task waits on ------------------------------------------ */

static PyObject *socket_type;       /* socket.socket */

/* CPython's socket object keeps its fd right after the object header; that
 * layout has not changed in 3.x, and ua_poll_loop_ready() checks it on a real
 * socket before trusting it (else fileno() is called each time). Reading it
 * saves a Python method call per read and per write. */
typedef struct {
    PyObject_HEAD
    int fd;
} sock_head;
static int sock_layout_ok;

/* The fd of a socket (read in place) or of anything with fileno(). */

int ua_fd_of(PyObject *obj)
{
    if (sock_layout_ok && PyObject_TypeCheck(obj, (PyTypeObject *)socket_type)) {
        int fd = ((sock_head *)obj)->fd;
        if (fd >= 0)
            return fd;
        /* as fileno() -1 would give through PyObject_AsFileDescriptor() */
        PyErr_SetString(PyExc_ValueError, "file descriptor cannot be a negative integer (-1)");
        return -1;
    }
    return PyObject_AsFileDescriptor(obj);
}

/* Does a real socket keep its fd where sock_head says, open and closed? */
static int check_sock_layout(void)
{
    PyObject *s = PyObject_CallNoArgs(socket_type);
    if (!s)
        return -1;
    int fd = PyObject_AsFileDescriptor(s);
    int ok = fd >= 0 && ((sock_head *)s)->fd == fd;
    PyObject *r = PyObject_CallMethod(s, "close", NULL);
    ok = ok && r && ((sock_head *)s)->fd == -1;
    Py_XDECREF(r);
    Py_DECREF(s);
    if (!r)
        return -1;
    sock_layout_ok = ok;
    return 0;
}

/* ---- objects without a file descriptor -------------------------------------
 * MicroPython's streams (a UART, a driver, a test double) need no fd: its
 * poller asks each such object ioctl(MP_STREAM_POLL, flags) every time it
 * polls, and its unix port, while one is registered, waits in poll() at most
 * MICROPY_PY_SELECT_IOCTL_CALL_PERIOD_MS (1 ms) at a time, so that they are
 * asked again soon. The loop does the same: an object with no fileno() but
 * an ioctl() is waited on here; while any is, the epoll wait is capped at
 * IOCTL_PERIOD_MS, and each object is asked after it. As MicroPython's
 * unix port, each new wait first asks ioctl(MP_STREAM_GET_FILENO, 0): an
 * int >= 0 is an fd to poll instead. */

#define MP_STREAM_POLL 3
#define MP_STREAM_GET_FILENO 10
#define MP_POLLIN 1       /* select.POLLIN, on MicroPython and on Linux */
#define MP_POLLOUT 4      /* select.POLLOUT */
#define IOCTL_PERIOD_MS 1

static PyObject *str_ioctl;

/* ua_fd_of(obj) failed (its error is set): 1 if obj is polled through
 * ioctl() instead (the error is cleared), else 0 (the error stays). */
static int polled_by_ioctl(PyObject *obj)
{
    PyObject *err = ua_err_fetch();
    int r = PyObject_HasAttr(obj, str_ioctl);
    if (r)
        Py_XDECREF(err);
    else
        ua_err_restore(err);
    return r;
}

/* obj.ioctl(MP_STREAM_GET_FILENO, 0): the fd, or -1 for none (-1 or not an
 * int), or -2 with the exception it raised. */
static int ioctl_fileno(PyObject *obj)
{
    PyObject *res = PyObject_CallMethod(obj, "ioctl", "ii", MP_STREAM_GET_FILENO, 0);
    if (!res)
        return -2;
    int overflow;
    long fd = PyLong_Check(res) ? PyLong_AsLongAndOverflow(res, &overflow) : -1;
    Py_DECREF(res);
    return fd >= 0 && fd <= INT_MAX ? (int)fd : -1;
}

static ua_iopoll_entry *iopoll_find(LoopObject *self, PyObject *obj)
{
    for (size_t i = 0; i < self->iopoll.len; i++)
        if (self->iopoll.items[i].obj == obj)
            return &self->iopoll.items[i];
    return NULL;
}

/* An entry nobody waits on any more leaves (in order: the objects are
 * asked in the order they were first waited on). */
static void iopoll_drop_if_idle(LoopObject *self, ua_iopoll_entry *e)
{
    if (e->waiter[0] || e->waiter[1])
        return;
    PyObject *obj = e->obj;
    size_t i = (size_t)(e - self->iopoll.items);
    memmove(e, e + 1, (self->iopoll.len - i - 1) * sizeof(*e));
    self->iopoll.len--;
    Py_DECREF(obj);
}

static int iopoll_park(LoopObject *self, ua_task *t, PyObject *obj, int dir)
{
    ua_iopoll_entry *e = iopoll_find(self, obj);
    if (e && e->waiter[dir]) {
        PyErr_Format(PyExc_RuntimeError, "another task is already waiting to %s %R", dir_name[dir], obj);
        return -1;
    }
    if (!e) {
        ua_iopoll *l = &self->iopoll;
        if (l->len == l->cap) {
            size_t cap = l->cap ? 2 * l->cap : 4;
            ua_iopoll_entry *items = PyMem_Realloc(l->items, cap * sizeof(*items));
            if (!items) {
                PyErr_NoMemory();
                return -1;
            }
            l->items = items;
            l->cap = cap;
        }
        e = &l->items[l->len++];
        e->obj = Py_NewRef(obj);
        e->waiter[0] = e->waiter[1] = NULL;
    }
    e->waiter[dir] = t;
    t->state = ST_IOPOLL;
    ua_task_set_iodir(t, dir);
    return 0;
}

void ua_iopoll_remove(LoopObject *self, ua_task *t)
{
    for (size_t i = 0; i < self->iopoll.len; i++) {
        ua_iopoll_entry *e = &self->iopoll.items[i];
        if (e->waiter[TASK_IODIR(t)] == t) {
            e->waiter[TASK_IODIR(t)] = NULL;
            iopoll_drop_if_idle(self, e);
            return;
        }
    }
}

void ua_iopoll_take_all(LoopObject *self, ua_runq *into)
{
    ua_iopoll l = self->iopoll;
    self->iopoll = (ua_iopoll){NULL, 0, 0};
    for (size_t i = 0; i < l.len; i++)
        for (int dir = 0; dir < 2; dir++)
            if (l.items[i].waiter[dir])
                ua_runq_push(into, l.items[i].waiter[dir]);
    for (size_t i = 0; i < l.len; i++)
        Py_DECREF(l.items[i].obj);
    PyMem_Free(l.items);
}

/* Take the task waiting on e in dir out, or NULL. */
static ua_task *iopoll_take(ua_iopoll_entry *e, int dir)
{
    ua_task *t = e->waiter[dir];
    e->waiter[dir] = NULL;
    if (t)
        t->state = ST_NEW;
    return t;
}

/* Ask obj (waited on) whether it is ready, and wake who it is ready for:
 * as MicroPython's IOQueue, any bit but POLLOUT wakes the reader (data, an
 * error, a hang-up), any bit but POLLIN the writer. An ioctl() that fails
 * raises its error in the tasks waiting on obj. */
static int iopoll_ask_one(LoopObject *self, PyObject *obj)
{
    ua_iopoll_entry *e = iopoll_find(self, obj);
    if (!e)
        return 0;
    long flags = (e->waiter[0] ? MP_POLLIN : 0) | (e->waiter[1] ? MP_POLLOUT : 0);
    PyObject *res = PyObject_CallMethod(obj, "ioctl", "il", MP_STREAM_POLL, flags);
    long ev = 0;
    if (res && !PyLong_Check(res))
        PyErr_Format(PyExc_TypeError, "%R.ioctl(%d, %ld) must return an int, not %.100s", obj, MP_STREAM_POLL,
                     flags, Py_TYPE(res)->tp_name);
    else if (res && (ev = PyLong_AsLong(res)) < 0 && !PyErr_Occurred())
        PyErr_Format(PyExc_OSError, "%R.ioctl(%d, %ld) failed (%ld)", obj, MP_STREAM_POLL, flags, ev);
    Py_XDECREF(res);
    PyObject *exc = PyErr_Occurred() ? ua_err_fetch() : NULL;
    /* ioctl() is Python code: it may have added or ended waits. Who is
     * woken leaves the list first: waking runs no code of the list's. */
    ua_task *woken[2] = {NULL, NULL};
    e = iopoll_find(self, obj);
    if (e) {
        for (int dir = 0; dir < 2; dir++)
            if (exc || (ev & (dir == UA_POLL_READ ? ~MP_POLLOUT : ~MP_POLLIN)))
                woken[dir] = iopoll_take(e, dir);
        iopoll_drop_if_idle(self, e);
    }
    int rc = 0;
    for (int dir = 0; dir < 2; dir++) {
        ua_task *t = woken[dir];
        if (!t || rc < 0)
            continue;
        if (exc) {
            ua_err_restore(Py_NewRef(exc));
            rc = ua_loop_pend_error(self, t);
        } else {
            rc = ua_loop_queue(self, t);
        }
    }
    Py_XDECREF(exc);
    return rc;
}

static int iopoll_ask(LoopObject *self)
{
    size_t n = self->iopoll.len;
    PyObject *small[8], **objs = n <= 8 ? small : PyMem_Malloc(n * sizeof(PyObject *));
    if (!objs) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        objs[i] = Py_NewRef(self->iopoll.items[i].obj);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = iopoll_ask_one(self, objs[i]);
    for (size_t i = 0; i < n; i++)
        Py_DECREF(objs[i]);
    if (objs != small)
        PyMem_Free(objs);
    return rc;
}

/* ---- waiting ------------------------------------------------------------------ */

/* Python's signal handlers, then its pending calls (ua_schedule()): both
 * run only in the main thread. */
static int run_pending(void)
{
    return PyErr_CheckSignals() < 0 ? -1 : Py_MakePendingCalls();
}

/* Run the Python signal handlers now; what they scheduled (stop(), a
 * callback, a timer, a ThreadSafeFlag's waiter) shortens the wait, which
 * was computed before they ran. */
static int signals_then_delay(LoopObject *self, int *delay)
{
    size_t queued = self->runq.len;
    ua_timer *top = ua_timerheap_peek(&self->timers);
    uint32_t deadline = top ? top->deadline : 0;
    if (run_pending() < 0)
        return -1;
    if (self->runq.len != queued || ua_wakeup_asked(&self->wakeup)) {
        *delay = 0;
        return 0;
    }
    ua_timer *now_top = ua_timerheap_peek(&self->timers);
    if (!now_top || (now_top == top && now_top->deadline == deadline))
        return 0;
    uint32_t now;
    if (ua_loop_now(self, &now) < 0)
        return -1;
    int32_t d = ua_ticks_diff(now_top->deadline, now);
    if (d < 0)
        d = 0;
    if (*delay < 0 || d < *delay)
        *delay = d;
    return 0;
}

int ua_loop_poll(LoopObject *self, int delay)
{
    if (ua_debug)
        ua_log("uasyncio", "poll.wait(%d)", delay);
    ua_poll_epoch++;
    if (self->iopoll.len && (delay < 0 || delay > IOCTL_PERIOD_MS))
        delay = IOCTL_PERIOD_MS;
    if (delay == 0 && self->poller.nwaiters == 0)
        return self->iopoll.len ? iopoll_ask(self) : 0;   /* no fd to wait on: skip the syscall */
    int n;
    if (delay) {
        /* A signal caught while C code ran (no bytecode since to act on it):
         * act now, not after the wait. One caught later writes to the
         * wake-up pipe, which ends the wait. */
        if (signals_then_delay(self, &delay) < 0)
            return -1;
        Py_BEGIN_ALLOW_THREADS
        n = ua_poller_poll(&self->poller, delay);
        Py_END_ALLOW_THREADS
    } else {
        n = ua_poller_poll(&self->poller, 0);
    }
    if (n < 0) {
        if (errno == EINTR)
            return PyErr_CheckSignals();
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    /* Each event hands out at most two waiters. */
    if (ua_runq_reserve(&self->runq, self->runq.len + 2 * (size_t)n) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    ua_poller_dispatch(&self->poller, on_ready, self);
    int rc = self->iopoll.len ? iopoll_ask(self) : 0;
    if (self->poller.woken) {   /* another thread or a signal woke us */
        self->poller.woken = 0;
        ua_wakeup_drain(&self->wakeup);
        /* Pending calls: at the next pass (take_threadsafe), as it woke. */
        if (PyErr_CheckSignals() < 0)
            rc = -1;
    }
    return rc;
}

static int set_oserror(int fd, const char *what)
{
    if (errno == EBADF)
        PyErr_Format(PyExc_OSError, "%s: fd %d is not an open file descriptor", what, fd);
    else
        PyErr_SetFromErrno(PyExc_OSError);
    return -1;
}

/* Park t (a coroutine or a callback record, in no queue) on obj. */
static int park_on_fd(LoopObject *self, ua_task *t, int fd, int dir, const char *what, uint64_t owner)
{
    int rc = ua_poller_add_owned(&self->poller, fd, dir, t, owner);
    if (rc == UA_POLL_ALWAYS)       /* a regular file: ready now */
        return ua_loop_queue(self, t);
    if (rc < 0)
        return set_oserror(fd, what);
    t->state = ST_IOWAIT;
    t->timer.deadline = (uint32_t)fd;
    ua_task_set_iodir(t, dir);
    return 0;
}

int ua_loop_io_wait(LoopObject *self, ua_task *t, PyObject *obj, int dir, uint64_t owner)
{
    if (t->aux || (t->flags & F_WAKE)) {   /* a pending wake or exception wins */
        t->flags &= ~(F_WAKE | F_TIMED);
        return ua_loop_queue(self, t);
    }
    t->flags &= ~F_TIMED;
    int fd = ua_fd_of(obj);
    if (fd < 0 && polled_by_ioctl(obj)) {
        if (!iopoll_find(self, obj) && (fd = ioctl_fileno(obj)) == -2)
            return ua_loop_pend_error(self, t);
        if (fd < 0) {
            if (iopoll_park(self, t, obj, dir) < 0)
                return ua_loop_pend_error(self, t);
            if (ua_debug)
                ua_log("uasyncio", "%s wait on %R (ioctl): %R", dir_name[dir], obj, t->obj);
            return 0;
        }
    }
    if (fd >= 0 && ua_poller_waiter(&self->poller, fd, dir)) {
        PyErr_Format(PyExc_RuntimeError, "another task is already waiting to %s fd %d",
                     dir_name[dir], fd);
        fd = -1;
    }
    /* An error here is raised in the task, not in the loop. */
    if (fd < 0 || park_on_fd(self, t, fd, dir, dir == UA_POLL_READ ? "IORead" : "IOWrite", owner) < 0)
        return ua_loop_pend_error(self, t);
    if (ua_debug)
        ua_log("uasyncio", "%s wait on fd %d: %R", dir_name[dir], fd, t->obj);
    return 0;
}

/* Stop polling obj in dir. A task still parked there is let go of, as in
 * 2.0; removing what is not registered is not an error, and neither is an
 * object without an fd (a closed socket reports fileno() -1). */
int ua_loop_io_done(LoopObject *self, PyObject *obj, int dir)
{
    int fd = ua_fd_of(obj);
    ua_task *t;
    if (fd < 0) {
        PyErr_Clear();
        ua_iopoll_entry *e = iopoll_find(self, obj);
        t = e ? iopoll_take(e, dir) : NULL;
        if (e)
            iopoll_drop_if_idle(self, e);
    } else {
        t = ua_poller_remove(&self->poller, fd, dir);
    }
    if (t) {
        t->state = ST_NEW;
        ua_task_drop(self, t);
    }
    return 0;
}

/* obj (fd: its fd, or -1) is about to be closed: tasks still waiting on it
 * are woken (their next call on it raises), and the poller forgets its fd
 * without a syscall. Runs no Python code. */
static int io_closing(LoopObject *self, PyObject *obj, int fd)
{
    void *w[2] = {NULL, NULL};
    if (fd < 0) {
        /* no fd (or a closed one): only a wait through ioctl() can be there */
        ua_iopoll_entry *e = iopoll_find(self, obj);
        if (e) {
            w[0] = iopoll_take(e, UA_POLL_READ);
            w[1] = iopoll_take(e, UA_POLL_WRITE);
            iopoll_drop_if_idle(self, e);
        }
    } else {
        ua_poller_forget(&self->poller, fd, w);
    }
    for (int dir = 0; dir < 2; dir++) {
        ua_task *t = w[dir];
        if (!t)
            continue;
        t->state = ST_NEW;
        if (ua_loop_queue(self, t) < 0)
            return -1;
    }
    return 0;
}

int ua_loop_io_closing(LoopObject *self, PyObject *obj)
{
    int fd = ua_fd_of(obj);
    if (fd < 0)
        PyErr_Clear();
    return io_closing(self, obj, fd);
}

/* A task of loop waits on obj (fd: its fd, or -1). */
static int waits_on(LoopObject *loop, PyObject *obj, int fd)
{
    if (fd >= 0)
        return ua_poller_waiter(&loop->poller, fd, UA_POLL_READ) || ua_poller_waiter(&loop->poller, fd, UA_POLL_WRITE);
    return iopoll_find(loop, obj) != NULL;
}

/* What closing obj does to loops other than the one running here (which
 * forgets it in any case): each of them a task of which waits on it wakes
 * that task. check: only refuse, with RuntimeError, if one of them runs in
 * another thread; else wake. The list of loops is walked with no Python
 * code run (the fd is read first). */
static int closing_elsewhere(PyObject *obj, int fd, int check)
{
    LoopObject *here = ua_running_loop_get();
    for (LoopObject *l = ua_all_loops; l; l = l->next_loop) {
        if (l == here || l->closed || !waits_on(l, obj, fd))
            continue;
        if (check ? ua_loop_check_thread(l) < 0 : io_closing(l, obj, fd) < 0)
            return -1;
    }
    return 0;
}

int ua_io_check_closing(PyObject *obj)
{
    int fd = ua_fd_of(obj);
    if (fd < 0)
        PyErr_Clear();
    return closing_elsewhere(obj, fd, 1);
}

int ua_io_closing(PyObject *obj)
{
    int fd = ua_fd_of(obj);
    if (fd < 0)
        PyErr_Clear();
    if (closing_elsewhere(obj, fd, 1) < 0 || closing_elsewhere(obj, fd, 0) < 0)
        return -1;
    LoopObject *here = ua_running_loop_get();
    return here ? io_closing(here, obj, fd) : 0;
}

/* ---- PollEventLoop methods ------------------------------------------------ */

static PyObject *add_waiter(LoopObject *self, PyObject *const *args, Py_ssize_t nargs, int dir)
{
    const char *name = dir == UA_POLL_READ ? "add_reader" : "add_writer";
    if (nargs < 2) {
        PyErr_Format(PyExc_TypeError, "%s() takes an object, a callback and its arguments", name);
        return NULL;
    }
    if (self->closed) {
        PyErr_SetString(PyExc_RuntimeError, "the event loop is closed");
        return NULL;
    }
    if (ua_loop_check_thread(self) < 0)
        return NULL;
    int fd = ua_fd_of(args[0]);
    if (fd < 0)
        return NULL;
    PyObject *cb = args[1];
    ua_task *t;
    if (ua_is_coroutine(cb)) {
        t = ua_task_for_coro(self, cb);
        if (!t)
            return NULL;
        if (t->state == ST_PARKED)
            ua_loop_unplace(self, t);
        if (t->state != ST_NEW) {
            PyErr_Format(PyExc_RuntimeError, "%s(): %R is already scheduled", name, cb);
            return NULL;
        }
    } else if (PyCallable_Check(cb)) {
        PyObject *cbargs = NULL;
        if (nargs > 2 && !(cbargs = PyTuple_New(nargs - 2)))
            return NULL;
        for (Py_ssize_t i = 2; i < nargs; i++)
            PyTuple_SET_ITEM(cbargs, i - 2, Py_NewRef(args[i]));
        t = ua_task_new(TASK_CALL, cb, cbargs);
        Py_XDECREF(cbargs);
        if (!t)
            return NULL;
    } else {
        PyErr_Format(PyExc_TypeError, "%s(): expected a callable or a coroutine, not %.100s", name,
                     Py_TYPE(cb)->tp_name);
        return NULL;
    }
    if (ua_debug)
        ua_log("uasyncio", "%s(%R, %R)", name, args[0], cb);
    /* Like asyncio and 2.0, a new registration replaces the old one. */
    if (ua_loop_io_done(self, args[0], dir) < 0 || park_on_fd(self, t, fd, dir, name, 0) < 0) {
        ua_task_drop(self, t);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *remove_waiter(LoopObject *self, PyObject *obj, int dir)
{
    if (ua_loop_check_thread(self) < 0)
        return NULL;
    if (ua_debug)
        ua_log("uasyncio", "%s(%R)", dir == UA_POLL_READ ? "remove_reader" : "remove_writer", obj);
    int fd = ua_fd_of(obj);
    if (fd < 0) {
        /* A closed socket (fileno() -1) cannot be registered: nothing to do. */
        if (!PyErr_ExceptionMatches(PyExc_ValueError))
            return NULL;
        PyErr_Clear();
        Py_RETURN_FALSE;
    }
    int had = ua_poller_waiter(&self->poller, fd, dir) != NULL;
    if (ua_loop_io_done(self, obj, dir) < 0)
        return NULL;
    return PyBool_FromLong(had);
}

static PyObject *loop_add_reader(LoopObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return add_waiter(self, args, nargs, UA_POLL_READ);
}

static PyObject *loop_add_writer(LoopObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return add_waiter(self, args, nargs, UA_POLL_WRITE);
}

static PyObject *loop_remove_reader(LoopObject *self, PyObject *obj)
{
    return remove_waiter(self, obj, UA_POLL_READ);
}

static PyObject *loop_remove_writer(LoopObject *self, PyObject *obj)
{
    return remove_waiter(self, obj, UA_POLL_WRITE);
}

static PyMethodDef poll_loop_methods[] = {
    {"add_reader", (PyCFunction)(void (*)(void))loop_add_reader, METH_FASTCALL,
     "add_reader(obj, cb, *args): call cb(*args), or resume coroutine cb, once obj is readable."},
    {"add_writer", (PyCFunction)(void (*)(void))loop_add_writer, METH_FASTCALL,
     "add_writer(obj, cb, *args): the same for writable."},
    {"remove_reader", (PyCFunction)loop_remove_reader, METH_O,
     "Stop waiting for obj to be readable; True if something waited."},
    {"remove_writer", (PyCFunction)loop_remove_writer, METH_O,
     "Stop waiting for obj to be writable; True if something waited."},
    {NULL},
};

PyTypeObject PollLoop_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "uasyncio.PollEventLoop",
    .tp_basicsize = sizeof(LoopObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,   /* GC inherited */
    .tp_doc = "PollEventLoop(runq_len=16, waitq_len=16): the event loop with I/O (epoll).",
    .tp_base = &Loop_Type,
    .tp_methods = poll_loop_methods,
};

int ua_poll_loop_ready(PyObject *module)
{
    PyObject *socket_mod = PyImport_ImportModule("socket");
    socket_type = socket_mod ? PyObject_GetAttrString(socket_mod, "socket") : NULL;
    Py_XDECREF(socket_mod);
    if (!socket_type || check_sock_layout() < 0)
        return -1;
    if (!(str_ioctl = PyUnicode_InternFromString("ioctl")) || PyType_Ready(&PollLoop_Type) < 0)
        return -1;
    return PyModule_AddObjectRef(module, "PollEventLoop", (PyObject *)&PollLoop_Type);
}
