/* WaitFor: what wait_for_ms(coro, ms) returns. Awaited inside a task, it
 * runs coro in that task (no new task) and arms a timer; if coro has not
 * ended when the timer fires, TimeoutError is delivered to the task at its
 * current yield point, and travels down into coro. The timer is removed
 * (not left to fire) as soon as coro ends. */
#include "internal.h"

struct WaitForObject {
    PyObject_HEAD
    PyObject *coro;
    LoopObject *loop;   /* the loop holding the timer (strong) */
    ua_task *timer;     /* pending timeout record, or NULL */
    int32_t ms;
    uint8_t started;
};

PyObject *ua_wait_for_new(PyObject *coro, int32_t ms)
{
    PyObject *it = coro;
    if (!PyCoro_CheckExact(coro) && !PyGen_Check(coro) && !PyIter_Check(coro)) {
        unaryfunc await = Py_TYPE(coro)->tp_as_async ? Py_TYPE(coro)->tp_as_async->am_await : NULL;
        if (!await) {
            PyErr_Format(PyExc_TypeError, "wait_for() expects a coroutine or an awaitable, not %.100s",
                         Py_TYPE(coro)->tp_name);
            return NULL;
        }
        it = await(coro);
        if (!it)
            return NULL;
    } else {
        Py_INCREF(it);
    }
    WaitForObject *self = PyObject_GC_New(WaitForObject, &WaitFor_Type);
    if (!self) {
        Py_DECREF(it);
        return NULL;
    }
    self->coro = it;
    self->loop = NULL;
    self->timer = NULL;
    self->ms = ms;
    self->started = 0;
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

PyObject *ua_wait_for_inner(PyObject *obj)
{
    return Py_IS_TYPE(obj, &WaitFor_Type) ? ((WaitForObject *)obj)->coro : NULL;
}

static void timer_fired(PyObject *waitfor)
{
    ((WaitForObject *)waitfor)->timer = NULL;
}

/* ---- the timer: a kind of task record -------------------------------------------
 * obj: the task to time out (an owner, ua_loop_owner_of()); aux: the
 * WaitFor (borrowed: it removes this record before it goes). */

static uint8_t timeout_kind;

static ua_task *add_timeout(LoopObject *self, PyObject *target, PyObject *waitfor, int32_t ms)
{
    uint32_t now;
    if (ua_loop_check_open(self) < 0 || ua_loop_now(self, &now) < 0)
        return NULL;
    ua_task *t = ua_task_new(timeout_kind, target, NULL);
    if (!t)
        return NULL;
    t->aux = waitfor;   /* borrowed: the WaitFor removes this record before it goes */
    if (ua_loop_queue_at(self, t, ua_ticks_add(now, ms)) < 0) {
        ua_task_free(t);
        return NULL;
    }
    return t;
}

static void remove_timeout(LoopObject *self, ua_task *t)
{
    if (t->state == ST_SLEEPING)
        ua_timerheap_remove(&self->timers, &t->timer);
    ua_task_free(t);
}

/* run: the time is up. */
static int fire_timeout(LoopObject *self, ua_task *t, PyObject **ret)
{
    timer_fired(t->aux);
    PyObject *target = t->obj;
    Py_INCREF(target);
    ua_task_free(t);
    UA_DEBUG_LOG("wait_for: timing out %R", target);
    PyObject *exc = PyObject_CallNoArgs(ua_TimeoutError);
    int rc = exc ? ua_loop_cancel_coro(self, target, exc) : -1;   /* target: an owner (ua_loop_owner_of) */
    Py_XDECREF(exc);
    Py_DECREF(target);
    return rc;
}

/* detach: the loop lets go of it unfired (close()): the WaitFor must not free it too. */
static void timeout_detach(ua_task *t)
{
    if (t->aux) {
        timer_fired(t->aux);
        t->aux = NULL;
    }
}

static const ua_kind timeout_ops = {
    .flags = UA_KIND_AUX_BORROWED | UA_KIND_ON_TIMER,
    .run = fire_timeout,
    .detach = timeout_detach,
};

static void disarm(WaitForObject *self)
{
    if (self->timer) {
        ua_task *t = self->timer;
        self->timer = NULL;
        remove_timeout(self->loop, t);
    }
}

static int start(WaitForObject *self)
{
    self->started = 1;
    LoopObject *loop = ua_running_loop_get();
    if (!loop || !loop->current) {
        PyErr_SetString(PyExc_RuntimeError, "wait_for() must be awaited inside a task of a running event loop");
        return -1;
    }
    Py_INCREF(loop);
    self->loop = loop;
    PyObject *owner = ua_loop_owner_of(loop->current);   /* an owner too: its own record is woken */
    self->timer = add_timeout(loop, owner, (PyObject *)self, self->ms);
    Py_DECREF(owner);
    return self->timer ? 0 : -1;
}

/* One step of coro: send value, or throw (exc_args is throw()'s args). */
static PyObject *step(WaitForObject *self, PyObject *value, PyObject *exc_args)
{
    if (!self->started && start(self) < 0)
        return NULL;
    PyObject *result = NULL;
    PySendResult sr;
    if (exc_args) {
        PyObject *meth;
        if (ua_getattr_optional(self->coro, "throw", &meth) < 0)
            return NULL;
        if (meth) {
            result = PyObject_Call(meth, exc_args, NULL);
            Py_DECREF(meth);
        } else {   /* coro cannot take it: raise it here */
            ua_raise_thrown(exc_args);
        }
        if (result)
            return result;
        disarm(self);
        return NULL;   /* StopIteration (coro ended) or its exception */
    }
    sr = PyIter_Send(self->coro, value, &result);
    if (sr == PYGEN_NEXT)
        return result;
    disarm(self);
    if (sr == PYGEN_RETURN) {
        if (result == Py_None) {
            Py_DECREF(result);
            return NULL;   /* plain end of iteration */
        }
        PyObject *stop = PyObject_CallOneArg(PyExc_StopIteration, result);
        Py_DECREF(result);
        if (stop) {
            PyErr_SetObject(PyExc_StopIteration, stop);
            Py_DECREF(stop);
        }
    }
    return NULL;
}

static PyObject *wf_next(WaitForObject *self)
{
    return step(self, Py_None, NULL);
}

static PyObject *wf_send(WaitForObject *self, PyObject *value)
{
    return ua_send_result(step(self, value, NULL));
}

static PyObject *wf_throw(WaitForObject *self, PyObject *args)
{
    if (!PyTuple_GET_SIZE(args)) {
        PyErr_SetString(PyExc_TypeError, "throw() takes at least one argument");
        return NULL;
    }
    return step(self, NULL, args);
}

static PyObject *wf_close(WaitForObject *self, PyObject *unused)
{
    disarm(self);
    PyObject *meth;
    if (ua_getattr_optional(self->coro, "close", &meth) < 0)
        return NULL;
    if (!meth)
        Py_RETURN_NONE;
    PyObject *r = PyObject_CallNoArgs(meth);
    Py_DECREF(meth);
    return r;
}


static int wf_traverse(WaitForObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->coro);
    Py_VISIT(self->loop);
    return 0;
}

static int wf_clear(WaitForObject *self)
{
    disarm(self);
    Py_CLEAR(self->coro);
    Py_CLEAR(self->loop);
    return 0;
}

static void wf_dealloc(WaitForObject *self)
{
    PyObject_GC_UnTrack(self);
    wf_clear(self);
    PyObject_GC_Del(self);
}

static PyMethodDef wf_methods[] = {
    {"send", (PyCFunction)wf_send, METH_O, NULL},
    {"throw", (PyCFunction)wf_throw, METH_VARARGS, NULL},
    {"close", (PyCFunction)wf_close, METH_NOARGS, NULL},
    {NULL},
};

static PyAsyncMethods wf_async = {
    .am_await = ua_self_await,
};

PyTypeObject WaitFor_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "uasyncio.core.WaitFor",
    .tp_basicsize = sizeof(WaitForObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "What wait_for()/wait_for_ms() return: await it inside a task.",
    .tp_dealloc = (destructor)wf_dealloc,
    .tp_traverse = (traverseproc)wf_traverse,
    .tp_clear = (inquiry)wf_clear,
    .tp_as_async = &wf_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)wf_next,
    .tp_methods = wf_methods,
};

int ua_waitfor_ready(PyObject *module)
{
    int kind = ua_kind_add(&timeout_ops);
    if (kind < 0)
        return -1;
    timeout_kind = (uint8_t)kind;
    return PyType_Ready(&WaitFor_Type);
}
