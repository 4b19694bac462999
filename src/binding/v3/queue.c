/* uasyncio.v3's Queue, with CPython's API: maxsize, qsize, empty, full, get,
 * put, get_nowait, put_nowait, task_done, join; QueueEmpty, QueueFull.
 *
 * Items live in a run queue ring (src/core/runq), as 2.0's Queue's do. A
 * getter that waits is handed the next item directly (so no later getter
 * can take it first); a putter that waits on a full queue keeps its item
 * in its Wait until a slot frees, then the item enters the queue and the
 * putter is woken. A getter cancelled after it was handed an item gives it
 * back, at the front. */
#include "internal.h"

typedef struct {
    PyObject_HEAD
    ua_runq items;              /* strong references, oldest first */
    Py_ssize_t maxsize;         /* <= 0: no limit */
    Py_ssize_t unfinished;      /* puts not yet matched by task_done() */
    ua_wnode *getters, *putters, *joiners;   /* queues of Waits */
} QueueObject;

static PyTypeObject Queue_Type;
static PyObject *QueueEmpty, *QueueFull;

/* ---- the items ---------------------------------------------------------------- */

/* Steals item (at the front: an item given back). */
static int items_push(QueueObject *q, PyObject *item, int front)
{
    if ((front ? ua_runq_push_front(&q->items, item) : ua_runq_push(&q->items, item)) < 0) {
        Py_DECREF(item);
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static int is_full(QueueObject *q)
{
    return q->maxsize > 0 && (Py_ssize_t)q->items.len >= q->maxsize;
}

/* ---- moving items ---------------------------------------------------------------- */

/* An item enters the queue (steals it): straight to a waiting getter if
 * there is one, else into the buffer (at the front: an item given back). */
static int enter(QueueObject *q, PyObject *item, int front)
{
    if (q->getters) {
        ua_wait_of(q->getters)->value = item;
        return ua_waitq_wake_first(&q->getters) < 0 ? -1 : 0;
    }
    return items_push(q, item, front);
}

/* A slot freed: the first waiting putter's item goes in, the putter wakes. */
static int admit_putter(QueueObject *q)
{
    WaitObject *p = ua_wait_of(q->putters);
    if (!p || is_full(q))
        return 0;
    PyObject *item = p->value;
    p->value = NULL;
    if (ua_waitq_wake_first(&q->putters) < 0) {
        Py_DECREF(item);
        return -1;
    }
    q->unfinished++;
    return enter(q, item, 0);
}

/* Checked before an item moves: the getter or putter it wakes may be of a
 * loop running in another thread. */
static PyObject *take(QueueObject *q)
{
    if (ua_waitq_check_thread(&q->putters, 0) < 0)
        return NULL;
    PyObject *item = ua_runq_pop(&q->items);
    if (admit_putter(q) < 0) {
        Py_DECREF(item);
        return NULL;
    }
    return item;
}

static int put_now(QueueObject *q, PyObject *item)
{
    if (ua_waitq_check_thread(&q->getters, 0) < 0)
        return -1;
    q->unfinished++;
    return enter(q, Py_NewRef(item), 0);
}

/* ---- the Waits ----------------------------------------------------------------------- */

static PyObject *get_next(WaitObject *w)
{
    QueueObject *q = (QueueObject *)w->target;
    if (w->handed && w->value) {
        PyObject *item = w->value;
        w->value = NULL;
        w->state = 0xff;
        return ua_wait_done(item);
    }
    if (q->items.len) {
        w->state = 0xff;
        return ua_wait_done(take(q));
    }
    w->state = 1;
    return ua_wait_park(w, &q->getters);
}

static void get_thrown(WaitObject *w)
{
    if (w->value) {   /* handed an item, then cancelled: give it back */
        PyObject *item = w->value;
        w->value = NULL;
        enter((QueueObject *)w->target, item, 1);
    }
}

static PyObject *put_next(WaitObject *w)
{
    QueueObject *q = (QueueObject *)w->target;
    if (w->handed) {   /* its item went in when a slot freed */
        w->state = 0xff;
        return ua_wait_done(Py_NewRef(Py_None));
    }
    if (!is_full(q)) {
        PyObject *item = w->value;
        w->value = NULL;
        w->state = 0xff;
        int rc = put_now(q, item);
        Py_DECREF(item);
        return rc < 0 ? NULL : ua_wait_done(Py_NewRef(Py_None));
    }
    w->state = 1;
    return ua_wait_park(w, &q->putters);
}

static PyObject *join_next(WaitObject *w)
{
    QueueObject *q = (QueueObject *)w->target;
    if (w->handed || !q->unfinished) {
        w->state = 0xff;
        return ua_wait_done(Py_NewRef(Py_None));
    }
    w->state = 1;
    return ua_wait_park(w, &q->joiners);
}

/* ---- Python methods ---------------------------------------------------------------- */

static int queue_init(QueueObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"maxsize", NULL};
    Py_ssize_t maxsize = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|n:Queue", kwlist, &maxsize))
        return -1;
    self->maxsize = maxsize;
    return 0;
}

static PyObject *queue_get(QueueObject *self, PyObject *unused)
{
    return (PyObject *)ua_wait_new(W_GET, (PyObject *)self);
}

static PyObject *queue_put(QueueObject *self, PyObject *item)
{
    WaitObject *w = ua_wait_new(W_PUT, (PyObject *)self);
    if (w)
        w->value = Py_NewRef(item);
    return (PyObject *)w;
}

static PyObject *queue_get_nowait(QueueObject *self, PyObject *unused)
{
    if (!self->items.len) {
        PyErr_SetNone(QueueEmpty);
        return NULL;
    }
    return take(self);
}

static PyObject *queue_put_nowait(QueueObject *self, PyObject *item)
{
    if (is_full(self)) {
        PyErr_SetNone(QueueFull);
        return NULL;
    }
    if (put_now(self, item) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *queue_task_done(QueueObject *self, PyObject *unused)
{
    if (self->unfinished <= 0) {
        PyErr_SetString(PyExc_ValueError, "task_done() called too many times");
        return NULL;
    }
    if (self->unfinished == 1 && ua_waitq_check_thread(&self->joiners, 1) < 0)
        return NULL;
    if (--self->unfinished == 0 && ua_waitq_wake_all(&self->joiners) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *queue_join(QueueObject *self, PyObject *unused)
{
    return (PyObject *)ua_wait_new(W_JOIN, (PyObject *)self);
}

static PyObject *queue_qsize(QueueObject *self, PyObject *unused)
{
    return PyLong_FromSize_t(self->items.len);
}

static PyObject *queue_empty(QueueObject *self, PyObject *unused)
{
    return PyBool_FromLong(!self->items.len);
}

static PyObject *queue_full(QueueObject *self, PyObject *unused)
{
    return PyBool_FromLong(is_full(self));
}

static PyObject *queue_get_maxsize(QueueObject *self, void *closure)
{
    return PyLong_FromSsize_t(self->maxsize);
}

static PyObject *queue_repr(QueueObject *self)
{
    return PyUnicode_FromFormat("<Queue maxsize=%zd qsize=%zu>", self->maxsize, self->items.len);
}

/* ---- object life ---------------------------------------------------------------------- */

static int queue_traverse(QueueObject *self, visitproc visit, void *arg)
{
    for (size_t i = 0; i < self->items.len; i++)
        Py_VISIT((PyObject *)ua_runq_at(&self->items, i));
    return 0;
}

static int queue_clear(QueueObject *self)
{
    while (self->items.len)
        Py_DECREF((PyObject *)ua_runq_pop(&self->items));
    return 0;
}

static void queue_dealloc(QueueObject *self)
{
    PyObject_GC_UnTrack(self);
    ua_waitq_detach_all(&self->getters);
    ua_waitq_detach_all(&self->putters);
    ua_waitq_detach_all(&self->joiners);
    queue_clear(self);
    ua_runq_free(&self->items);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef queue_methods[] = {
    {"get", (PyCFunction)queue_get, METH_NOARGS, "Awaitable: remove and return an item, waiting for one."},
    {"put", (PyCFunction)queue_put, METH_O, "Awaitable: put an item, waiting for a free slot."},
    {"get_nowait", (PyCFunction)queue_get_nowait, METH_NOARGS, "An item now, or raise QueueEmpty."},
    {"put_nowait", (PyCFunction)queue_put_nowait, METH_O, "Put now, or raise QueueFull."},
    {"task_done", (PyCFunction)queue_task_done, METH_NOARGS, "One item taken out is processed."},
    {"join", (PyCFunction)queue_join, METH_NOARGS, "Awaitable: wait until every item put is processed."},
    {"qsize", (PyCFunction)queue_qsize, METH_NOARGS, "The number of items in the queue."},
    {"empty", (PyCFunction)queue_empty, METH_NOARGS, "True if there is no item."},
    {"full", (PyCFunction)queue_full, METH_NOARGS, "True if there are maxsize items."},
    {NULL},
};

static PyGetSetDef queue_getset[] = {
    {"maxsize", (getter)queue_get_maxsize, NULL, "the capacity (0: no limit)", NULL},
    {NULL},
};

static PyTypeObject Queue_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "uasyncio.v3.Queue",
    .tp_basicsize = sizeof(QueueObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Queue(maxsize=0): a FIFO queue for tasks (CPython's asyncio.Queue API).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)queue_init,
    .tp_dealloc = (destructor)queue_dealloc,
    .tp_traverse = (traverseproc)queue_traverse,
    .tp_clear = (inquiry)queue_clear,
    .tp_repr = (reprfunc)queue_repr,
    .tp_methods = queue_methods,
    .tp_getset = queue_getset,
};

int ua_v3_queue_ready(PyObject *m)
{
    ua_wait_kinds[W_GET].next = get_next;
    ua_wait_kinds[W_GET].thrown = get_thrown;
    ua_wait_kinds[W_PUT].next = put_next;
    ua_wait_kinds[W_JOIN].next = join_next;
    if (PyType_Ready(&Queue_Type) < 0 || PyModule_AddObjectRef(m, "Queue", (PyObject *)&Queue_Type) < 0)
        return -1;
    QueueEmpty = PyErr_NewExceptionWithDoc("uasyncio.v3.QueueEmpty", "get_nowait() on an empty Queue.",
                                           NULL, NULL);
    if (!QueueEmpty || PyModule_AddObjectRef(m, "QueueEmpty", QueueEmpty) < 0)
        return -1;
    QueueFull = PyErr_NewExceptionWithDoc("uasyncio.v3.QueueFull", "put_nowait() on a full Queue.", NULL, NULL);
    if (!QueueFull || PyModule_AddObjectRef(m, "QueueFull", QueueFull) < 0)
        return -1;
    return 0;
}
