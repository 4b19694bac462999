/* What every part of the binding shares: Python's headers, the spelling
 * of what differs between CPython versions (compat.h), and two small
 * helpers. Each folder's header says what that folder offers the others:
 * loop/loop.h (the scheduler), io/io.h (streams, the accept loop, UDP,
 * WebSocket), v2/v2.h and v3/v3.h (each API, to the module's init). */
#ifndef UA_BINDING_H
#define UA_BINDING_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include "compat.h"

/* A free list of one GC type's objects: those freed are kept (up to
 * UA_FREELIST_MAX) and handed out again, so an object made and freed per
 * operation costs no allocation in steady state. */
#define UA_FREELIST_MAX 64
typedef struct {
    PyObject *items[UA_FREELIST_MAX];
    int n;
} ua_freelist;

/* A new object of type (not GC-tracked, its own fields unset), or NULL
 * with MemoryError. */
static inline PyObject *ua_freelist_new(ua_freelist *fl, PyTypeObject *type)
{
    if (fl->n)
        return PyObject_Init(fl->items[--fl->n], type);
    return PyObject_GC_New(PyObject, type);
}

/* Free an object already untracked and cleared: kept, or deleted. */
static inline void ua_freelist_free(ua_freelist *fl, PyObject *obj)
{
    if (fl->n < UA_FREELIST_MAX)
        fl->items[fl->n++] = obj;
    else
        PyObject_GC_Del(obj);
}

/* obj.name into *res: 1 found, 0 no such attribute, -1 error. */
static inline int ua_getattr_optional(PyObject *obj, const char *name, PyObject **res)
{
    *res = PyObject_GetAttrString(obj, name);
    if (*res)
        return 1;
    if (!PyErr_ExceptionMatches(PyExc_AttributeError))
        return -1;
    PyErr_Clear();
    return 0;
}

#endif
