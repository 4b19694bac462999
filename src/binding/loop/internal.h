/* What the loop's own files share beyond loop.h. */
#ifndef UA_LOOP_INTERNAL_H
#define UA_LOOP_INTERNAL_H

#include "loop.h"

/* The table (loop.c). Read only once module init is over. */
extern ua_kind ua_kinds[UA_KINDS_MAX];

/* poll.c */
int ua_poll_loop_ready(PyObject *module);
int ua_loop_io_wait(LoopObject *loop, ua_task *t, PyObject *obj, int dir, uint64_t owner);
int ua_loop_poll(LoopObject *loop, int delay);
/* The loop's waits on objects without an fd (ST_IOPOLL): take one task
 * out; move every waiter into *into, releasing the objects and the list. */
void ua_iopoll_remove(LoopObject *loop, ua_task *t);
void ua_iopoll_take_all(LoopObject *loop, ua_runq *into);

/* loop.c: micropython.schedule(func, arg) (util.c adds it to the module) */
PyObject *ua_schedule(PyObject *module, PyObject *const *args, Py_ssize_t nargs);

int ua_loop_handler_ready(PyObject *module);   /* handler.c: the exception handler's methods */

#endif
