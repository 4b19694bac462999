/* uasyncio.v3's Task: a coroutine scheduled on the loop, with its outcome.
 *
 * The Task embeds the loop's record (internal.h), so the loop resumes it like any
 * task; through the two kinds this file adds to the loop's table (at the
 * end), the loop calls back here when it ends (ua_v3_task_end) and, for an
 * exception nobody took, one pass later (ua_v3_task_reap), as MicroPython
 * does: the exception goes to the loop's exception handler only if no task
 * awaited it in the meantime. */
#include "internal.h"

PyObject *ua_v3_CancelledError, *ua_v3_TimeoutError;
static PyObject *InvalidStateError;
uint8_t ua_v3_task_kind, ua_v3_done_kind;

/* ---- the running task and the loop -------------------------------------- */

TaskObject *ua_v3_current(void)
{
    LoopObject *l = ua_running_loop_get();
    ua_task *r = l ? l->current : NULL;
    return r && r->kind == ua_v3_task_kind ? TASK_OF(r) : NULL;
}

TaskObject *ua_v3_current_or_error(const char *what)
{
    TaskObject *t = ua_v3_current();
    if (!t)
        PyErr_Format(PyExc_RuntimeError, "%s must be awaited inside a uasyncio.v3 task", what);
    return t;
}

/* ---- the loop's list of live Tasks ------------------------------------------ */

static void list_link(LoopObject *loop, TaskObject *t)
{
    TaskObject *head = ua_v3_tasks(loop);
    t->loop = loop;
    t->lprev = NULL;
    t->lnext = head;
    if (head)
        head->lprev = t;
    loop->kind_data[ua_v3_task_kind] = t;
    Py_INCREF(t);
}

/* The loop lets go of t: its reference goes (t may be freed). */
static void list_release(TaskObject *t)
{
    LoopObject *loop = t->loop;
    if (!loop)
        return;
    if (t->lprev)
        t->lprev->lnext = t->lnext;
    else
        loop->kind_data[ua_v3_task_kind] = t->lnext;
    if (t->lnext)
        t->lnext->lprev = t->lprev;
    t->lprev = t->lnext = NULL;
    t->loop = NULL;
    Py_DECREF(t);
}

/* A Task parked by a bare yield False (2.0's way: not on a Wait, which wakes
 * it itself) is in the loop's map of records by coroutine until it runs
 * again: 2.0's call_soon(coro), call_later(coro) or cancel(coro), given its
 * coroutine (loop.cur_task), then wake this record and make no second one. */
int ua_v3_parked(LoopObject *loop, ua_task *r)
{
    if ((r->flags & (TF_PARKED | F_MAPPED)) || ua_ptrmap_get(&loop->tasks, r->obj))
        return 0;
    if (ua_ptrmap_add(&loop->tasks, r) < 0) {
        PyErr_NoMemory();
        return ua_loop_pend_error(loop, r);
    }
    r->flags |= F_MAPPED;
    return 0;
}

static void unmap(LoopObject *loop, ua_task *r)
{
    if (r->flags & F_MAPPED) {
        ua_ptrmap_del(&loop->tasks, r->obj);
        r->flags &= ~F_MAPPED;
    }
}

/* The loop goes away (close() or collection): it lets go of every Task.
 * With finalize (close()), each pending coroutine is closed now, so its
 * finally blocks run even if something else still holds its Task. */
void ua_v3_release_all(LoopObject *loop, int finalize)
{
    while (ua_v3_tasks(loop)) {
        TaskObject *t = ua_v3_tasks(loop);
        Py_INCREF(t);
        unmap(loop, &t->rec);
        WaitObject *w = ua_task_waiting(t);
        if (w)
            ua_wait_release(w);
        t->rec.state = ST_NEW;
        list_release(t);
        if (finalize && !TASK_DONE(t) && t->rec.obj) {
            PyObject *obj = Py_NewRef(t->rec.obj);
            ua_finalize_task_obj(obj);
            Py_DECREF(obj);
        }
        Py_DECREF(t);
    }
}

int ua_v3_traverse(LoopObject *loop, visitproc visit, void *arg)
{
    for (TaskObject *t = ua_v3_tasks(loop); t; t = t->lnext)
        Py_VISIT(t);
    return 0;
}

/* 2.0's cancel(coro) reaches a Task through the coroutine it runs (or one
 * that coroutine awaits). */
static PyObject *find(LoopObject *loop, int (*match)(PyObject *coro, void *arg), void *arg)
{
    for (TaskObject *t = ua_v3_tasks(loop); t; t = t->lnext)
        if (!TASK_DONE(t) && t->rec.obj && match(t->rec.obj, arg))
            return (PyObject *)t;
    return NULL;
}

/* ---- creation ------------------------------------------------------------------ */

static int is_coroutine(PyObject *obj)
{
    if (PyCoro_CheckExact(obj) || PyGen_Check(obj))
        return 1;
    int r = PyObject_HasAttrString(obj, "send");
    return r && PyIter_Check(obj);
}

PyObject *ua_v3_create_task(LoopObject *loop, PyObject *coro)
{
    if (!is_coroutine(coro)) {
        PyErr_SetString(PyExc_TypeError, "coroutine expected");   /* MicroPython's words */
        return NULL;
    }
    if (loop->closed) {
        PyErr_SetString(PyExc_RuntimeError, "the event loop is closed");
        return NULL;
    }
    if (ua_loop_check_thread(loop) < 0)
        return NULL;
    TaskObject *t = PyObject_GC_New(TaskObject, &Task_Type);
    if (!t)
        return NULL;
    memset(&t->rec, 0, sizeof(t->rec));
    t->rec.kind = ua_v3_task_kind;
    t->rec.state = ST_NEW;
    t->rec.obj = Py_NewRef(coro);
    t->loop = NULL;
    t->lprev = t->lnext = NULL;
    t->doneq = NULL;
    PyObject_GC_Track(t);
    if (ua_loop_queue(loop, &t->rec) < 0) {
        Py_DECREF(t);
        return NULL;
    }
    list_link(loop, t);
    return (PyObject *)t;
}

PyObject *ua_v3_promote(PyObject *aw)
{
    if (Py_IS_TYPE(aw, &Task_Type))
        return Py_NewRef(aw);
    LoopObject *loop = ua_v3_loop();
    if (!loop)
        return NULL;
    PyObject *t = ua_v3_create_task(loop, aw);
    Py_DECREF(loop);
    return t;
}

/* ---- the end of a Task ------------------------------------------------------ */

/* What the task's end does, in the order it was asked for: wake the tasks
 * awaiting it, tell its gather, schedule the done callbacks (cb(task)).
 * Returns -1 on error, else whether some task or gather takes the outcome. */
static int run_doneq(LoopObject *loop, TaskObject *t)
{
    int rc = 0, awaited = 0;
    while (t->doneq) {
        WaitObject *w = ua_wait_of(t->doneq);
        if (w->kind == W_GATHER_CHILD) {
            ua_wq_unlink(&w->link);
            awaited = 1;
            ua_v3_gather_child_done((WaitObject *)w->target, t);
            Py_DECREF(w);
        } else if (w->kind == W_CALLBACK) {
            ua_wq_unlink(&w->link);
            PyObject *args = PyTuple_Pack(1, (PyObject *)t);
            if (!args || ua_loop_call_soon(loop, w->value, args) < 0)
                rc = -1;
            Py_XDECREF(args);
            Py_DECREF(w);
        } else {
            awaited = 1;
            if (ua_wait_hand(w) < 0)
                rc = -1;
        }
    }
    return rc < 0 ? -1 : awaited;
}

int ua_v3_task_end(LoopObject *loop, ua_task *r, PySendResult sr, PyObject *result, PyObject **ret)
{
    TaskObject *t = TASK_OF(r);
    PyObject *value = NULL;
    int rc = 0, escape = 0, awaited = 0;
    r->state = ST_NEW;
    r->kind = ua_v3_done_kind;
    Py_CLEAR(r->aux);
    if (sr == PYGEN_RETURN) {
        r->aux = result;
    } else {
        value = ua_err_fetch();
        if (!value)
            value = PyObject_CallFunction(PyExc_SystemError, "s", "a task ended with no exception set");
        if (!value)
            value = ua_err_fetch();
        r->aux = Py_NewRef(value);
        r->flags |= TF_EXC;
        if (PyErr_GivenExceptionMatches(value, ua_v3_CancelledError))
            r->flags |= TF_CANCELLED;
        else if (!PyErr_GivenExceptionMatches(value, PyExc_Exception))
            escape = 1;   /* KeyboardInterrupt, SystemExit: they stop the loop too */
    }
    Py_INCREF(t);
    awaited = run_doneq(loop, t);
    if (awaited < 0) {
        awaited = 0;
        rc = -1;
    }
    if (r->flags & F_MAIN) {
        awaited = 1;
        if (!rc) {
            *ret = Py_NewRef(Py_None);
            rc = 1;
        }
    }
    if (awaited || escape)
        r->flags |= TF_RETRIEVED;
    if ((r->flags & (TF_EXC | TF_CANCELLED | TF_RETRIEVED)) == TF_EXC && rc == 0) {
        /* Nobody waits for it: report it next pass unless awaited by then. */
        if (ua_loop_queue(loop, r) < 0) {
            list_release(t);
            rc = -1;
        }
    } else {
        list_release(t);
    }
    if (escape) {
        if (rc == 1)
            Py_CLEAR(*ret);
        ua_err_restore(value);
        value = NULL;
        rc = -1;
    }
    Py_XDECREF(value);
    Py_DECREF(t);
    return rc;
}

int ua_v3_task_reap(LoopObject *loop, ua_task *r, PyObject **ret)
{
    TaskObject *t = TASK_OF(r);
    int rc = 0;
    r->state = ST_NEW;
    Py_INCREF(t);
    if (!(r->flags & TF_RETRIEVED)) {
        r->flags |= TF_RETRIEVED;
        rc = ua_loop_handle_exception(loop, "Task exception wasn't retrieved", r->aux, (PyObject *)t);
    }
    list_release(t);
    Py_DECREF(t);
    return rc < 0 ? -1 : 0;
}

PyObject *ua_v3_outcome(TaskObject *t)
{
    t->rec.flags |= TF_RETRIEVED;
    PyObject *v = t->rec.aux;
    if (t->rec.flags & TF_EXC) {
        PyErr_SetObject((PyObject *)Py_TYPE(v), v);
        return NULL;
    }
    return Py_NewRef(v);
}

/* ---- cancel ------------------------------------------------------------------- */

/* As MicroPython's: the task gets CancelledError when it next runs, and
 * runs "now" (behind the tasks queued already) if it waited on something
 * or slept on; a task already queued, or whose deadline has passed, keeps
 * its place. */
int ua_v3_cancel(TaskObject *t)
{
    return ua_v3_cancel_exc(t, NULL);
}

/* exc: the CancelledError instance to throw (NULL: a new one), so that
 * timeout() and TaskGroup know their own cancel when it comes back. */
int ua_v3_cancel_exc(TaskObject *t, PyObject *exc)
{
    if (TASK_DONE(t))
        return 0;
    if (t == ua_v3_current()) {
        PyErr_SetString(PyExc_RuntimeError, "can't cancel self");
        return -1;
    }
    /* The exception first: making it may run a GC, and with it any code
     * (finalizers, other threads), so nothing read before it is kept. */
    exc = exc ? Py_NewRef(exc) : PyObject_CallNoArgs(ua_v3_CancelledError);
    if (!exc)
        return -1;
    /* A task awaiting another task: the cancel goes down the chain, to the
     * task that really waits (its CancelledError comes back up). */
    for (int depth = 0; depth < 10000; depth++) {
        WaitObject *w = ua_task_waiting(t);
        TaskObject *inner = w ? ua_wait_awaited_task(w) : NULL;
        if (!inner)
            break;
        t = inner;
    }
    LoopObject *loop = t->loop;
    if (!loop || TASK_DONE(t)) {   /* its loop was closed: it will never run again */
        Py_DECREF(exc);
        return 0;
    }
    if (ua_loop_check_thread(loop) < 0) {   /* before anything changes */
        Py_DECREF(exc);
        return -1;
    }
    if (t->rec.state == ST_RUNNING) {
        Py_DECREF(exc);
        return 1;   /* the running task, down the chain: as on MicroPython, it is not stopped */
    }
    WaitObject *w = ua_task_waiting(t);
    if (w)
        ua_wait_release(w);   /* out of the queue it waits in; its Wait undoes the rest when thrown into */
    /* The exception it replaces goes last: releasing it runs code, which
     * must find the task placed (t is held meanwhile). */
    Py_INCREF(t);
    PyObject *old = t->rec.aux;
    t->rec.aux = exc;
    int rc = 1;
    uint32_t now;
    if (t->rec.state == ST_QUEUED)
        ;
    else if (t->rec.state == ST_SLEEPING && ua_loop_now(loop, &now) < 0)
        rc = -1;
    else if (t->rec.state == ST_SLEEPING && ua_ticks_diff(t->rec.timer.deadline, now) <= 0)
        ;   /* due already: it runs in its deadline's place */
    else if (ua_loop_wake(loop, &t->rec) < 0)
        rc = -1;
    Py_XDECREF(old);
    Py_DECREF(t);
    return rc;
}

/* ---- woken by 2.0 awaitables ---------------------------------------------------- */

/* What they keep to wake the task: the Task itself (ua_loop_owner_of). */
static PyObject *owner(ua_task *rec)
{
    return (PyObject *)TASK_OF(rec);
}

/* The exception handler shows a Task's coroutine. */
static PyObject *coro_of(PyObject *obj)
{
    return Py_IS_TYPE(obj, &Task_Type) ? ((TaskObject *)obj)->rec.obj : NULL;
}

int ua_v3_wake_owner(PyObject *obj, PyObject *exc)
{
    if (!Py_IS_TYPE(obj, &Task_Type))
        return 0;
    TaskObject *t = (TaskObject *)obj;
    if (TASK_DONE(t) || !t->loop)
        return 1;   /* ended, or its loop was closed: it never runs again */
    /* As cancel(): out of the queue of a v3 primitive it may wait in
     * (inside the 2.0 awaitable), and no longer parked: the run queue takes
     * the record's timer fields, which hold the Wait while it is. Its Wait
     * undoes the rest when resumed or thrown into. */
    WaitObject *w = ua_task_waiting(t);
    if (w)
        ua_wait_release(w);
    Py_INCREF(t);
    PyObject *old = t->rec.aux;
    if (exc)
        t->rec.aux = Py_NewRef(exc);
    int rc = ua_loop_wake(t->loop, &t->rec) < 0 ? -1 : 1;
    if (exc)
        Py_XDECREF(old);   /* last: releasing it runs code, which must find the task placed */
    Py_DECREF(t);
    return rc;
}

/* ---- Python methods --------------------------------------------------------------- */

static PyObject *task_done(TaskObject *t, PyObject *unused)
{
    return PyBool_FromLong(TASK_DONE(t));
}

static PyObject *task_cancel(TaskObject *t, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"msg", NULL};
    PyObject *msg = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:cancel", kwlist, &msg))
        return NULL;
    int r = ua_v3_cancel(t);
    return r < 0 ? NULL : PyBool_FromLong(r);
}

static int check_done(TaskObject *t, const char *what)
{
    if (TASK_DONE(t))
        return 0;
    PyErr_Format(InvalidStateError, "%s is not set.", what);
    return -1;
}

static PyObject *task_result(TaskObject *t, PyObject *unused)
{
    if (check_done(t, "Result") < 0)
        return NULL;
    return ua_v3_outcome(t);
}

static PyObject *task_exception(TaskObject *t, PyObject *unused)
{
    if (check_done(t, "Exception") < 0)
        return NULL;
    t->rec.flags |= TF_RETRIEVED;
    if (t->rec.flags & TF_CANCELLED)
        return ua_v3_outcome(t);
    return Py_NewRef(t->rec.flags & TF_EXC ? t->rec.aux : Py_None);
}

static PyObject *task_cancelled(TaskObject *t, PyObject *unused)
{
    return PyBool_FromLong(TASK_DONE(t) && (t->rec.flags & TF_CANCELLED));
}

static PyObject *task_add_done_callback(TaskObject *t, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"fn", "context", NULL};
    PyObject *fn, *context = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$O:add_done_callback", kwlist, &fn, &context))
        return NULL;
    if (!PyCallable_Check(fn)) {
        PyErr_Format(PyExc_TypeError, "add_done_callback() expects a callable, not %.100s",
                     Py_TYPE(fn)->tp_name);
        return NULL;
    }
    if (TASK_DONE(t)) {
        LoopObject *loop = ua_v3_loop();
        PyObject *cbargs = loop ? PyTuple_Pack(1, (PyObject *)t) : NULL;
        int rc = cbargs && ua_loop_check_thread(loop) == 0 ? ua_loop_call_soon(loop, fn, cbargs) : -1;
        Py_XDECREF(cbargs);
        Py_XDECREF(loop);
        if (rc < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    if ((t->loop && ua_loop_check_thread(t->loop) < 0) || ua_doneq_add(t, W_CALLBACK, NULL, fn) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *task_remove_done_callback(TaskObject *t, PyObject *fn)
{
    Py_ssize_t removed = 0;
    if (t->loop && ua_loop_check_thread(t->loop) < 0)
        return NULL;
    for (int again = 1; again;) {   /* a comparison may change the queue: start over */
        again = 0;
        UA_WAITQ_FOR(w, &t->doneq) {
            if (w->kind == W_CALLBACK) {
                int eq = PyObject_RichCompareBool(w->value, fn, Py_EQ);
                if (eq < 0)
                    return NULL;
                if (eq) {
                    ua_doneq_remove(w);
                    removed++;
                    again = 1;
                    break;
                }
            }
        }
    }
    return PyLong_FromSsize_t(removed);
}

static PyObject *task_get_coro(TaskObject *t, PyObject *unused)
{
    return Py_NewRef(t->rec.obj ? t->rec.obj : Py_None);
}

static PyObject *task_await(TaskObject *t)
{
    return (PyObject *)ua_wait_new(W_TASK, (PyObject *)t);
}

static PyObject *task_repr(TaskObject *t)
{
    const char *state = !TASK_DONE(t) ? "pending"
                        : t->rec.flags & TF_CANCELLED ? "cancelled"
                        : t->rec.flags & TF_EXC ? "exception" : "done";
    return PyUnicode_FromFormat("<Task %s coro=%R>", state, t->rec.obj ? t->rec.obj : Py_None);
}

/* ---- object life ------------------------------------------------------------------- */

static int task_traverse(TaskObject *t, visitproc visit, void *arg)
{
    Py_VISIT(t->rec.obj);
    Py_VISIT(t->rec.aux);
    UA_WAITQ_FOR(w, &t->doneq)
        if (w->kind == W_GATHER_CHILD || w->kind == W_CALLBACK)
            Py_VISIT(w);   /* the entries it owns */
    return 0;
}

static int task_clear(TaskObject *t)
{
    ua_doneq_clear_owned(t);
    if (!t->loop) {   /* a live task's coroutine is the loop's to resume */
        Py_CLEAR(t->rec.obj);
        Py_CLEAR(t->rec.aux);
    }
    return 0;
}

static void task_dealloc(TaskObject *t)
{
    PyObject_GC_UnTrack(t);
    /* No Wait parks it now (a parked Task is held by its Wait), and none
     * awaits it (an awaiting Wait holds it): only owned entries are left. */
    ua_task_set_waiting(t, NULL);
    if (t->rec.flags & TF_NAMED)
        ua_v3_name_drop(t);
    ua_doneq_clear_owned(t);
    ua_waitq_detach_all(&t->doneq);
    PyObject *obj = t->rec.obj, *aux = t->rec.aux;
    t->rec.obj = t->rec.aux = NULL;
    Py_XDECREF(aux);
    Py_XDECREF(obj);
    PyObject_GC_Del(t);
}

static PyMethodDef task_methods[] = {
    {"done", (PyCFunction)task_done, METH_NOARGS, "True once the task ended."},
    {"cancel", (PyCFunction)(void (*)(void))task_cancel, METH_VARARGS | METH_KEYWORDS,
     "Throw CancelledError into the task at once; False if it already ended."},
    {"result", (PyCFunction)task_result, METH_NOARGS,
     "What the coroutine returned, or raise its exception."},
    {"exception", (PyCFunction)task_exception, METH_NOARGS,
     "The exception the task ended with, or None."},
    {"cancelled", (PyCFunction)task_cancelled, METH_NOARGS, "True if it ended cancelled."},
    {"add_done_callback", (PyCFunction)(void (*)(void))task_add_done_callback,
     METH_VARARGS | METH_KEYWORDS, "add_done_callback(fn): fn(task) is called soon after it ends."},
    {"remove_done_callback", (PyCFunction)task_remove_done_callback, METH_O,
     "Remove fn from the done callbacks; returns how many were removed."},
    {"get_coro", (PyCFunction)task_get_coro, METH_NOARGS, "The task's coroutine."},
    {"get_name", (PyCFunction)ua_v3_task_get_name, METH_NOARGS,
     "The task's name: the one given, else 'Task-N' (numbered when first asked for)."},
    {"set_name", (PyCFunction)ua_v3_task_set_name, METH_O, "set_name(value): name the task str(value)."},
    {NULL},
};

static PyGetSetDef task_getset[] = {
    {"coro", (getter)task_get_coro, NULL, "the task's coroutine", NULL},
    {NULL},
};

static PyAsyncMethods task_async = {
    .am_await = (unaryfunc)task_await,
};

PyTypeObject Task_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "uasyncio.v3.Task",
    .tp_basicsize = sizeof(TaskObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "A coroutine scheduled on the loop (made by create_task).",
    .tp_dealloc = (destructor)task_dealloc,
    .tp_traverse = (traverseproc)task_traverse,
    .tp_clear = (inquiry)task_clear,
    .tp_repr = (reprfunc)task_repr,
    .tp_as_async = &task_async,
    .tp_iter = (getiterfunc)task_await,
    .tp_methods = task_methods,
    .tp_getset = task_getset,
};

/* ---- the kinds of a Task's record, in the loop's table ----------------------------- */

/* Parked on a Wait (TF_PARKED) but not staying parked: the Wait lets go. */
static void unhold(ua_task *t)
{
    ua_wait_release(ua_task_waiting(TASK_OF(t)));
}

/* Pending: resumed by the loop. What concerns all Tasks (the owners, the
 * loop's list of them) is asked of this kind. */
static const ua_kind task_kind = {
    .flags = UA_KIND_EMBEDDED,
    .end = ua_v3_task_end,
    .park = ua_v3_parked,
    .unhold = unhold,
    .owner = owner,
    .wake_owner = ua_v3_wake_owner,
    .coro_of = coro_of,
    .traverse = ua_v3_traverse,
    .release = ua_v3_release_all,
    .keeps_awake = ua_v3_flag_waiting,
    .find = find,
};

/* Ended: run once more to report an exception nobody retrieved. */
static const ua_kind done_kind = {.flags = UA_KIND_EMBEDDED, .run = ua_v3_task_reap, .owner = owner};

static int add_kinds(void)
{
    int task = ua_kind_add(&task_kind), done = task < 0 ? -1 : ua_kind_add(&done_kind);
    if (done < 0)
        return -1;
    ua_v3_task_kind = (uint8_t)task;
    ua_v3_done_kind = (uint8_t)done;
    return 0;
}

int ua_v3_task_ready(PyObject *m)
{
    if (add_kinds() < 0)
        return -1;
    if (PyType_Ready(&Task_Type) < 0 || PyModule_AddObjectRef(m, "Task", (PyObject *)&Task_Type) < 0)
        return -1;
    ua_v3_CancelledError = PyErr_NewExceptionWithDoc(
        "uasyncio.v3.CancelledError", "Raised in a task that is cancelled.", PyExc_BaseException, NULL);
    if (!ua_v3_CancelledError || PyModule_AddObjectRef(m, "CancelledError", ua_v3_CancelledError) < 0)
        return -1;
    ua_v3_TimeoutError = PyErr_NewExceptionWithDoc(
        "uasyncio.v3.TimeoutError", "Raised by wait_for() when the time is up.", PyExc_Exception, NULL);
    if (!ua_v3_TimeoutError || PyModule_AddObjectRef(m, "TimeoutError", ua_v3_TimeoutError) < 0)
        return -1;
    InvalidStateError = PyErr_NewExceptionWithDoc(
        "uasyncio.v3.InvalidStateError", "The task has no result yet.", PyExc_Exception, NULL);
    if (!InvalidStateError || PyModule_AddObjectRef(m, "InvalidStateError", InvalidStateError) < 0)
        return -1;
    return 0;
}
