/* What every part of the binding uses (type names, the coroutine check,
 * delays, logging), and uasyncio.core's module functions of the loop's
 * own: its clock (ticks_ms, ticks_add, ticks_diff), set_debug, and its
 * CancelledError. */
#include "internal.h"

#include <math.h>
#include <string.h>

PyObject *ua_CancelledError;
int ua_debug;

/* ---- helpers shared by the binding -------------------------------------- */

const char *ua_type_name(PyTypeObject *tp)
{
    const char *dot = strrchr(tp->tp_name, '.');
    return dot ? dot + 1 : tp->tp_name;
}

int ua_check_nargs(const char *name, Py_ssize_t nargs, Py_ssize_t want)
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
    if (!ua_check_nargs("ticks_add", nargs, 2) || ticks_arg(args[0], &t, "ticks_add") < 0)
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
    if (!ua_check_nargs("ticks_diff", nargs, 2) || ticks_arg(args[0], &a, "ticks_diff") < 0 ||
        ticks_arg(args[1], &b, "ticks_diff") < 0)
        return NULL;
    return PyLong_FromLong(ua_ticks_diff(a, b));
}

static PyMethodDef util_functions[] = {
    {"set_debug", mod_set_debug, METH_O, "Log scheduling decisions through logging."},
    {"schedule", (PyCFunction)(void (*)(void))ua_schedule, METH_FASTCALL,
     "schedule(func, arg): func(arg) soon in the main thread (MicroPython's micropython.schedule)."},
    {"ticks_ms", mod_ticks_ms, METH_NOARGS, "Milliseconds, wrapping at 2**30."},
    {"ticks_add", (PyCFunction)(void (*)(void))mod_ticks_add, METH_FASTCALL, "ticks_add(t, delta)"},
    {"ticks_diff", (PyCFunction)(void (*)(void))mod_ticks_diff, METH_FASTCALL,
     "ticks_diff(end, start): signed, wrap-safe."},
    {NULL},
};

int ua_loop_util_ready(PyObject *m)
{
    ua_CancelledError = PyErr_NewExceptionWithDoc("uasyncio.core.CancelledError",
                                                  "Raised in a task that is cancelled.", NULL, NULL);
    if (!ua_CancelledError || PyModule_AddObjectRef(m, "CancelledError", ua_CancelledError) < 0)
        return -1;
    if (PyModule_AddIntConstant(m, "TICKS_PERIOD", UA_TICKS_PERIOD) < 0 ||
        PyModule_AddIntConstant(m, "TICKS_MAX_DELAY", UA_TICKS_MAX_DELAY) < 0)
        return -1;
    return PyModule_AddFunctions(m, util_functions);
}
