/* The extension module uasyncio._uasyncio: where the parts meet. Each
 * folder adds what it offers: loop/ the scheduler (EventLoop,
 * PollEventLoop, the syscalls, the clock), io/ the streams, the accept
 * loop, UDP and WebSocket, v2/ the rest of uasyncio 2.0, v3/ the submodule
 * _v3 that uasyncio.v3 re-exports. uasyncio/core.py and
 * uasyncio/__init__.py re-export what is here. */
#include "loop/loop.h"
#include "io/io.h"
#include "v2/v2.h"
#include "v3/v3.h"

/* At interpreter exit (atexit): the default loops (2.0's and v3's) are
 * closed, so the tasks still pending in them are finalized (their finally
 * blocks run) while Python still works, rather than dropped unseen. */
static int close_at_exit(LoopObject *loop)
{
    if (!loop || loop->closed || loop->running)
        return 0;
    PyObject *r = PyObject_CallMethod((PyObject *)loop, "close", NULL);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

static PyObject *mod_close_default_loops(PyObject *m, PyObject *unused)
{
    if (close_at_exit(ua_v2_default_loop_borrowed()) < 0 || close_at_exit(ua_v3_default_loop_borrowed()) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"_close_default_loops", mod_close_default_loops, METH_NOARGS,
     "Close the default loops (2.0's and v3's), finalizing their pending tasks (registered with atexit)."},
    {NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "uasyncio._uasyncio",
    .m_doc = "uasyncio's event loop, in C.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__uasyncio(void)
{
    PyObject *m = PyModule_Create(&module_def);
    if (!m)
        return NULL;
    if (ua_loop_util_ready(m) < 0 || ua_syscalls_ready(m) < 0 || ua_loop_ready(m) < 0 || ua_v2_ready(m) < 0 ||
        ua_streams_ready(m) < 0 || ua_server_ready(m) < 0 || ua_udp_ready(m) < 0 || ua_ws_ready(m) < 0 ||
        ua_v3_stream_ready(m) < 0 || ua_v3_ready(m) < 0)
        goto error;
    PyObject *atexit = PyImport_ImportModule("atexit");
    PyObject *closer = atexit ? PyObject_GetAttrString(m, "_close_default_loops") : NULL;
    PyObject *r = closer ? PyObject_CallMethod(atexit, "register", "O", closer) : NULL;
    Py_XDECREF(closer);
    Py_XDECREF(atexit);
    if (!r)
        goto error;
    Py_DECREF(r);
    return m;
error:
    Py_DECREF(m);
    return NULL;
}
