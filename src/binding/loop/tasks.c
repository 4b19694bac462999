/* Task records: allocation, lookup by coroutine, and release. */
#include "internal.h"

ua_task *ua_task_new(int kind, PyObject *obj, PyObject *aux)
{
    ua_task *t = PyMem_Malloc(sizeof(ua_task));
    if (!t) {
        PyErr_NoMemory();
        return NULL;
    }
    t->kind = (uint8_t)kind;
    t->state = ST_NEW;
    t->flags = 0;
    Py_INCREF(obj);
    t->obj = obj;
    Py_XINCREF(aux);
    t->aux = aux;
    return t;
}

void ua_task_free(ua_task *t)
{
    /* Free the record before the references go: dropping a coroutine can run
     * its finally blocks, which may call back into the loop. */
    PyObject *obj = t->obj;
    PyObject *aux = (ua_kinds[t->kind].flags & UA_KIND_AUX_BORROWED) ? NULL : t->aux;
    PyMem_Free(t);
    Py_XDECREF(obj);
    Py_XDECREF(aux);
}

ua_task *ua_task_for_coro(LoopObject *loop, PyObject *coro)
{
    ua_task *t = ua_ptrmap_get(&loop->tasks, coro);
    if (t)
        return t;
    t = ua_task_new(TASK_CORO, coro, NULL);
    if (!t)
        return NULL;
    if (ua_ptrmap_add(&loop->tasks, t) < 0) {
        ua_task_free(t);
        PyErr_NoMemory();
        return NULL;
    }
    return t;
}

void ua_task_drop(LoopObject *loop, ua_task *t)
{
    const ua_kind *k = &ua_kinds[t->kind];
    if (k->flags & UA_KIND_EMBEDDED) {
        /* Its owner holds the record; what its API keeps holds the owner. */
        t->state = ST_NEW;
        return;
    }
    if (k->flags & UA_KIND_MAPPED)
        ua_ptrmap_del(&loop->tasks, t->obj);
    else if (k->detach)
        k->detach(t);
    ua_task_free(t);
}
