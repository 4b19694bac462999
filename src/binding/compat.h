/* What differs between the CPython versions the binding builds on (3.10 and
 * later), behind one spelling, so the binding itself uses no API a newer
 * version deprecates. */
#ifndef UA_COMPAT_H
#define UA_COMPAT_H

#include <Python.h>

/* ua_err_fetch(): takes the exception being raised (a new reference to the
 * normalized exception object, its traceback attached), or NULL if none;
 * the error indicator is cleared.  ua_err_restore(exc): raises it again
 * (steals the reference; NULL clears the indicator).  3.12 replaced the
 * (type, value, traceback) triple of PyErr_Fetch/PyErr_Restore with one
 * object; older versions get the same from the triple. */
#if PY_VERSION_HEX >= 0x030C0000
static inline PyObject *ua_err_fetch(void)
{
    return PyErr_GetRaisedException();
}

static inline void ua_err_restore(PyObject *exc)
{
    PyErr_SetRaisedException(exc);
}
#else
static inline PyObject *ua_err_fetch(void)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (!type)
        return NULL;
    PyErr_NormalizeException(&type, &value, &tb);
    if (value && tb)
        PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
}

static inline void ua_err_restore(PyObject *exc)
{
    if (!exc) {
        PyErr_Clear();
        return;
    }
    PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), exc, PyException_GetTraceback(exc));
}
#endif

#endif
