/* What the loop offers the rest of the binding: the task record and the
 * table of task kinds, the loop object, the syscalls a task yields, what
 * every C awaitable shares, and the loop's functions. It names nothing of
 * either API: an API adds its kinds of task to the table (ua_kind_add). */
#ifndef UA_LOOP_H
#define UA_LOOP_H

#include "ua.h"

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

/* The loop's own kinds (ua_task.kind). An API adds its own at module init
 * (ua_kind_add): ids from UA_KIND_API on. */
enum {
    TASK_CORO,      /* obj: coroutine; aux: pending exception or NULL */
    TASK_CALL,      /* obj: callable; aux: args tuple or NULL */
    TASK_STOP,      /* obj: value run_forever() returns */
    TASK_AT_POLL,   /* in ts_calls only: obj is called when the loop next polls (before
                     * its next step), not queued (ua_loop_at_next_poll) */
    TASK_WAKE,      /* in ts_calls only: obj, an owner, is woken in the loop's
                     * thread (ua_loop_wake_owner_threadsafe) */
    UA_KIND_API,
    UA_KINDS_MAX = 16
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
    /* 8 to 128: the kind's own flags, F_KIND_HOLDS among them */
    F_KIND_HOLDS = 64, /* its kind keeps something in timer (ua_kind.unhold) */
    F_MAPPED = 256, /* a record of a UA_KIND_EMBEDDED kind in loop->tasks (its park), until it runs */
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
 * ioctl(MP_STREAM_POLL, flags) each time the loop polls (poll.c). */
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
                             * (and embedded records parked by a bare yield False) */
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
    /* Per kind (ua_task.kind), what its API keeps per loop (its list of live
     * task objects, say): the loop never reads it; the kind's traverse and
     * release reach what it holds. */
    void *kind_data[UA_KINDS_MAX];
    PyObject *exc_handler;  /* set_exception_handler()'s handler, or NULL */
    PyObject *executor;     /* run_in_executor()'s default executor, made on first use */
    /* An exception escaping a task or a callback goes to the exception
     * handler (the default one if none is set) and the loop goes on, as in
     * CPython's asyncio (v3 loops); else only with a handler set, and
     * without one it stops the loop, as in 2.0. */
    uint8_t report_errors;
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

extern PyTypeObject Loop_Type, PollLoop_Type;

/* ---- task kinds ------------------------------------------------------------
 * What the loop does with a record depends on its kind, and it asks the
 * kind through this table, indexed by ua_task.kind: its own kinds (above)
 * and those an API adds at module init (2.0's wait_for() timer, v3's Task).
 * A new kind is a new entry: the loop has no case for any of them. An
 * operation left NULL does what is said beside it. On the path of a task
 * switch the loop makes at most one call through the table (run, end or
 * park). */
enum {
    /* The record is part of an object of its API (its owner): the loop
     * never frees it (ua_task_drop() only takes it out), and the GC reaches
     * what it holds through the owner (the kind's traverse), not the loop. */
    UA_KIND_EMBEDDED = 1,
    UA_KIND_MAPPED = 2,        /* found by its coroutine in loop->tasks while the loop holds it */
    UA_KIND_CLOSE = 4,         /* close() closes its obj, so a coroutine's finally blocks run */
    UA_KIND_AUX_BORROWED = 8,  /* aux is no reference: not visited, not released */
    /* A 2.0 pass runs it as soon as its timer expires (run gives 0 or -1),
     * rather than queueing it. */
    UA_KIND_ON_TIMER = 16,
};

typedef struct ua_kind {
    uint8_t flags;
    /* Run a record the loop took from its run queue or timer heap: 0; 1
     * with *ret, which run_forever() returns; -1 with an exception. NULL:
     * obj is a coroutine, which the loop resumes (end and park are then
     * required). */
    int (*run)(LoopObject *loop, ua_task *t, PyObject **ret);
    /* Its coroutine ended: returned (sr == PYGEN_RETURN, result given) or
     * raised (set). As run. */
    int (*end)(LoopObject *loop, ua_task *t, PySendResult sr, PyObject *result, PyObject **ret);
    /* It yielded False with nothing pending: the loop let go of it (ST_NEW)
     * until something wakes it. 0, or -1 with an exception. */
    int (*park)(LoopObject *loop, ua_task *t);
    /* The loop lets go of the record without running it (close(),
     * ua_task_drop()): undo what points at it from outside. */
    void (*detach)(ua_task *t);
    /* The record has F_KIND_HOLDS (its timer fields hold something of the
     * kind's) and goes into a queue or ends: the kind lets go of it first. */
    void (*unhold)(ua_task *t);
    /* Its owner (ua_loop_owner_of()), borrowed. NULL: obj. */
    PyObject *(*owner)(ua_task *t);
    /* The kind's objects, for the loop's calls that take any object (an
     * API whose kinds share their objects sets these on one of them):
     * wake_owner: if obj is one of its owners, wake its task (with exc
     * raised in it, unless NULL) if it has not ended and its loop is open,
     * and return 1 (-1 on error); else 0. coro_of: obj's coroutine if it is
     * one of its owners (borrowed), else NULL. */
    int (*wake_owner)(PyObject *obj, PyObject *exc);
    PyObject *(*coro_of)(PyObject *obj);
    /* Per loop, over the kind's tasks its API keeps (loop->kind_data). The
     * GC visits them; the loop goes away (close(): finalize, their pending
     * coroutines are closed now); whether one may be woken from another
     * thread (run_until_complete() with no task keeps running); the owner
     * of one whose coroutine match() takes, borrowed, or NULL. */
    int (*traverse)(LoopObject *loop, visitproc visit, void *arg);
    void (*release)(LoopObject *loop, int finalize);
    int (*keeps_awake)(LoopObject *loop);
    PyObject *(*find)(LoopObject *loop, int (*match)(PyObject *coro, void *arg), void *arg);
} ua_kind;

/* At module init: add a kind (copied); its id, or -1 with an exception. */
int ua_kind_add(const ua_kind *kind);

/* ---- tasks.c: task records ---------------------------------------------------- */
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

/* ---- loop.c: scheduling ------------------------------------------------------- */
/* The loop whose run_forever() runs in the calling thread (the innermost, if
 * nested), or NULL. Borrowed: run_forever() holds a reference meanwhile.
 * Per thread, so loops running in different threads never see each other. */
LoopObject *ua_running_loop_get(void);
extern LoopObject *ua_all_loops;   /* every live loop (through next_loop) */
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
/* Deliver exc into a task at its next resumption, waking it now. coro: a
 * 2.0 task's coroutine (its record is found, or made), or an owner
 * (ua_loop_owner_of()). */
int ua_loop_cancel_coro(LoopObject *loop, PyObject *coro, PyObject *exc);
/* Run the task owner names as soon as possible (call_soon() for a 2.0
 * coroutine). An owner whose task ended, or whose loop is closed, is left. */
int ua_loop_wake_owner(LoopObject *loop, PyObject *owner);
/* The same from any thread holding the GIL: from another thread than the
 * loop's, done in the loop's thread at its next pass (waking it at once). */
int ua_loop_wake_owner_threadsafe(LoopObject *loop, PyObject *owner);
/* What an awaitable that waits outside the loop (a Queue or Lock wait,
 * wait_for's timer) keeps to wake the task of rec (loop->current) later:
 * the object of the record's kind that embeds it (its owner), or a 2.0
 * task's coroutine. A task with an owner is never looked up by coroutine:
 * the loop's map holds 2.0 records only, and a second record would drive
 * the coroutine too. New reference. */
PyObject *ua_loop_owner_of(ua_task *rec);
/* The owner of a live task of loop whose coroutine match(coro, arg) takes
 * (the first found: 2.0 tasks, then each kind's), borrowed; or NULL. */
PyObject *ua_loop_find_task(LoopObject *loop, int (*match)(PyObject *coro, void *arg), void *arg);
/* obj's coroutine if it is an owner (borrowed), else NULL. */
PyObject *ua_loop_coro_of(PyObject *obj);
/* Place a record in no queue in the timer heap, due at deadline. */
int ua_loop_queue_at(LoopObject *loop, ua_task *t, uint32_t deadline);
/* -1 with RuntimeError if the loop is closed. */
int ua_loop_check_open(LoopObject *loop);
/* close(): close a pending task's coroutine, or any object with a close()
 * method (what start_server() returns), so its finally blocks run and what
 * it holds is released; an error is reported as unraisable. */
void ua_finalize_task_obj(PyObject *obj);

/* ---- handler.c: the exception handler ------------------------------------------ */
/* Give an exception that escaped a task or a callback to the loop's
 * handler (the default one if none is set): 0, or -1 with the exception
 * the handler raised. future: the task (its owner or coroutine), or NULL. */
int ua_loop_handle_exception(LoopObject *loop, const char *message, PyObject *exc, PyObject *future);

/* ---- poll.c: the poller side of the loop, and PollEventLoop ---------------------- */
int ua_fd_of(PyObject *obj);   /* the fd of a socket (read in place) or of anything with fileno() */
/* Stop polling obj in dir: a task still parked there is let go of. */
int ua_loop_io_done(LoopObject *loop, PyObject *obj, int dir);
/* obj is about to be closed: the tasks waiting on it are woken, and the
 * poller forgets its fd. */
int ua_loop_io_closing(LoopObject *loop, PyObject *obj);
/* obj is about to be closed: the loop running here forgets it, and every
 * other loop a task of which waits on it wakes that task; -1 with
 * RuntimeError, before anything changes, if one of those loops is running
 * in another thread (ua_io_check_closing() checks that alone). */
int ua_io_closing(PyObject *obj);
int ua_io_check_closing(PyObject *obj);
/* Counts the loop's polls (all loops): a stream that buffered bytes before
 * the count last changed asks the kernel whether the peer reset since. */
extern uint32_t ua_poll_epoch;

/* ---- syscalls.c: what a task yields to ask the loop for something --------------- */
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

/* ---- awaitable.c: what every C awaitable of the package shares -------------------
 * Each one implements its work once, as a sendfunc (am_send: the fast path
 * of CPython 3.10/3.11's await and of the loop); these turn that into the
 * other protocols. */
/* tp_iternext's convention from a sendfunc's result: the yielded value, or
 * NULL with StopIteration(value) set (none for None: the fast end). */
PyObject *ua_iternext_result(PySendResult sr, PyObject *result);

/* A .send(value) method's result from a tp_iternext's: StopIteration set
 * when the iteration ended without one. */
PyObject *ua_send_result(PyObject *r);

/* __await__: the object is its own iterator. */
PyObject *ua_self_await(PyObject *self);

/* Raise what throw(typ[, val]) was given (an instance or a class). */
PyObject *ua_raise_thrown(PyObject *args);

/* ---- util.c: what every part uses ------------------------------------------ */
const char *ua_type_name(PyTypeObject *tp);   /* its name without the module */
int ua_is_coroutine(PyObject *obj);   /* what the loop resumes: a coroutine, a generator, an iterator */
extern PyObject *ua_CancelledError;   /* uasyncio.core's: how a 2.0 task is cancelled */
extern int ua_debug;
void ua_log(const char *logger, const char *fmt, ...);
int ua_delay_from_secs(PyObject *secs, int32_t *ms, const char *what);
int ua_delay_from_ms(PyObject *ms_obj, int32_t *ms, const char *what);
/* 1 if a function given nargs arguments wants want, else 0 with TypeError. */
int ua_check_nargs(const char *name, Py_ssize_t nargs, Py_ssize_t want);
int ua_loop_util_ready(PyObject *module);
#define UA_DEBUG_LOG(...) do { if (ua_debug) ua_log("uasyncio.core", __VA_ARGS__); } while (0)

#endif
