/* Task records: allocation, lookup by coroutine, and release. */
#include "tasks.h"

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
    PyObject *aux = t->kind == TASK_TIMEOUT ? NULL : t->aux;
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
    if (t->kind >= TASK_V3) {
        /* A v3 Task owns its record; the loop's list keeps the Task. */
        t->state = ST_NEW;
        return;
    }
    if (t->kind == TASK_CORO)
        ua_ptrmap_del(&loop->tasks, t->obj);
    else if (t->kind == TASK_TIMEOUT && t->aux)   /* NULL: close() detached it */
        ua_wait_for_timer_fired(t->aux);
    ua_task_free(t);
}
