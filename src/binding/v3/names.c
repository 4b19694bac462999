/* CPython asyncio names that uasyncio.v3 adds to MicroPython's: Task names
 * (create_task(coro, name=...), get_name(), set_name()), ensure_future(),
 * iscoroutine(), iscoroutinefunction(), all_tasks(), and small helpers the
 * other additions share (a Wait that gives a value at once, cancelling a
 * task with an exception one can recognise when it comes back).
 *
 * Names cost nothing per Task: most tasks are never named, so a name lives
 * in one table (id(task) -> str) and the Task only carries a flag bit
 * (TF_NAMED) saying it has an entry there, which its dealloc removes. A task
 * that is never named and never asked for its name is never numbered:
 * "Task-N" is given when first asked for (CPython numbers every task when it
 * is made). */
#include "internal.h"

static PyObject *names;           /* id(task) -> its name, for tasks with TF_NAMED */
static unsigned long long named;  /* default names given so far */
static PyObject *abc_coroutine;   /* collections.abc.Coroutine, imported on first use */
static PyObject *inspect_iscorofunc;  /* inspect.iscoroutinefunction, likewise */

/* ---- task names -------------------------------------------------------------- */

static int name_store(TaskObject *t, PyObject *name)
{
    PyObject *key = PyLong_FromVoidPtr(t);
    if (!key)
        return -1;
    int rc = PyDict_SetItem(names, key, name);
    Py_DECREF(key);
    if (!rc)
        t->rec.flags |= TF_NAMED;
    return rc;
}

int ua_v3_name_task(PyObject *task, PyObject *name)
{
    return name_store((TaskObject *)task, name);
}

void ua_v3_name_drop(TaskObject *t)
{
    PyObject *exc = ua_err_fetch();   /* called from dealloc: keep what is being raised */
    PyObject *key = PyLong_FromVoidPtr(t);
    if (!key || PyDict_DelItem(names, key) < 0)
        PyErr_Clear();
    Py_XDECREF(key);
    t->rec.flags &= ~TF_NAMED;
    ua_err_restore(exc);
}

PyObject *ua_v3_task_get_name(TaskObject *t, PyObject *unused)
{
    if (t->rec.flags & TF_NAMED) {
        PyObject *key = PyLong_FromVoidPtr(t);
        PyObject *name = key ? PyDict_GetItemWithError(names, key) : NULL;   /* borrowed */
        Py_XDECREF(key);
        if (name)
            return Py_NewRef(name);
        if (PyErr_Occurred())
            return NULL;
    }
    PyObject *name = PyUnicode_FromFormat("Task-%llu", ++named);
    if (name && name_store(t, name) < 0)
        Py_CLEAR(name);
    return name;
}

PyObject *ua_v3_task_set_name(TaskObject *t, PyObject *value)
{
    PyObject *name = PyObject_Str(value);
    if (!name)
        return NULL;
    int rc = name_store(t, name);
    Py_DECREF(name);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

int ua_v3_create_task_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, const char *fname,
                           PyObject **name)
{
    *name = NULL;
    if (nargs != 1) {
        PyErr_Format(PyExc_TypeError, "%s() takes exactly one positional argument (%zd given)", fname, nargs);
        return -1;
    }
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, i), *value = args[nargs + i];
        if (PyUnicode_CompareWithASCIIString(key, "name") != 0) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", fname, key);
            Py_CLEAR(*name);
            return -1;
        }
        if (value != Py_None) {
            Py_XSETREF(*name, PyObject_Str(value));
            if (!*name)
                return -1;
        }
    }
    return 0;
}

/* ---- shared helpers ---------------------------------------------------------------- */

static PyObject *value_next(WaitObject *w)
{
    w->state = 0xff;
    return ua_wait_done(Py_NewRef(w->value ? w->value : Py_None));
}

PyObject *ua_v3_value_wait(PyObject *value)
{
    WaitObject *w = ua_wait_new(W_VALUE, NULL);
    if (w)
        w->value = Py_NewRef(value);
    return (PyObject *)w;
}

int ua_v3_is_cancel(PyObject *exc)
{
    return exc && PyErr_GivenExceptionMatches(exc, ua_v3_CancelledError);
}

int ua_v3_cancel_own(TaskObject *t, PyObject *exc)
{
    if (TASK_DONE(t))
        return 0;
    /* cancel() goes down a chain of awaited tasks: look where it would land. */
    TaskObject *end = t;
    for (int depth = 0; depth < 10000; depth++) {
        WaitObject *w = ua_task_waiting(end);
        if (!w || w->kind != W_TASK || TASK_DONE((TaskObject *)w->target))
            break;
        end = (TaskObject *)w->target;
    }
    if (ua_v3_is_cancel(end->rec.aux))
        return 0;   /* a CancelledError is already on its way there */
    return ua_v3_cancel_exc(t, exc);
}

int ua_v3_remove_done_callback(TaskObject *t, PyObject *fn)
{
    UA_WAITQ_FOR(w, &t->doneq) {
        if (w->kind == W_CALLBACK && w->value == fn) {
            ua_doneq_remove(w);
            return 1;
        }
    }
    return 0;
}

/* ---- module functions ------------------------------------------------------------- */

static int is_coroutine_like(PyObject *obj)
{
    if (PyCoro_CheckExact(obj) || PyGen_Check(obj) || Py_IS_TYPE(obj, &Wait_Type))
        return 1;
    return PyIter_Check(obj) && PyObject_HasAttrString(obj, "send");
}

static PyObject *mod_ensure_future(PyObject *m, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"coro_or_future", "loop", NULL};
    PyObject *aw, *loop_arg = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$O:ensure_future", kwlist, &aw, &loop_arg))
        return NULL;
    if (Py_IS_TYPE(aw, &Task_Type))
        return Py_NewRef(aw);
    if (loop_arg != Py_None && !PyObject_TypeCheck(loop_arg, &V3Loop_Type)) {
        PyErr_Format(PyExc_TypeError, "ensure_future(): loop must be a uasyncio.v3 Loop, not %.100s",
                     Py_TYPE(loop_arg)->tp_name);
        return NULL;
    }
    PyObject *coro;
    if (is_coroutine_like(aw)) {
        coro = Py_NewRef(aw);
    } else {
        /* Any awaitable: its __await__() iterator is what the task runs. */
        PyObject *await = NULL;
        if (ua_getattr_optional(aw, "__await__", &await) < 0)
            return NULL;
        coro = await ? PyObject_CallNoArgs(await) : NULL;
        Py_XDECREF(await);
        if (!coro && PyErr_Occurred())
            return NULL;
        if (!coro || !is_coroutine_like(coro)) {
            Py_XDECREF(coro);
            PyErr_SetString(PyExc_TypeError, "An asyncio.Future, a coroutine or an awaitable is required");
            return NULL;
        }
    }
    LoopObject *loop = loop_arg != Py_None ? (LoopObject *)Py_NewRef(loop_arg) : ua_v3_loop();
    PyObject *t = loop ? ua_v3_create_task(loop, coro) : NULL;
    Py_XDECREF(loop);
    Py_DECREF(coro);
    return t;
}

/* Generators count too: the loop runs them as coroutines (MicroPython's
 * and uasyncio 2.0's generator-based coroutines). */
static PyObject *mod_iscoroutine(PyObject *m, PyObject *obj)
{
    if (PyCoro_CheckExact(obj) || PyGen_Check(obj))
        Py_RETURN_TRUE;
    if (!abc_coroutine) {
        PyObject *abc = PyImport_ImportModule("collections.abc");
        abc_coroutine = abc ? PyObject_GetAttrString(abc, "Coroutine") : NULL;
        Py_XDECREF(abc);
        if (!abc_coroutine)
            return NULL;
    }
    int r = PyObject_IsInstance(obj, abc_coroutine);
    return r < 0 ? NULL : PyBool_FromLong(r);
}

/* inspect's answer, or asyncio's own marker (unittest.mock's AsyncMock sets
 * it), looked for only if asyncio is imported already. */
static PyObject *mod_iscoroutinefunction(PyObject *m, PyObject *func)
{
    if (!inspect_iscorofunc) {
        PyObject *inspect = PyImport_ImportModule("inspect");
        inspect_iscorofunc = inspect ? PyObject_GetAttrString(inspect, "iscoroutinefunction") : NULL;
        Py_XDECREF(inspect);
        if (!inspect_iscorofunc)
            return NULL;
    }
    PyObject *r = PyObject_CallOneArg(inspect_iscorofunc, func);
    if (!r || r == Py_True)
        return r;
    Py_DECREF(r);
    PyObject *modname = PyUnicode_FromString("asyncio.coroutines");
    PyObject *mod = modname ? PyImport_GetModule(modname) : NULL;
    Py_XDECREF(modname);
    if (!mod) {
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_FALSE;
    }
    PyObject *marker = NULL, *mark = NULL;
    int found = ua_getattr_optional(mod, "_is_coroutine", &marker);
    Py_DECREF(mod);
    if (found > 0)
        found = ua_getattr_optional(func, "_is_coroutine", &mark);
    int same = found > 0 && mark == marker;
    Py_XDECREF(marker);
    Py_XDECREF(mark);
    if (found < 0)
        return NULL;
    return PyBool_FromLong(same);
}

static LoopObject *running_v3_loop(void)
{
    LoopObject *l = ua_running_loop_get();
    if (!l || !PyObject_TypeCheck(l, &V3Loop_Type)) {
        PyErr_SetString(PyExc_RuntimeError, "no running event loop");
        return NULL;
    }
    return l;
}

static PyObject *mod_all_tasks(PyObject *m, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"loop", NULL};
    PyObject *loop_arg = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:all_tasks", kwlist, &loop_arg))
        return NULL;
    LoopObject *loop = loop_arg != Py_None ? (LoopObject *)loop_arg : running_v3_loop();
    if (!loop)
        return NULL;
    if (!PyObject_TypeCheck(loop, &V3Loop_Type)) {
        PyErr_Format(PyExc_TypeError, "all_tasks(): loop must be a uasyncio.v3 Loop, not %.100s",
                     Py_TYPE(loop)->tp_name);
        return NULL;
    }
    PyObject *set = PySet_New(NULL);
    if (!set)
        return NULL;
    for (TaskObject *t = ua_v3_tasks(loop); t; t = t->lnext)
        if (!TASK_DONE(t) && PySet_Add(set, (PyObject *)t) < 0) {
            Py_DECREF(set);
            return NULL;
        }
    return set;
}

static PyObject *mod_get_running_loop(PyObject *m, PyObject *unused)
{
    LoopObject *l = running_v3_loop();
    return l ? Py_NewRef(l) : NULL;
}

static PyMethodDef funcs[] = {
    {"ensure_future", (PyCFunction)(void (*)(void))mod_ensure_future, METH_VARARGS | METH_KEYWORDS,
     "ensure_future(aw, *, loop=None): a Task for aw: the Task itself, a new Task for a coroutine, "
     "or one that awaits any other awaitable."},
    {"iscoroutine", mod_iscoroutine, METH_O,
     "iscoroutine(obj): True for a coroutine object (or a generator: the loop runs them as coroutines)."},
    {"iscoroutinefunction", mod_iscoroutinefunction, METH_O,
     "iscoroutinefunction(func): True for an async def function (as inspect.iscoroutinefunction)."},
    {"all_tasks", (PyCFunction)(void (*)(void))mod_all_tasks, METH_VARARGS | METH_KEYWORDS,
     "all_tasks(loop=None): the set of the loop's Tasks not done yet (default: the running loop)."},
    {"get_running_loop", mod_get_running_loop, METH_NOARGS,
     "The loop running in this thread; RuntimeError if none."},
    {NULL},
};

int ua_v3_names_ready(PyObject *m)
{
    if (!(names = PyDict_New()))
        return -1;
    ua_wait_kinds[W_VALUE].next = value_next;
    return PyModule_AddFunctions(m, funcs);
}
