/* Task records (the struct is in ua.h). */
#ifndef UA_TASKS_H
#define UA_TASKS_H

#include "ua.h"

/* A new record in ST_NEW holding new references to obj and aux. */
ua_task *ua_task_new(int kind, PyObject *obj, PyObject *aux);

/* Releases the record and its references. It must be in no queue. */
void ua_task_free(ua_task *t);

/* The record of a coroutine the loop holds, or a new one (ST_NEW,
 * registered in loop->tasks). NULL with an exception on no memory. */
ua_task *ua_task_for_coro(LoopObject *loop, PyObject *coro);

/* Forget a record that is in no queue: unregister it and free it. */
void ua_task_drop(LoopObject *loop, ua_task *t);

static inline ua_task *ua_task_of_timer(ua_timer *timer)
{
    return (ua_task *)timer;   /* the timer is the first member */
}

#endif
