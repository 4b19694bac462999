/* What v2/'s files share. */
#ifndef UA_V2_INTERNAL_H
#define UA_V2_INTERNAL_H

#include "v2.h"

extern PyObject *ua_TimeoutError;   /* uasyncio.core's: raised by wait_for() (funcs.c) */

/* waitfor.c */
extern PyTypeObject WaitFor_Type;
typedef struct WaitForObject WaitForObject;
PyObject *ua_wait_for_new(PyObject *coro, int32_t ms);
PyObject *ua_wait_for_inner(PyObject *obj);   /* borrowed, or NULL if obj is no WaitFor */
int ua_waitfor_ready(PyObject *module);

/* sync.c: Queue and Lock */
int ua_sync_ready(PyObject *module);
/* If obj is a Queue or Lock operation whose task waits in it: 1, with the
 * parked task (its coroutine, or its owner) and its loop (borrowed); else 0. */
int ua_sync_waiter(PyObject *obj, PyObject **task, LoopObject **loop);

#endif
