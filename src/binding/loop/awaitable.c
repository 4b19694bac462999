#include "loop.h"

PyObject *ua_iternext_result(PySendResult sr, PyObject *result)
{
    if (sr == PYGEN_NEXT)
        return result;
    if (sr == PYGEN_RETURN) {
        if (result != Py_None) {
            /* StopIteration(value): a bare tuple would be taken as its args. */
            PyObject *stop = PyObject_CallOneArg(PyExc_StopIteration, result);
            if (stop) {
                PyErr_SetObject(PyExc_StopIteration, stop);
                Py_DECREF(stop);
            }
        }
        Py_DECREF(result);
    }
    return NULL;
}

PyObject *ua_send_result(PyObject *r)
{
    if (!r && !PyErr_Occurred())
        PyErr_SetNone(PyExc_StopIteration);
    return r;
}

PyObject *ua_self_await(PyObject *self)
{
    return Py_NewRef(self);
}

PyObject *ua_raise_thrown(PyObject *args)
{
    if (!PyTuple_GET_SIZE(args)) {
        PyErr_SetString(PyExc_TypeError, "throw() takes at least one argument");
        return NULL;
    }
    PyObject *typ = PyTuple_GET_ITEM(args, 0);
    if (PyExceptionInstance_Check(typ))
        PyErr_SetObject((PyObject *)Py_TYPE(typ), typ);
    else if (PyExceptionClass_Check(typ))
        PyErr_SetObject(typ, PyTuple_GET_SIZE(args) > 1 ? PyTuple_GET_ITEM(args, 1) : NULL);
    else   /* as a generator's throw() (PyErr_SetObject would raise SystemError) */
        PyErr_Format(PyExc_TypeError, "exceptions must be classes or instances deriving from BaseException, not %.100s",
                     Py_TYPE(typ)->tp_name);
    return NULL;
}
