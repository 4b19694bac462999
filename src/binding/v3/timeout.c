/* timeout(delay) and timeout_at(when): CPython 3.11's async context
 * managers that cancel the task running the block when the time is up and
 * turn that cancel into TimeoutError on the way out.
 *
 *     async with asyncio.timeout(10):
 *         await long_job()
 *
 * The deadline is a callback record in the loop's timer heap (one record,
 * from ua_task_new(), no Python timer object); reschedule() takes it out
 * again at once (O(log n)), unless it already came due and waits in the run
 * queue: then it runs and does nothing (the count `stale`).
 *
 * CPython tells its own cancel from another one by counting cancel
 * requests (Task.cancelling()/uncancel()). A Task here has no counter: the
 * timeout throws a CancelledError instance of its own, and converts only
 * that one. If a cancel is already on its way to the task when the time is
 * up, the timeout sends none, and that cancel goes on, as in CPython where
 * the count stays above the one it started with.
 *
 * `when` is in the units of loop.time(): here the loop's ms ticks (as
 * uasyncio 2.0's loop.time()), so timeout_at(loop.time() + 5000) is 5 s. */
#include <math.h>

#include "internal.h"

PyObject *ua_v3_timeout_error;   /* TimeoutError: both v3's and the builtin one */

enum { T_CREATED, T_ENTERED, T_EXPIRING, T_EXPIRED, T_EXITED };
static const char *state_names[] = {"created", "active", "expiring", "expired", "finished"};

typedef struct {
    PyObject_HEAD
    PyObject *when;         /* None, or the deadline in loop.time() units */
    LoopObject *loop;       /* where the timer is, once entered */
    TaskObject *task;       /* the task it times, while entered */
    PyObject *cancel_exc;   /* the CancelledError it threw in, once expired */
    PyObject *fire;         /* its timer callback, bound to it */
    ua_task *timer;         /* the callback record, while armed */
    int stale;              /* records of earlier deadlines still to run (doing nothing) */
    uint8_t state;
} TimeoutObject;

static PyTypeObject Timeout_Type;

/* ---- the timer ------------------------------------------------------------------- */

static int deadline_of(PyObject *when, uint32_t *ticks)
{
    long long v;
    if (PyFloat_Check(when)) {
        double d = PyFloat_AsDouble(when);
        if (isnan(d) || isinf(d)) {
            PyErr_SetString(PyExc_ValueError, "timeout: the deadline must be a finite number");
            return -1;
        }
        v = (long long)ceil(fmod(d, (double)UA_TICKS_PERIOD));   /* never early */
    } else {
        PyObject *i = PyNumber_Index(when);
        if (!i)
            return -1;
        int overflow;
        v = PyLong_AsLongLongAndOverflow(i, &overflow);
        if (overflow) {
            /* Only the ticks' bits matter: take them from the big int. */
            PyObject *mask = PyLong_FromUnsignedLong(UA_TICKS_MASK);
            PyObject *low = mask ? PyNumber_And(i, mask) : NULL;
            v = low ? PyLong_AsLongLong(low) : -1;
            Py_XDECREF(low);
            Py_XDECREF(mask);
        }
        Py_DECREF(i);
        if (v == -1 && PyErr_Occurred())
            return -1;
    }
    *ticks = (uint32_t)((unsigned long long)v & UA_TICKS_MASK);
    return 0;
}

static void disarm(TimeoutObject *self)
{
    ua_task *t = self->timer;
    if (!t)
        return;
    self->timer = NULL;
    if (self->loop->closed)
        return;   /* the loop let go of its records when it closed */
    if (t->state == ST_SLEEPING) {
        ua_loop_unplace(self->loop, t);
        ua_task_free(t);
    } else {
        self->stale++;   /* due already: it runs, and does nothing */
    }
}

static int arm(TimeoutObject *self, uint32_t deadline)
{
    ua_task *t = ua_task_new(TASK_CALL, self->fire, NULL);
    if (!t)
        return -1;
    t->timer.deadline = deadline;
    if (ua_timerheap_push(&self->loop->timers, &t->timer) < 0) {
        ua_task_free(t);
        PyErr_NoMemory();
        return -1;
    }
    t->state = ST_SLEEPING;
    self->timer = t;
    return 0;
}

/* The time is up: cancel the task (unless a cancel is on its way already). */
static PyObject *timeout_fire(TimeoutObject *self, PyObject *unused)
{
    if (self->stale) {
        self->stale--;
        Py_RETURN_NONE;
    }
    self->timer = NULL;
    if (self->state != T_ENTERED || !self->task)
        Py_RETURN_NONE;
    self->state = T_EXPIRING;
    PyObject *exc = PyObject_CallNoArgs(ua_v3_CancelledError);
    if (!exc)
        return NULL;
    Py_XSETREF(self->cancel_exc, exc);
    if (ua_v3_cancel_own(self->task, exc) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef fire_def = {"_fire", (PyCFunction)timeout_fire, METH_NOARGS, NULL};

/* ---- methods -------------------------------------------------------------------- */

static PyObject *timeout_when(TimeoutObject *self, PyObject *unused)
{
    return Py_NewRef(self->when);
}

static PyObject *timeout_expired(TimeoutObject *self, PyObject *unused)
{
    return PyBool_FromLong(self->state == T_EXPIRING || self->state == T_EXPIRED);
}

static PyObject *timeout_reschedule(TimeoutObject *self, PyObject *when)
{
    if (self->state != T_ENTERED) {
        if (self->state == T_CREATED)
            PyErr_SetString(PyExc_RuntimeError, "Timeout has not been entered");
        else
            PyErr_Format(PyExc_RuntimeError, "Cannot change state of %s Timeout", state_names[self->state]);
        return NULL;
    }
    uint32_t deadline = 0;
    if (when != Py_None && deadline_of(when, &deadline) < 0)
        return NULL;
    Py_SETREF(self->when, Py_NewRef(when));
    disarm(self);
    if (when != Py_None && arm(self, deadline) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *timeout_aenter(TimeoutObject *self, PyObject *unused)
{
    if (self->state != T_CREATED) {
        PyErr_SetString(PyExc_RuntimeError, "Timeout has already been entered");
        return NULL;
    }
    TaskObject *t = ua_v3_current();
    if (!t || !t->loop) {
        PyErr_SetString(PyExc_RuntimeError, "Timeout should be used inside a task");
        return NULL;
    }
    self->state = T_ENTERED;
    Py_XSETREF(self->task, (TaskObject *)Py_NewRef(t));
    Py_XSETREF(self->loop, (LoopObject *)Py_NewRef(t->loop));
    PyObject *r = timeout_reschedule(self, self->when);
    if (!r)
        return NULL;
    Py_DECREF(r);
    return ua_v3_value_wait((PyObject *)self);
}

static PyObject *timeout_aexit(TimeoutObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "__aexit__() takes 3 arguments");
        return NULL;
    }
    if (self->state != T_ENTERED && self->state != T_EXPIRING) {
        PyErr_Format(PyExc_RuntimeError, "Cannot exit a %s Timeout", state_names[self->state]);
        return NULL;
    }
    disarm(self);
    Py_CLEAR(self->task);
    if (self->state == T_ENTERED) {
        self->state = T_EXITED;
        return ua_v3_value_wait(Py_None);
    }
    self->state = T_EXPIRED;
    PyObject *exc = args[1];
    if (exc == Py_None || exc != self->cancel_exc)
        return ua_v3_value_wait(Py_None);   /* ended anyway, or another cancel: it goes on */
    /* raise TimeoutError from exc (its __context__ is exc too: being handled) */
    PyObject *te = PyObject_CallNoArgs(ua_v3_timeout_error);
    if (!te)
        return NULL;
    PyException_SetCause(te, Py_NewRef(exc));
    PyErr_SetObject(ua_v3_timeout_error, te);
    Py_DECREF(te);
    return NULL;
}

static PyObject *timeout_repr(TimeoutObject *self)
{
    if (self->state == T_ENTERED)
        return PyUnicode_FromFormat("<Timeout [active] when=%R>", self->when);
    return PyUnicode_FromFormat("<Timeout [%s]>", state_names[self->state]);
}

/* ---- object life ---------------------------------------------------------------------- */

static TimeoutObject *timeout_make(PyTypeObject *type, PyObject *when)
{
    TimeoutObject *self = (TimeoutObject *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    self->when = Py_NewRef(when);
    self->fire = PyCFunction_New(&fire_def, (PyObject *)self);
    if (!self->fire) {
        Py_DECREF(self);
        return NULL;
    }
    return self;
}

static PyObject *timeout_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"when", NULL};
    PyObject *when;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:Timeout", kwlist, &when))
        return NULL;
    uint32_t d;
    if (when != Py_None && deadline_of(when, &d) < 0)
        return NULL;
    return (PyObject *)timeout_make(type, when);
}

static int timeout_traverse(TimeoutObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->when);
    Py_VISIT(self->loop);
    Py_VISIT(self->task);
    Py_VISIT(self->cancel_exc);
    Py_VISIT(self->fire);
    return 0;
}

static int timeout_clear(TimeoutObject *self)
{
    if (self->loop)
        disarm(self);
    Py_CLEAR(self->when);
    Py_CLEAR(self->task);
    Py_CLEAR(self->cancel_exc);
    Py_CLEAR(self->fire);
    Py_CLEAR(self->loop);
    return 0;
}

static void timeout_dealloc(TimeoutObject *self)
{
    PyObject_GC_UnTrack(self);
    timeout_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef timeout_methods[] = {
    {"when", (PyCFunction)timeout_when, METH_NOARGS,
     "The deadline (in loop.time() units: ms ticks here), or None."},
    {"reschedule", (PyCFunction)timeout_reschedule, METH_O,
     "reschedule(when): a new deadline (loop.time() units), or None for none."},
    {"expired", (PyCFunction)timeout_expired, METH_NOARGS, "True once the deadline passed inside the block."},
    {"__aenter__", (PyCFunction)timeout_aenter, METH_NOARGS, "Start timing the current task."},
    {"__aexit__", (PyCFunction)(void (*)(void))timeout_aexit, METH_FASTCALL,
     "Stop timing; its own cancel becomes TimeoutError."},
    {NULL},
};

static PyTypeObject Timeout_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "uasyncio.v3.Timeout",
    .tp_basicsize = sizeof(TimeoutObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Timeout(when): async context manager that cancels the task running its block at when "
              "(loop.time() units; None: never) and raises TimeoutError instead. See timeout().",
    .tp_new = timeout_new,
    .tp_dealloc = (destructor)timeout_dealloc,
    .tp_traverse = (traverseproc)timeout_traverse,
    .tp_clear = (inquiry)timeout_clear,
    .tp_repr = (reprfunc)timeout_repr,
    .tp_methods = timeout_methods,
};

/* ---- module functions --------------------------------------------------------------------- */

static PyObject *mod_timeout(PyObject *m, PyObject *delay)
{
    LoopObject *loop = ua_running_loop_get();
    if (!loop || !PyObject_TypeCheck(loop, &V3Loop_Type)) {
        PyErr_SetString(PyExc_RuntimeError, "no running event loop");
        return NULL;
    }
    if (delay == Py_None)
        return (PyObject *)timeout_make(&Timeout_Type, Py_None);
    int32_t ms;
    uint32_t now;
    if (ua_delay_from_secs(delay, &ms, "timeout") < 0 || ua_loop_now(loop, &now) < 0)
        return NULL;
    PyObject *when = PyLong_FromUnsignedLong(ua_ticks_add(now, ms));
    if (!when)
        return NULL;
    PyObject *t = (PyObject *)timeout_make(&Timeout_Type, when);
    Py_DECREF(when);
    return t;
}

static PyObject *mod_timeout_at(PyObject *m, PyObject *when)
{
    uint32_t d;
    if (when != Py_None && deadline_of(when, &d) < 0)
        return NULL;
    return (PyObject *)timeout_make(&Timeout_Type, when);
}

static PyMethodDef funcs[] = {
    {"timeout", mod_timeout, METH_O,
     "timeout(delay): async context manager: cancel the block after delay seconds (None: never) "
     "and raise TimeoutError."},
    {"timeout_at", mod_timeout_at, METH_O,
     "timeout_at(when): the same, until when in loop.time() units (the loop's ms ticks here)."},
    {NULL},
};

int ua_v3_timeout_ready(PyObject *m)
{
    /* The error of CPython's structured waits (timeout(), as_completed()): one
     * class that both `except asyncio.TimeoutError` (v3's own, MicroPython's)
     * and `except TimeoutError` (the builtin, CPython 3.11's) catch. */
    ua_v3_timeout_error = PyObject_CallFunction((PyObject *)&PyType_Type, "s(OO){s:s,s:s}", "TimeoutError",
                                                ua_v3_TimeoutError, PyExc_TimeoutError, "__module__",
                                                "uasyncio.v3", "__doc__",
                                                "The time of timeout() or as_completed() is up: "
                                                "uasyncio.v3.TimeoutError and the builtin TimeoutError.");
    if (!ua_v3_timeout_error || PyType_Ready(&Timeout_Type) < 0 ||
        PyModule_AddObjectRef(m, "Timeout", (PyObject *)&Timeout_Type) < 0)
        return -1;
    return PyModule_AddFunctions(m, funcs);
}
