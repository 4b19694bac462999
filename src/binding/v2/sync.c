/* uasyncio.queues.Queue and uasyncio.synchro.Lock.
 *
 * A task that must wait is parked by a WaitOp: the op links itself into the
 * queue's (or lock's) FIFO of waiters, remembers the task and yields False,
 * so the loop holds nothing for it. The operation that unblocks it (a put, a
 * get, a release) hands it what it waited for first (the item, a reserved
 * slot, the lock) and then schedules the task: a waiter is woken at once, in
 * FIFO order, and nobody can barge in between. A woken putter's item enters
 * the queue when the putter runs again (as in uasyncio 2.0 and asyncio): no
 * consumer can hold it before put() has returned. If the task is cancelled
 * (or times out) while it waits, the exception passes through the op's
 * throw(), which unlinks it and gives back whatever it was handed. */
#include "internal.h"

typedef struct WaitOp WaitOp;

enum { W_GET, W_PUT, W_ACQUIRE, W_DONE };
enum { S_START, S_YIELDED, S_WAITING, S_WOKEN, S_FINISHED };

struct WaitOp {
    PyObject_HEAD
    PyObject *owner;        /* the Queue or Lock */
    PyObject *task;         /* the parked task: its coroutine, or its owner (ua_loop_owner_of) */
    LoopObject *loop;       /* the loop to wake it on */
    PyObject *value;        /* put: what to put; get: what was handed over */
    ua_wnode node;          /* in the owner's queue of waiters, which holds a reference */
    ua_waiter_link link;    /* in the loop's list while in that queue */
    uint8_t kind, state;
};

typedef struct {
    PyObject_HEAD
    ua_runq items;          /* strong references, oldest first */
    Py_ssize_t maxsize;     /* <= 0: unbounded */
    Py_ssize_t reserved;    /* slots handed to woken putters that have not run yet */
    ua_wnode *getters, *putters;   /* queues of waiting WaitOps (waitq.h) */
} QueueObject;

typedef struct {
    PyObject_HEAD
    char locked;
    ua_wnode *waiters;
} LockObject;

extern PyTypeObject WaitOp_Type, Queue_Type, Lock_Type;
static PyObject *QueueEmpty, *QueueFull;

/* ---- wait lists -------------------------------------------------------------- */

static WaitOp *op_of(ua_wnode *n)
{
    return n ? UA_WNODE_ENTRY(n, WaitOp, node) : NULL;
}

static void wl_append(ua_wnode **l, WaitOp *op)
{
    Py_INCREF(op);
    ua_loop_link_waiter(op->loop, &op->link, op->task);
    ua_wq_push(l, &op->node);
}

/* Unlink op; the caller takes over the list's reference. */
static void wl_remove(WaitOp *op)
{
    ua_loop_unlink_waiter(&op->link);
    ua_wq_unlink(&op->node);
}

/* Unlink op, which ends unwoken, and drop the list's reference. */
static void wl_drop(WaitOp *op)
{
    wl_remove(op);
    op->state = S_FINISHED;
    Py_DECREF(op);
}

static ua_wnode **list_of(WaitOp *op)
{
    if (op->kind == W_ACQUIRE)
        return &((LockObject *)op->owner)->waiters;
    QueueObject *q = (QueueObject *)op->owner;
    return op->kind == W_GET ? &q->getters : &q->putters;
}

/* The first waiter that can still be woken: waiters whose loop was closed
 * under them (their task is gone) are dropped on the way. */
static WaitOp *first_live(ua_wnode **l)
{
    while (*l && op_of(*l)->loop->closed)
        wl_drop(op_of(*l));
    return op_of(*l);
}

/* Mark the first live waiter woken (handing it value), unlink it, schedule
 * its task. 1 if one was woken, 0 if nobody waits, -1 on error. */
static int wake_first(ua_wnode **l, PyObject *value)
{
    WaitOp *op = first_live(l);
    if (!op)
        return 0;
    if (ua_loop_check_thread(op->loop) < 0)   /* before anything changes */
        return -1;
    wl_remove(op);
    op->state = S_WOKEN;
    if (value)
        Py_XSETREF(op->value, Py_NewRef(value));
    int rc = ua_loop_wake_owner(op->loop, op->task);
    Py_DECREF(op);
    return rc < 0 ? -1 : 1;
}

/* ---- Queue internals ---------------------------------------------------------- */

static int q_full(QueueObject *q)
{
    return q->maxsize > 0 && (Py_ssize_t)q->items.len + q->reserved >= q->maxsize;
}

static int q_push(QueueObject *q, PyObject *v)
{
    if (ua_runq_push(&q->items, v) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    Py_INCREF(v);
    return 0;
}

/* put_nowait() for an item known to fit: to the first getter, or queued. */
static int q_put(QueueObject *q, PyObject *v)
{
    int rc = wake_first(&q->getters, v);
    return rc ? (rc < 0 ? -1 : 0) : q_push(q, v);
}

/* A slot is free: hand it to the first waiting putter, which puts its item
 * when it runs. */
static int q_pass_slot(QueueObject *q)
{
    if (q_full(q) || !first_live(&q->putters))
        return 0;
    q->reserved++;
    int rc = wake_first(&q->putters, NULL);
    if (rc <= 0)
        q->reserved--;
    return rc < 0 ? -1 : 0;
}

/* Take the oldest item (queue not empty); its slot goes to a waiting putter. */
static PyObject *q_get(QueueObject *q)
{
    /* Checked before anything changes: waking a putter of a loop running
     * in another thread fails. Dropping dead putters on the way can run
     * code (their coroutines' finalizers), which may take items: the item
     * is read after. */
    WaitOp *p = first_live(&q->putters);
    if (p && ua_loop_check_thread(p->loop) < 0)
        return NULL;
    if (!q->items.len) {
        PyErr_SetNone(QueueEmpty);
        return NULL;
    }
    PyObject *v = ua_runq_pop(&q->items);
    if (q_pass_slot(q) < 0) {
        Py_DECREF(v);
        return NULL;
    }
    return v;
}

/* ---- WaitOp ------------------------------------------------------------------------ */

/* Most operations end at their first step (an item is there, the lock is
 * free): a free list spares their allocation, and they are GC-tracked only
 * once they park, the one state in which they can be part of a cycle. */
static ua_freelist waitop_freelist;

static PyObject *waitop_new(PyObject *owner, int kind, PyObject *value)
{
    WaitOp *op = (WaitOp *)ua_freelist_new(&waitop_freelist, &WaitOp_Type);
    if (!op)
        return NULL;
    op->owner = Py_XNewRef(owner);
    op->task = NULL;
    op->loop = NULL;
    op->value = Py_XNewRef(value);
    op->node.next = op->node.prev = NULL;
    op->node.queue = NULL;
    op->link.node.next = op->link.node.prev = NULL;
    op->link.node.queue = NULL;
    op->kind = (uint8_t)kind;
    op->state = S_START;
    return (PyObject *)op;
}

static PySendResult park(WaitOp *op, PyObject **result)
{
    LoopObject *loop = ua_running_loop_get();
    if (!loop || !loop->current) {
        PyErr_SetString(PyExc_RuntimeError, "can only wait inside a task of a running event loop");
        return PYGEN_ERROR;
    }
    Py_XSETREF(op->task, ua_loop_owner_of(loop->current));
    Py_XSETREF(op->loop, (LoopObject *)Py_NewRef(loop));
    op->state = S_WAITING;
    if (!PyObject_GC_IsTracked((PyObject *)op))
        PyObject_GC_Track(op);
    wl_append(list_of(op), op);
    *result = Py_NewRef(Py_False);
    return PYGEN_NEXT;
}

static PySendResult finish(WaitOp *op, PyObject *value, PyObject **result)
{
    op->state = S_FINISHED;
    *result = value;
    return value ? PYGEN_RETURN : PYGEN_ERROR;
}

static PySendResult waitop_send(WaitOp *op, PyObject *arg, PyObject **result)
{
    *result = NULL;
    switch (op->state) {
    case S_FINISHED:
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse an already awaited operation");
        return PYGEN_ERROR;
    case S_WAITING:     /* resumed early (call_soon on the task): wait on */
        *result = Py_NewRef(Py_False);
        return PYGEN_NEXT;
    case S_WOKEN:       /* the waker did the work */
        if (op->kind == W_GET) {
            PyObject *v = op->value;
            op->value = NULL;
            return finish(op, v, result);
        }
        if (op->kind == W_PUT) {   /* a slot was kept for it: the item goes in now */
            QueueObject *q = (QueueObject *)op->owner;
            q->reserved--;
            op->state = S_FINISHED;
            if (q_put(q, op->value) < 0)
                return finish(op, NULL, result);
        }
        return finish(op, Py_NewRef(op->kind == W_ACQUIRE ? Py_True : Py_None), result);
    }
    switch (op->kind) {
    case W_DONE:
        return finish(op, Py_NewRef(Py_None), result);
    case W_GET: {
        QueueObject *q = (QueueObject *)op->owner;
        if (!q->items.len)
            return park(op, result);
        return finish(op, q_get(q), result);
    }
    case W_PUT: {
        QueueObject *q = (QueueObject *)op->owner;
        if (q_full(q))
            return park(op, result);
        if (q_put(q, op->value) < 0)
            return finish(op, NULL, result);
        return finish(op, Py_NewRef(Py_None), result);
    }
    default: { /* W_ACQUIRE: as 2.0, yield once first so a releaser cannot take it straight back */
        LockObject *l = (LockObject *)op->owner;
        if (op->state == S_START) {
            op->state = S_YIELDED;
            *result = Py_NewRef(Py_None);
            return PYGEN_NEXT;
        }
        if (l->locked)
            return park(op, result);
        l->locked = 1;
        return finish(op, Py_NewRef(Py_True), result);
    }
    }
}

/* The task is cancelled or closed while the op is pending: undo. */
static int waitop_abandon(WaitOp *op)
{
    int rc = 0;
    if (op->state == S_WAITING) {
        wl_drop(op);
    } else if (op->state == S_WOKEN) {
        op->state = S_FINISHED;
        if (op->kind == W_ACQUIRE) {
            /* It was handed the lock: pass it on, it must not keep it. */
            LockObject *l = (LockObject *)op->owner;
            rc = wake_first(&l->waiters, NULL);
            if (rc == 0)
                l->locked = 0;
        } else if (op->kind == W_GET && op->value) {
            /* It was handed an item: give it to the next getter, or back
             * to the front of the queue. Nothing is lost. */
            QueueObject *q = (QueueObject *)op->owner;
            PyObject *v = op->value;
            op->value = NULL;
            rc = wake_first(&q->getters, v);
            if (rc) {
                rc = rc < 0 ? -1 : 0;
            } else if (ua_runq_push_front(&q->items, v) < 0) {
                PyErr_NoMemory();
                rc = -1;
            } else {
                Py_INCREF(v);
            }
            Py_DECREF(v);
        } else if (op->kind == W_PUT) {
            /* Its item never went in: the slot kept for it passes on. */
            QueueObject *q = (QueueObject *)op->owner;
            q->reserved--;
            rc = q_pass_slot(q);
        }
    }
    return rc;
}

int ua_sync_waiter(PyObject *obj, PyObject **task, LoopObject **loop)
{
    if (!Py_IS_TYPE(obj, &WaitOp_Type))
        return 0;
    WaitOp *op = (WaitOp *)obj;
    if (op->state != S_WAITING || !op->task || !op->loop || op->loop->closed)
        return 0;
    *task = op->task;
    *loop = op->loop;
    return 1;
}

static PyObject *waitop_iternext(WaitOp *op)
{
    PyObject *result;
    PySendResult sr = waitop_send(op, Py_None, &result);
    return ua_iternext_result(sr, result);
}

static PyObject *waitop_send_method(WaitOp *op, PyObject *v)
{
    return ua_send_result(waitop_iternext(op));
}

static PyObject *waitop_throw(WaitOp *op, PyObject *args)
{
    if (waitop_abandon(op) < 0)
        return NULL;
    op->state = S_FINISHED;
    return ua_raise_thrown(args);
}

static PyObject *waitop_close(WaitOp *op, PyObject *unused)
{
    if (waitop_abandon(op) < 0)
        return NULL;
    op->state = S_FINISHED;
    Py_RETURN_NONE;
}

static int waitop_traverse(WaitOp *op, visitproc visit, void *arg)
{
    Py_VISIT(op->owner);
    Py_VISIT(op->task);
    Py_VISIT(op->loop);
    Py_VISIT(op->value);
    return 0;
}

static int waitop_clear(WaitOp *op)
{
    ua_loop_unlink_waiter(&op->link);
    if (op->state == S_WOKEN && op->kind == W_PUT && op->owner) {
        /* Dropped before it ran (its task collected): free the slot. */
        ((QueueObject *)op->owner)->reserved--;
        op->state = S_FINISHED;
    }
    Py_CLEAR(op->task);
    Py_CLEAR(op->loop);
    Py_CLEAR(op->value);
    Py_CLEAR(op->owner);
    return 0;
}

static void waitop_dealloc(WaitOp *op)
{
    if (PyObject_GC_IsTracked((PyObject *)op))
        PyObject_GC_UnTrack(op);
    waitop_clear(op);
    ua_freelist_free(&waitop_freelist, (PyObject *)op);
}


static PyMethodDef waitop_methods[] = {
    {"send", (PyCFunction)waitop_send_method, METH_O, NULL},
    {"throw", (PyCFunction)waitop_throw, METH_VARARGS, NULL},
    {"close", (PyCFunction)waitop_close, METH_NOARGS, NULL},
    {NULL},
};

static PyAsyncMethods waitop_async = {
    .am_await = ua_self_await,
    .am_send = (sendfunc)waitop_send,
};

PyTypeObject WaitOp_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "uasyncio.WaitOp",
    .tp_basicsize = sizeof(WaitOp),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "An awaitable Queue.get/put or Lock.acquire.",
    .tp_dealloc = (destructor)waitop_dealloc,
    .tp_traverse = (traverseproc)waitop_traverse,
    .tp_clear = (inquiry)waitop_clear,
    .tp_as_async = &waitop_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)waitop_iternext,
    .tp_methods = waitop_methods,
};

/* ---- Queue ----------------------------------------------------------------------------- */

static PyObject *queue_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    QueueObject *q = (QueueObject *)type->tp_alloc(type, 0);
    if (q)
        ua_runq_init(&q->items);
    return (PyObject *)q;
}

static int queue_init(QueueObject *q, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"maxsize", NULL};
    Py_ssize_t maxsize = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|n:Queue", kwlist, &maxsize))
        return -1;
    q->maxsize = maxsize;
    return 0;
}

static PyObject *queue_get(QueueObject *q, PyObject *unused)
{
    return waitop_new((PyObject *)q, W_GET, NULL);
}

static PyObject *queue_put(QueueObject *q, PyObject *v)
{
    return waitop_new((PyObject *)q, W_PUT, v);
}

static PyObject *queue_get_nowait(QueueObject *q, PyObject *unused)
{
    if (!q->items.len) {
        PyErr_SetNone(QueueEmpty);
        return NULL;
    }
    return q_get(q);
}

static PyObject *queue_put_nowait(QueueObject *q, PyObject *v)
{
    if (q_full(q)) {
        PyErr_SetNone(QueueFull);
        return NULL;
    }
    if (q_put(q, v) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *queue_qsize(QueueObject *q, PyObject *unused)
{
    return PyLong_FromSize_t(q->items.len);
}

static PyObject *queue_empty(QueueObject *q, PyObject *unused)
{
    return PyBool_FromLong(!q->items.len);
}

static PyObject *queue_full(QueueObject *q, PyObject *unused)
{
    return PyBool_FromLong(q_full(q));
}

static PyObject *queue_repr(QueueObject *q)
{
    return PyUnicode_FromFormat("<Queue maxsize=%zd qsize=%zu>", q->maxsize, q->items.len);
}

static int queue_traverse(QueueObject *q, visitproc visit, void *arg)
{
    for (size_t i = 0; i < q->items.len; i++)
        Py_VISIT((PyObject *)ua_runq_at(&q->items, i));
    for (ua_wnode *n = q->getters; n; n = ua_wq_next(&q->getters, n))
        Py_VISIT(op_of(n));
    for (ua_wnode *n = q->putters; n; n = ua_wq_next(&q->putters, n))
        Py_VISIT(op_of(n));
    return 0;
}

static void drop_waiters(ua_wnode **l)
{
    while (*l)
        wl_drop(op_of(*l));
}

static int queue_clear(QueueObject *q)
{
    while (q->items.len)
        Py_DECREF((PyObject *)ua_runq_pop(&q->items));
    drop_waiters(&q->getters);
    drop_waiters(&q->putters);
    return 0;
}

static void queue_dealloc(QueueObject *q)
{
    PyObject_GC_UnTrack(q);
    queue_clear(q);
    ua_runq_free(&q->items);
    Py_TYPE(q)->tp_free((PyObject *)q);
}

static PyMethodDef queue_methods[] = {
    {"get", (PyCFunction)queue_get, METH_NOARGS, "get(): awaitable; the oldest item, waiting for one."},
    {"put", (PyCFunction)queue_put, METH_O, "put(v): awaitable; add v, waiting for room."},
    {"get_nowait", (PyCFunction)queue_get_nowait, METH_NOARGS, "The oldest item, or QueueEmpty."},
    {"put_nowait", (PyCFunction)queue_put_nowait, METH_O, "Add v, or QueueFull."},
    {"qsize", (PyCFunction)queue_qsize, METH_NOARGS, "Items in the queue."},
    {"empty", (PyCFunction)queue_empty, METH_NOARGS, "True if the queue holds no item."},
    {"full", (PyCFunction)queue_full, METH_NOARGS, "True if maxsize items are queued (never for maxsize 0)."},
    {NULL},
};

static PyMemberDef queue_members[] = {
    {"maxsize", T_PYSSIZET, offsetof(QueueObject, maxsize), READONLY, "the capacity (0: unbounded)"},
    {NULL},
};

PyTypeObject Queue_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "uasyncio.queues.Queue",
    .tp_basicsize = sizeof(QueueObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Queue(maxsize=0): FIFO between tasks; waiters are woken at once, in order.",
    .tp_new = queue_new,
    .tp_init = (initproc)queue_init,
    .tp_dealloc = (destructor)queue_dealloc,
    .tp_traverse = (traverseproc)queue_traverse,
    .tp_clear = (inquiry)queue_clear,
    .tp_repr = (reprfunc)queue_repr,
    .tp_methods = queue_methods,
    .tp_members = queue_members,
};

/* ---- Lock ---------------------------------------------------------------------------------- */

static PyObject *lock_acquire(LockObject *l, PyObject *unused)
{
    return waitop_new((PyObject *)l, W_ACQUIRE, NULL);
}

static PyObject *lock_release(LockObject *l, PyObject *unused)
{
    if (!l->locked) {
        PyErr_SetString(PyExc_RuntimeError, "Lock.release(): the lock is not locked");
        return NULL;
    }
    /* FIFO hand-over: it stays locked, for the next owner. */
    int rc = wake_first(&l->waiters, NULL);
    if (rc < 0)
        return NULL;
    if (rc == 0)
        l->locked = 0;
    Py_RETURN_NONE;
}

static PyObject *lock_aexit(LockObject *l, PyObject *args)
{
    PyObject *r = lock_release(l, NULL);
    if (!r)
        return NULL;
    Py_DECREF(r);
    return waitop_new(NULL, W_DONE, NULL);
}

static PyObject *lock_repr(LockObject *l)
{
    return PyUnicode_FromFormat("<Lock %s>", l->locked ? "locked" : "unlocked");
}

static int lock_traverse(LockObject *l, visitproc visit, void *arg)
{
    for (ua_wnode *n = l->waiters; n; n = ua_wq_next(&l->waiters, n))
        Py_VISIT(op_of(n));
    return 0;
}

static int lock_clear(LockObject *l)
{
    drop_waiters(&l->waiters);
    return 0;
}

static void lock_dealloc(LockObject *l)
{
    PyObject_GC_UnTrack(l);
    lock_clear(l);
    Py_TYPE(l)->tp_free((PyObject *)l);
}

static PyMethodDef lock_methods[] = {
    {"acquire", (PyCFunction)lock_acquire, METH_NOARGS, "acquire(): awaitable; yields once, then waits its turn."},
    {"release", (PyCFunction)lock_release, METH_NOARGS, "Release; the first waiter gets the lock."},
    {"__aenter__", (PyCFunction)lock_acquire, METH_NOARGS, "async with lock: acquire()."},
    {"__aexit__", (PyCFunction)lock_aexit, METH_VARARGS, "async with lock: release() at the end."},
    {NULL},
};

static PyMemberDef lock_members[] = {
    {"locked", T_BOOL, offsetof(LockObject, locked), READONLY, "True while held"},
    {NULL},
};

PyTypeObject Lock_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "uasyncio.synchro.Lock",
    .tp_basicsize = sizeof(LockObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Lock(): mutual exclusion between tasks, FIFO; `async with lock:`.",
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)lock_dealloc,
    .tp_traverse = (traverseproc)lock_traverse,
    .tp_clear = (inquiry)lock_clear,
    .tp_repr = (reprfunc)lock_repr,
    .tp_methods = lock_methods,
    .tp_members = lock_members,
};

int ua_sync_ready(PyObject *module)
{
    QueueEmpty = PyErr_NewExceptionWithDoc("uasyncio.queues.QueueEmpty", "get_nowait() on an empty queue.",
                                           NULL, NULL);
    QueueFull = PyErr_NewExceptionWithDoc("uasyncio.queues.QueueFull", "put_nowait() on a full queue.", NULL,
                                          NULL);
    if (!QueueEmpty || !QueueFull || PyType_Ready(&WaitOp_Type) < 0 || PyType_Ready(&Queue_Type) < 0 ||
        PyType_Ready(&Lock_Type) < 0)
        return -1;
    if (PyModule_AddObjectRef(module, "QueueEmpty", QueueEmpty) < 0 ||
        PyModule_AddObjectRef(module, "QueueFull", QueueFull) < 0 ||
        PyModule_AddObjectRef(module, "Queue", (PyObject *)&Queue_Type) < 0 ||
        PyModule_AddObjectRef(module, "Lock", (PyObject *)&Lock_Type) < 0)
        return -1;
    return 0;
}
