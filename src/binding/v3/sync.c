/* uasyncio.v3's Event, Lock, Semaphore, BoundedSemaphore and ThreadSafeFlag.
 *
 * Each keeps a FIFO queue of Waits (wait.c). A Lock or Semaphore is
 * handed to its first waiter on release (the count does not go up), so no
 * later task can take it first; a waiter cancelled after it was handed
 * the lock passes it on. ThreadSafeFlag's waiter is parked like any other;
 * set() from another thread reaches it through the loop's own wake-up
 * (call_soon_threadsafe), which ends a wait in the poller at once. */
#include "internal.h"

/* ---- Event ---------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    ua_wnode *waiters;      /* queue of Waits */
    uint8_t state;
} EventObject;

static PyTypeObject Event_Type;

static PyObject *event_set(EventObject *self, PyObject *unused)
{
    /* Every waiter is woken, in the order they came; each returns True
     * even if the event is cleared before it runs (as MicroPython). */
    if (ua_waitq_check_thread(&self->waiters, 1) < 0)
        return NULL;
    self->state = 1;
    if (ua_waitq_wake_all(&self->waiters) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *event_clear(EventObject *self, PyObject *unused)
{
    self->state = 0;
    Py_RETURN_NONE;
}

static PyObject *event_is_set(EventObject *self, PyObject *unused)
{
    return PyBool_FromLong(self->state);
}

static PyObject *event_wait(EventObject *self, PyObject *unused)
{
    return (PyObject *)ua_wait_new(W_EVENT, (PyObject *)self);
}

static PyObject *event_wait_next(WaitObject *w)
{
    EventObject *ev = (EventObject *)w->target;
    if (ev->state || w->handed) {
        w->state = 0xff;
        return ua_wait_done(Py_NewRef(Py_True));
    }
    w->state = 1;
    return ua_wait_park(w, &ev->waiters);
}

static void event_dealloc(EventObject *self)
{
    ua_waitq_detach_all(&self->waiters);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef event_methods[] = {
    {"set", (PyCFunction)event_set, METH_NOARGS, "Set the flag and wake every waiting task."},
    {"clear", (PyCFunction)event_clear, METH_NOARGS, "Clear the flag."},
    {"is_set", (PyCFunction)event_is_set, METH_NOARGS, "True if the flag is set."},
    {"wait", (PyCFunction)event_wait, METH_NOARGS, "Awaitable: returns True once the flag is set."},
    {NULL},
};

static PyTypeObject Event_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "uasyncio.v3.Event",
    .tp_basicsize = sizeof(EventObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Event(): a flag tasks can wait for.",
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)event_dealloc,
    .tp_methods = event_methods,
};

/* ---- Lock, Semaphore, BoundedSemaphore ----------------------------------------- */

typedef struct {
    PyObject_HEAD
    ua_wnode *waiters;      /* queue of Waits */
    Py_ssize_t value;       /* how many may acquire now (Lock: 1 free, 0 locked) */
    Py_ssize_t bound;       /* BoundedSemaphore: the initial value; else -1 */
    uint8_t is_lock;
    uint8_t handing;        /* Lock: handed to a waiter that has not run yet (not
                             * locked() meanwhile, as MicroPython's) */
} SemObject;

static PyTypeObject Lock_Type, Semaphore_Type, BoundedSemaphore_Type;

static int sem_init(SemObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"value", NULL};
    Py_ssize_t value = 1;
    self->is_lock = PyObject_TypeCheck(self, &Lock_Type);
    if (self->is_lock) {
        if (!PyArg_ParseTupleAndKeywords(args, kwds, ":Lock", kwlist + 1))
            return -1;
    } else {
        if (!PyArg_ParseTupleAndKeywords(args, kwds, "|n:Semaphore", kwlist, &value))
            return -1;
        if (value < 0) {
            PyErr_SetString(PyExc_ValueError, "Semaphore initial value must be >= 0");
            return -1;
        }
    }
    self->value = value;
    self->bound = PyObject_TypeCheck(self, &BoundedSemaphore_Type) ? value : -1;
    return 0;
}

/* Give one unit back: to the first waiter if there is one, else to the count. */
static int sem_give(SemObject *self)
{
    int r = ua_waitq_wake_first(&self->waiters);
    if (r < 0)
        return -1;
    if (!r)
        self->value++;
    else if (self->is_lock)
        self->handing = 1;
    return 0;
}

static PyObject *sem_release(SemObject *self, PyObject *unused)
{
    if (self->is_lock && (self->value || self->handing)) {
        PyErr_SetString(PyExc_RuntimeError, "Lock not acquired");
        return NULL;
    }
    if (self->bound >= 0 && !self->waiters && self->value >= self->bound) {
        PyErr_SetString(PyExc_ValueError, "BoundedSemaphore released too many times");
        return NULL;
    }
    if (ua_waitq_check_thread(&self->waiters, 0) < 0 || sem_give(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *sem_locked(SemObject *self, PyObject *unused)
{
    return PyBool_FromLong(self->value == 0 && !self->handing);
}

static PyObject *sem_acquire(SemObject *self, PyObject *unused)
{
    return (PyObject *)ua_wait_new(W_LOCK, (PyObject *)self);
}

static PyObject *lock_wait_next(WaitObject *w)
{
    SemObject *s = (SemObject *)w->target;
    if (w->handed || s->value > 0) {   /* a count left means nobody queues before it */
        if (!w->handed)
            s->value--;
        else if (s->is_lock)
            s->handing = 0;
        w->handed = 0;
        w->state = 0xff;
        return ua_wait_done(Py_NewRef(Py_True));
    }
    w->state = 1;
    return ua_wait_park(w, &s->waiters);
}

/* Cancelled after the lock was handed to it: pass it on. */
static void lock_wait_thrown(WaitObject *w)
{
    if (w->handed) {
        w->handed = 0;
        ((SemObject *)w->target)->handing = 0;
        if (sem_give((SemObject *)w->target) < 0)
            PyErr_WriteUnraisable(w->target);
    }
}

static PyObject *sem_aexit(SemObject *self, PyObject *args)
{
    if (!sem_release(self, NULL))
        return NULL;
    Py_DECREF(Py_None);
    return (PyObject *)ua_wait_new(W_NONE, NULL);
}

static PyObject *sem_repr(SemObject *self)
{
    return PyUnicode_FromFormat("<%s %s waiters=%s value=%zd>", ua_type_name(Py_TYPE(self)),
                                self->value ? "unlocked" : "locked", self->waiters ? "yes" : "no",
                                self->value);
}

static void sem_dealloc(SemObject *self)
{
    ua_waitq_detach_all(&self->waiters);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef sem_methods[] = {
    {"acquire", (PyCFunction)sem_acquire, METH_NOARGS, "Awaitable: wait until acquired (FIFO); returns True."},
    {"release", (PyCFunction)sem_release, METH_NOARGS, "Release; the first waiter gets it."},
    {"locked", (PyCFunction)sem_locked, METH_NOARGS, "True if it cannot be acquired now."},
    {"__aenter__", (PyCFunction)sem_acquire, METH_NOARGS, "async with: acquire."},
    {"__aexit__", (PyCFunction)sem_aexit, METH_VARARGS, "async with: release."},
    {NULL},
};

static PyTypeObject Lock_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "uasyncio.v3.Lock",
    .tp_basicsize = sizeof(SemObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Lock(): a mutual exclusion lock for tasks, FIFO; `async with lock:`.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)sem_init,
    .tp_dealloc = (destructor)sem_dealloc,
    .tp_repr = (reprfunc)sem_repr,
    .tp_methods = sem_methods,
};

static PyTypeObject Semaphore_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "uasyncio.v3.Semaphore",
    .tp_basicsize = sizeof(SemObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Semaphore(value=1): at most value holders at once, FIFO; `async with sem:`.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)sem_init,
    .tp_dealloc = (destructor)sem_dealloc,
    .tp_repr = (reprfunc)sem_repr,
    .tp_methods = sem_methods,
};

static PyTypeObject BoundedSemaphore_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "uasyncio.v3.BoundedSemaphore",
    .tp_basicsize = sizeof(SemObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "BoundedSemaphore(value=1): a Semaphore that refuses to be released above value.",
    .tp_base = &Semaphore_Type,
};

/* ---- ThreadSafeFlag ---------------------------------------------------------------- */

/* Every caller holds the GIL (a Python signal handler runs in the main
 * thread, between bytecodes), so state needs no atomics. What set() must do
 * from another thread is wake a loop that may be blocked without the GIL:
 * that is the loop's wake-up pipe, through call_soon_threadsafe(). No fd of
 * its own, no syscall on wait(). */
typedef struct {
    PyObject_HEAD
    int state;
    WaitObject *waiter;     /* the one task waiting (borrowed), or NULL */
} FlagObject;

static PyTypeObject Flag_Type;

static PyObject *flag_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) || (kwds && PyDict_GET_SIZE(kwds))) {
        PyErr_SetString(PyExc_TypeError, "ThreadSafeFlag() takes no arguments");
        return NULL;
    }
    return type->tp_alloc(type, 0);
}

/* In the waiter's loop thread: a set flag wakes its waiter. */
static PyObject *flag_wake(FlagObject *self, PyObject *unused)
{
    WaitObject *w = self->waiter;
    if (self->state && w && w->task && ua_wait_hand(w) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef flag_wake_def = {"_wake", (PyCFunction)flag_wake, METH_NOARGS, NULL};

static PyObject *flag_set(FlagObject *self, PyObject *unused)
{
    if (self->state)   /* already set: its waiter, if any, is being woken */
        Py_RETURN_NONE;
    self->state = 1;
    WaitObject *w = self->waiter;
    LoopObject *loop = w && w->task ? w->task->loop : NULL;
    if (!loop)
        Py_RETURN_NONE;
    /* Its waiter wakes when the loop next polls (MicroPython's poller finds
     * the flag set): behind what is queued by then, also in the loop's
     * thread. The loop is held: making the callable can run a GC, and
     * through it code that lets the loop's thread run, close and drop the
     * loop. A loop closed meanwhile has nobody left to wake. */
    Py_INCREF(loop);
    PyObject *wake = PyCFunction_New(&flag_wake_def, (PyObject *)self);
    int rc = !wake ? -1 : loop->closed ? 0 : ua_loop_at_next_poll(loop, wake);
    Py_XDECREF(wake);
    Py_DECREF(loop);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *flag_clear(FlagObject *self, PyObject *unused)
{
    self->state = 0;
    Py_RETURN_NONE;
}

static PyObject *flag_wait(FlagObject *self, PyObject *unused)
{
    return (PyObject *)ua_wait_new(W_FLAG, (PyObject *)self);
}

static PyObject *flag_wait_next(WaitObject *w)
{
    FlagObject *f = (FlagObject *)w->target;
    if (f->state || w->handed) {   /* woken: it returns even if cleared since (as MicroPython) */
        f->state = 0;
        if (f->waiter == w)
            f->waiter = NULL;
        w->state = 0xff;
        return ua_wait_done(Py_NewRef(Py_None));
    }
    if (f->waiter && f->waiter != w) {
        PyErr_SetString(PyExc_RuntimeError, "ThreadSafeFlag: another task is already waiting");
        return NULL;
    }
    /* Not set (or cleared again before its woken waiter ran): wait on. */
    PyObject *r = ua_wait_park(w, NULL);
    if (r) {
        f->waiter = w;
        w->state = 1;
    }
    return r;
}

void ua_v3_flag_forget(WaitObject *w)
{
    FlagObject *f = (FlagObject *)w->target;
    if (f && f->waiter == w)
        f->waiter = NULL;
}

int ua_v3_flag_waiting(LoopObject *loop)
{
    /* Each task knows the Wait it is parked on, however deep in its await
     * chain: looked at only when the loop has nothing else left. */
    for (TaskObject *t = ua_v3_tasks(loop); t; t = t->lnext) {
        WaitObject *w = ua_task_waiting(t);
        if (w && (w->kind == W_FLAG || w->kind == W_FUTURE))   /* another thread may wake it */
            return 1;
    }
    return 0;
}

static PyMethodDef flag_methods[] = {
    {"set", (PyCFunction)flag_set, METH_NOARGS,
     "Set the flag; safe from any thread or a signal handler, wakes the loop at once."},
    {"clear", (PyCFunction)flag_clear, METH_NOARGS, "Clear the flag."},
    {"wait", (PyCFunction)flag_wait, METH_NOARGS,
     "Awaitable: wait until the flag is set, then clear it. One task at a time."},
    {NULL},
};

static PyTypeObject Flag_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "uasyncio.v3.ThreadSafeFlag",
    .tp_basicsize = sizeof(FlagObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "ThreadSafeFlag(): a flag set from any thread or signal handler, awaited by one task.",
    .tp_new = flag_new,
    .tp_methods = flag_methods,
};

int ua_v3_sync_ready(PyObject *m)
{
    ua_wait_kinds[W_EVENT].next = event_wait_next;
    ua_wait_kinds[W_LOCK].next = lock_wait_next;
    ua_wait_kinds[W_LOCK].thrown = lock_wait_thrown;
    ua_wait_kinds[W_FLAG].next = flag_wait_next;
    ua_wait_kinds[W_FLAG].thrown = ua_v3_flag_forget;
    PyTypeObject *types[] = {&Event_Type, &Lock_Type, &Semaphore_Type, &BoundedSemaphore_Type, &Flag_Type};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (PyType_Ready(types[i]) < 0 ||
            PyModule_AddObjectRef(m, ua_type_name(types[i]), (PyObject *)types[i]) < 0)
            return -1;
    return 0;
}
