/* shield(), wait() and as_completed(): CPython's waits over several tasks,
 * with Waits and done callbacks instead of Futures.
 *
 * shield(aw) gives a Wait (W_SHIELD) that awaits the task as `await task`
 * does, except that a cancel stops at the awaiting task: cancel() follows a
 * chain of awaited tasks only through plain awaits (W_TASK).
 *
 * wait(tasks) gives a Wait (W_WAITSET) that puts a done callback on each
 * task, as CPython's does, so the tasks are looked at in the same passes:
 * the callback counts them down and wakes the waiting task when
 * return_when is met. With a timeout the waiting task sleeps in the timer
 * heap meanwhile (as wait_for's waiter does): whichever comes first wakes
 * it. Then it takes its callbacks off and splits the tasks into (done,
 * pending).
 *
 * as_completed(aws) makes its tasks at once and gives an iterator of Waits
 * (W_NEXTDONE); each takes the next task to end (its callback queues them
 * in the order they end), or raises TimeoutError once the deadline passed.
 *
 * A task handed back by wait() or as_completed() counts as retrieved, so its
 * exception is not reported as one nobody took: the caller has it (CPython
 * reports only when such a task is garbage collected). */
#include "internal.h"

static PyObject *str_all, *str_first_completed, *str_first_exception;
enum { WHEN_ALL, WHEN_FIRST_COMPLETED, WHEN_FIRST_EXCEPTION };

/* fn(t) soon: t's done callback, or a call in the next pass if it ended. */
static int on_done(TaskObject *t, PyObject *fn)
{
    if (!TASK_DONE(t))
        return ua_doneq_add(t, W_CALLBACK, NULL, fn);
    LoopObject *loop = ua_v3_loop();
    PyObject *args = loop ? PyTuple_Pack(1, (PyObject *)t) : NULL;
    int rc = args ? ua_loop_call_soon(loop, fn, args) : -1;
    Py_XDECREF(args);
    Py_XDECREF(loop);
    return rc;
}

/* A Task for aw (a Task, a coroutine, a Wait...), else TypeError. */
static TaskObject *task_of(PyObject *aw)
{
    return (TaskObject *)ua_v3_promote(aw);
}

/* ---- shield ------------------------------------------------------------------- */

static PyObject *shield_next(WaitObject *w)
{
    TaskObject *t = (TaskObject *)w->target;
    if (w->state == 0xff) {
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse an already awaited shield()");
        return NULL;
    }
    if (TASK_DONE(t)) {
        w->state = 0xff;
        return ua_wait_done(ua_v3_outcome(t));
    }
    if (ua_task_check_loop(t) < 0)   /* its end would wake us from its loop's thread */
        return NULL;
    w->state = 1;
    return ua_wait_park(w, &t->doneq);
}

/* The awaiting task was cancelled: the shielded one goes on, and its
 * exception counts as retrieved (as CPython's shield does). */
static void shield_thrown(WaitObject *w)
{
    if (w->state == 1 && w->target)
        ((TaskObject *)w->target)->rec.flags |= TF_RETRIEVED;
}

static PyObject *mod_shield(PyObject *m, PyObject *aw)
{
    TaskObject *t = task_of(aw);
    if (!t || TASK_DONE(t))
        return (PyObject *)t;
    WaitObject *w = ua_wait_new(W_SHIELD, (PyObject *)t);
    Py_DECREF(t);
    return (PyObject *)w;
}

/* ---- wait ------------------------------------------------------------------------ */

/* cb(task), bound to the Wait (its value): one more task ended. */
static PyObject *waitset_cb(PyObject *self, PyObject *task)
{
    WaitObject *w = (WaitObject *)self;
    if (w->state != 1 || !Py_IS_TYPE(task, &Task_Type))
        Py_RETURN_NONE;
    TaskObject *t = (TaskObject *)task;
    t->rec.flags |= TF_RETRIEVED;
    w->n--;
    int failed = (t->rec.flags & (TF_EXC | TF_CANCELLED)) == TF_EXC;
    if ((w->n <= 0 || w->opt == WHEN_FIRST_COMPLETED || (w->opt == WHEN_FIRST_EXCEPTION && failed)) &&
        w->task && !w->handed && ua_wait_hand(w) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef waitset_cb_def = {"_on_completion", waitset_cb, METH_O, NULL};

static void waitset_unhook(WaitObject *w)
{
    PyObject *tasks = w->target, *cb = w->value;
    if (!cb)
        return;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(tasks); i++)
        ua_v3_remove_done_callback((TaskObject *)PyTuple_GET_ITEM(tasks, i), cb);
    Py_CLEAR(w->value);
}

static PyObject *waitset_next(WaitObject *w)
{
    PyObject *tasks = w->target;
    Py_ssize_t n = PyTuple_GET_SIZE(tasks);
    if (w->state == 0) {
        TaskObject *cur = ua_v3_current_or_error("wait()");
        if (!cur)
            return NULL;
        for (Py_ssize_t i = 0; i < n; i++)   /* their ends would wake us from their loop's thread */
            if (ua_task_check_loop((TaskObject *)PyTuple_GET_ITEM(tasks, i)) < 0)
                return NULL;
        int32_t ms = w->n;   /* the timeout until now; from here the count of tasks */
        PyObject *cb = PyCFunction_New(&waitset_cb_def, (PyObject *)w);
        if (!cb)
            return NULL;
        w->value = cb;
        w->n = (int32_t)n;
        w->state = 1;
        for (Py_ssize_t i = 0; i < n; i++)
            if (on_done((TaskObject *)PyTuple_GET_ITEM(tasks, i), cb) < 0) {
                waitset_unhook(w);
                w->state = 0xff;
                return NULL;
            }
        if (ms < 0)
            return ua_wait_park(w, NULL);
        /* Asleep in the timer heap, and woken early by the callback. */
        w->handed = 0;
        Py_XSETREF(w->task, (TaskObject *)Py_NewRef(cur));
        return ua_sleep_ms_new(ms);
    }
    if (w->state != 1) {
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse an already awaited wait()");
        return NULL;
    }
    waitset_unhook(w);
    w->state = 0xff;
    PyObject *done = PySet_New(NULL), *pending = PySet_New(NULL);
    for (Py_ssize_t i = 0; done && pending && i < n; i++) {
        TaskObject *t = (TaskObject *)PyTuple_GET_ITEM(tasks, i);
        if (PySet_Add(TASK_DONE(t) ? done : pending, (PyObject *)t) < 0)
            Py_CLEAR(done);
    }
    PyObject *r = done && pending ? PyTuple_Pack(2, done, pending) : NULL;
    Py_XDECREF(done);
    Py_XDECREF(pending);
    return ua_wait_done(r);
}

static void waitset_thrown(WaitObject *w)
{
    waitset_unhook(w);
}

static PyObject *mod_wait(PyObject *m, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"fs", "timeout", "return_when", NULL};
    PyObject *fs, *timeout = Py_None, *return_when = str_all;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$OO:wait", kwlist, &fs, &timeout, &return_when))
        return NULL;
    if (Py_IS_TYPE(fs, &Task_Type) || PyCoro_CheckExact(fs)) {
        PyErr_Format(PyExc_TypeError, "expect a list of futures, not %.100s", Py_TYPE(fs)->tp_name);
        return NULL;
    }
    int when = WHEN_ALL;
    int eq = PyObject_RichCompareBool(return_when, str_all, Py_EQ);
    if (eq > 0)
        when = WHEN_ALL;
    else if (!eq && (eq = PyObject_RichCompareBool(return_when, str_first_completed, Py_EQ)) > 0)
        when = WHEN_FIRST_COMPLETED;
    else if (!eq && (eq = PyObject_RichCompareBool(return_when, str_first_exception, Py_EQ)) > 0)
        when = WHEN_FIRST_EXCEPTION;
    if (eq < 0)
        return NULL;
    int32_t ms = -1;
    if (timeout != Py_None) {
        if (ua_delay_from_secs(timeout, &ms, "wait") < 0)
            return NULL;
        if (ms < 0)
            ms = 0;
    }
    PyObject *set = PySet_New(fs);
    if (!set)
        return NULL;
    if (!PySet_GET_SIZE(set)) {
        Py_DECREF(set);
        PyErr_SetString(PyExc_ValueError, "Set of Tasks/Futures is empty.");
        return NULL;
    }
    if (!eq) {
        Py_DECREF(set);
        PyErr_Format(PyExc_ValueError, "Invalid return_when value: %R", return_when);
        return NULL;
    }
    PyObject *tasks = PySequence_Tuple(set);
    Py_DECREF(set);
    if (!tasks)
        return NULL;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(tasks); i++) {
        PyObject *t = PyTuple_GET_ITEM(tasks, i);
        if (!Py_IS_TYPE(t, &Task_Type)) {
            PyErr_Format(PyExc_TypeError, "%s", PyCoro_CheckExact(t) || PyGen_Check(t)
                                                   ? "Passing coroutines is forbidden, use tasks explicitly."
                                                   : "wait() expects Tasks");
            Py_DECREF(tasks);
            return NULL;
        }
    }
    WaitObject *w = ua_wait_new(W_WAITSET, tasks);
    Py_DECREF(tasks);
    if (w) {
        w->n = ms;
        w->opt = (uint8_t)when;
    }
    return (PyObject *)w;
}

/* ---- as_completed -------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *todo;         /* set of the tasks not ended yet */
    PyObject *done;         /* list of the tasks ended, not handed out yet, in order */
    PyObject *cb;           /* the done callback, bound to it */
    LoopObject *loop;
    ua_wnode *waiters;      /* the Waits waiting for the next one */
    Py_ssize_t left;        /* Waits still to hand out */
    uint32_t deadline;
    uint8_t timed, expired;
} AsCompletedObject;

static PyTypeObject AsCompleted_Type;

static void ac_unhook(AsCompletedObject *a)
{
    PyObject *todo = a->todo;
    a->todo = PySet_New(NULL);   /* NULL on no memory: later callbacks do nothing */
    PyObject *it = todo ? PyObject_GetIter(todo) : NULL, *t;
    while (it && (t = PyIter_Next(it))) {
        ua_v3_remove_done_callback((TaskObject *)t, a->cb);
        Py_DECREF(t);
    }
    Py_XDECREF(it);
    Py_XDECREF(todo);
    PyErr_Clear();
}

/* Whether the deadline passed: if so, the tasks not ended are no longer
 * waited for (each next one raises TimeoutError), and waiters wake. */
static int ac_check_time(AsCompletedObject *a)
{
    if (a->expired)
        return 1;
    if (!a->timed)
        return 0;
    uint32_t now;
    if (ua_loop_now(a->loop, &now) < 0)
        return -1;
    if (ua_ticks_diff(a->deadline, now) > 0)
        return 0;
    a->expired = 1;
    ac_unhook(a);
    return ua_waitq_wake_all(&a->waiters) < 0 ? -1 : 1;
}

static PyObject *ac_cb(PyObject *self, PyObject *task)
{
    AsCompletedObject *a = (AsCompletedObject *)self;
    if (!a->todo || !a->loop)
        Py_RETURN_NONE;   /* cleared by the collector */
    int r = ac_check_time(a);
    if (r)
        return r < 0 ? NULL : Py_NewRef(Py_None);
    r = PySet_Discard(a->todo, task);
    if (r <= 0)
        return r < 0 ? NULL : Py_NewRef(Py_None);
    ((TaskObject *)task)->rec.flags |= TF_RETRIEVED;
    if (PyList_Append(a->done, task) < 0 || ua_waitq_wake_first(&a->waiters) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef ac_cb_def = {"_on_completion", ac_cb, METH_O, NULL};

/* A W_NEXTDONE Wait: the next task to end (opt: the task itself, for async
 * for; else its outcome). */
static PyObject *nextdone_next(WaitObject *w)
{
    AsCompletedObject *a = (AsCompletedObject *)w->target;
    if (w->state == 0xff || !a->todo) {
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse an already awaited as_completed() wait");
        return NULL;
    }
    if (PyList_GET_SIZE(a->done)) {
        PyObject *t = Py_NewRef(PyList_GET_ITEM(a->done, 0));
        if (PySequence_DelItem(a->done, 0) < 0) {
            Py_DECREF(t);
            return NULL;
        }
        w->state = 0xff;
        if (w->opt)
            return ua_wait_done(t);
        PyObject *r = ua_v3_outcome((TaskObject *)t);
        Py_DECREF(t);
        return ua_wait_done(r);
    }
    int r = ac_check_time(a);
    if (r) {
        if (r > 0) {
            w->state = 0xff;
            PyErr_SetNone(ua_v3_timeout_error);
        }
        return NULL;
    }
    if (a->loop != ua_running_loop_get()) {   /* its tasks' ends would wake us from their loop's thread */
        PyErr_SetString(PyExc_RuntimeError, "a task of another event loop cannot be awaited here");
        return NULL;
    }
    w->state = 1;
    if (!a->timed)
        return ua_wait_park(w, &a->waiters);
    /* Asleep until the deadline, and linked for the next task to end. */
    TaskObject *cur = ua_v3_current_or_error("as_completed()");
    if (!cur)
        return NULL;
    uint32_t now;
    if (ua_loop_now(a->loop, &now) < 0)
        return NULL;
    ua_wq_push(&a->waiters, &w->link);
    w->handed = 0;
    Py_XSETREF(w->task, (TaskObject *)Py_NewRef(cur));
    return ua_sleep_ms_new(ua_ticks_diff(a->deadline, now));
}

static PyObject *ac_take(AsCompletedObject *a, int the_task)
{
    if (a->left <= 0)
        return NULL;
    a->left--;
    WaitObject *w = ua_wait_new(W_NEXTDONE, (PyObject *)a);
    if (w)
        w->opt = (uint8_t)the_task;
    return (PyObject *)w;
}

static PyObject *ac_next(AsCompletedObject *a)
{
    return ac_take(a, 0);   /* NULL with nothing set: StopIteration */
}

static PyObject *ac_anext(AsCompletedObject *a)
{
    PyObject *w = ac_take(a, 1);
    if (!w && !PyErr_Occurred())
        PyErr_SetNone(PyExc_StopAsyncIteration);
    return w;
}

static int ac_traverse(AsCompletedObject *a, visitproc visit, void *arg)
{
    Py_VISIT(a->todo);
    Py_VISIT(a->done);
    Py_VISIT(a->cb);
    Py_VISIT(a->loop);
    return 0;
}

static int ac_clear(AsCompletedObject *a)
{
    if (a->todo && a->cb)
        ac_unhook(a);
    ua_waitq_detach_all(&a->waiters);
    Py_CLEAR(a->todo);
    Py_CLEAR(a->done);
    Py_CLEAR(a->cb);
    Py_CLEAR(a->loop);
    return 0;
}

static void ac_dealloc(AsCompletedObject *a)
{
    PyObject_GC_UnTrack(a);
    ac_clear(a);
    Py_TYPE(a)->tp_free((PyObject *)a);
}

static PyAsyncMethods ac_async = {
    .am_aiter = ua_self_await,
    .am_anext = (unaryfunc)ac_anext,
};

static PyTypeObject AsCompleted_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "uasyncio.v3._AsCompleted",
    .tp_basicsize = sizeof(AsCompletedObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "What as_completed() returns: for aw in it: await aw (results in the order the tasks end); "
              "async for task in it: the tasks themselves.",
    .tp_dealloc = (destructor)ac_dealloc,
    .tp_traverse = (traverseproc)ac_traverse,
    .tp_clear = (inquiry)ac_clear,
    .tp_as_async = &ac_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)ac_next,
};

static PyObject *mod_as_completed(PyObject *m, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"fs", "timeout", NULL};
    PyObject *fs, *timeout = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$O:as_completed", kwlist, &fs, &timeout))
        return NULL;
    if (Py_IS_TYPE(fs, &Task_Type) || PyCoro_CheckExact(fs)) {
        PyErr_Format(PyExc_TypeError, "expect an iterable of futures, not %.100s", Py_TYPE(fs)->tp_name);
        return NULL;
    }
    int32_t ms = 0;
    if (timeout != Py_None && ua_delay_from_secs(timeout, &ms, "as_completed") < 0)
        return NULL;
    PyObject *set = PySet_New(NULL);   /* the awaitables seen */
    if (!set)
        return NULL;
    AsCompletedObject *a = PyObject_GC_New(AsCompletedObject, &AsCompleted_Type);
    if (!a) {
        Py_DECREF(set);
        return NULL;
    }
    a->todo = PySet_New(NULL);
    a->done = PyList_New(0);
    a->cb = PyCFunction_New(&ac_cb_def, (PyObject *)a);
    a->loop = ua_v3_loop();
    a->waiters = NULL;
    a->left = 0;
    a->timed = a->expired = 0;
    a->deadline = 0;
    PyObject_GC_Track(a);
    if (!a->todo || !a->done || !a->cb || !a->loop)
        goto error;
    /* Tasks made in the order given (each awaitable once): CPython goes by a
     * set's order, which no program can count on. */
    PyObject *it = PyObject_GetIter(fs), *aw;
    while (it && (aw = PyIter_Next(it))) {
        int seen = PySet_Contains(set, aw);
        if (!seen && PySet_Add(set, aw) < 0)
            seen = -1;
        if (seen) {
            Py_DECREF(aw);
            if (seen < 0) {
                Py_DECREF(it);
                goto error;
            }
            continue;
        }
        TaskObject *t = task_of(aw);
        Py_DECREF(aw);
        if (t && !TASK_DONE(t) && t->loop && t->loop != a->loop) {   /* its end would come in its loop's thread */
            PyErr_SetString(PyExc_RuntimeError, "a task of another event loop cannot be awaited here");
            Py_CLEAR(t);
        }
        if (!t || PySet_Add(a->todo, (PyObject *)t) < 0 || on_done(t, a->cb) < 0) {
            Py_XDECREF(t);
            Py_DECREF(it);
            goto error;
        }
        Py_DECREF(t);
        a->left++;
    }
    Py_XDECREF(it);
    if (PyErr_Occurred())
        goto error;
    if (timeout != Py_None && a->left) {
        uint32_t now;
        if (ua_loop_now(a->loop, &now) < 0)
            goto error;
        a->timed = 1;
        a->deadline = ua_ticks_add(now, ms < 0 ? 0 : ms);
    }
    Py_DECREF(set);
    return (PyObject *)a;
error:
    Py_DECREF(set);
    Py_DECREF(a);
    return NULL;
}

static PyMethodDef funcs[] = {
    {"shield", mod_shield, METH_O,
     "shield(aw): await aw (as a Task) without passing a cancel on to it: cancelling the awaiting "
     "task raises CancelledError there, and aw goes on."},
    {"wait", (PyCFunction)(void (*)(void))mod_wait, METH_VARARGS | METH_KEYWORDS,
     "wait(tasks, *, timeout=None, return_when=ALL_COMPLETED): awaitable: wait until return_when "
     "(FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED) or the timeout; gives (done, pending), two sets."},
    {"as_completed", (PyCFunction)(void (*)(void))mod_as_completed, METH_VARARGS | METH_KEYWORDS,
     "as_completed(aws, *, timeout=None): an iterator of awaitables, each giving the next result in "
     "the order the tasks end (TimeoutError once the timeout passed); `async for` gives the tasks."},
    {NULL},
};

int ua_v3_waitset_ready(PyObject *m)
{
    ua_wait_kinds[W_SHIELD].next = shield_next;
    ua_wait_kinds[W_SHIELD].thrown = shield_thrown;
    ua_wait_kinds[W_WAITSET].next = waitset_next;
    ua_wait_kinds[W_WAITSET].thrown = waitset_thrown;
    ua_wait_kinds[W_NEXTDONE].next = nextdone_next;
    if (!(str_all = PyUnicode_InternFromString("ALL_COMPLETED")) ||
        !(str_first_completed = PyUnicode_InternFromString("FIRST_COMPLETED")) ||
        !(str_first_exception = PyUnicode_InternFromString("FIRST_EXCEPTION")))
        return -1;
    if (PyModule_AddObjectRef(m, "ALL_COMPLETED", str_all) < 0 ||
        PyModule_AddObjectRef(m, "FIRST_COMPLETED", str_first_completed) < 0 ||
        PyModule_AddObjectRef(m, "FIRST_EXCEPTION", str_first_exception) < 0 ||
        PyType_Ready(&AsCompleted_Type) < 0)
        return -1;
    return PyModule_AddFunctions(m, funcs);
}
