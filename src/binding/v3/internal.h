/* What v3/'s files share: uasyncio.v3 (today's MicroPython asyncio) on the
 * same loop as 2.0.
 *
 * A v3 Task is a C object that embeds the loop's task record (of a kind of
 * its own, in the loop's table of kinds: ua_kind), so the loop resumes it
 * through the same run queue, timer heap and poller as any 2.0 task, and
 * create_task is one allocation. The loop keeps one strong reference to
 * each live Task (ua_v3_tasks(), a list in the loop's kind_data), from
 * create_task until it ended and its exception, if any, was dealt with.
 *
 * Waiting on something other than time or I/O (a Task, an Event, a Lock, a
 * Queue, a gather) goes through a Wait object (wait.c): the awaitable
 * that the primitive returns. It links itself into the primitive's queue of
 * waiters and yields False, which parks the task off every loop queue; the
 * primitive wakes it with ua_loop_wake(). The task knows the Wait it is
 * parked on, so cancel() unlinks it with no search.
 *
 * Size: a Task is 80 bytes (96 with the GC header), so a parked task costs
 * the Task, its coroutine and its sleep. Two things keep it there: what
 * happens when a task ends (tasks awaiting it, its gather, done callbacks)
 * is one queue of Waits, in order; and the Wait a task is parked on is kept
 * in its record's timer fields, which are idle while it is parked. */
#ifndef UA_V3_INTERNAL_H
#define UA_V3_INTERNAL_H

#include <string.h>

#include "v3.h"
#include "waitq.h"

/* rec.flags of a v3 Task, beside F_MAIN, F_WAKE, F_TIMED, F_MAPPED and F_IOWRITE (the loop's) */
enum {
    TF_EXC = 8,         /* ended with an exception (rec.aux holds it) */
    TF_CANCELLED = 16,  /* ended with CancelledError */
    TF_RETRIEVED = 32,  /* its outcome was awaited or asked for */
    TF_PARKED = F_KIND_HOLDS, /* parked on a Wait: rec.timer holds it (ua_task_waiting) */
    TF_NAMED = 128,     /* has an entry in the table of names (names.c) */
};

typedef struct WaitObject WaitObject;

typedef struct TaskObject {
    PyObject_HEAD
    ua_task rec;                    /* rec.obj: the coroutine; rec.aux: pending
                                     * exception while live, outcome once done */
    LoopObject *loop;               /* borrowed: the loop holding it, NULL after */
    struct TaskObject *lprev, *lnext;   /* in its loop's list (ua_v3_tasks()) */
    ua_wnode *doneq;                /* what its end does, in order: Waits of tasks
                                     * awaiting it (W_TASK, W_WAITFOR), its gather
                                     * (W_GATHER_CHILD), done callbacks (W_CALLBACK) */
} TaskObject;

/* The ids the loop gave the kinds of a Task's record (task.c): a
 * pending Task, and one that ended (its record is queued once more only to
 * report an exception nobody retrieved; rec.aux holds its outcome). */
extern uint8_t ua_v3_task_kind, ua_v3_done_kind;

#define TASK_OF(r) ((TaskObject *)((char *)(r) - offsetof(TaskObject, rec)))
#define TASK_DONE(t) ((t)->rec.kind == ua_v3_done_kind)

/* A loop's live Tasks (a list through lnext), kept in its kind_data. */
static inline TaskObject *ua_v3_tasks(LoopObject *loop)
{
    return loop->kind_data[ua_v3_task_kind];
}

/* A Wait's kind: what it waits on (target) and how it ends. */
enum {
    W_TASK,         /* await task */
    W_WAITFOR,      /* wait_for(aw, timeout): target the task it runs, value its runner task */
    W_RUNNER,       /* the coroutine of wait_for's runner task: target the task it
                     * awaits, value the wait_for it reports to */
    W_GATHER,       /* gather(): target its awaitables, then their tasks */
    W_EVENT,
    W_LOCK,         /* Lock and Semaphore */
    W_GET,          /* Queue.get */
    W_PUT,          /* Queue.put: value is the item */
    W_JOIN,         /* Queue.join */
    W_FLAG,         /* ThreadSafeFlag: parked in no queue (one waiter) */
    W_NONE,         /* already done: gives None (what __aexit__ returns) */
    W_GATHER_CHILD, /* in a task's doneq: target the gather it belongs to */
    W_CALLBACK,     /* in a task's doneq: value the done callback */
    W_FUTURE,       /* a concurrent.futures.Future: target it (executor.c) */
    W_SHIELD,       /* shield(): await a task, a cancel is not passed on */
    W_WAITSET,      /* wait(): target a tuple of tasks (waitset.c) */
    W_NEXTDONE,     /* as_completed()'s next: target the iterator */
    W_GROUP,        /* TaskGroup.__aexit__: target the group (taskgroup.c) */
    W_VALUE,        /* already done: gives value */
    W_NKINDS
};

struct WaitObject {
    PyObject_HEAD
    ua_wnode link;              /* in the target's queue of waiters (waitq.h) */
    TaskObject *task;           /* the task parked on it (strong, while parked) */
    PyObject *target;           /* what it waits on (strong) */
    PyObject *value;            /* kind's data: the item handed over, results... */
    int32_t n;                  /* kind's counter: ms, tasks left to end... */
    uint8_t kind;
    uint8_t state;              /* 0 not started; then kind's steps */
    uint8_t handed;             /* the target handed it what it waited for */
    uint8_t opt;                /* kind's option (gather: return_exceptions) */
};

/* What a kind does when its task is resumed (next) and when an exception is
 * thrown into it (thrown: undo what was handed over, then let exc go on;
 * or throw: take over, given the exception instance, and end the await
 * with a value or an exception). */
typedef struct {
    PyObject *(*next)(WaitObject *w);
    void (*thrown)(WaitObject *w);
    PyObject *(*throw)(WaitObject *w, PyObject *exc);
} ua_wait_ops;

extern ua_wait_ops ua_wait_kinds[W_NKINDS];
extern PyTypeObject Task_Type, Wait_Type, V3Loop_Type;
extern PyObject *ua_v3_CancelledError, *ua_v3_TimeoutError;

/* task.c */
/* What the loop asks of a Task's kinds (ua_kind) */
int ua_v3_task_end(LoopObject *loop, ua_task *t, PySendResult sr, PyObject *result, PyObject **ret);
int ua_v3_task_reap(LoopObject *loop, ua_task *t, PyObject **ret);
int ua_v3_parked(LoopObject *loop, ua_task *t);   /* it yielded False: the loop lets go of it */
void ua_v3_release_all(LoopObject *loop, int finalize);   /* finalize: close() closes their coroutines */
int ua_v3_traverse(LoopObject *loop, visitproc visit, void *arg);
int ua_v3_flag_waiting(LoopObject *loop);   /* a task of loop waits on a ThreadSafeFlag or a thread's future */
/* If obj is a v3 Task: wake it (exc: with exc to raise in it), unless it
 * ended or its loop is gone, and return 1 (-1 on error); else 0. */
int ua_v3_wake_owner(PyObject *obj, PyObject *exc);
TaskObject *ua_v3_current(void);                       /* borrowed; NULL outside a v3 task */
TaskObject *ua_v3_current_or_error(const char *what);  /* ... with RuntimeError set */
PyObject *ua_v3_create_task(LoopObject *loop, PyObject *coro);  /* new Task, scheduled */
PyObject *ua_v3_promote(PyObject *aw);                 /* a Task for aw (new reference) */
int ua_v3_cancel(TaskObject *t);                       /* 1 cancelled, 0 was done, -1 error */
int ua_v3_cancel_exc(TaskObject *t, PyObject *exc);    /* ... with this CancelledError (NULL: a new one) */
PyObject *ua_v3_outcome(TaskObject *t);                /* the result, or NULL with the exception raised */
LoopObject *ua_v3_loop(void);                          /* running loop or default v3 loop (new ref) */
/* A v3 delay (secs if in_secs, else ms) in ms, as MicroPython's sleep_ms()
 * takes it: negative counts as 0; past the longest ticks delay, 1 (*ms
 * then holds that delay), where MicroPython raises OverflowError. 0, 1,
 * or -1 with an exception. (loop.c) */
int ua_v3_delay(PyObject *delay, int in_secs, int32_t *ms);
int ua_v3_task_ready(PyObject *module);

/* The Wait a task is parked on (kept in its idle timer fields), or NULL. */
static inline WaitObject *ua_task_waiting(TaskObject *t)
{
    WaitObject *w = NULL;
    if (t->rec.flags & TF_PARKED)
        memcpy(&w, &t->rec.timer, sizeof w);
    return w;
}

static inline void ua_task_set_waiting(TaskObject *t, WaitObject *w)
{
    _Static_assert(sizeof(ua_timer) >= sizeof(WaitObject *), "a pointer fits in the timer fields");
    if (w) {
        memcpy(&t->rec.timer, &w, sizeof w);
        t->rec.flags |= TF_PARKED;
    } else {
        t->rec.flags &= ~TF_PARKED;
    }
}

/* wait.c: queues of Waits (waitq.h), and the Wait type */
WaitObject *ua_wait_new(int kind, PyObject *target);

/* The Wait of a queue's node, or NULL. */
static inline WaitObject *ua_wait_of(ua_wnode *n)
{
    return n ? UA_WNODE_ENTRY(n, WaitObject, link) : NULL;
}

/* for each Wait w in queue q (which must not change meanwhile) */
#define UA_WAITQ_FOR(w, q) \
    for (WaitObject *w = ua_wait_of(*(q)); w; w = ua_wait_of(ua_wq_next((q), &w->link)))

/* -1 with RuntimeError if waking the first Wait of q (all: any of them)
 * would change a loop running in another thread: checked before an
 * operation changes anything. */
int ua_waitq_check_thread(ua_wnode **q, int all);
/* Unlink the first Wait of q, mark it handed, wake its task; 0 if q is empty. */
int ua_waitq_wake_first(ua_wnode **q);
int ua_waitq_wake_all(ua_wnode **q);
void ua_waitq_detach_all(ua_wnode **q);              /* the owner goes away */
PyObject *ua_wait_park(WaitObject *w, ua_wnode **q); /* link cur task into q, yield False */
PyObject *ua_wait_done(PyObject *value);               /* end the await with value */
int ua_wake_task(TaskObject *t);
int ua_wait_hand(WaitObject *w);                       /* unlink, mark handed, wake its task */
void ua_wait_release(WaitObject *w);                   /* its task stops waiting on it */
/* A task's doneq: entries it owns (W_GATHER_CHILD, W_CALLBACK) and lookups. */
int ua_doneq_add(TaskObject *t, int kind, PyObject *target, PyObject *value);
void ua_doneq_remove(WaitObject *w);
void ua_doneq_clear_owned(TaskObject *t);
WaitObject *ua_task_gather(TaskObject *t);             /* its gather, or NULL */
/* The task a Wait is awaiting (await task, wait_for's runner and its
 * waiter after the timeout), or NULL: where cancel() goes on down. */
TaskObject *ua_wait_awaited_task(WaitObject *w);
int ua_task_awaited(TaskObject *t);                    /* some task awaits it */
/* -1 with RuntimeError if t is pending on a loop other than the one running
 * in this thread: its end would wake the awaiting task from its own thread. */
int ua_task_check_loop(TaskObject *t);
int ua_v3_wait_ready(PyObject *module);

/* funcs.c, sync.c, queue.c, loop.c */
int ua_v3_funcs_ready(PyObject *module);
int ua_v3_sync_ready(PyObject *module);
int ua_v3_queue_ready(PyObject *module);
int ua_v3_loop_ready(PyObject *module);
void ua_v3_gather_child_done(WaitObject *g, TaskObject *child);
void ua_v3_gather_forget(WaitObject *g);
void ua_v3_flag_forget(WaitObject *w);     /* a ThreadSafeFlag's waiter goes */

/* The CPython asyncio names beyond MicroPython's: names.c (ensure_future,
 * task names, all_tasks...), executor.c (threads), timeout.c,
 * taskgroup.c, waitset.c (shield, wait, as_completed). */
int ua_v3_names_ready(PyObject *module);
int ua_v3_executor_ready(PyObject *module);
int ua_v3_timeout_ready(PyObject *module);
int ua_v3_taskgroup_ready(PyObject *module);
int ua_v3_waitset_ready(PyObject *module);
PyObject *ua_v3_task_get_name(TaskObject *t, PyObject *unused);
PyObject *ua_v3_task_set_name(TaskObject *t, PyObject *value);
void ua_v3_name_drop(TaskObject *t);                   /* its entry goes (dealloc) */
/* create_task(coro, *, name=None)'s arguments: *name NULL if none given. */
int ua_v3_create_task_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, const char *fname,
                           PyObject **name);
int ua_v3_name_task(PyObject *task, PyObject *name);   /* name a new task (name: a str) */
PyObject *ua_v3_value_wait(PyObject *value);           /* a Wait that gives value at once */
int ua_v3_is_cancel(PyObject *exc);                    /* exc is a CancelledError */
/* cancel t with exc unless a cancel is already on its way to it: 1 sent,
 * 0 not (done, or already being cancelled), -1 error */
int ua_v3_cancel_own(TaskObject *t, PyObject *exc);
/* fn(task) once t ends (W_CALLBACK in its doneq); removed again by value */
int ua_v3_remove_done_callback(TaskObject *t, PyObject *fn);
/* Loop methods (executor.c) */
PyObject *ua_v3_loop_run_in_executor(LoopObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *ua_v3_loop_set_default_executor(LoopObject *self, PyObject *executor);
PyObject *ua_v3_loop_close(LoopObject *self, PyObject *unused);
PyObject *ua_v3_default_executor(LoopObject *loop);   /* made on first use (new reference) */
extern PyObject *ua_v3_timeout_error;   /* timeout()/as_completed(): v3.TimeoutError and the builtin one */

#endif
