/* The extension module uasyncio._uasyncio: module-level functions, the
 * exceptions, the default loop, and logging. uasyncio/core.py and
 * uasyncio/__init__.py re-export what is here. */
#include "tasks.h"
#include "streams.h"
#include "v3.h"

#include <math.h>
#include <string.h>

PyObject *ua_CancelledError;
PyObject *ua_TimeoutError;
int ua_debug;
LoopObject *ua_all_loops;
static LoopObject *default_loop;
static PyObject *types_coroutine;

/* ---- helpers shared by the binding -------------------------------------- */

const char *ua_type_name(PyTypeObject *tp)
{
    const char *dot = strrchr(tp->tp_name, '.');
    return dot ? dot + 1 : tp->tp_name;
}

static int check_nargs(const char *name, Py_ssize_t nargs, Py_ssize_t want)
{
    if (nargs == want)
        return 1;
    PyErr_Format(PyExc_TypeError, "%s() takes exactly %zd arguments (%zd given)", name, want, nargs);
    return 0;
}

int ua_is_coroutine(PyObject *obj)
{
    return PyCoro_CheckExact(obj) || PyGen_CheckExact(obj) || PyGen_Check(obj) ||
           PyIter_Check(obj);
}

static int32_t clamp_ms(double ms)
{
    /* Beyond half the ticks period a deadline cannot be ordered: the
     * longest single wait is UA_TICKS_MAX_DELAY ms (about 6.2 days). */
    if (ms > UA_TICKS_MAX_DELAY)
        return UA_TICKS_MAX_DELAY;
    if (ms < -UA_TICKS_MAX_DELAY)
        return -UA_TICKS_MAX_DELAY;
    return (int32_t)ms;
}

static int delay_from(PyObject *obj, double scale, int32_t *ms, const char *what, const char *unit)
{
    if (PyLong_Check(obj)) {
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
        if (v == -1 && PyErr_Occurred())
            return -1;
        if (overflow)
            *ms = overflow > 0 ? UA_TICKS_MAX_DELAY : -UA_TICKS_MAX_DELAY;
        else
            *ms = clamp_ms((double)v * scale);
        return 0;
    }
    if (!PyFloat_Check(obj) && !PyNumber_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: %s must be a number, not %.100s", what, unit,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    double v = PyFloat_AsDouble(obj);
    if (v == -1.0 && PyErr_Occurred())
        return -1;
    if (isnan(v)) {
        PyErr_Format(PyExc_ValueError, "%s: %s must not be NaN", what, unit);
        return -1;
    }
    *ms = clamp_ms(trunc(v * scale));   /* truncation, as int(secs * 1000) in 2.0 */
    return 0;
}

int ua_delay_from_secs(PyObject *secs, int32_t *ms, const char *what)
{
    return delay_from(secs, 1000.0, ms, what, "the delay in seconds");
}

int ua_delay_from_ms(PyObject *ms_obj, int32_t *ms, const char *what)
{
    return delay_from(ms_obj, 1.0, ms, what, "the delay in ms");
}

void ua_log(const char *logger, const char *fmt, ...)
{
    PyObject *exc = ua_err_fetch();   /* logging must not disturb an error in flight */
    va_list va;
    va_start(va, fmt);
    PyObject *msg = PyUnicode_FromFormatV(fmt, va);
    va_end(va);
    PyObject *logging = msg ? PyImport_ImportModule("logging") : NULL;
    PyObject *log = logging ? PyObject_CallMethod(logging, "getLogger", "s", logger) : NULL;
    PyObject *r = log ? PyObject_CallMethod(log, "debug", "O", msg) : NULL;
    if (!r)
        PyErr_WriteUnraisable(NULL);
    Py_XDECREF(r);
    Py_XDECREF(log);
    Py_XDECREF(logging);
    Py_XDECREF(msg);
    ua_err_restore(exc);
}

LoopObject *ua_default_loop(void)
{
    if (!default_loop || default_loop->closed) {
        LoopObject *loop = (LoopObject *)PyObject_CallNoArgs((PyObject *)&PollLoop_Type);
        if (!loop)
            return NULL;
        Py_XSETREF(default_loop, loop);
    }
    return (LoopObject *)Py_NewRef(default_loop);
}

/* The loop that holds coro as a task: the running one first, then any. */
static LoopObject *loop_of(PyObject *coro)
{
    LoopObject *running = ua_running_loop_get();
    if (running && ua_loop_find(running, coro))
        return running;
    for (LoopObject *l = ua_all_loops; l; l = l->next_loop)
        if (ua_loop_find(l, coro))
            return l;
    return NULL;
}

/* ---- module functions ------------------------------------------------------ */

static PyObject *mod_get_event_loop(PyObject *m, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"runq_len", "waitq_len", NULL};
    Py_ssize_t runq_len = 16, waitq_len = 16;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|nn:get_event_loop", kwlist, &runq_len, &waitq_len))
        return NULL;
    return (PyObject *)ua_default_loop();
}

/* ua_v3_delay() for anything but an int. */
static int v3_delay_slow(PyObject *delay, int in_secs, int32_t *ms)
{
    const char *name = in_secs ? "sleep" : "sleep_ms";
    if (!PyFloat_Check(delay) && !PyNumber_Check(delay)) {
        PyErr_Format(PyExc_TypeError, "%s: %s must be a number, not %.100s", name,
                     in_secs ? "the delay in seconds" : "the delay in ms", Py_TYPE(delay)->tp_name);
        return -1;
    }
    double v = PyFloat_AsDouble(delay);
    if (v == -1.0 && PyErr_Occurred())
        return -1;
    if (isnan(v)) {
        PyErr_Format(PyExc_ValueError, "%s: the delay must not be NaN", name);
        return -1;
    }
    v = trunc(in_secs ? v * 1000.0 : v);   /* int(secs * 1000), as MicroPython's sleep() */
    *ms = v <= 0 ? 0 : v > UA_TICKS_MAX_DELAY ? UA_TICKS_MAX_DELAY : (int32_t)v;
    return v > UA_TICKS_MAX_DELAY;
}

static PyObject *small_zero;   /* the int 0 (a singleton in CPython) */

int ua_v3_delay(PyObject *delay, int in_secs, int32_t *ms)
{
    if (PyLong_Check(delay)) {   /* the common case, sleep(0) or sleep_ms(n): no float */
        int overflow;
        long long i = PyLong_AsLongLongAndOverflow(delay, &overflow);
        if (i == -1 && PyErr_Occurred())
            return -1;
        if (!overflow && in_secs)
            overflow = i > UA_TICKS_MAX_DELAY ? 1 : i < 0 ? -1 : 0;
        else if (!overflow)
            overflow = i > UA_TICKS_MAX_DELAY ? 1 : 0;
        i = overflow > 0 ? UA_TICKS_MAX_DELAY : overflow < 0 || i < 0 ? 0 : in_secs ? i * 1000 : i;
        if (i > UA_TICKS_MAX_DELAY) {
            i = UA_TICKS_MAX_DELAY;
            overflow = 1;
        }
        *ms = (int32_t)i;
        return overflow > 0;
    }
    return v3_delay_slow(delay, in_secs, ms);
}

PyObject *ua_sleep_for(PyObject *delay, int in_secs, int v3)
{
    int32_t ms;
    const char *name = in_secs ? "sleep" : "sleep_ms";
    if (v3) {
        if (delay == small_zero)
            return ua_sleep_ms_new(0);   /* sleep(0): the common yield */
        int r = ua_v3_delay(delay, in_secs, &ms);
        if (r < 0)
            return NULL;
        if (r) {
            PyErr_SetString(PyExc_OverflowError, "ticks interval overflow");
            return NULL;
        }
        return ua_sleep_ms_new(ms);
    }
    if ((in_secs ? ua_delay_from_secs(delay, &ms, name) : ua_delay_from_ms(delay, &ms, name)) < 0)
        return NULL;
    return ua_sleep_ms_new(ms);
}

static PyObject *mod_sleep(PyObject *m, PyObject *secs)
{
    return ua_sleep_for(secs, 1, 0);
}

static PyObject *mod_sleep_ms(PyObject *m, PyObject *ms_obj)
{
    return ua_sleep_for(ms_obj, 0, 0);
}

static int coro_finished(PyObject *coro)
{
    const char *attr = PyCoro_CheckExact(coro) ? "cr_frame" : PyGen_Check(coro) ? "gi_frame" : NULL;
    if (!attr)
        return 0;
    PyObject *frame = PyObject_GetAttrString(coro, attr);
    if (!frame)
        return -1;
    int done = frame == Py_None;
    Py_DECREF(frame);
    return done;
}

/* The object coro awaits (yields from) now, or NULL. */
static PyObject *awaited_by(PyObject *coro)
{
    PyObject *inner = ua_wait_for_inner(coro);
    if (inner)
        return Py_NewRef(inner);
    const char *attr = PyCoro_CheckExact(coro) ? "cr_await" : PyGen_Check(coro) ? "gi_yieldfrom" : NULL;
    PyObject *x = attr ? PyObject_GetAttrString(coro, attr) : NULL;
    if (!x)
        PyErr_Clear();
    if (x == Py_None)
        Py_CLEAR(x);
    return x;
}

/* A task parked in a Queue or Lock is known to the operation it waits in,
 * at the end of its await chain: follow the chain down from coro (O(depth),
 * not O(tasks)). 1 if cancelled there, 0 if coro waits elsewhere. */
static int cancel_through_waiter(PyObject *coro, PyObject *exc)
{
    PyObject *x = Py_NewRef(coro);
    for (int depth = 0; x && depth < 1000; depth++) {
        PyObject *task;
        LoopObject *loop;
        if (ua_sync_waiter(x, &task, &loop)) {
            Py_DECREF(x);
            Py_INCREF(task);
            Py_INCREF(loop);
            int rc = ua_loop_cancel_coro(loop, task, exc);
            Py_DECREF(loop);
            Py_DECREF(task);
            return rc < 0 ? -1 : 1;
        }
        PyObject *next = awaited_by(x);
        Py_DECREF(x);
        x = next;
    }
    Py_XDECREF(x);
    return 0;
}

/* Whether coro is top or in its await chain. */
static int in_chain(PyObject *top, PyObject *coro)
{
    PyObject *x = Py_NewRef(top);
    for (int depth = 0; x && depth < 1000; depth++) {
        if (x == coro) {
            Py_DECREF(x);
            return 1;
        }
        PyObject *next = awaited_by(x);
        Py_DECREF(x);
        x = next;
    }
    Py_XDECREF(x);
    return 0;
}

static int cancel_owner(LoopObject *l, PyObject *owner, PyObject *exc)
{
    Py_INCREF(owner);
    Py_INCREF(l);
    int rc = ua_loop_cancel_coro(l, owner, exc);
    Py_DECREF(l);
    Py_DECREF(owner);
    return rc < 0 ? -1 : 1;
}

/* A coroutine awaited inside a task is cancelled, as in 2.0, through that
 * task: the exception travels down its await chain to coro. A v3 Task's
 * coroutine, or one awaited inside it, is reached through the Task (its
 * record), never by coroutine. O(tasks), but only for coroutines that are
 * not 2.0 tasks themselves. */
static int cancel_through_task(PyObject *coro, PyObject *exc)
{
    for (LoopObject *l = ua_all_loops; l; l = l->next_loop) {
        for (size_t i = 0; i < l->tasks.cap; i++) {
            uintptr_t slot = l->tasks.slots[i];
            if (!slot)
                continue;
            ua_task *t = ua_ptrmap_slot_item(slot);
            if (in_chain(t->obj, coro))
                return cancel_owner(l, t->obj, exc);
        }
        for (TaskObject *t = l->v3_tasks; t; t = t->lnext)
            if (!TASK_DONE(t) && t->rec.obj && in_chain(t->rec.obj, coro))
                return cancel_owner(l, (PyObject *)t, exc);
    }
    return 0;
}

static PyObject *mod_cancel(PyObject *m, PyObject *coro)
{
    if (!ua_is_coroutine(coro)) {
        PyErr_Format(PyExc_TypeError, "cancel() expects a coroutine, not %.100s", Py_TYPE(coro)->tp_name);
        return NULL;
    }
    PyObject *exc = PyObject_CallNoArgs(ua_CancelledError);
    if (!exc)
        return NULL;
    int rc = -1;
    LoopObject *loop = loop_of(coro);
    if (loop) {
        Py_INCREF(loop);
        rc = ua_loop_cancel_coro(loop, coro, exc);
        Py_DECREF(loop);
        goto done;
    }
    /* Not a task: awaited inside one (then cancelled through it, as 2.0
     * delivers it), parked after yielding False, or not scheduled yet (then
     * scheduled, so the exception is raised in it now). */
    int finished = coro_finished(coro);
    if (finished)
        rc = finished < 0 ? -1 : 0;
    else if ((rc = cancel_through_waiter(coro, exc)) == 0 && (rc = cancel_through_task(coro, exc)) == 0) {
        LoopObject *running = ua_running_loop_get();
        loop = running ? (LoopObject *)Py_NewRef(running) : ua_default_loop();
        rc = loop ? ua_loop_cancel_coro(loop, coro, exc) : -1;
        Py_XDECREF(loop);
    }
done:
    Py_DECREF(exc);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *mod_wait_for_ms(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    int32_t ms;
    if (!check_nargs("wait_for_ms", nargs, 2) ||
        ua_delay_from_ms(args[1], &ms, "wait_for_ms") < 0)
        return NULL;
    return ua_wait_for_new(args[0], ms);
}

static PyObject *mod_wait_for(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    int32_t ms;
    if (!check_nargs("wait_for", nargs, 2) ||
        ua_delay_from_secs(args[1], &ms, "wait_for") < 0)
        return NULL;
    return ua_wait_for_new(args[0], ms);
}

static PyObject *mod_coroutine(PyObject *m, PyObject *f)
{
    /* Makes a generator function awaitable from async def (types.coroutine);
     * an async def function comes back as it is. */
    return PyObject_CallOneArg(types_coroutine, f);
}

static LoopObject *loop_arg(PyObject *loop)
{
    if (!loop || loop == Py_None)
        return ua_default_loop();
    if (!PyObject_TypeCheck(loop, &Loop_Type)) {
        PyErr_Format(PyExc_TypeError, "loop must be an EventLoop, not %.100s", Py_TYPE(loop)->tp_name);
        return NULL;
    }
    return (LoopObject *)Py_NewRef(loop);
}

static PyObject *schedule_on(PyObject *args, PyObject *kwds, const char *fmt, int return_coro)
{
    static char *kwlist[] = {"coro", "loop", NULL};
    PyObject *coro, *loop_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, fmt, kwlist, &coro, &loop_obj))
        return NULL;
    if (!ua_is_coroutine(coro)) {
        PyErr_Format(PyExc_TypeError, "expected a coroutine or a generator, not %.100s",
                     Py_TYPE(coro)->tp_name);
        return NULL;
    }
    LoopObject *loop = loop_arg(loop_obj);
    if (!loop)
        return NULL;
    int rc = ua_loop_check_thread(loop) < 0 ? -1 : ua_loop_call_soon(loop, coro, NULL);
    Py_DECREF(loop);
    if (rc < 0)
        return NULL;
    return Py_NewRef(return_coro ? coro : Py_None);
}

static PyObject *mod_ensure_future(PyObject *m, PyObject *args, PyObject *kwds)
{
    return schedule_on(args, kwds, "O|O:ensure_future", 1);
}

static PyObject *mod_Task(PyObject *m, PyObject *args, PyObject *kwds)
{
    return schedule_on(args, kwds, "O|O:Task", 0);
}

static PyObject *mod_set_debug(PyObject *m, PyObject *on)
{
    int v = PyObject_IsTrue(on);
    if (v < 0)
        return NULL;
    ua_debug = v;
    Py_RETURN_NONE;
}

/* ---- ticks -------------------------------------------------------------------- */

static PyObject *mod_ticks_ms(PyObject *m, PyObject *unused)
{
    return PyLong_FromUnsignedLong(ua_ticks_ms());
}

static int ticks_arg(PyObject *obj, uint32_t *t, const char *what)
{
    if (!PyLong_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: ticks must be an int, not %.100s", what, Py_TYPE(obj)->tp_name);
        return -1;
    }
    unsigned long long v = PyLong_AsUnsignedLongLongMask(obj);
    if (v == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    *t = (uint32_t)(v & UA_TICKS_MASK);
    return 0;
}

static PyObject *mod_ticks_add(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    uint32_t t;
    if (!check_nargs("ticks_add", nargs, 2) || ticks_arg(args[0], &t, "ticks_add") < 0)
        return NULL;
    if (!PyLong_Check(args[1])) {
        PyErr_Format(PyExc_TypeError, "ticks_add: delta must be an int, not %.100s", Py_TYPE(args[1])->tp_name);
        return NULL;
    }
    int overflow;
    long long d = PyLong_AsLongLongAndOverflow(args[1], &overflow);
    if (d == -1 && PyErr_Occurred())
        return NULL;
    /* Keep ticks_diff(ticks_add(t, d), t) == d: |d| < PERIOD / 2. */
    if (overflow || d <= -(long long)UA_TICKS_HALF || d >= (long long)UA_TICKS_HALF) {
        PyErr_SetString(PyExc_OverflowError, "ticks interval overflow");
        return NULL;
    }
    return PyLong_FromUnsignedLong(ua_ticks_add(t, (int32_t)d));
}

static PyObject *mod_ticks_diff(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    uint32_t a, b;
    if (!check_nargs("ticks_diff", nargs, 2) || ticks_arg(args[0], &a, "ticks_diff") < 0 ||
        ticks_arg(args[1], &b, "ticks_diff") < 0)
        return NULL;
    return PyLong_FromLong(ua_ticks_diff(a, b));
}

/* At interpreter exit (atexit): the default loops (2.0's and v3's) are
 * closed, so the tasks still pending in them are finalized (their finally
 * blocks run) while Python still works, rather than dropped unseen. */
static int close_at_exit(LoopObject *loop)
{
    if (!loop || loop->closed || loop->running)
        return 0;
    PyObject *r = PyObject_CallMethod((PyObject *)loop, "close", NULL);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

static PyObject *mod_close_default_loops(PyObject *m, PyObject *unused)
{
    if (close_at_exit(default_loop) < 0 || close_at_exit(ua_v3_default_loop_borrowed()) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"get_event_loop", (PyCFunction)(void (*)(void))mod_get_event_loop, METH_VARARGS | METH_KEYWORDS,
     "get_event_loop(runq_len=16, waitq_len=16): the process-wide loop."},
    {"sleep", mod_sleep, METH_O, "sleep(secs): awaitable that sleeps."},
    {"sleep_ms", mod_sleep_ms, METH_O, "sleep_ms(ms): awaitable that sleeps."},
    {"cancel", mod_cancel, METH_O, "cancel(coro): raise CancelledError in coro now."},
    {"wait_for_ms", (PyCFunction)(void (*)(void))mod_wait_for_ms, METH_FASTCALL,
     "wait_for_ms(coro, ms): await coro in this task; TimeoutError after ms."},
    {"wait_for", (PyCFunction)(void (*)(void))mod_wait_for, METH_FASTCALL,
     "wait_for(coro, secs): await coro in this task; TimeoutError after secs."},
    {"coroutine", mod_coroutine, METH_O, "Make a generator function awaitable from async def."},
    {"ensure_future", (PyCFunction)(void (*)(void))mod_ensure_future, METH_VARARGS | METH_KEYWORDS,
     "ensure_future(coro, loop=None): schedule coro; returns coro."},
    {"Task", (PyCFunction)(void (*)(void))mod_Task, METH_VARARGS | METH_KEYWORDS,
     "Task(coro, loop=None): schedule coro."},
    {"set_debug", mod_set_debug, METH_O, "Log scheduling decisions through logging."},
    {"_close_default_loops", mod_close_default_loops, METH_NOARGS,
     "Close the default loops (2.0's and v3's), finalizing their pending tasks (registered with atexit)."},
    {"schedule", (PyCFunction)(void (*)(void))ua_schedule, METH_FASTCALL,
     "schedule(func, arg): func(arg) soon in the main thread (MicroPython's micropython.schedule)."},
    {"ticks_ms", mod_ticks_ms, METH_NOARGS, "Milliseconds, wrapping at 2**30."},
    {"ticks_add", (PyCFunction)(void (*)(void))mod_ticks_add, METH_FASTCALL, "ticks_add(t, delta)"},
    {"ticks_diff", (PyCFunction)(void (*)(void))mod_ticks_diff, METH_FASTCALL,
     "ticks_diff(end, start): signed, wrap-safe."},
    {NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "uasyncio._uasyncio",
    .m_doc = "uasyncio's event loop, in C.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__uasyncio(void)
{
    PyObject *m = PyModule_Create(&module_def);
    if (!m)
        return NULL;
    PyObject *types = PyImport_ImportModule("types");
    if (!types)
        goto error;
    types_coroutine = PyObject_GetAttrString(types, "coroutine");
    Py_DECREF(types);
    if (!types_coroutine || !(small_zero = PyLong_FromLong(0)))
        goto error;
    ua_CancelledError = PyErr_NewExceptionWithDoc("uasyncio.core.CancelledError",
                                                  "Raised in a task that is cancelled.", NULL, NULL);
    if (!ua_CancelledError || PyModule_AddObjectRef(m, "CancelledError", ua_CancelledError) < 0)
        goto error;
    ua_TimeoutError = PyErr_NewExceptionWithDoc("uasyncio.core.TimeoutError",
                                                "Raised in a task whose wait_for() timed out.",
                                                ua_CancelledError, NULL);
    if (!ua_TimeoutError || PyModule_AddObjectRef(m, "TimeoutError", ua_TimeoutError) < 0)
        goto error;
    if (ua_syscalls_ready(m) < 0 || ua_waitfor_ready(m) < 0 || ua_loop_ready(m) < 0 ||
        ua_streams_ready(m) < 0 || ua_server_ready(m) < 0 || ua_sync_ready(m) < 0 ||
        ua_udp_ready(m) < 0 || ua_ws_ready(m) < 0 ||
        ua_v3_stream_ready(m) < 0 || ua_v3_ready(m) < 0)
        goto error;
    PyObject *atexit = PyImport_ImportModule("atexit");
    PyObject *closer = atexit ? PyObject_GetAttrString(m, "_close_default_loops") : NULL;
    PyObject *r = closer ? PyObject_CallMethod(atexit, "register", "O", closer) : NULL;
    Py_XDECREF(closer);
    Py_XDECREF(atexit);
    if (!r)
        goto error;
    Py_DECREF(r);
    if (PyModule_AddIntConstant(m, "TICKS_PERIOD", UA_TICKS_PERIOD) < 0 ||
        PyModule_AddIntConstant(m, "TICKS_MAX_DELAY", UA_TICKS_MAX_DELAY) < 0)
        goto error;
    return m;
error:
    Py_DECREF(m);
    return NULL;
}
