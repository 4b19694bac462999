/* uasyncio.v3's Loop and its module functions (run, create_task,
 * current_task, sleep, sleep_ms, get_event_loop, new_event_loop).
 *
 * Loop is a subtype of PollEventLoop: the same C loop object and code;
 * only create_task (returns a Task) and run_until_complete (takes a Task or
 * a coroutine and gives its outcome) differ. v3 has its own default loop
 * object, separate from 2.0's, so each API keeps its own semantics. */
#include "internal.h"

#include <math.h>

static LoopObject *v3_default;
static PyObject *base_stop;   /* EventLoop.stop */

/* ---- loops -------------------------------------------------------------------- */

static LoopObject *new_loop(int vclock)
{
    LoopObject *l = (LoopObject *)PyObject_CallNoArgs((PyObject *)&V3Loop_Type);
    if (l && vclock) {
        l->vclock = 1;
        l->vnow = 0;
    }
    return l;
}

static LoopObject *default_loop(void)
{
    if (!v3_default || v3_default->closed) {
        LoopObject *l = new_loop(0);
        if (!l)
            return NULL;
        Py_XSETREF(v3_default, l);
    }
    return (LoopObject *)Py_NewRef(v3_default);
}

LoopObject *ua_v3_loop(void)
{
    if (ua_running_loop_get())
        return (LoopObject *)Py_NewRef(ua_running_loop_get());
    return default_loop();
}

/* ---- Loop's own methods ------------------------------------------------------------ */

static PyObject *v3loop_create_task(LoopObject *self, PyObject *const *args, Py_ssize_t nargs,
                                    PyObject *kwnames)
{
    PyObject *name;
    if (ua_v3_create_task_args(args, nargs, kwnames, "create_task", &name) < 0)
        return NULL;
    PyObject *t = ua_v3_create_task(self, args[0]);
    if (t && name && ua_v3_name_task(t, name) < 0)
        Py_CLEAR(t);
    Py_XDECREF(name);
    return t;
}

static PyObject *run_until_complete(LoopObject *self, PyObject *aw)
{
    /* Before the task is marked as this run's: it may be another run's. */
    if (ua_loop_check_thread(self) < 0)
        return NULL;
    if (self->running) {
        PyErr_SetString(PyExc_RuntimeError, "the event loop is already running");
        return NULL;
    }
    PyObject *t = Py_IS_TYPE(aw, &Task_Type) ? Py_NewRef(aw) : ua_v3_create_task(self, aw);
    if (!t)
        return NULL;
    TaskObject *task = (TaskObject *)t;
    if (!TASK_DONE(task)) {
        task->rec.flags |= F_MAIN;
        PyObject *ret = ua_loop_run_forever(self, 0);
        task->rec.flags &= ~F_MAIN;
        if (!ret) {
            Py_DECREF(t);
            return NULL;
        }
        Py_DECREF(ret);
        if (!TASK_DONE(task)) {   /* stopped first */
            Py_DECREF(t);
            Py_RETURN_NONE;
        }
    }
    PyObject *r = ua_v3_outcome(task);
    Py_DECREF(t);
    return r;
}

/* stop(): a second call before the loop stopped does nothing (as
 * MicroPython), so the next run_forever() is not stopped at once. */
static PyObject *v3loop_stop(LoopObject *self, PyObject *unused)
{
    for (size_t i = 0; i < self->runq.len; i++)
        if (((ua_task *)ua_runq_at(&self->runq, i))->kind == TASK_STOP)
            Py_RETURN_NONE;
    return PyObject_CallOneArg(base_stop, (PyObject *)self);
}

static int v3loop_init(LoopObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"virtual_clock", NULL};
    int vclock = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$p:Loop", kwlist, &vclock))
        return -1;
    self->vclock = (uint8_t)vclock;
    self->vnow = 0;
    return 0;
}

static PyMethodDef v3loop_methods[] = {
    {"create_task", (PyCFunction)(void (*)(void))v3loop_create_task, METH_FASTCALL | METH_KEYWORDS,
     "create_task(coro, *, name=None): schedule it; returns its Task."},
    {"stop", (PyCFunction)v3loop_stop, METH_NOARGS,
     "Make run_forever() return after the entries queued before; a second call before then does nothing."},
    {"run_until_complete", (PyCFunction)run_until_complete, METH_O,
     "run_until_complete(aw): run until the task (or coroutine) ends; returns its value."},
    {"close", (PyCFunction)ua_v3_loop_close, METH_NOARGS,
     "Drop every pending task, release the poller, shut the default executor down (not waiting)."},
    {"run_in_executor", (PyCFunction)(void (*)(void))ua_v3_loop_run_in_executor, METH_FASTCALL,
     "run_in_executor(executor, fn, *args): fn(*args) in the executor (None: the default "
     "ThreadPoolExecutor); returns a Task for its result."},
    {"set_default_executor", (PyCFunction)ua_v3_loop_set_default_executor, METH_O,
     "set_default_executor(executor): the ThreadPoolExecutor run_in_executor(None, ...) uses."},
    {NULL},
};

/* A v3 loop runs its tasks in MicroPython's order (loop/loop.c), and an
 * exception escaping a task goes to its exception handler, the default one
 * printing it, as CPython's asyncio. */
static PyObject *v3loop_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    LoopObject *self = (LoopObject *)PollLoop_Type.tp_new(type, args, kwds);
    if (self) {
        self->mp_order = 1;
        self->report_errors = 1;
    }
    return (PyObject *)self;
}

PyTypeObject V3Loop_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "uasyncio.v3.Loop",
    .tp_basicsize = sizeof(LoopObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,   /* GC inherited */
    .tp_doc = "Loop(*, virtual_clock=False): the event loop of uasyncio.v3. With virtual_clock, "
              "time jumps to the next timer whenever every task waits.",
    .tp_base = &PollLoop_Type,
    .tp_new = v3loop_new,
    .tp_init = (initproc)v3loop_init,
    .tp_methods = v3loop_methods,
};

/* ---- module functions --------------------------------------------------------------- */

static PyObject *mod_run(PyObject *m, PyObject *coro)
{
    LoopObject *loop = default_loop();
    if (!loop)
        return NULL;
    PyObject *r = ua_v3_create_task(loop, coro);
    if (r)
        Py_SETREF(r, run_until_complete(loop, r));
    Py_DECREF(loop);
    return r;
}

/* With no task (or None), as MicroPython's: run until nothing can wake any
 * task (or stop()). */
static PyObject *mod_run_until_complete(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs > 1) {
        PyErr_Format(PyExc_TypeError, "run_until_complete() takes at most 1 argument (%zd given)", nargs);
        return NULL;
    }
    LoopObject *loop = default_loop();
    if (!loop)
        return NULL;
    PyObject *aw = nargs ? args[0] : Py_None;
    PyObject *r;
    if (aw == Py_None) {
        r = ua_loop_run_forever(loop, 1);
        if (r)
            Py_SETREF(r, Py_NewRef(Py_None));
    } else {
        r = run_until_complete(loop, aw);
    }
    Py_DECREF(loop);
    return r;
}

static PyObject *mod_create_task(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *name;
    if (ua_v3_create_task_args(args, nargs, kwnames, "create_task", &name) < 0)
        return NULL;
    LoopObject *loop = ua_v3_loop();
    PyObject *t = loop ? ua_v3_create_task(loop, args[0]) : NULL;
    Py_XDECREF(loop);
    if (t && name && ua_v3_name_task(t, name) < 0)
        Py_CLEAR(t);
    Py_XDECREF(name);
    return t;
}

static PyObject *mod_current_task(PyObject *m, PyObject *unused)
{
    TaskObject *t = ua_v3_current();
    if (!t) {
        PyErr_SetString(PyExc_RuntimeError, "no running event loop");
        return NULL;
    }
    return Py_NewRef(t);
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

/* sleep(secs) (in_secs) or sleep_ms(ms): a SleepMs for the delay, as
 * ua_v3_delay() takes it; OverflowError past the longest. */
static PyObject *sleep_for(PyObject *delay, int in_secs)
{
    int32_t ms;
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

/* A negative delay counts as 0, as in MicroPython. */
static PyObject *mod_sleep(PyObject *m, PyObject *secs)
{
    return sleep_for(secs, 1);
}

static PyObject *mod_sleep_ms(PyObject *m, PyObject *ms_obj)
{
    return sleep_for(ms_obj, 0);
}

static PyObject *mod_get_event_loop(PyObject *m, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"runq_len", "waitq_len", NULL};
    PyObject *a = NULL, *b = NULL;   /* legacy arguments, ignored */
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OO:get_event_loop", kwlist, &a, &b))
        return NULL;
    LoopObject *running = ua_running_loop_get();
    if (running && PyObject_TypeCheck(running, &V3Loop_Type))
        return Py_NewRef(running);
    return (PyObject *)default_loop();
}

static PyObject *mod_new_event_loop(PyObject *m, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"virtual_clock", NULL};
    int vclock = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$p:new_event_loop", kwlist, &vclock))
        return NULL;
    LoopObject *l = new_loop(vclock);
    if (!l)
        return NULL;
    Py_XSETREF(v3_default, (LoopObject *)Py_NewRef(l));
    return (PyObject *)l;
}

/* Closed at interpreter exit with 2.0's (module.c). */
LoopObject *ua_v3_default_loop_borrowed(void)
{
    return v3_default;
}

static PyMethodDef v3_functions[] = {
    {"run", mod_run, METH_O, "run(coro): run coro as a task on the loop until it ends; returns its value."},
    {"run_until_complete", (PyCFunction)(void (*)(void))mod_run_until_complete, METH_FASTCALL,
     "run_until_complete(aw=None): run the default loop until the task (or coroutine) ends; returns its "
     "value. With none, until no task can be woken any more (or stop())."},
    {"create_task", (PyCFunction)(void (*)(void))mod_create_task, METH_FASTCALL | METH_KEYWORDS,
     "create_task(coro, *, name=None): schedule coro; returns its Task."},
    {"current_task", mod_current_task, METH_NOARGS, "The Task running now."},
    {"sleep", mod_sleep, METH_O, "sleep(secs): awaitable."},
    {"sleep_ms", mod_sleep_ms, METH_O, "sleep_ms(ms): awaitable."},
    {"get_event_loop", (PyCFunction)(void (*)(void))mod_get_event_loop, METH_VARARGS | METH_KEYWORDS,
     "The loop (the running one, else the default one)."},
    {"new_event_loop", (PyCFunction)(void (*)(void))mod_new_event_loop, METH_VARARGS | METH_KEYWORDS,
     "new_event_loop(*, virtual_clock=False): a new loop, which becomes the default one."},
    {NULL},
};

int ua_v3_loop_ready(PyObject *m)
{
    if (!(small_zero = PyLong_FromLong(0)))
        return -1;
    if (!(base_stop = PyObject_GetAttrString((PyObject *)&Loop_Type, "stop")))
        return -1;
    if (PyType_Ready(&V3Loop_Type) < 0 || PyModule_AddObjectRef(m, "Loop", (PyObject *)&V3Loop_Type) < 0)
        return -1;
    return PyModule_AddFunctions(m, v3_functions);
}

/* The submodule uasyncio._uasyncio._v3 that uasyncio/v3/__init__.py re-exports. */
int ua_v3_ready(PyObject *module)
{
    PyObject *m = PyModule_New("uasyncio._uasyncio._v3");
    if (!m)
        return -1;
    if (ua_v3_task_ready(m) < 0 || ua_v3_wait_ready(m) < 0 || ua_v3_loop_ready(m) < 0 ||
        ua_v3_funcs_ready(m) < 0 || ua_v3_sync_ready(m) < 0 || ua_v3_queue_ready(m) < 0 ||
        ua_v3_names_ready(m) < 0 || ua_v3_executor_ready(m) < 0 || ua_v3_timeout_ready(m) < 0 ||
        ua_v3_taskgroup_ready(m) < 0 || ua_v3_waitset_ready(m) < 0 ||
        PyModule_AddObjectRef(module, "_v3", m) < 0) {
        Py_DECREF(m);
        return -1;
    }
    Py_DECREF(m);
    return 0;
}
