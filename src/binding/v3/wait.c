/* Wait: the awaitable behind every v3 wait that is not time or I/O.
 *
 * `await task`, `await event.wait()`, `await lock.acquire()`, queue gets
 * and puts, gather and wait_for each return a Wait of some kind (internal.h).
 * When its task resumes it, the kind's next() either ends the await with a
 * value, or links the Wait into the target's queue of waiters and yields
 * False: the loop then parks the task off every queue until the target
 * wakes it. An exception thrown into it (cancel) first unlinks it and lets
 * the kind undo what it was handed (a lock, an item). A free list makes a
 * wait cost no allocation in steady state. */
#include "internal.h"

ua_wait_ops ua_wait_kinds[W_NKINDS];

/* ---- queues of Waits (waitq.h) ---------------------------------------------- */

int ua_wake_task(TaskObject *t)
{
    if (!t->loop)
        return 0;
    return ua_loop_wake(t->loop, &t->rec);
}

/* Hand the Wait what it waited for and wake its task. */
int ua_wait_hand(WaitObject *w)
{
    ua_wq_unlink(&w->link);
    w->handed = 1;
    TaskObject *t = w->task;
    if (!t)
        return 0;
    w->task = NULL;
    if (ua_task_waiting(t) == w)
        ua_task_set_waiting(t, NULL);
    int rc = ua_wake_task(t);
    Py_DECREF(t);
    return rc;
}

int ua_waitq_check_thread(ua_wnode **q, int all)
{
    LoopObject *seen = NULL;   /* waiters are mostly of one loop: checked once */
    UA_WAITQ_FOR(w, q) {
        LoopObject *loop = w->task ? w->task->loop : NULL;
        if (loop && loop != seen) {
            if (ua_loop_check_thread(loop) < 0)
                return -1;
            seen = loop;
        }
        if (!all)
            break;
    }
    return 0;
}

int ua_waitq_wake_first(ua_wnode **q)
{
    if (!*q)
        return 0;
    return ua_wait_hand(ua_wait_of(*q)) < 0 ? -1 : 1;
}

int ua_waitq_wake_all(ua_wnode **q)
{
    int rc = 0;
    while (*q)
        if (ua_wait_hand(ua_wait_of(*q)) < 0)
            rc = -1;
    return rc;
}

void ua_waitq_detach_all(ua_wnode **q)
{
    while (*q)
        ua_wq_unlink(*q);
}

PyObject *ua_wait_park(WaitObject *w, ua_wnode **q)
{
    TaskObject *cur = ua_v3_current_or_error("this awaitable");
    if (!cur)
        return NULL;
    if (q)
        ua_wq_push(q, &w->link);
    w->handed = 0;
    Py_XSETREF(w->task, (TaskObject *)Py_NewRef(cur));
    ua_task_set_waiting(cur, w);
    Py_RETURN_FALSE;   /* the loop parks the task */
}

PyObject *ua_wait_done(PyObject *value)
{
    if (!value)
        return NULL;
    return ua_iternext_result(PYGEN_RETURN, value);
}

/* ---- the Wait type ---------------------------------------------------------- */

#define WAIT_FREELIST_MAX 256
static WaitObject *wait_freelist[WAIT_FREELIST_MAX];
static int wait_nfree;

WaitObject *ua_wait_new(int kind, PyObject *target)
{
    WaitObject *w;
    if (wait_nfree) {
        w = wait_freelist[--wait_nfree];
        PyObject_Init((PyObject *)w, &Wait_Type);
    } else {
        w = PyObject_GC_New(WaitObject, &Wait_Type);
        if (!w)
            return NULL;
    }
    w->link.next = w->link.prev = NULL;
    w->link.queue = NULL;
    w->task = NULL;
    w->target = Py_XNewRef(target);
    w->value = NULL;
    w->n = 0;
    w->kind = (uint8_t)kind;
    w->state = 0;
    w->handed = 0;
    w->opt = 0;
    PyObject_GC_Track(w);
    return w;
}

/* The task stops waiting on w (resumed, or thrown into). */
void ua_wait_release(WaitObject *w)
{
    ua_wq_unlink(&w->link);
    TaskObject *t = w->task;
    if (t) {
        w->task = NULL;
        if (ua_task_waiting(t) == w)
            ua_task_set_waiting(t, NULL);
        Py_DECREF(t);
    }
}

#define release_task ua_wait_release

/* ---- a task's doneq ---------------------------------------------------------- */

int ua_doneq_add(TaskObject *t, int kind, PyObject *target, PyObject *value)
{
    WaitObject *w = ua_wait_new(kind, target);
    if (!w)
        return -1;
    w->value = Py_XNewRef(value);
    ua_wq_push(&t->doneq, &w->link);   /* the queue keeps the reference */
    return 0;
}

void ua_doneq_remove(WaitObject *w)
{
    ua_wq_unlink(&w->link);
    Py_DECREF(w);
}

void ua_doneq_clear_owned(TaskObject *t)
{
    int again = 1;
    while (again) {   /* a removal may run code that changes the queue: start over */
        again = 0;
        UA_WAITQ_FOR(w, &t->doneq) {
            if (w->kind == W_GATHER_CHILD || w->kind == W_CALLBACK) {
                ua_doneq_remove(w);
                again = 1;
                break;
            }
        }
    }
}

WaitObject *ua_task_gather(TaskObject *t)
{
    UA_WAITQ_FOR(w, &t->doneq) {
        if (w->kind == W_GATHER_CHILD)
            return (WaitObject *)w->target;
    }
    return NULL;
}

int ua_task_check_loop(TaskObject *t)
{
    if (TASK_DONE(t) || !t->loop || t->loop == ua_running_loop_get())
        return 0;
    PyErr_SetString(PyExc_RuntimeError, "a task of another event loop cannot be awaited here");
    return -1;
}

int ua_task_awaited(TaskObject *t)
{
    UA_WAITQ_FOR(w, &t->doneq) {
        if (w->kind == W_TASK || w->kind == W_WAITFOR || w->kind == W_RUNNER)
            return 1;
    }
    return 0;
}

TaskObject *ua_wait_awaited_task(WaitObject *w)
{
    PyObject *t = w->kind == W_TASK || (w->kind == W_RUNNER && w->state == 1) ? w->target
                  : w->kind == W_WAITFOR && w->state == 2                   ? w->value
                                                                            : NULL;
    return t && Py_IS_TYPE(t, &Task_Type) && !TASK_DONE((TaskObject *)t) ? (TaskObject *)t : NULL;
}

static PyObject *wait_next(WaitObject *w)
{
    if (w->task && w->task != ua_v3_current()) {
        PyErr_SetString(PyExc_RuntimeError, "this wait is already awaited by another task");
        return NULL;
    }
    release_task(w);
    return ua_wait_kinds[w->kind].next(w);
}

static PyObject *wait_send(WaitObject *w, PyObject *value)
{
    return ua_send_result(wait_next(w));
}

static void undo(WaitObject *w)
{
    release_task(w);
    if (ua_wait_kinds[w->kind].thrown) {
        PyObject *exc = ua_err_fetch();
        ua_wait_kinds[w->kind].thrown(w);
        if (PyErr_Occurred())
            PyErr_WriteUnraisable((PyObject *)w);
        ua_err_restore(exc);
    }
    w->state = 0xff;   /* finished: a later next() is an error */
}

static PyObject *wait_throw(WaitObject *w, PyObject *args)
{
    if (ua_wait_kinds[w->kind].throw && w->state != 0xff) {
        ua_raise_thrown(args);
        PyObject *exc = ua_err_fetch();   /* the instance, as the kind wants it */
        return exc ? ua_send_result(ua_wait_kinds[w->kind].throw(w, exc)) : NULL;
    }
    undo(w);
    return ua_raise_thrown(args);
}

static PyObject *wait_close(WaitObject *w, PyObject *unused)
{
    if (w->state != 0xff)
        undo(w);
    Py_RETURN_NONE;
}

static int wait_traverse(WaitObject *w, visitproc visit, void *arg)
{
    Py_VISIT(w->task);
    Py_VISIT(w->target);
    Py_VISIT(w->value);
    return 0;
}

static int wait_clear(WaitObject *w)
{
    release_task(w);
    if (w->kind == W_GATHER)
        ua_v3_gather_forget(w);
    else if (w->kind == W_FLAG)
        ua_v3_flag_forget(w);   /* the flag holds it borrowed */
    Py_CLEAR(w->target);
    Py_CLEAR(w->value);
    return 0;
}

static void wait_dealloc(WaitObject *w)
{
    PyObject_GC_UnTrack(w);
    wait_clear(w);
    if (wait_nfree < WAIT_FREELIST_MAX)
        wait_freelist[wait_nfree++] = w;
    else
        PyObject_GC_Del(w);
}

static PyObject *wait_repr(WaitObject *w)
{
    static const char *names[W_NKINDS] = {"task", "wait_for", "wait_for runner", "gather", "Event.wait", "acquire",
                                         "Queue.get", "Queue.put", "Queue.join", "ThreadSafeFlag.wait",
                                         "done", "gather entry", "done callback", "future", "shield",
                                         "wait", "as_completed", "TaskGroup", "value"};
    return PyUnicode_FromFormat("<Wait %s %R>", names[w->kind], w->target ? w->target : Py_None);
}

static PyMethodDef wait_methods[] = {
    {"send", (PyCFunction)wait_send, METH_O, "send(v): the coroutine protocol (v is ignored)."},
    {"throw", (PyCFunction)wait_throw, METH_VARARGS,
     "throw(exc): stop waiting (undoing what was handed over) and raise exc."},
    {"close", (PyCFunction)wait_close, METH_NOARGS, "Stop waiting."},
    {NULL},
};

static PyAsyncMethods wait_async = {
    .am_await = ua_self_await,
};

PyTypeObject Wait_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "uasyncio.v3.Wait",
    .tp_basicsize = sizeof(WaitObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "What a v3 wait returns: await it inside a task.",
    .tp_dealloc = (destructor)wait_dealloc,
    .tp_traverse = (traverseproc)wait_traverse,
    .tp_clear = (inquiry)wait_clear,
    .tp_repr = (reprfunc)wait_repr,
    .tp_as_async = &wait_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)wait_next,
    .tp_methods = wait_methods,
};

/* ---- await task --------------------------------------------------------------- */

static PyObject *task_wait_next(WaitObject *w)
{
    TaskObject *t = (TaskObject *)w->target;
    if (w->state == 0xff) {
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse an already awaited wait");
        return NULL;
    }
    if (TASK_DONE(t)) {
        w->state = 0xff;
        return ua_wait_done(ua_v3_outcome(t));
    }
    if (ua_task_gather(t)) {
        PyErr_SetString(PyExc_RuntimeError, "can't wait");   /* it belongs to a gather */
        return NULL;
    }
    if (ua_task_check_loop(t) < 0)
        return NULL;
    if (t == ua_v3_current()) {
        PyErr_SetString(PyExc_RuntimeError, "a task cannot await itself");
        return NULL;
    }
    w->state = 1;
    return ua_wait_park(w, &t->doneq);
}

static PyObject *none_next(WaitObject *w)
{
    return NULL;   /* ends at once, with None */
}

static PyObject *entry_next(WaitObject *w)
{
    PyErr_SetString(PyExc_RuntimeError, "a task's done entry cannot be awaited");
    return NULL;
}

int ua_v3_wait_ready(PyObject *m)
{
    ua_wait_kinds[W_TASK].next = task_wait_next;
    ua_wait_kinds[W_NONE].next = none_next;
    ua_wait_kinds[W_GATHER_CHILD].next = entry_next;
    ua_wait_kinds[W_CALLBACK].next = entry_next;
    if (PyType_Ready(&Wait_Type) < 0)
        return -1;
    return PyModule_AddObjectRef(m, "Wait", (PyObject *)&Wait_Type);
}
