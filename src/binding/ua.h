/* Internal header of the Python binding: the task record, the loop object
 * and the functions the binding's files share. */
#ifndef UA_BINDING_H
#define UA_BINDING_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include "compat.h"

#include "poller.h"
#include "ptrmap.h"
#include "runq.h"
#include "ticks.h"
#include "timerheap.h"
#include "waitq.h"
#include "wakeup.h"

/* ---- task record ------------------------------------------------------
 * One per scheduled top-level coroutine (kept from its first scheduling to
 * its end), and one per pending callback. 32 bytes: the timer node is
 * embedded, so sleeping allocates nothing. */

enum {
    TASK_CORO,      /* obj: coroutine; aux: pending exception or NULL */
    TASK_CALL,      /* obj: callable; aux: args tuple or NULL */
    TASK_TIMEOUT,   /* obj: coroutine to time out; aux: the WaitFor (borrowed) */
    TASK_STOP,      /* obj: value run_forever() returns */
    TASK_AT_POLL,   /* in ts_calls only: obj is called when the loop next polls (before
                     * its next step), not queued (ua_loop_at_next_poll) */
    TASK_V3,        /* embedded in a v3 Task (v3.h): obj: coroutine; aux: pending exception */
    TASK_V3_DONE,   /* a v3 Task that ended: aux: its result or exception; queued
                     * once more only to report an exception nobody retrieved */
};

enum {
    ST_NEW,         /* in no queue */
    ST_QUEUED,      /* in the run queue */
    ST_SLEEPING,    /* in the timer heap */
    ST_IOWAIT,      /* parked in the poller */
    ST_RUNNING,     /* being resumed now */
    ST_PARKED,      /* run_until_complete()'s coroutine, parked: in loop->parked */
    ST_IOPOLL,      /* waits on an object without an fd: in loop->iopoll */
};

enum {
    F_MAIN = 1,     /* the coroutine run_until_complete() waits for */
    F_WAKE = 2,     /* call_soon() reached it while running: requeue at once */
    F_TIMED = 4,    /* call_later() reached it while running: timer.deadline set */
    /* 8 to 128: a v3 Task's own flags (v3.h) */
    F_MAPPED = 256, /* a v3 Task's record in loop->tasks (ua_v3_parked), until it runs */
    F_IOWRITE = 512, /* while ST_IOWAIT: it waits to write (else to read) */
};

typedef struct ua_task {
    ua_timer timer;     /* while ST_IOWAIT, timer.deadline holds the fd; while
                         * ST_QUEUED, deadline and seq hold the tick and the
                         * order it was queued at (ua_loop_queue) */
    uint8_t kind;
    uint8_t state;
    uint16_t flags;
    PyObject *obj;
    PyObject *aux;
} ua_task;

/* The record stays 16 bytes and two pointers: every parked task pays for it. */
_Static_assert(sizeof(ua_task) == 16 + 2 * sizeof(void *), "ua_task grew");

#define TASK_FD(t) ((int)(t)->timer.deadline)
/* UA_POLL_READ or UA_POLL_WRITE, while ST_IOWAIT */
#define TASK_IODIR(t) (((t)->flags & F_IOWRITE) ? UA_POLL_WRITE : UA_POLL_READ)
static inline void ua_task_set_iodir(ua_task *t, int dir)
{
    t->flags = (uint16_t)(dir == UA_POLL_WRITE ? t->flags | F_IOWRITE : t->flags & ~F_IOWRITE);
}

/* ---- the loop ---------------------------------------------------------- */

/* A task parked outside the loop (in a Queue or a Lock, or behind another
 * task's WebSocket write) is linked into its loop's list while it waits, so
 * that close() can finalize it. The loop does not own it (what it waits in
 * does): a task waiting in a queue nobody holds any more is freed with the
 * queue. */
typedef struct ua_waiter_link {
    ua_wnode node;          /* in loop->waiters (waitq.h) */
    PyObject *task;         /* borrowed */
} ua_waiter_link;

/* Objects without a file descriptor that tasks wait on (a UART, a driver, a
 * test double: MicroPython's stream protocol), asked with
 * ioctl(MP_STREAM_POLL, flags) each time the loop polls (io.c). */
typedef struct {
    PyObject *obj;          /* strong */
    ua_task *waiter[2];     /* read, write (as the poller's slots) */
} ua_iopoll_entry;

typedef struct {
    ua_iopoll_entry *items;
    size_t len, cap;
} ua_iopoll;

typedef struct LoopObject {
    PyObject_HEAD
    ua_runq runq;
    ua_timerheap timers;
    ua_poller poller;
    ua_iopoll iopoll;       /* waits on objects without an fd */
    ua_ptrmap tasks;        /* coroutine -> its ua_task, for 2.0 tasks held here
                             * (and v3 Tasks parked by a bare yield False) */
    ua_task *current;       /* the record being resumed, or NULL */
    PyObject *cur_task;     /* the coroutine last resumed (strong) */
    PyObject *main_result;  /* what the F_MAIN coroutine returned */
    int running;
    int closed;
    int main_done;
    uint8_t py_time;        /* time() overridden in a Python subclass */
    uint8_t py_wait;        /* wait() overridden in a Python subclass */
    unsigned long thread;   /* the thread running it, while running */
    ua_wakeup wakeup;       /* wakes it from other threads and signal handlers */
    ua_runq ts_calls;       /* records from call_soon_threadsafe(), not yet queued */
    ua_runq parked;         /* ST_PARKED records: kept so close() and the GC reach them */
    ua_wnode *waiters;      /* queue of ua_waiter_links: tasks parked in a Queue or Lock */
    struct LoopObject *prev_loop, *next_loop;  /* all live loops, for cancel() */
    struct TaskObject *v3_tasks;   /* live v3 Tasks, one strong reference each (v3.h) */
    PyObject *exc_handler;  /* set_exception_handler()'s handler, or NULL */
    PyObject *executor;     /* v3: run_in_executor()'s default executor, made on first use */
    uint8_t vclock;         /* virtual clock: time jumps to the next timer when idle */
    uint32_t vnow;          /* the virtual clock's ticks */
    /* MicroPython's order (v3 loops): ready and sleeping records form one
     * queue ordered by (tick, push order), as MicroPython's single heap:
     * each step runs the earlier of the run queue's head (stamped with the
     * tick it was queued at) and the timer heap's top, if due. Records
     * share the timer heap's sequence counter. 2.0 loops run in passes. */
    uint8_t mp_order;
    uint32_t now;           /* ticks, as last read: what queued records are stamped with */
    uint32_t coarse;        /* ua_ticks_coarse() when now was read, in a v3 run */
    PyObject *weakreflist;
} LoopObject;

extern PyTypeObject Loop_Type;

/* A free list of one GC type's objects: those freed are kept (up to
 * UA_FREELIST_MAX) and handed out again, so an object made and freed per
 * operation costs no allocation in steady state. */
#define UA_FREELIST_MAX 64
typedef struct {
    PyObject *items[UA_FREELIST_MAX];
    int n;
} ua_freelist;

/* A new object of type (not GC-tracked, its own fields unset), or NULL
 * with MemoryError. */
static inline PyObject *ua_freelist_new(ua_freelist *fl, PyTypeObject *type)
{
    if (fl->n)
        return PyObject_Init(fl->items[--fl->n], type);
    return PyObject_GC_New(PyObject, type);
}

/* Free an object already untracked and cleared: kept, or deleted. */
static inline void ua_freelist_free(ua_freelist *fl, PyObject *obj)
{
    if (fl->n < UA_FREELIST_MAX)
        fl->items[fl->n++] = obj;
    else
        PyObject_GC_Del(obj);
}
extern PyTypeObject PollLoop_Type;

/* syscalls.c */
typedef struct {
    PyObject_HEAD
    PyObject *arg;          /* SysCall: the args tuple; SysCall1: the arg */
} SysCallObject;

/* IORead and IOWrite carry who waits; the other syscalls (SleepMs, one per
 * parked task) stay without it. */
typedef struct {
    SysCallObject base;
    uint64_t owner;         /* the stream waiting (ua_syscall_owned), or 0 */
} IOWaitObject;

typedef struct {
    SysCallObject base;     /* base.arg unused: the delay lives in ms */
    int32_t ms;
    uint8_t yielded;
} SleepMsObject;

extern PyTypeObject SysCall_Type, SysCall1_Type, StopLoop_Type, IORead_Type,
    IOWrite_Type, IOReadDone_Type, IOWriteDone_Type, SleepMs_Type;
PyObject *ua_sleep_ms_new(int32_t ms);
PyObject *ua_syscall_new(PyTypeObject *type, PyObject *arg);
/* The same, yielded by a stream with an id of its own (ua_stream_id()) that
 * holds arg open from one wait to the next: see ua_poller_add_owned(). */
PyObject *ua_syscall_owned(PyTypeObject *type, PyObject *arg, uint64_t owner);
/* A new stream id: never 0, never given twice. */
uint64_t ua_stream_id(void);
int ua_syscalls_ready(PyObject *module);

/* waitfor.c */
extern PyTypeObject WaitFor_Type;
typedef struct WaitForObject WaitForObject;
PyObject *ua_wait_for_new(PyObject *coro, int32_t ms);
void ua_wait_for_timer_fired(PyObject *waitfor);
PyObject *ua_wait_for_inner(PyObject *obj);   /* borrowed, or NULL if obj is no WaitFor */
int ua_waitfor_ready(PyObject *module);

/* module.c: shared state */
extern PyObject *ua_CancelledError;
extern PyObject *ua_TimeoutError;
extern int ua_debug;
extern LoopObject *ua_all_loops;
LoopObject *ua_default_loop(void);   /* new reference; created on first use */
void ua_log(const char *logger, const char *fmt, ...);
int ua_delay_from_secs(PyObject *secs, int32_t *ms, const char *what);
int ua_delay_from_ms(PyObject *ms_obj, int32_t *ms, const char *what);
/* sleep(secs) (in_secs) or sleep_ms(ms) of either API: a SleepMs for the
 * delay; v3: as ua_v3_delay() takes it, OverflowError past the longest. */
PyObject *ua_sleep_for(PyObject *delay, int in_secs, int v3);
/* A v3 delay (secs if in_secs, else ms) in ms, as MicroPython's sleep_ms()
 * takes it: negative counts as 0; past the longest ticks delay, 1 (*ms
 * then holds that delay), where MicroPython raises OverflowError. 0, 1,
 * or -1 with an exception. */
int ua_v3_delay(PyObject *delay, int in_secs, int32_t *ms);

/* loop.c: what the other files use */
/* The loop whose run_forever() runs in the calling thread (the innermost, if
 * nested), or NULL. Borrowed: run_forever() holds a reference meanwhile.
 * Per thread, so loops running in different threads never see each other. */
LoopObject *ua_running_loop_get(void);
int ua_loop_ready(PyObject *module);
/* run_forever(): NULL (error) or its value. until_idle (v3's
 * run_until_complete() with no task, as MicroPython's): also return None
 * once no task is queued, sleeping, waiting on I/O, on a ThreadSafeFlag
 * or on a thread's future (which another thread may set or end). */
PyObject *ua_loop_run_forever(LoopObject *loop, int until_idle);
int ua_loop_queue(LoopObject *loop, ua_task *t);
/* Bring loop->now up to date: read outside a run; in a run, only if the
 * coarse clock moved since it was read (a step that blocked or ran long). */
void ua_loop_tick(LoopObject *loop);
/* Stamp a record going into the run queue with the tick and order it is
 * queued at, as MicroPython keys it (what a v3 loop orders it by). The tick
 * matters only against timers pending now (a timer pushed later has a
 * later deadline), so only then is it brought up to date, and cheaply. */
static inline void ua_loop_stamp(LoopObject *loop, ua_task *t)
{
    if (!loop->mp_order)
        return;   /* 2.0's passes do not look at it */
    if (loop->timers.len)
        ua_loop_tick(loop);
    t->timer.deadline = loop->now;
    t->timer.seq = loop->timers.next_seq++;
}
int ua_loop_wake(LoopObject *loop, ua_task *t);
int ua_loop_unplace(LoopObject *loop, ua_task *t);
int ua_loop_pend_error(LoopObject *loop, ua_task *t);
int ua_loop_now(LoopObject *loop, uint32_t *now);
ua_task *ua_loop_find(LoopObject *loop, PyObject *coro);
/* call_soon() as the loop's own paths use it (in its thread): the Python
 * entry points that reach it check ua_loop_check_thread() once first. */
int ua_loop_call_soon(LoopObject *loop, PyObject *obj, PyObject *args);
/* Whether the caller may touch the loop: it is not running, or running in
 * the caller's thread. */
int ua_loop_in_its_thread(LoopObject *loop);
/* -1 with RuntimeError if the loop is running in another thread than the
 * caller's (only the thread-safe calls below may be used from there). */
int ua_loop_check_thread(LoopObject *loop);
/* Link a parked task into / out of its loop's list (O(1)); unlinking an
 * unlinked one does nothing. */
void ua_loop_link_waiter(LoopObject *loop, ua_waiter_link *link, PyObject *task);
void ua_loop_unlink_waiter(ua_waiter_link *link);
/* From any thread holding the GIL (the loop may be blocked without it):
 * run cb(*args) (args a tuple or NULL), or schedule the coroutine cb, in
 * the loop's thread at its next pass, waking it at once if it blocks.
 * 0, or -1 with an exception (closed loop, no memory). */
int ua_loop_call_soon_threadsafe(LoopObject *loop, PyObject *cb, PyObject *args);
/* From any thread holding the GIL: call cb() in the loop's thread when it
 * next polls, as MicroPython's poller finds a ThreadSafeFlag set: before
 * its next step (so behind the tasks queued by then), waking it if it
 * blocks. 0, or -1 with an exception. */
int ua_loop_at_next_poll(LoopObject *loop, PyObject *cb);
/* micropython.schedule(func, arg) (the module's schedule()) */
PyObject *ua_schedule(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
/* Deliver exc into a task at its next resumption, waking it now. coro: a
 * 2.0 task's coroutine (its record is found, or made), or a v3 Task
 * (ua_v3_owner_of()). */
int ua_loop_cancel_coro(LoopObject *loop, PyObject *coro, PyObject *exc);
/* Run the task owner names as soon as possible (call_soon() for a 2.0
 * coroutine). A v3 Task that ended, or whose loop is closed, is left. */
int ua_loop_wake_owner(LoopObject *loop, PyObject *owner);
/* The same from any thread holding the GIL: from another thread than the
 * loop's, done in the loop's thread at its next pass (waking it at once). */
int ua_loop_wake_owner_threadsafe(LoopObject *loop, PyObject *owner);
/* close(): close a pending task's coroutine, or any object with a close()
 * method (what start_server() returns), so its finally blocks run and what
 * it holds is released; an error is reported as unraisable. */
void ua_finalize_task_obj(PyObject *obj);
ua_task *ua_loop_add_timeout(LoopObject *loop, PyObject *target, PyObject *waitfor, int32_t ms);
void ua_loop_remove_timeout(LoopObject *loop, ua_task *t);
int ua_is_coroutine(PyObject *obj);
const char *ua_type_name(PyTypeObject *tp);

/* v3_*.c: the hooks the loop calls for v3 Tasks (kinds TASK_V3, TASK_V3_DONE) */
int ua_v3_task_end(LoopObject *loop, ua_task *t, PySendResult sr, PyObject *result, PyObject **ret);
int ua_v3_task_reap(LoopObject *loop, ua_task *t);
int ua_v3_parked(LoopObject *loop, ua_task *t);   /* it yielded False: the loop lets go of it */
void ua_v3_release_all(LoopObject *loop, int finalize);   /* finalize: close() closes their coroutines */
LoopObject *ua_v3_default_loop_borrowed(void);   /* v3's default loop, or NULL */
int ua_v3_traverse(LoopObject *loop, visitproc visit, void *arg);
int ua_v3_flag_waiting(LoopObject *loop);   /* a task of loop waits on a ThreadSafeFlag or a thread's future */
/* If obj is a v3 Task: wake it (exc: with exc to raise in it), unless it
 * ended or its loop is gone, and return 1 (-1 on error); else 0. */
int ua_v3_wake_owner(PyObject *obj, PyObject *exc);
/* What a 2.0 awaitable (a Queue or Lock wait, wait_for's timer) keeps to
 * wake the task of rec (loop->current) later: its v3 Task, in which the
 * record is embedded, or a 2.0 task's coroutine. A v3 Task's coroutine is
 * never looked up by coroutine: the loop's map holds 2.0 records only, and
 * a second record would drive the coroutine too. New reference. */
PyObject *ua_v3_owner_of(ua_task *rec);
int ua_v3_is_loop(LoopObject *loop);       /* a uasyncio.v3 Loop */
/* An exception escaping a task when a handler is set: 1 handled, 0 no handler, -1 error */
int ua_loop_handle_exception(LoopObject *loop, const char *message, PyObject *exc, PyObject *future);
int ua_v3_ready(PyObject *module);

/* sync.c: Queue and Lock */
int ua_sync_ready(PyObject *module);
/* If obj is a Queue or Lock operation whose task waits in it: 1, with the
 * parked task (its coroutine, or its v3 Task) and its loop (borrowed); else 0. */
int ua_sync_waiter(PyObject *obj, PyObject **task, LoopObject **loop);
int ua_udp_ready(PyObject *module);   /* udp.c */

/* streams.c */
int ua_fd_of(PyObject *obj);

/* io.c: the poller side of the loop, and PollEventLoop */
int ua_poll_loop_ready(PyObject *module);
int ua_loop_io_wait(LoopObject *loop, ua_task *t, PyObject *obj, int dir, uint64_t owner);
int ua_loop_io_done(LoopObject *loop, PyObject *obj, int dir);
int ua_loop_io_closing(LoopObject *loop, PyObject *obj);
/* obj is about to be closed: the loop running here forgets it, and every
 * other loop a task of which waits on it wakes that task; -1 with
 * RuntimeError, before anything changes, if one of those loops is running
 * in another thread (ua_io_check_closing() checks that alone). */
int ua_io_closing(PyObject *obj);
int ua_io_check_closing(PyObject *obj);
int ua_loop_poll(LoopObject *loop, int delay);
/* Python's signal handlers and pending calls, now (the main thread only) */
int ua_run_pending(void);
/* Counts the loop's polls (all loops): a stream that buffered bytes before
 * the count last changed asks the kernel whether the peer reset since. */
extern uint32_t ua_poll_epoch;
/* The loop's waits on objects without an fd (ST_IOPOLL): take one task
 * out; move every waiter into *into, releasing the objects and the list. */
void ua_iopoll_remove(LoopObject *loop, ua_task *t);
void ua_iopoll_take_all(LoopObject *loop, ua_runq *into);

/* obj.name into *res: 1 found, 0 no such attribute, -1 error. */
static inline int ua_getattr_optional(PyObject *obj, const char *name, PyObject **res)
{
    *res = PyObject_GetAttrString(obj, name);
    if (*res)
        return 1;
    if (!PyErr_ExceptionMatches(PyExc_AttributeError))
        return -1;
    PyErr_Clear();
    return 0;
}

#define UA_DEBUG_LOG(...) do { if (ua_debug) ua_log("uasyncio.core", __VA_ARGS__); } while (0)

#endif
