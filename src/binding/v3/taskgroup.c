/* TaskGroup: CPython 3.11's structured concurrency, on Tasks and a Wait.
 *
 *     async with asyncio.TaskGroup() as tg:
 *         tg.create_task(a())
 *         tg.create_task(b())
 *     # both ended here; if any failed, the others were cancelled and
 *     # the failures come out together as an ExceptionGroup
 *
 * Each task gets a done callback (as in CPython, so a failure is seen in
 * the same pass). The first failure cancels the other tasks and the task
 * that entered the group (the parent), so the block stops at its await.
 * __aexit__ returns a Wait (W_GROUP) that parks the parent until the last
 * task ended, catching the cancels that arrive meanwhile as CPython's loop
 * around its future does; then it raises what CPython raises.
 *
 * CPython counts cancel requests (Task.uncancel()) to tell the group's own
 * cancel of the parent from one that came from outside. Here the group
 * cancels with a CancelledError instance of its own: if that instance is
 * what reaches __aexit__, no other cancel came, and it is not propagated.
 *
 * ExceptionGroup and BaseExceptionGroup are the builtins on 3.11 and later.
 * On 3.10 they come from uasyncio/v3/_exceptiongroup.py: the
 * `exceptiongroup` backport if it is installed, else a small class of the
 * same shape. */
#include "internal.h"

typedef struct {
    PyObject_HEAD
    TaskObject *parent;     /* the task that entered it */
    LoopObject *loop;
    PyObject *tasks;        /* set of its tasks not ended yet */
    PyObject *errors;       /* list of the exceptions its tasks ended with */
    PyObject *base_error;   /* the first KeyboardInterrupt or SystemExit, or NULL */
    PyObject *cancel_exc;   /* the CancelledError it cancelled the parent with */
    PyObject *on_done;      /* its tasks' done callback, bound to it */
    WaitObject *waiter;     /* __aexit__'s Wait, while parked */
    PyObject *propagate;    /* __aexit__: the CancelledError to raise at the end */
    PyObject *exit_exc;     /* __aexit__'s exception (NULL: none) */
    PyObject *exit_type;    /* ... and its type */
    uint8_t entered, exiting, aborting, parent_cancel_requested;
} TaskGroupObject;

static PyTypeObject TaskGroup_Type;
static PyObject *BaseExceptionGroup;   /* found on first use */

static int is_base_error(PyObject *exc)
{
    return PyErr_GivenExceptionMatches(exc, PyExc_SystemExit) ||
           PyErr_GivenExceptionMatches(exc, PyExc_KeyboardInterrupt);
}

static PyObject *exception_group_class(void)
{
    if (BaseExceptionGroup)
        return BaseExceptionGroup;
    PyObject *builtins = PyEval_GetBuiltins();   /* borrowed */
    PyObject *cls = builtins ? PyDict_GetItemString(builtins, "BaseExceptionGroup") : NULL;
    if (cls) {
        BaseExceptionGroup = Py_NewRef(cls);
    } else {
        PyObject *m = PyImport_ImportModule("uasyncio.v3._exceptiongroup");
        BaseExceptionGroup = m ? PyObject_GetAttrString(m, "BaseExceptionGroup") : NULL;
        Py_XDECREF(m);
    }
    return BaseExceptionGroup;
}

/* ---- the group's work ------------------------------------------------------------- */

static int abort_tasks(TaskGroupObject *g)
{
    g->aborting = 1;
    PyObject *tasks = PySequence_List(g->tasks);   /* cancel() may end some meanwhile */
    if (!tasks)
        return -1;
    int rc = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(tasks); i++)
        if (ua_v3_cancel((TaskObject *)PyList_GET_ITEM(tasks, i)) < 0)
            rc = -1;
    Py_DECREF(tasks);
    return rc;
}

static int wake_waiter(TaskGroupObject *g)
{
    WaitObject *w = g->waiter;
    if (!w || PySet_GET_SIZE(g->tasks))
        return 0;
    g->waiter = NULL;
    int rc = w->task ? ua_wait_hand(w) : 0;
    Py_DECREF(w);
    return rc;
}

/* A task of the group ended (its done callback). */
static PyObject *group_on_done(PyObject *self, PyObject *task)
{
    TaskGroupObject *g = (TaskGroupObject *)self;
    if (!Py_IS_TYPE(task, &Task_Type) || !g->tasks || !g->parent)
        Py_RETURN_NONE;   /* (or the group was cleared by the collector) */
    TaskObject *t = (TaskObject *)task;
    if (PySet_Discard(g->tasks, task) < 0 || wake_waiter(g) < 0)
        return NULL;
    t->rec.flags |= TF_RETRIEVED;   /* the group takes its outcome */
    if (!(t->rec.flags & TF_EXC) || (t->rec.flags & TF_CANCELLED))
        Py_RETURN_NONE;
    PyObject *exc = t->rec.aux;
    if (!g->errors || PyList_Append(g->errors, exc) < 0)
        return NULL;
    if (is_base_error(exc) && !g->base_error)
        g->base_error = Py_NewRef(exc);
    if (TASK_DONE(g->parent)) {
        PyObject *msg = PyUnicode_FromFormat("Task %R has errored out but its parent task %R is already completed",
                                             task, g->parent);
        const char *m = msg ? PyUnicode_AsUTF8(msg) : NULL;
        int rc = m ? ua_loop_handle_exception(g->loop, m, exc, task) : -1;
        Py_XDECREF(msg);
        if (rc < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    if (!g->aborting && !g->parent_cancel_requested) {
        /* Stop the block where it awaits; __aexit__ knows this cancel. */
        if (abort_tasks(g) < 0)
            return NULL;
        g->parent_cancel_requested = 1;
        PyObject *c = PyObject_CallNoArgs(ua_v3_CancelledError);
        if (!c)
            return NULL;
        Py_XSETREF(g->cancel_exc, c);
        if (ua_v3_cancel_own(g->parent, c) < 0)
            return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef on_done_def = {"_on_task_done", group_on_done, METH_O, NULL};

/* ---- __aexit__'s Wait ---------------------------------------------------------------- */

/* All tasks ended: what leaves the block. */
static PyObject *group_finish(WaitObject *w)
{
    TaskGroupObject *g = (TaskGroupObject *)w->target;
    w->state = 0xff;
    if (g->base_error) {
        PyErr_SetObject((PyObject *)Py_TYPE(g->base_error), g->base_error);
        return NULL;
    }
    if (g->propagate && !PyList_GET_SIZE(g->errors)) {
        PyErr_SetObject((PyObject *)Py_TYPE(g->propagate), g->propagate);
        return NULL;
    }
    if (g->exit_exc && g->exit_type != ua_v3_CancelledError && PyList_Append(g->errors, g->exit_exc) < 0)
        return NULL;
    if (!PyList_GET_SIZE(g->errors))
        return ua_wait_done(Py_NewRef(Py_None));
    /* raise BaseExceptionGroup('unhandled errors in a TaskGroup', errors) from None */
    PyObject *errors = g->errors;
    g->errors = NULL;   /* as CPython: the group keeps no exception alive */
    PyObject *cls = exception_group_class();
    PyObject *eg = cls ? PyObject_CallFunction(cls, "sO", "unhandled errors in a TaskGroup", errors) : NULL;
    Py_DECREF(errors);
    if (!eg)
        return NULL;
    PyException_SetCause(eg, NULL);
    PyErr_SetObject((PyObject *)Py_TYPE(eg), eg);
    Py_DECREF(eg);
    return NULL;
}

static PyObject *group_park(WaitObject *w)
{
    TaskGroupObject *g = (TaskGroupObject *)w->target;
    if (!PySet_GET_SIZE(g->tasks))
        return group_finish(w);
    w->state = 1;
    Py_XSETREF(g->waiter, (WaitObject *)Py_NewRef(w));
    return ua_wait_park(w, NULL);
}

static PyObject *group_next(WaitObject *w)
{
    if (w->state == 0xff) {
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse an already awaited TaskGroup.__aexit__()");
        return NULL;
    }
    return group_park(w);
}

static void group_forget_waiter(WaitObject *w)
{
    TaskGroupObject *g = (TaskGroupObject *)w->target;
    if (g && g->waiter == w)
        Py_CLEAR(g->waiter);
}

/* A CancelledError while it waits: the parent is being cancelled (from
 * outside, unless the group is already aborting); the group cancels its
 * tasks and goes on waiting for them. Anything else ends the wait. */
static PyObject *group_throw(WaitObject *w, PyObject *exc)
{
    TaskGroupObject *g = (TaskGroupObject *)w->target;
    ua_wait_release(w);
    group_forget_waiter(w);
    if (w->state != 1 || !ua_v3_is_cancel(exc)) {
        w->state = 0xff;
        ua_err_restore(exc);
        return NULL;
    }
    if (!g->aborting) {
        Py_XSETREF(g->propagate, exc);
        exc = NULL;
        if (abort_tasks(g) < 0)
            return NULL;
    }
    Py_XDECREF(exc);
    return group_park(w);
}

/* ---- methods -------------------------------------------------------------------------- */

static PyObject *group_aenter(TaskGroupObject *g, PyObject *unused)
{
    if (g->entered) {
        PyErr_Format(PyExc_RuntimeError, "TaskGroup %R has already been entered", g);
        return NULL;
    }
    TaskObject *t = ua_v3_current();
    if (!t || !t->loop) {
        PyErr_Format(PyExc_RuntimeError, "TaskGroup %R cannot determine the parent task", g);
        return NULL;
    }
    g->entered = 1;
    g->parent = (TaskObject *)Py_NewRef(t);
    g->loop = (LoopObject *)Py_NewRef(t->loop);
    return ua_v3_value_wait((PyObject *)g);
}

static PyObject *group_aexit(TaskGroupObject *g, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "__aexit__() takes 3 arguments");
        return NULL;
    }
    if (!g->entered || g->exiting) {
        PyErr_Format(PyExc_RuntimeError, "TaskGroup %R is not active", g);
        return NULL;
    }
    PyObject *et = args[0], *exc = args[1];
    g->exiting = 1;
    if (exc != Py_None) {
        g->exit_type = Py_NewRef(et);
        g->exit_exc = Py_NewRef(exc);
        if (is_base_error(exc) && !g->base_error)
            g->base_error = Py_NewRef(exc);
        /* Its own cancel of the parent is not propagated ("uncancel() == 0"). */
        if (et == ua_v3_CancelledError && !(g->parent_cancel_requested && exc == g->cancel_exc))
            g->propagate = Py_NewRef(exc);
        if (!g->aborting && abort_tasks(g) < 0)
            return NULL;
    }
    return (PyObject *)ua_wait_new(W_GROUP, (PyObject *)g);
}

static PyObject *group_create_task(TaskGroupObject *g, PyObject *const *args, Py_ssize_t nargs,
                                   PyObject *kwnames)
{
    PyObject *name;
    if (ua_v3_create_task_args(args, nargs, kwnames, "create_task", &name) < 0)
        return NULL;
    const char *refuse = !g->entered ? "has not been entered"
                         : g->exiting && !PySet_GET_SIZE(g->tasks) ? "is finished"
                         : g->aborting ? "is shutting down" : NULL;
    if (refuse) {
        PyErr_Format(PyExc_RuntimeError, "TaskGroup %R %s", g, refuse);
        Py_XDECREF(name);
        return NULL;
    }
    PyObject *t = ua_v3_create_task(g->loop, args[0]);
    if (t && name && ua_v3_name_task(t, name) < 0)
        Py_CLEAR(t);
    Py_XDECREF(name);
    if (t && (PySet_Add(g->tasks, t) < 0 || ua_doneq_add((TaskObject *)t, W_CALLBACK, NULL, g->on_done) < 0)) {
        ua_v3_cancel((TaskObject *)t);
        Py_CLEAR(t);
    }
    return t;
}

static PyObject *group_repr(TaskGroupObject *g)
{
    PyObject *parts = PyList_New(0), *s = NULL;
    if (!parts)
        return NULL;
    PyObject *item;
    if (PySet_GET_SIZE(g->tasks) && (item = PyUnicode_FromFormat(" tasks=%zd", PySet_GET_SIZE(g->tasks))))
        PyList_Append(parts, item), Py_DECREF(item);
    if (g->errors && PyList_GET_SIZE(g->errors) &&
        (item = PyUnicode_FromFormat(" errors=%zd", PyList_GET_SIZE(g->errors))))
        PyList_Append(parts, item), Py_DECREF(item);
    if ((g->aborting || g->entered) && (item = PyUnicode_FromString(g->aborting ? " cancelling" : " entered")))
        PyList_Append(parts, item), Py_DECREF(item);
    PyObject *empty = PyErr_Occurred() ? NULL : PyUnicode_FromString("");
    PyObject *info = empty ? PyUnicode_Join(empty, parts) : NULL;
    if (info)
        s = PyUnicode_FromFormat("<TaskGroup%U>", info);
    Py_XDECREF(info);
    Py_XDECREF(empty);
    Py_DECREF(parts);
    return s;
}

/* ---- object life ------------------------------------------------------------------------ */

static PyObject *group_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) || (kwds && PyDict_GET_SIZE(kwds))) {
        PyErr_SetString(PyExc_TypeError, "TaskGroup() takes no arguments");
        return NULL;
    }
    TaskGroupObject *g = (TaskGroupObject *)type->tp_alloc(type, 0);
    if (!g)
        return NULL;
    g->tasks = PySet_New(NULL);
    g->errors = PyList_New(0);
    g->on_done = PyCFunction_New(&on_done_def, (PyObject *)g);
    if (!g->tasks || !g->errors || !g->on_done) {
        Py_DECREF(g);
        return NULL;
    }
    return (PyObject *)g;
}

static int group_traverse(TaskGroupObject *g, visitproc visit, void *arg)
{
    Py_VISIT(g->parent);
    Py_VISIT(g->loop);
    Py_VISIT(g->tasks);
    Py_VISIT(g->errors);
    Py_VISIT(g->base_error);
    Py_VISIT(g->cancel_exc);
    Py_VISIT(g->on_done);
    Py_VISIT(g->waiter);
    Py_VISIT(g->propagate);
    Py_VISIT(g->exit_exc);
    Py_VISIT(g->exit_type);
    return 0;
}

static int group_clear(TaskGroupObject *g)
{
    Py_CLEAR(g->parent);
    Py_CLEAR(g->loop);
    Py_CLEAR(g->tasks);
    Py_CLEAR(g->errors);
    Py_CLEAR(g->base_error);
    Py_CLEAR(g->cancel_exc);
    Py_CLEAR(g->on_done);
    Py_CLEAR(g->waiter);
    Py_CLEAR(g->propagate);
    Py_CLEAR(g->exit_exc);
    Py_CLEAR(g->exit_type);
    return 0;
}

static void group_dealloc(TaskGroupObject *g)
{
    PyObject_GC_UnTrack(g);
    group_clear(g);
    Py_TYPE(g)->tp_free((PyObject *)g);
}

static PyMethodDef group_methods[] = {
    {"create_task", (PyCFunction)(void (*)(void))group_create_task, METH_FASTCALL | METH_KEYWORDS,
     "create_task(coro, *, name=None): a Task of the group: the block ends only after it."},
    {"__aenter__", (PyCFunction)group_aenter, METH_NOARGS, "Enter: the current task is the group's parent."},
    {"__aexit__", (PyCFunction)(void (*)(void))group_aexit, METH_FASTCALL,
     "Wait for every task of the group; raise their failures as an ExceptionGroup."},
    {NULL},
};

static PyTypeObject TaskGroup_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "uasyncio.v3.TaskGroup",
    .tp_basicsize = sizeof(TaskGroupObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .tp_doc = "TaskGroup(): async with it, create tasks with its create_task(); the block ends when they "
              "all ended. The first failure cancels the others and the block; the failures are raised "
              "together as an ExceptionGroup (BaseExceptionGroup for KeyboardInterrupt/SystemExit).",
    .tp_new = group_new,
    .tp_dealloc = (destructor)group_dealloc,
    .tp_traverse = (traverseproc)group_traverse,
    .tp_clear = (inquiry)group_clear,
    .tp_repr = (reprfunc)group_repr,
    .tp_methods = group_methods,
};

int ua_v3_taskgroup_ready(PyObject *m)
{
    ua_wait_kinds[W_GROUP].next = group_next;
    ua_wait_kinds[W_GROUP].thrown = group_forget_waiter;
    ua_wait_kinds[W_GROUP].throw = group_throw;
    if (PyType_Ready(&TaskGroup_Type) < 0)
        return -1;
    return PyModule_AddObjectRef(m, "TaskGroup", (PyObject *)&TaskGroup_Type);
}
