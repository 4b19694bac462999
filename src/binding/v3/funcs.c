/* uasyncio.v3's wait_for(), wait_for_ms() and gather(): Waits over tasks,
 * each step as MicroPython's funcs.py takes it, so a program prints the
 * same pass for pass.
 *
 * wait_for, when awaited, makes the awaitable a task and starts a runner
 * task that awaits it, then sleeps for the timeout. If the awaitable ends
 * first, the runner cancels the sleeping waiter with its outcome in the
 * CancelledError (args (True, value) or (exception, None)), which the
 * waiter turns back into the value or the exception. If the sleep ends
 * first, the waiter cancels the runner (the cancel goes down to the
 * awaitable), waits for it and raises TimeoutError, whatever the
 * awaitable then did. Cancelling the waiter while it sleeps cancels the
 * runner and raises CancelledError in it at once.
 *
 * gather, when awaited, makes each awaitable a task and registers itself
 * in each one still running (an entry in its doneq); the last to end, or
 * the first to fail without return_exceptions, wakes the gathering task.
 * A cancelled gather cancels the tasks it still waits for when its task
 * runs again. */
#include "internal.h"

static PyObject *str_args;

/* ---- wait_for ------------------------------------------------------------ */

/* W_WAITFOR: state 0 not started, 1 sleeping (w->task holds the waiter,
 * parked in no queue), 2 awaiting the runner, 0xff done. opt: the timeout
 * was past the longest ticks delay. */

static PyObject *runner_task(WaitObject *w)
{
    return w->value;
}

static PyObject *waitfor_next(WaitObject *w)
{
    switch (w->state) {
    case 0: {
        PyObject *task = ua_v3_promote(w->target);
        if (!task)
            return NULL;
        Py_SETREF(w->target, task);
        if (ua_task_check_loop((TaskObject *)task) < 0)   /* its end would wake us from its loop's thread */
            return NULL;
        if (w->n < 0) {   /* timeout None: a plain await of the task */
            w->kind = W_TASK;
            return ua_wait_kinds[W_TASK].next(w);
        }
        TaskObject *cur = ua_v3_current_or_error("wait_for()");
        if (!cur)
            return NULL;
        WaitObject *run = ua_wait_new(W_RUNNER, task);
        if (!run)
            return NULL;
        run->value = Py_NewRef((PyObject *)w);
        PyObject *rt = ua_v3_create_task(cur->loop, (PyObject *)run);
        Py_DECREF(run);
        if (!rt)
            return NULL;
        Py_XSETREF(w->value, rt);
        if (w->opt) {   /* as MicroPython's sleep(), once the tasks are made */
            w->state = 0xff;
            PyErr_SetString(PyExc_OverflowError, "ticks interval overflow");
            return NULL;
        }
        Py_XSETREF(w->task, (TaskObject *)Py_NewRef(cur));
        w->state = 1;
        return ua_sleep_ms_new(w->n);
    }
    case 1: {
        /* Timed out: cancel the runner (so the awaitable) and wait for it. */
        TaskObject *rt = (TaskObject *)runner_task(w);
        if (ua_v3_cancel(rt) < 0)
            return NULL;
        w->state = 2;
        if (!TASK_DONE(rt))
            return ua_wait_park(w, &rt->doneq);
    }   /* fall through */
    case 2: {
        TaskObject *rt = (TaskObject *)runner_task(w);
        if (!TASK_DONE(rt))
            return ua_wait_park(w, &rt->doneq);
        w->state = 0xff;
        PyObject *r = ua_v3_outcome(rt);   /* the runner's exception, if it had one */
        Py_CLEAR(w->value);
        if (!r)
            return NULL;
        Py_DECREF(r);
        PyErr_SetNone(ua_v3_TimeoutError);
        return NULL;
    }
    default:
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse an already awaited wait_for()");
        return NULL;
    }
}

/* An exception thrown into the waiter: while it sleeps, a CancelledError
 * from the runner carries the outcome; one without (a cancel from
 * elsewhere) cancels the runner and goes on up. */
static PyObject *waitfor_throw(WaitObject *w, PyObject *exc)
{
    PyObject *rt = w->value;   /* the runner task: let go of here */
    w->value = NULL;
    PyObject *args = w->state == 1 && PyErr_GivenExceptionMatches(exc, ua_v3_CancelledError)
                         ? PyObject_GetAttr(exc, str_args)
                         : NULL;
    PyObject *status = args && PyTuple_Check(args) && PyTuple_GET_SIZE(args) ? PyTuple_GET_ITEM(args, 0) : NULL;
    int outcome = status == Py_True || (status && PyExceptionInstance_Check(status));
    /* Cancelled from elsewhere while it sleeps: the runner still reports to
     * the waiter when the awaitable ends, as MicroPython's (which looks only
     * at whether it then waits on nothing), so w keeps the waiter. */
    int elsewhere = args && rt && !outcome;
    if (!elsewhere)
        ua_wait_release(w);
    w->state = 0xff;
    PyObject *r = NULL;
    if (status == Py_True) {
        r = ua_wait_done(Py_NewRef(PyTuple_GET_SIZE(args) > 1 ? PyTuple_GET_ITEM(args, 1) : Py_None));
        Py_DECREF(exc);
    } else if (outcome) {
        PyErr_SetObject((PyObject *)Py_TYPE(status), status);
        Py_DECREF(exc);
    } else {
        if (elsewhere && ua_v3_cancel((TaskObject *)rt) < 0)
            PyErr_WriteUnraisable(rt);
        ua_err_restore(exc);
    }
    Py_XDECREF(args);
    Py_XDECREF(rt);
    return r;
}

/* MicroPython's "waiter.data is None": the task sleeps or is queued,
 * parked on nothing, with nothing to raise. */
static int waits_on_nothing(TaskObject *t)
{
    return !TASK_DONE(t) && !t->rec.aux && !(t->rec.flags & TF_PARKED) &&
           (t->rec.state == ST_SLEEPING || t->rec.state == ST_QUEUED);
}

/* The runner's end: if its waiter waits on nothing (it sleeps in wait_for,
 * or, its wait_for cancelled from elsewhere, anywhere) and has not been
 * cancelled, cancel it with the outcome (status True and the value, or the
 * exception and None). */
static void runner_report(WaitObject *run, PyObject *status, PyObject *result)
{
    WaitObject *w = (WaitObject *)run->value;
    run->value = NULL;   /* the wait_for and its runner no longer hold each other */
    TaskObject *waiter = w ? w->task : NULL;
    run->state = 0xff;
    if (!waiter || w->kind != W_WAITFOR || !(w->state == 1 || w->state == 0xff) || !waits_on_nothing(waiter)) {
        Py_XDECREF(w);
        return;
    }
    Py_INCREF(waiter);
    int r = ua_v3_cancel(waiter);
    PyObject *exc = r == 1 ? PyObject_CallFunctionObjArgs(ua_v3_CancelledError, status, result, NULL) : NULL;
    if (exc)
        Py_XSETREF(waiter->rec.aux, exc);
    else if (r < 0 || r == 1)
        PyErr_WriteUnraisable((PyObject *)run);
    Py_DECREF(waiter);
    Py_DECREF(w);
}

/* W_RUNNER, the runner task's coroutine: state 0 not started, 1 awaiting. */
static PyObject *runner_end(WaitObject *run, PyObject *exc)
{
    if (exc) {
        runner_report(run, exc, Py_None);
        Py_DECREF(exc);
    } else {
        PyObject *v = ua_v3_outcome((TaskObject *)run->target);
        if (v) {
            runner_report(run, Py_True, v);
            Py_DECREF(v);
        } else {
            PyObject *e = ua_err_fetch();
            runner_report(run, e, Py_None);
            Py_XDECREF(e);
        }
    }
    return NULL;   /* the runner returns None */
}

static PyObject *runner_next(WaitObject *run)
{
    TaskObject *t = (TaskObject *)run->target;
    if (run->state == 0xff)
        return NULL;
    if (!TASK_DONE(t)) {
        if (ua_task_gather(t)) {   /* as MicroPython's await of it: caught by the runner */
            PyErr_SetString(PyExc_RuntimeError, "can't wait");
            return runner_end(run, ua_err_fetch());
        }
        run->state = 1;
        return ua_wait_park(run, &t->doneq);
    }
    return runner_end(run, NULL);
}

static PyObject *runner_throw(WaitObject *run, PyObject *exc)
{
    if (run->state != 1) {   /* not started: it ends with exc */
        run->state = 0xff;
        Py_CLEAR(run->value);
        ua_err_restore(exc);
        return NULL;
    }
    ua_wait_release(run);
    return runner_end(run, exc);
}

static PyObject *wait_for_common(PyObject *const *args, Py_ssize_t nargs, int in_secs)
{
    const char *name = in_secs ? "wait_for" : "wait_for_ms";
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "%s() takes an awaitable and a timeout", name);
        return NULL;
    }
    int32_t ms = -1;
    int over = 0;
    if (args[1] != Py_None && (over = ua_v3_delay(args[1], in_secs, &ms)) < 0)
        return NULL;
    WaitObject *w = ua_wait_new(W_WAITFOR, args[0]);
    if (w) {
        w->n = ms;
        w->opt = (uint8_t)over;
    }
    return (PyObject *)w;
}

static PyObject *mod_wait_for(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    return wait_for_common(args, nargs, 1);
}

static PyObject *mod_wait_for_ms(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    return wait_for_common(args, nargs, 0);
}

/* ---- gather ------------------------------------------------------------------ */

/* W_GATHER: target its awaitables, then (state 1 on) their tasks; n the
 * tasks still running; value the first task that failed (without
 * return_exceptions), or NULL; opt return_exceptions. */

/* Take g's entry out of t's doneq: 1 if it was there. */
static int unregister(WaitObject *g, TaskObject *t)
{
    UA_WAITQ_FOR(w, &t->doneq)
        if (w->kind == W_GATHER_CHILD && w->target == (PyObject *)g) {
            ua_doneq_remove(w);
            return 1;
        }
    return 0;
}

void ua_v3_gather_forget(WaitObject *g)
{
    PyObject *tasks = g->target;
    if (!tasks || !PyTuple_Check(tasks) || !g->state)
        return;
    Py_INCREF(tasks);   /* the removals drop references to g */
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(tasks); i++)
        if (Py_IS_TYPE(PyTuple_GET_ITEM(tasks, i), &Task_Type))
            unregister(g, (TaskObject *)PyTuple_GET_ITEM(tasks, i));
    Py_DECREF(tasks);
}

/* A task of g ended. Once g's task has been woken (or cancelled), the
 * others' ends change nothing, as in MicroPython. */
void ua_v3_gather_child_done(WaitObject *g, TaskObject *child)
{
    if (!g->task || g->state != 1)
        return;
    if ((child->rec.flags & TF_EXC) && !g->opt)
        g->value = Py_NewRef(child);
    else if (--g->n > 0)
        return;
    if (ua_wait_hand(g) < 0)
        PyErr_WriteUnraisable((PyObject *)g);
}

/* The gather ends: the tasks still running leave it (and are cancelled if
 * cancel), the results are collected; the error to raise is the first
 * failure (or, without one, the first exception in order, or the
 * exception thrown in). */
static PyObject *gather_end(WaitObject *g, int cancel, PyObject *thrown)
{
    PyObject *tasks = Py_NewRef(g->target);
    Py_ssize_t n = PyTuple_GET_SIZE(tasks);
    PyObject *res = PyList_New(n);
    PyObject *err = thrown ? thrown : g->value ? Py_NewRef(((TaskObject *)g->value)->rec.aux) : NULL;
    g->state = 0xff;
    for (Py_ssize_t i = 0; res && i < n; i++) {
        TaskObject *t = (TaskObject *)PyTuple_GET_ITEM(tasks, i);
        PyObject *v = Py_None;
        if (unregister(g, t)) {
            if (cancel && ua_v3_cancel(t) < 0)
                PyErr_WriteUnraisable((PyObject *)t);
        } else if (TASK_DONE(t)) {
            v = t->rec.aux;
            if ((t->rec.flags & TF_EXC) && !g->opt && !err)
                err = Py_NewRef(v);
        }
        PyList_SET_ITEM(res, i, Py_NewRef(v));
    }
    Py_DECREF(tasks);
    if (!res) {
        Py_XDECREF(err);
        return NULL;
    }
    if (err) {
        Py_DECREF(res);
        PyErr_SetObject((PyObject *)Py_TYPE(err), err);
        Py_DECREF(err);
        return NULL;
    }
    return ua_wait_done(res);
}

/* The first step, when the gather is awaited: its tasks are made and it
 * registers in those still running; 1 to wait for them, 0 to end now. */
static int gather_start(WaitObject *g)
{
    PyObject *aws = g->target;
    Py_ssize_t n = PyTuple_GET_SIZE(aws);
    PyObject *tasks = PyTuple_New(n);
    if (!tasks)
        return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = ua_v3_promote(PyTuple_GET_ITEM(aws, i));
        if (!t) {
            Py_DECREF(tasks);
            return -1;
        }
        PyTuple_SET_ITEM(tasks, i, t);
    }
    Py_SETREF(g->target, tasks);
    g->state = 1;
    int failed = 0;
    g->n = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        TaskObject *t = (TaskObject *)PyTuple_GET_ITEM(tasks, i);
        if (ua_task_check_loop(t) < 0)
            return -1;
        if (TASK_DONE(t)) {
            failed |= (t->rec.flags & TF_EXC) && !g->opt;
        } else if (ua_task_awaited(t) || ua_task_gather(t)) {
            PyErr_SetString(PyExc_RuntimeError, "can't gather");
            return -1;
        } else {
            if (ua_doneq_add(t, W_GATHER_CHILD, (PyObject *)g, NULL) < 0)
                return -1;
            g->n++;
        }
    }
    return g->n > 0 && !failed;
}

static PyObject *gather_next(WaitObject *g)
{
    if (g->state == 0xff) {
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse an already awaited gather()");
        return NULL;
    }
    if (g->state == 0) {
        int r = gather_start(g);
        if (r < 0) {
            PyObject *exc = ua_err_fetch();
            ua_v3_gather_forget(g);
            g->state = 0xff;
            ua_err_restore(exc);
            return NULL;
        }
        if (r)
            return ua_wait_park(g, NULL);
    }
    return gather_end(g, 0, NULL);
}

/* Thrown into the gathering task (cancelled): the tasks still running are
 * cancelled now, as it runs again, and the exception goes on up. */
static PyObject *gather_throw(WaitObject *g, PyObject *exc)
{
    ua_wait_release(g);
    if (g->state != 1) {
        ua_v3_gather_forget(g);
        g->state = 0xff;
        ua_err_restore(exc);
        return NULL;
    }
    return gather_end(g, PyErr_GivenExceptionMatches(exc, ua_v3_CancelledError), exc);
}

static PyObject *mod_gather(PyObject *m, PyObject *args, PyObject *kwds)
{
    int return_exceptions = 0;
    if (kwds && PyDict_GET_SIZE(kwds)) {
        static char *kwlist[] = {"return_exceptions", NULL};
        PyObject *empty = PyTuple_New(0);
        int ok = empty && PyArg_ParseTupleAndKeywords(empty, kwds, "|$p:gather", kwlist, &return_exceptions);
        Py_XDECREF(empty);
        if (!ok)
            return NULL;
    }
    WaitObject *g = ua_wait_new(W_GATHER, args);
    if (g)
        g->opt = (uint8_t)return_exceptions;
    return (PyObject *)g;
}

static PyMethodDef funcs[] = {
    {"wait_for", (PyCFunction)(void (*)(void))mod_wait_for, METH_FASTCALL,
     "wait_for(aw, timeout): await aw as its own task; cancel it and raise TimeoutError after timeout "
     "seconds (None: no limit)."},
    {"wait_for_ms", (PyCFunction)(void (*)(void))mod_wait_for_ms, METH_FASTCALL,
     "wait_for_ms(aw, timeout): wait_for() with the timeout in ms."},
    {"gather", (PyCFunction)(void (*)(void))mod_gather, METH_VARARGS | METH_KEYWORDS,
     "gather(*aws, return_exceptions=False): await them all; their results in order."},
    {NULL},
};

int ua_v3_funcs_ready(PyObject *m)
{
    if (!(str_args = PyUnicode_InternFromString("args")))
        return -1;
    ua_wait_kinds[W_WAITFOR].next = waitfor_next;
    ua_wait_kinds[W_WAITFOR].throw = waitfor_throw;
    ua_wait_kinds[W_RUNNER].next = runner_next;
    ua_wait_kinds[W_RUNNER].throw = runner_throw;
    ua_wait_kinds[W_GATHER].next = gather_next;
    ua_wait_kinds[W_GATHER].throw = gather_throw;
    return PyModule_AddFunctions(m, funcs);
}
