/* What every C awaitable of the package shares. Each one implements its
 * work once, as a sendfunc (am_send: the fast path of CPython 3.10/3.11's
 * await and of the loop); these turn that into the other protocols. */
#ifndef UA_AWAITABLE_H
#define UA_AWAITABLE_H

#include "ua.h"

/* tp_iternext's convention from a sendfunc's result: the yielded value, or
 * NULL with StopIteration(value) set (none for None: the fast end). */
PyObject *ua_iternext_result(PySendResult sr, PyObject *result);

/* A .send(value) method's result from a tp_iternext's: StopIteration set
 * when the iteration ended without one. */
PyObject *ua_send_result(PyObject *r);

/* __await__: the object is its own iterator. */
PyObject *ua_self_await(PyObject *self);

/* Raise what throw(typ[, val]) was given (an instance or a class). */
PyObject *ua_raise_thrown(PyObject *args);

#endif
