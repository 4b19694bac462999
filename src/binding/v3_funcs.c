/* uasyncio.v3's wait_for(), wait_for_ms() and gather(): Waits over tasks.
 *
 * wait_for runs the awaitable as its own task and waits for it with a
 * timeout: its task sleeps in the timer heap while linked into the inner
 * task's waiters, so whichever comes first (the inner task's end, the
 * timer) wakes it. On time out, the inner task is cancelled and awaited
 * before TimeoutError is raised; if it ended anyway, its value is returned:
 * a result is never lost.
 *
 * gather registers itself in each task (task->gather) and counts the tasks
 * still running; the last one to end (or the first to fail, without
 * return_exceptions) wakes the gathering task. */
#include "v3.h"

/* ---- wait_for ------------------------------------------------------------ */

static PyObject *waitfor_next(WaitObject *w)
{
    TaskObject *t = (TaskObject *)w->target;
    switch (w->state) {
    case 0: {
        PyObject *task = ua_v3_promote(w->target);
        if (!task)
            return NULL;
        Py_SETREF(w->target, task);
        t = (TaskObject *)task;
        if (w->n < 0) {   /* timeout None: a plain await of the task */
            w->kind = W_TASK;
            return ua_wait_kinds[W_TASK].next(w);
        }
        if (TASK_DONE(t))
            break;
        TaskObject *cur = ua_v3_current_or_error("wait_for()");
        if (!cur)
            return NULL;
        if (ua_task_gather(t)) {
            PyErr_SetString(PyExc_RuntimeError, "can't wait");
            return NULL;
        }
        if (ua_task_check_loop(t) < 0)
            return NULL;
        /* Linked into the inner task's doneq and, through the SleepMs it
         * yields, in the timer heap: the first to come wakes it. (Its timer
         * fields are in use: cancel() does not find this Wait, and needs
         * not: the thrown exception unlinks it.) */
        ua_wq_push(&t->doneq, &w->link);
        Py_XSETREF(w->task, (TaskObject *)Py_NewRef(cur));
        w->state = 1;
        return ua_sleep_ms_new(w->n);
    }
    case 1:
        if (TASK_DONE(t))
            break;
        /* Timed out: cancel the inner task and wait for it to end. */
        if (ua_v3_cancel(t) < 0)
            return NULL;
        w->state = 2;
        return ua_wait_park(w, &t->doneq);
    case 2:
        if (!TASK_DONE(t))
            return ua_wait_park(w, &t->doneq);
        if (t->rec.flags & TF_CANCELLED) {
            t->rec.flags |= TF_RETRIEVED;
            w->state = 0xff;
            PyErr_SetNone(ua_v3_TimeoutError);
            return NULL;
        }
        break;
    default:
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse an already awaited wait_for()");
        return NULL;
    }
    w->state = 0xff;
    return ua_wait_done(ua_v3_outcome(t));
}

/* The waiting task was cancelled: the inner task is cancelled too. */
static void waitfor_thrown(WaitObject *w)
{
    if ((w->state == 1 || w->state == 2) && Py_IS_TYPE(w->target, &Task_Type) &&
        !TASK_DONE((TaskObject *)w->target))
        if (ua_v3_cancel((TaskObject *)w->target) < 0)
            PyErr_WriteUnraisable(w->target);
}

static PyObject *wait_for_common(PyObject *const *args, Py_ssize_t nargs, int in_secs)
{
    const char *name = in_secs ? "wait_for" : "wait_for_ms";
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "%s() takes an awaitable and a timeout", name);
        return NULL;
    }
    PyObject *aw = args[0];
    if (!Py_IS_TYPE(aw, &Task_Type) && !PyCoro_CheckExact(aw) && !PyGen_Check(aw) &&
        !PyObject_HasAttrString(aw, "send")) {
        PyErr_Format(PyExc_TypeError, "%s() expects a coroutine or a Task, not %.100s", name,
                     Py_TYPE(aw)->tp_name);
        return NULL;
    }
    int32_t ms = -1;
    if (args[1] != Py_None) {
        if ((in_secs ? ua_delay_from_secs(args[1], &ms, name) : ua_delay_from_ms(args[1], &ms, name)) < 0)
            return NULL;
        if (ms < 0)
            ms = 0;
    }
    WaitObject *w = ua_wait_new(W_WAITFOR, aw);
    if (w)
        w->n = ms;
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
    if (!tasks || !PyTuple_Check(tasks))
        return;
    Py_INCREF(tasks);   /* the removals drop references to g */
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(tasks); i++)
        unregister(g, (TaskObject *)PyTuple_GET_ITEM(tasks, i));
    Py_DECREF(tasks);
}

void ua_v3_gather_child_done(WaitObject *g, TaskObject *child)
{
    if (g->value)
        return;   /* already decided by a failure */
    if ((child->rec.flags & TF_EXC) && !g->opt)
        g->value = Py_NewRef(child);
    else if (--g->n > 0)
        return;
    if (g->task && ua_wait_hand(g) < 0)
        PyErr_WriteUnraisable((PyObject *)g);
}

static PyObject *gather_next(WaitObject *g)
{
    if (g->state == 0xff) {
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse an already awaited gather()");
        return NULL;
    }
    if (!g->value && g->n > 0) {
        PyObject *tasks = g->target;
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(tasks); i++)
            if (ua_task_check_loop((TaskObject *)PyTuple_GET_ITEM(tasks, i)) < 0)
                return NULL;
        g->state = 1;
        return ua_wait_park(g, NULL);
    }
    ua_v3_gather_forget(g);
    g->state = 0xff;
    if (g->value)   /* the first failure, without return_exceptions */
        return ua_wait_done(ua_v3_outcome((TaskObject *)g->value));
    PyObject *tasks = g->target;
    Py_ssize_t n = PyTuple_GET_SIZE(tasks);
    PyObject *res = PyList_New(n);
    if (!res)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        TaskObject *t = (TaskObject *)PyTuple_GET_ITEM(tasks, i);
        t->rec.flags |= TF_RETRIEVED;
        PyList_SET_ITEM(res, i, Py_NewRef(t->rec.aux));   /* result, or exception */
    }
    return ua_wait_done(res);
}

/* The gathering task was cancelled: so are the tasks still running (the
 * one running now too, if it cancelled the gather: at its next await). */
void ua_v3_gather_cancel(WaitObject *g)
{
    PyObject *tasks = g->target;
    if (!tasks || !PyTuple_Check(tasks))
        return;
    Py_INCREF(tasks);
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(tasks); i++) {
        TaskObject *t = (TaskObject *)PyTuple_GET_ITEM(tasks, i);
        if (unregister(g, t) && ua_v3_cancel_any(t) < 0)
            PyErr_WriteUnraisable((PyObject *)t);
    }
    Py_DECREF(tasks);
}

static int gatherable(PyObject *aw)
{
    if (Py_IS_TYPE(aw, &Task_Type)) {
        TaskObject *t = (TaskObject *)aw;
        if (!TASK_DONE(t) && (ua_task_awaited(t) || ua_task_gather(t))) {
            /* awaited elsewhere already, as MicroPython refuses it */
            PyErr_SetString(PyExc_RuntimeError, "can't gather");
            return 0;
        }
        return 1;
    }
    if (PyCoro_CheckExact(aw) || PyGen_Check(aw) || Py_IS_TYPE(aw, &Wait_Type))
        return 1;
    PyErr_Format(PyExc_TypeError, "gather() expects coroutines or Tasks, not %.100s", Py_TYPE(aw)->tp_name);
    return 0;
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
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!gatherable(PyTuple_GET_ITEM(args, i)))
            return NULL;
        for (Py_ssize_t j = 0; j < i; j++)
            if (PyTuple_GET_ITEM(args, j) == PyTuple_GET_ITEM(args, i)) {
                PyErr_SetString(PyExc_RuntimeError, "can't gather");
                return NULL;
            }
    }
    PyObject *tasks = PyTuple_New(n);
    if (!tasks)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = ua_v3_promote(PyTuple_GET_ITEM(args, i));
        if (!t) {
            Py_DECREF(tasks);
            return NULL;
        }
        PyTuple_SET_ITEM(tasks, i, t);
    }
    WaitObject *g = ua_wait_new(W_GATHER, tasks);
    Py_DECREF(tasks);
    if (!g)
        return NULL;
    g->opt = (uint8_t)return_exceptions;
    for (Py_ssize_t i = 0; i < n; i++) {
        TaskObject *t = (TaskObject *)PyTuple_GET_ITEM(tasks, i);
        if (!TASK_DONE(t)) {
            if (ua_doneq_add(t, W_GATHER_CHILD, (PyObject *)g, NULL) < 0) {
                ua_v3_gather_forget(g);
                Py_DECREF(g);
                return NULL;
            }
            g->n++;
        } else if ((t->rec.flags & TF_EXC) && !return_exceptions && !g->value) {
            g->value = Py_NewRef(t);
        }
    }
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
    ua_wait_kinds[W_WAITFOR].next = waitfor_next;
    ua_wait_kinds[W_WAITFOR].thrown = waitfor_thrown;
    ua_wait_kinds[W_GATHER].next = gather_next;
    ua_wait_kinds[W_GATHER].thrown = ua_v3_gather_cancel;
    return PyModule_AddFunctions(m, funcs);
}
