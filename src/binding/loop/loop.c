/* EventLoop: scheduling and the run loop (uasyncio.core's EventLoop).
 *
 * Each pass of run_forever() (1) moves every expired timer to the run queue,
 * in deadline order, (2) runs exactly the entries queued when the pass began,
 * and (3) waits in the poller: 0 ms if the run queue is not empty, until the
 * earliest deadline if there is one, else without limit.
 *
 * A v3 loop (mp_order) runs MicroPython's order instead: its ready and
 * sleeping tasks form one queue ordered by (tick, push order), so a task
 * whose deadline passed runs before one made ready since. Each step takes
 * the earlier of the run queue's head (stamped when queued) and the timer
 * heap's due top: a merge of the two, which is that one queue, with no
 * heap operation for a ready task. A round (2) runs as many steps as
 * records were pending when it began; (3) is the same. */
#include "internal.h"

LoopObject *ua_all_loops;
static PyObject *str_throw, *str_time, *str_wait;
static int nkinds;   /* the entries of ua_kinds in use (the table is at the end) */
static PyObject *set_wakeup_fd;          /* signal.set_wakeup_fd */
static unsigned long main_thread;        /* where Python runs signal handlers */

/* The loop running in this thread: per thread, so that loops run by
 * different threads (each releases the GIL while it blocks) never see each
 * other's state. Borrowed: run_forever() holds a reference meanwhile. */
static _Thread_local LoopObject *running_loop;

LoopObject *ua_running_loop_get(void)
{
    return running_loop;
}

/* ---- clock ------------------------------------------------------------- */

int ua_loop_now(LoopObject *self, uint32_t *now)
{
    if (!self->py_time) {
        *now = self->vclock ? self->vnow : ua_ticks_ms();
        return 0;
    }
    PyObject *r = PyObject_CallMethodNoArgs((PyObject *)self, str_time);
    if (!r)
        return -1;
    long long v = PyLong_AsLongLong(r);
    Py_DECREF(r);
    if (v == -1 && PyErr_Occurred())
        return -1;
    *now = (uint32_t)((unsigned long long)v & UA_TICKS_MASK);
    return 0;
}

void ua_loop_tick(LoopObject *self)
{
    if (self->py_time)
        return;   /* a Python clock is read once a round */
    if (self->vclock) {
        self->now = self->vnow;
        return;
    }
    if (self->running) {
        uint32_t c = ua_ticks_coarse();
        if (c == self->coarse)
            return;
        self->coarse = c;
    }
    self->now = ua_ticks_ms();
}

/* ---- placing a record -------------------------------------------------- */

int ua_loop_in_its_thread(LoopObject *self)
{
    return !self->running || self->thread == PyThread_get_thread_ident();
}

int ua_loop_check_thread(LoopObject *self)
{
    if (!ua_loop_in_its_thread(self)) {
        PyErr_SetString(PyExc_RuntimeError,
                        "the event loop is running in another thread: from this one, use "
                        "loop.call_soon_threadsafe()");
        return -1;
    }
    return 0;
}

int ua_loop_check_open(LoopObject *self)
{
    if (self->closed) {
        PyErr_SetString(PyExc_RuntimeError, "the event loop is closed");
        return -1;
    }
    return 0;
}

/* What Python code calls (from any thread) checks, once, that the loop is
 * open and not running in another thread. The loop's own paths below it
 * (scheduling from a pass, from the task being resumed) run in its thread
 * by construction and check only that it is open. */
static int check_caller(LoopObject *self)
{
    return ua_loop_check_open(self) < 0 ? -1 : ua_loop_check_thread(self);
}

int ua_loop_queue(LoopObject *self, ua_task *t)
{
    if (ua_runq_push(&self->runq, t) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    t->state = ST_QUEUED;
    ua_loop_stamp(self, t);
    return 0;
}

int ua_loop_queue_at(LoopObject *self, ua_task *t, uint32_t deadline)
{
    t->timer.deadline = deadline;
    if (ua_timerheap_push(&self->timers, &t->timer) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    t->state = ST_SLEEPING;
    return 0;
}

/* Parked records are few (one per run_until_complete() that stopped while
 * its coroutine was parked): a linear removal is fine. */
static void parked_remove(LoopObject *self, ua_task *t)
{
    for (size_t n = self->parked.len; n; n--) {
        ua_task *x = ua_runq_pop(&self->parked);
        if (x != t)
            ua_runq_push(&self->parked, x);   /* no growth: a slot was just freed */
    }
}

/* Take a record out of the timer heap, the poller or the parked list, so it
 * can be placed anew. A queued or running record stays where it is
 * (returns 1). */
static int unplace(LoopObject *self, ua_task *t)
{
    switch (t->state) {
    case ST_SLEEPING:
        ua_timerheap_remove(&self->timers, &t->timer);
        break;
    case ST_IOWAIT:
        ua_poller_remove(&self->poller, TASK_FD(t), TASK_IODIR(t));
        break;
    case ST_IOPOLL:
        ua_iopoll_remove(self, t);
        break;
    case ST_PARKED:
        parked_remove(self, t);
        break;
    case ST_QUEUED:
    case ST_RUNNING:
        return 1;
    }
    t->state = ST_NEW;
    return 0;
}

int ua_loop_unplace(LoopObject *self, ua_task *t)
{
    return unplace(self, t);
}

/* Run a record's task as soon as possible: now if it waits, right after
 * its current step if it is running. A closed loop (or one being closed:
 * a finally block run by close() sets an Event, say) runs nothing again:
 * the record is left where it is, in no queue, so it is never queued after
 * close() detached everything (and then freed there). */
int ua_loop_wake(LoopObject *self, ua_task *t)
{
    if (self->closed)
        return 0;
    if (unplace(self, t)) {
        if (t->state == ST_RUNNING)
            t->flags |= F_WAKE;
        return 0;
    }
    if (self->closed) {
        /* Leaving a wait on an object without an fd released the object,
         * whose finalizer closed the loop: it took no notice of this record,
         * in no queue then. A 2.0 record is the loop's to free. */
        if (!(ua_kinds[t->kind].flags & UA_KIND_EMBEDDED))
            ua_task_drop(self, t);
        return 0;
    }
    return ua_loop_queue(self, t);
}

/* Schedule a coroutine (now, or at deadline if timed) or a callback. */
static int schedule(LoopObject *self, PyObject *obj, PyObject *args, int timed, uint32_t deadline)
{
    if (ua_loop_check_open(self) < 0)
        return -1;
    ua_task *t;
    if (ua_is_coroutine(obj)) {
        t = ua_task_for_coro(self, obj);
        if (!t)
            return -1;
        if (!timed)
            return ua_loop_wake(self, t);
        if (unplace(self, t)) {
            if (t->state == ST_RUNNING) {   /* placed when it yields */
                t->timer.deadline = deadline;
                t->flags |= F_TIMED;
            }
            return 0;
        }
    } else if (PyCallable_Check(obj)) {
        if (args && !PyTuple_GET_SIZE(args))
            args = NULL;
        t = ua_task_new(TASK_CALL, obj, args);
        if (!t)
            return -1;
    } else {
        PyErr_Format(PyExc_TypeError,
                     "expected a coroutine, a generator or a callable, not %.100s",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    int rc = timed ? ua_loop_queue_at(self, t, deadline) : ua_loop_queue(self, t);
    if (rc < 0)
        ua_task_drop(self, t);
    return rc;
}

int ua_loop_call_soon(LoopObject *self, PyObject *obj, PyObject *args)
{
    UA_DEBUG_LOG("Scheduling in runq: %R", obj);
    return schedule(self, obj, args, 0, 0);
}

static int call_later_ms(LoopObject *self, int32_t ms, PyObject *obj, PyObject *args)
{
    if (!ms)
        return ua_loop_call_soon(self, obj, args);
    uint32_t now;
    if (ua_loop_now(self, &now) < 0)
        return -1;
    UA_DEBUG_LOG("Scheduling in waitq: %R in %d ms", obj, (int)ms);
    return schedule(self, obj, args, 1, ua_ticks_add(now, ms));
}

/* ---- owners: the objects some kinds' records are embedded in -------------- */

/* If obj is an owner: wake its task (with exc, unless NULL) and return 1
 * (-1 on error); else 0. */
static int wake_owner(PyObject *obj, PyObject *exc)
{
    for (int k = 0; k < nkinds; k++) {
        int r = ua_kinds[k].wake_owner ? ua_kinds[k].wake_owner(obj, exc) : 0;
        if (r)
            return r;
    }
    return 0;
}

PyObject *ua_loop_owner_of(ua_task *rec)
{
    const ua_kind *k = &ua_kinds[rec->kind];
    return Py_NewRef(k->owner ? k->owner(rec) : rec->obj);
}

PyObject *ua_loop_coro_of(PyObject *obj)
{
    for (int k = 0; k < nkinds; k++) {
        PyObject *coro = ua_kinds[k].coro_of ? ua_kinds[k].coro_of(obj) : NULL;
        if (coro)
            return coro;
    }
    return NULL;
}

PyObject *ua_loop_find_task(LoopObject *self, int (*match)(PyObject *coro, void *arg), void *arg)
{
    for (size_t i = 0; i < self->tasks.cap; i++) {
        uintptr_t slot = self->tasks.slots[i];
        if (!slot)
            continue;
        ua_task *t = ua_ptrmap_slot_item(slot);
        if (match(t->obj, arg))
            return t->obj;
    }
    for (int k = 0; k < nkinds; k++) {
        PyObject *owner = ua_kinds[k].find ? ua_kinds[k].find(self, match, arg) : NULL;
        if (owner)
            return owner;
    }
    return NULL;
}

/* Deliver exc into coro (or the task of an owner) at its next resumption,
 * waking it now. */
static int cancel_coro(LoopObject *self, PyObject *coro, PyObject *exc)
{
    int owned = wake_owner(coro, exc);
    if (owned)
        return owned < 0 ? -1 : 0;
    if (ua_loop_check_open(self) < 0)
        return -1;
    ua_task *t = ua_task_for_coro(self, coro);
    if (!t)
        return -1;
    /* The exception it replaces goes last: releasing it can run code
     * (finalizers), which must find the record placed. */
    PyObject *old = t->aux;
    t->aux = Py_NewRef(exc);
    int rc = ua_loop_wake(self, t);
    Py_XDECREF(old);
    return rc;
}

int ua_loop_cancel_coro(LoopObject *self, PyObject *coro, PyObject *exc)
{
    return ua_loop_check_thread(self) < 0 ? -1 : cancel_coro(self, coro, exc);
}

int ua_loop_wake_owner(LoopObject *self, PyObject *owner)
{
    int owned = wake_owner(owner, NULL);
    if (owned)
        return owned < 0 ? -1 : 0;
    return ua_loop_call_soon(self, owner, NULL);
}

/* From another thread: the loop's thread wakes owner when it takes what
 * other threads asked for (take_threadsafe), woken at once if it blocks. */
int ua_loop_wake_owner_threadsafe(LoopObject *self, PyObject *owner)
{
    if (ua_loop_in_its_thread(self))
        return ua_loop_wake_owner(self, owner);
    if (self->closed)
        return 0;
    ua_task *t = ua_task_new(TASK_WAKE, owner, NULL);
    if (!t)
        return -1;
    if (ua_runq_push(&self->ts_calls, t) < 0) {
        ua_task_free(t);
        PyErr_NoMemory();
        return -1;
    }
    ua_wakeup_signal(&self->wakeup);
    return 0;
}

ua_task *ua_loop_find(LoopObject *self, PyObject *coro)
{
    return ua_ptrmap_get(&self->tasks, coro);
}

/* ---- other threads and signals ------------------------------------------------ */

/* Records of call_soon_threadsafe() wait in ts_calls (guarded by the GIL,
 * which every caller holds) until the loop's thread moves them to the run
 * queue; the wake-up pipe makes a blocked loop do so at once. */
int ua_loop_call_soon_threadsafe(LoopObject *self, PyObject *cb, PyObject *args)
{
    if (self->closed) {
        PyErr_SetString(PyExc_RuntimeError, "the event loop is closed");
        return -1;
    }
    if (!ua_is_coroutine(cb) && !PyCallable_Check(cb)) {
        PyErr_Format(PyExc_TypeError,
                     "expected a coroutine, a generator or a callable, not %.100s",
                     Py_TYPE(cb)->tp_name);
        return -1;
    }
    if (args && !PyTuple_GET_SIZE(args))
        args = NULL;
    ua_task *t = ua_task_new(TASK_CALL, cb, args);
    if (!t)
        return -1;
    if (ua_runq_push(&self->ts_calls, t) < 0) {
        ua_task_free(t);
        PyErr_NoMemory();
        return -1;
    }
    ua_wakeup_signal(&self->wakeup);
    return 0;
}

int ua_loop_at_next_poll(LoopObject *self, PyObject *cb)
{
    if (self->closed) {
        PyErr_SetString(PyExc_RuntimeError, "the event loop is closed");
        return -1;
    }
    ua_task *t = ua_task_new(TASK_AT_POLL, cb, NULL);
    if (!t)
        return -1;
    if (ua_runq_push(&self->ts_calls, t) < 0) {
        ua_task_free(t);
        PyErr_NoMemory();
        return -1;
    }
    /* In its own thread the loop is not blocked: it looks at the flag
     * after the step running now (and before it would block), no write. */
    if (ua_loop_in_its_thread(self))
        ua_wakeup_mark(&self->wakeup);
    else
        ua_wakeup_signal(&self->wakeup);
    return 0;
}

void ua_loop_link_waiter(LoopObject *self, ua_waiter_link *link, PyObject *task)
{
    link->task = task;   /* at the tail: close() finalizes in parking order */
    ua_wq_push(&self->waiters, &link->node);
}

void ua_loop_unlink_waiter(ua_waiter_link *link)
{
    ua_wq_unlink(&link->node);
}

/* TASK_AT_POLL: what the poll finds, acted on now (in ts_calls only, never queued). */
static int run_at_poll(LoopObject *self, ua_task *t, PyObject **ret)
{
    PyObject *r = PyObject_CallNoArgs(t->obj);
    ua_task_free(t);
    if (!r)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* Whether ua_schedule() queued a call since the main thread's loop last
 * ran Python's pending calls (under the GIL). */
static int scheduled;

/* In the loop's thread: queue what other threads asked for. */
static int take_threadsafe(LoopObject *self)
{
    ua_wakeup_take(&self->wakeup);
    if (scheduled && PyThread_get_thread_ident() == main_thread) {
        scheduled = 0;
        if (Py_MakePendingCalls() < 0)
            return -1;
    }
    while (self->ts_calls.len) {
        ua_task *t = ua_runq_pop(&self->ts_calls);
        if (t->kind == TASK_AT_POLL) {
            if (run_at_poll(self, t, NULL) < 0)
                return -1;
        } else if (t->kind == TASK_WAKE || ua_is_coroutine(t->obj)) {
            /* woken as in its thread (ua_loop_wake_owner_threadsafe); a
             * coroutine scheduled as call_soon() would */
            int rc = ua_loop_wake_owner(self, t->obj);
            ua_task_free(t);
            if (rc < 0)
                return -1;
        } else if (ua_loop_queue(self, t) < 0) {
            ua_task_free(t);
            return -1;
        }
    }
    return 0;
}

/* While a loop blocks in the main thread, signals write to its wake-up
 * pipe (signal.set_wakeup_fd, as asyncio and uvloop do), so a Ctrl-C wakes
 * it however long it would block. Attached before the first wait that
 * blocks, so a run that never blocks makes no call; kept until
 * run_forever() returns. Returns the fd to restore, or SIGNALS_NOT. */
enum { SIGNALS_NOT = -2, SIGNALS_UNTRIED = -3 };

/* The wake-up of the loop that blocks in the main thread (attached), so
 * that ua_schedule() from another thread makes it run the call. */
static ua_wakeup *main_wakeup;

static int signals_attach(LoopObject *self)
{
    if (PyThread_get_thread_ident() != main_thread)
        return SIGNALS_NOT;
    PyObject *r = PyObject_CallFunction(set_wakeup_fd, "i", self->wakeup.wfd);
    if (!r) {
        /* Not the main interpreter, say: signals then wake it through EINTR. */
        PyErr_Clear();
        return SIGNALS_NOT;
    }
    main_wakeup = &self->wakeup;
    long old = PyLong_AsLong(r);
    Py_DECREF(r);
    if (old == -1 && PyErr_Occurred())
        PyErr_Clear();
    return (int)old;
}

static void signals_detach(int old)
{
    if (old == SIGNALS_NOT || old == SIGNALS_UNTRIED)
        return;
    main_wakeup = NULL;
    PyObject *exc = ua_err_fetch();   /* a KeyboardInterrupt may be in flight */
    PyObject *r = PyObject_CallFunction(set_wakeup_fd, "i", old);
    if (!r)
        PyErr_WriteUnraisable(set_wakeup_fd);
    Py_XDECREF(r);
    ua_err_restore(exc);
}

/* micropython.schedule(func, arg): func(arg) runs in the main thread as
 * soon as it runs Python code or its loop is about to block (Python's own
 * pending calls, checked where MicroPython checks its scheduled ones), not
 * behind the tasks queued; safe from other threads and signal handlers.
 * What func raises is printed, as MicroPython's, with sys.print_exception
 * where the runner gives one, and nothing it interrupted sees it. */
typedef struct {
    PyObject *func, *arg;
} scheduled_call;

static int run_scheduled(void *p)
{
    scheduled_call *c = p;
    PyObject *func = c->func, *arg = c->arg;
    PyMem_RawFree(c);
    PyObject *r = PyObject_CallOneArg(func, arg);
    if (!r) {
        PyObject *print = PySys_GetObject("print_exception");   /* borrowed */
        PyObject *exc = ua_err_fetch();
        r = print && exc ? PyObject_CallOneArg(print, exc) : NULL;
        if (!r) {
            if (!PyErr_Occurred())
                ua_err_restore(Py_XNewRef(exc));
            PyErr_WriteUnraisable(func);
        }
        Py_XDECREF(exc);
    }
    Py_DECREF(func);
    Py_DECREF(arg);
    Py_XDECREF(r);
    return 0;
}

PyObject *ua_schedule(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "schedule() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    scheduled_call *c = PyMem_RawMalloc(sizeof(*c));
    if (!c)
        return PyErr_NoMemory();
    c->func = Py_NewRef(args[0]);
    c->arg = Py_NewRef(args[1]);
    if (Py_AddPendingCall(run_scheduled, c) < 0) {
        Py_DECREF(c->func);
        Py_DECREF(c->arg);
        PyMem_RawFree(c);
        PyErr_SetString(PyExc_RuntimeError, "schedule queue full");
        return NULL;
    }
    scheduled = 1;
    if (PyThread_get_thread_ident() != main_thread) {
        if (main_wakeup)
            ua_wakeup_signal(main_wakeup);
    } else if (running_loop) {
        /* Its next pass does not block but runs it (take_threadsafe), as
         * a function that schedules itself again keeps it doing. */
        ua_wakeup_mark(&running_loop->wakeup);
    }
    Py_RETURN_NONE;
}

/* ---- resuming a task ------------------------------------------------------ */

/* coro.throw(exc), as a PySendResult. */
static PySendResult throw_into(PyObject *coro, PyObject *exc, PyObject **result)
{
    PyObject *r = PyObject_CallMethodOneArg(coro, str_throw, exc);
    if (r) {
        *result = r;
        return PYGEN_NEXT;
    }
    *result = NULL;
    if (!PyErr_ExceptionMatches(PyExc_StopIteration))
        return PYGEN_ERROR;
    PyObject *stop = ua_err_fetch();
    r = stop ? PyObject_GetAttrString(stop, "value") : Py_NewRef(Py_None);
    Py_XDECREF(stop);
    if (!r)
        return PYGEN_ERROR;
    *result = r;
    return PYGEN_RETURN;
}

/* The exception now set becomes the task's pending exception: it is
 * raised inside the task at once, where its code can handle it. */
int ua_loop_pend_error(LoopObject *self, ua_task *t)
{
    PyObject *value = ua_err_fetch();
    if (!value)
        return 0;
    Py_XSETREF(t->aux, value);
    return ua_loop_queue(self, t);
}

/* After a step: a pending wake, exception or call_later() wins over what
 * the task asked for. Returns 1 if the record was placed. */
static int place_pending(LoopObject *self, ua_task *t, int *rc)
{
    if (t->aux || (t->flags & F_WAKE)) {
        t->flags &= ~(F_WAKE | F_TIMED);
        *rc = ua_loop_queue(self, t);
        return 1;
    }
    if (t->flags & F_TIMED) {
        t->flags &= ~F_TIMED;
        *rc = ua_loop_queue_at(self, t, t->timer.deadline);
        return 1;
    }
    return 0;
}

static int place_after_delay(LoopObject *self, ua_task *t, int32_t ms)
{
    int rc;
    if (place_pending(self, t, &rc))
        return rc;
    if (!ms)
        return ua_loop_queue(self, t);
    uint32_t now;
    if (ua_loop_now(self, &now) < 0)
        return ua_loop_pend_error(self, t);
    return ua_loop_queue_at(self, t, ua_ticks_add(now, ms));
}

/* The task yielded False: unless something is pending, the loop lets go of
 * it (as uasyncio 2.0 does) until call_soon() brings it back. */
static int park(LoopObject *self, ua_task *t)
{
    int rc;
    if (place_pending(self, t, &rc))
        return rc;
    t->state = ST_NEW;
    return ua_kinds[t->kind].park(self, t);
}

/* TASK_CORO's park. */
static int coro_park(LoopObject *self, ua_task *t)
{
    /* run_until_complete()'s coroutine keeps its record (and its F_MAIN),
     * in the parked list: the loop may stop before it ends, and close(),
     * the GC and the loop's dealloc must still find it. */
    if (!(t->flags & F_MAIN)) {
        ua_task_drop(self, t);
        return 0;
    }
    if (ua_runq_push(&self->parked, t) < 0) {
        PyErr_NoMemory();
        return ua_loop_pend_error(self, t);
    }
    t->state = ST_PARKED;
    return 0;
}

static int unsupported_yield(LoopObject *self, ua_task *t, PyObject *v)
{
    PyErr_Format(PyExc_TypeError, "uasyncio: a task yielded an unsupported value: %R (of type %.100s)",
                 v, Py_TYPE(v)->tp_name);
    return ua_loop_pend_error(self, t);
}

static int yield_int(LoopObject *self, ua_task *t, PyObject *v)
{
    int32_t ms;
    if (ua_delay_from_ms(v, &ms, "yielded delay") < 0)
        return ua_loop_pend_error(self, t);
    return place_after_delay(self, t, ms);
}

/* The rarer yields: syscalls other than SleepMs, subclasses. */
static int on_yield_slow(LoopObject *self, ua_task *t, PyObject *v, PyObject **ret)
{
    if (PyObject_TypeCheck(v, &SysCall1_Type)) {
        PyObject *arg = ((SysCallObject *)v)->arg;
        arg = arg ? arg : Py_None;
        if (PyObject_TypeCheck(v, &IORead_Type))
            return ua_loop_io_wait(self, t, arg, UA_POLL_READ, ((IOWaitObject *)v)->owner);
        if (PyObject_TypeCheck(v, &IOWrite_Type))
            return ua_loop_io_wait(self, t, arg, UA_POLL_WRITE, ((IOWaitObject *)v)->owner);
        if (PyObject_TypeCheck(v, &IOReadDone_Type) || PyObject_TypeCheck(v, &IOWriteDone_Type)) {
            int dir = PyObject_TypeCheck(v, &IOReadDone_Type) ? UA_POLL_READ : UA_POLL_WRITE;
            if (ua_loop_io_done(self, arg, dir) < 0)
                return ua_loop_pend_error(self, t);
            return place_after_delay(self, t, 0);
        }
        if (PyObject_TypeCheck(v, &StopLoop_Type)) {
            /* As in 2.0: run_forever() returns arg and the task is not
             * rescheduled, unless a wake or an exception is pending for it. */
            int rc;
            if (!place_pending(self, t, &rc)) {
                t->state = ST_NEW;
                ua_task_drop(self, t);
                rc = 0;
            }
            *ret = Py_NewRef(arg);
            return rc < 0 ? -1 : 1;
        }
    }
    if (PyLong_Check(v) && !PyBool_Check(v))
        return yield_int(self, t, v);
    if (PyCoro_CheckExact(v) || PyGen_Check(v)) {
        if (ua_loop_call_soon(self, v, NULL) < 0)
            return ua_loop_pend_error(self, t);
        return place_after_delay(self, t, 0);
    }
    return unsupported_yield(self, t, v);
}

static int on_yield(LoopObject *self, ua_task *t, PyObject *v, PyObject **ret)
{
    int rc;
    UA_DEBUG_LOG("Coroutine %R yield result: %R", t->obj, v);
    if (v == Py_None)
        rc = place_after_delay(self, t, 0);
    else if (Py_IS_TYPE(v, &SleepMs_Type))
        rc = place_after_delay(self, t, ((SleepMsObject *)v)->ms);
    else if (v == Py_False)
        rc = park(self, t);
    else if (PyLong_CheckExact(v))
        rc = yield_int(self, t, v);
    else if (PyCoro_CheckExact(v) || PyGen_CheckExact(v)) {
        /* The yielded coroutine runs ahead of the task that yielded it. */
        rc = ua_loop_call_soon(self, v, NULL);
        rc = rc < 0 ? ua_loop_pend_error(self, t) : place_after_delay(self, t, 0);
    } else
        rc = on_yield_slow(self, t, v, ret);
    Py_DECREF(v);
    return rc;
}

/* The exception set escaped a task or callback: with a handler set, or on
 * a loop that reports errors (a v3 loop, whose default handler prints it,
 * as CPython's does), an Exception (not KeyboardInterrupt and the like)
 * goes to the handler and the loop goes on (0); else it stops the loop
 * (-1), as in 2.0. */
static int handle_error(LoopObject *self, const char *message, PyObject *source)
{
    if ((!self->exc_handler && !self->report_errors) || !PyErr_ExceptionMatches(PyExc_Exception))
        return -1;
    PyObject *exc = ua_err_fetch();
    int rc = ua_loop_handle_exception(self, message, exc, source);
    Py_XDECREF(exc);
    return rc < 0 ? -1 : 0;
}

/* TASK_CORO's end: returned (sr == PYGEN_RETURN, result set) or raised. */
static int coro_end(LoopObject *self, ua_task *t, PySendResult sr, PyObject *result, PyObject **ret)
{
    int main = t->flags & F_MAIN;
    if (sr == PYGEN_RETURN) {
        UA_DEBUG_LOG("Coroutine finished: %R", t->obj);
        t->state = ST_NEW;
        ua_task_drop(self, t);
        if (main) {
            *ret = result;
            self->main_done = 1;
            return 1;
        }
        Py_DECREF(result);
        return 0;
    }
    PyObject *exc = ua_err_fetch();
    int cancelled = exc && PyErr_GivenExceptionMatches(exc, ua_CancelledError);
    if (cancelled)
        UA_DEBUG_LOG("Coroutine cancelled: %R", t->obj);
    PyObject *coro = Py_NewRef(t->obj);
    t->state = ST_NEW;
    ua_task_drop(self, t);
    if (cancelled && !main) {
        Py_XDECREF(exc);
        Py_DECREF(coro);
        return 0;
    }
    ua_err_restore(exc);
    int rc = main ? -1 : handle_error(self, "Unhandled exception in task", coro);
    Py_DECREF(coro);
    return rc;
}

static int resume(LoopObject *self, ua_task *t, PyObject **ret)
{
    PyObject *coro = t->obj;
    PyObject *result;
    PySendResult sr;

    UA_DEBUG_LOG("Next coroutine to run: %R", coro);
    if (t->flags & F_MAPPED) {   /* an embedded record parked by a bare yield False */
        ua_ptrmap_del(&self->tasks, coro);
        t->flags &= ~F_MAPPED;
    }
    t->state = ST_RUNNING;
    self->current = t;
    if (self->cur_task != coro) {
        Py_INCREF(coro);
        Py_XSETREF(self->cur_task, coro);
    }
    if (t->aux) {
        PyObject *exc = t->aux;
        t->aux = NULL;
        sr = throw_into(coro, exc, &result);
        Py_DECREF(exc);
    } else {
        sr = PyIter_Send(coro, Py_None, &result);
    }
    self->current = NULL;
    /* Its timer fields taken by its kind in this step (parked on a v3
     * Wait, say), but not left parked (it yielded something else, or
     * ended, or a wake or an exception came meanwhile): the kind lets go
     * of them first, as any queue takes them. */
    if ((t->flags & F_KIND_HOLDS) &&
        (sr != PYGEN_NEXT || result != Py_False || t->aux || (t->flags & (F_WAKE | F_TIMED))))
        ua_kinds[t->kind].unhold(t);
    if (sr == PYGEN_NEXT)
        return on_yield(self, t, result, ret);
    return ua_kinds[t->kind].end(self, t, sr, result, ret);
}

/* A task is resumed; any other record, its kind runs. */
static int run_entry(LoopObject *self, ua_task *t, PyObject **ret)
{
    const ua_kind *k = &ua_kinds[t->kind];
    if (!k->run)
        return resume(self, t, ret);
    return k->run(self, t, ret);
}

/* TASK_STOP */
static int run_stop(LoopObject *self, ua_task *t, PyObject **ret)
{
    *ret = Py_NewRef(t->obj);
    ua_task_free(t);
    return 1;
}

/* TASK_CALL: the record goes before the call, which may schedule more. */
static int run_call(LoopObject *self, ua_task *t, PyObject **ret)
{
    PyObject *cb = Py_NewRef(t->obj);
    PyObject *args = Py_XNewRef(t->aux);
    ua_task_free(t);
    UA_DEBUG_LOG("Next callback to run: %R", cb);
    PyObject *r = args ? PyObject_Call(cb, args, NULL) : PyObject_CallNoArgs(cb);
    Py_XDECREF(args);
    int rc = r ? 0 : handle_error(self, "Exception in callback", cb);
    Py_DECREF(cb);
    Py_XDECREF(r);
    return rc;
}

/* ---- the run loop ----------------------------------------------------------- */

static int expire_timers(LoopObject *self)
{
    uint32_t now;
    if (ua_loop_now(self, &now) < 0)
        return -1;
    ua_timer *top;
    while ((top = ua_timerheap_peek(&self->timers)) && ua_ticks_diff(top->deadline, now) <= 0) {
        ua_timerheap_pop(&self->timers);
        ua_task *t = ua_task_of_timer(top);
        const ua_kind *k = &ua_kinds[t->kind];
        if (k->flags & UA_KIND_ON_TIMER) {
            PyObject *ret = NULL;
            if (k->run(self, t, &ret) < 0)
                return -1;
            continue;
        }
        UA_DEBUG_LOG("Moving from waitq to runq: %R", t->obj);
        if (ua_loop_queue(self, t) < 0)
            return -1;
    }
    return 0;
}

/* MicroPython's order: the next record, the earlier of the run queue's
 * head and the due timer heap's top; NULL when nothing is due, or when the
 * next one was queued (or its timer set) at or after the sequence number
 * limit: the round that began then is over, and the poller is asked before
 * it runs (MicroPython asks before every step). "Due" is by loop->now: read
 * each round, and when a record is queued while timers are pending
 * (ua_loop_stamp). */
static inline ua_task *mp_next(LoopObject *self, uint32_t limit)
{
    ua_task *q = self->runq.len ? ua_runq_at(&self->runq, 0) : NULL;
    if (self->timers.len) {
        ua_timer *top = self->timers.nodes[0];
        if (ua_ticks_diff(top->deadline, self->now) <= 0 && (!q || ua_timer_earlier(top, &q->timer))) {
            if ((int32_t)(top->seq - limit) >= 0)
                return NULL;
            ua_timerheap_pop(&self->timers);
            return ua_task_of_timer(top);
        }
    }
    if (!q || (int32_t)(q->timer.seq - limit) >= 0)
        return NULL;
    return ua_runq_pop(&self->runq);
}

/* Step (2). 2.0's pass: the expired timers join the run queue, then
 * exactly what was queued when the pass began runs. A v3 round: the steps
 * of mp_next() for the records pending when it began (the poller is asked
 * between rounds). One loop for both, so run_entry() is inlined once. */
static int run_round(LoopObject *self, PyObject **ret)
{
    size_t n;
    uint32_t limit = self->timers.next_seq;   /* what is queued from now on waits for the next round */
    if (self->mp_order) {
        n = self->runq.len + self->timers.len;
        self->coarse = ua_ticks_coarse();
        if (ua_loop_now(self, &self->now) < 0)
            return -1;
    } else {
        if (expire_timers(self) < 0)
            return -1;
        n = self->runq.len;
    }
    while (n--) {
        ua_task *t;
        if (!self->mp_order)
            t = self->runq.len ? ua_runq_pop(&self->runq) : NULL;
        else
            t = mp_next(self, limit);
        if (!t)
            break;
        int rc = run_entry(self, t, ret);
        if (rc)
            return rc;
        /* MicroPython polls before each step: a ThreadSafeFlag set meanwhile
         * (here or in another thread) wakes its waiter now, behind what this
         * step queued. One load. */
        if (ua_wakeup_asked(&self->wakeup) && self->mp_order && take_threadsafe(self) < 0)
            return -1;
    }
    return 0;
}

/* How long step (3) may block: 0, -1 (no limit), or ms to the earliest timer. */
static int next_delay(LoopObject *self, int *delay)
{
    *delay = 0;
    if (self->runq.len)
        return 0;
    ua_timer *top = ua_timerheap_peek(&self->timers);
    if (!top) {
        *delay = -1;
        return 0;
    }
    uint32_t now;
    if (ua_loop_now(self, &now) < 0)
        return -1;
    int32_t d = ua_ticks_diff(top->deadline, now);
    *delay = d < 0 ? 0 : d;
    return 0;
}

static int call_wait(LoopObject *self, int delay)
{
    if (!self->py_wait)
        return ua_loop_poll(self, delay);
    PyObject *r = PyObject_CallMethod((PyObject *)self, "wait", "i", delay);
    if (!r)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* Whether a task of a kind's may be woken from another thread. */
static int keeps_awake(LoopObject *self)
{
    for (int k = 0; k < nkinds; k++)
        if (ua_kinds[k].keeps_awake && ua_kinds[k].keeps_awake(self))
            return 1;
    return 0;
}

PyObject *ua_loop_run_forever(LoopObject *self, int until_idle)
{
    if (check_caller(self) < 0)
        return NULL;
    if (self->running) {
        PyErr_SetString(PyExc_RuntimeError, "the event loop is already running");
        return NULL;
    }
    LoopObject *outer = running_loop;
    running_loop = self;
    self->running = 1;
    self->thread = PyThread_get_thread_ident();
    Py_INCREF(self);
    int old_wakeup_fd = SIGNALS_UNTRIED;
    unsigned int passes = 0;   /* that did not block, to check signals now and then */
    PyObject *ret = NULL;
    for (;;) {
        /* One load per pass: whether another thread asked for something. */
        if (ua_wakeup_asked(&self->wakeup) && take_threadsafe(self) < 0)
            break;
        if (run_round(self, &ret) != 0)
            break;
        /* After a burst (100k tasks spawned at once), give the ring back. */
        if (self->runq.cap > 4096 && self->runq.len * 8 < self->runq.cap)
            ua_runq_shrink(&self->runq);
        int delay;
        if (next_delay(self, &delay) < 0)
            break;
        if (until_idle && delay < 0 && !self->poller.nwaiters && !self->iopoll.len && !self->ts_calls.len &&
            !ua_wakeup_asked(&self->wakeup) && !keeps_awake(self)) {
            ret = Py_NewRef(Py_None);   /* nothing can wake any task any more */
            break;
        }
        /* A loop that never blocks (the poller checks signals before it
         * blocks) still acts on a Ctrl-C caught while C code ran. */
        if (!delay && !(++passes & 255) && PyErr_CheckSignals() < 0)
            break;
        if (ua_wakeup_asked(&self->wakeup))
            delay = 0;   /* marked in this thread (ua_loop_at_next_poll), nothing written */
        if (self->vclock && delay > 0) {
            /* Virtual clock: take the I/O that is ready, then, if still
             * idle, jump to the earliest timer instead of sleeping. */
            if (call_wait(self, 0) < 0)
                break;
            ua_timer *top = ua_timerheap_peek(&self->timers);
            if (!self->runq.len && top)
                self->vnow = top->deadline;
        } else {
            if (delay && old_wakeup_fd == SIGNALS_UNTRIED)
                old_wakeup_fd = signals_attach(self);
            if (call_wait(self, delay) < 0)
                break;
        }
        if (self->closed) {
            PyErr_SetString(PyExc_RuntimeError, "the event loop was closed while running");
            break;
        }
    }
    signals_detach(old_wakeup_fd);
    self->running = 0;
    running_loop = outer;
    Py_DECREF(self);
    return ret;
}

/* ---- Python methods -------------------------------------------------------- */

static PyObject *loop_run_forever(LoopObject *self, PyObject *unused)
{
    PyObject *ret = ua_loop_run_forever(self, 0);
    if (!ret && !PyErr_Occurred())
        Py_RETURN_NONE;
    return ret;
}

static PyObject *loop_run_until_complete(LoopObject *self, PyObject *coro)
{
    if (!ua_is_coroutine(coro)) {
        PyErr_Format(PyExc_TypeError, "run_until_complete() expects a coroutine or a generator, not %.100s",
                     Py_TYPE(coro)->tp_name);
        return NULL;
    }
    if (check_caller(self) < 0)
        return NULL;
    if (self->running) {
        PyErr_SetString(PyExc_RuntimeError, "the event loop is already running");
        return NULL;
    }
    ua_task *t = ua_task_for_coro(self, coro);
    if (!t)
        return NULL;
    t->flags |= F_MAIN;
    /* A coroutine already scheduled (sleeping, say) stays where it is. */
    if (t->state == ST_NEW && ua_loop_queue(self, t) < 0)
        return NULL;
    self->main_done = 0;
    PyObject *ret = ua_loop_run_forever(self, 0);
    t = ua_ptrmap_get(&self->tasks, coro);
    if (t)
        t->flags &= ~F_MAIN;
    if (ret && !self->main_done)     /* stopped before coro ended */
        Py_SETREF(ret, Py_NewRef(Py_None));
    self->main_done = 0;
    return ret;
}

static PyObject *loop_stop(LoopObject *self, PyObject *unused)
{
    if (check_caller(self) < 0)
        return NULL;
    PyObject *zero = PyLong_FromLong(0);   /* what 2.0's run_forever() returns */
    ua_task *t = zero ? ua_task_new(TASK_STOP, zero, NULL) : NULL;
    Py_XDECREF(zero);
    if (!t || ua_loop_queue(self, t) < 0) {
        if (t)
            ua_task_free(t);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *loop_create_task(LoopObject *self, PyObject *coro)
{
    if (!ua_is_coroutine(coro)) {
        PyErr_Format(PyExc_TypeError, "create_task() expects a coroutine or a generator, not %.100s",
                     Py_TYPE(coro)->tp_name);
        return NULL;
    }
    if (check_caller(self) < 0 || ua_loop_call_soon(self, coro, NULL) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* call_soon(cb, *args) and call_soon_threadsafe(cb, *args): args packed
 * as a record keeps them (none for a coroutine). */
static PyObject *call_soon_common(LoopObject *self, PyObject *const *args, Py_ssize_t nargs,
                                  int threadsafe)
{
    if (nargs < 1) {
        PyErr_Format(PyExc_TypeError, "%s() takes a callback and its arguments",
                     threadsafe ? "call_soon_threadsafe" : "call_soon");
        return NULL;
    }
    if (!threadsafe && check_caller(self) < 0)
        return NULL;
    PyObject *cbargs = NULL;
    if (nargs > 1 && !ua_is_coroutine(args[0]) && !(cbargs = PyTuple_New(nargs - 1)))
        return NULL;
    for (Py_ssize_t i = 1; cbargs && i < nargs; i++)
        PyTuple_SET_ITEM(cbargs, i - 1, Py_NewRef(args[i]));
    int rc = threadsafe ? ua_loop_call_soon_threadsafe(self, args[0], cbargs)
                        : ua_loop_call_soon(self, args[0], cbargs);
    Py_XDECREF(cbargs);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *loop_call_soon(LoopObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return call_soon_common(self, args, nargs, 0);
}

static PyObject *loop_call_soon_threadsafe(LoopObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return call_soon_common(self, args, nargs, 1);
}

/* call_later(secs, ...) and call_later_ms(ms, ...) */
static PyObject *call_later_common(LoopObject *self, PyObject *const *args, Py_ssize_t nargs,
                                   int in_secs, const char *name)
{
    if (nargs < 2) {
        PyErr_Format(PyExc_TypeError, "%s() takes a delay, a callback and its arguments", name);
        return NULL;
    }
    int32_t ms;
    if ((in_secs ? ua_delay_from_secs(args[0], &ms, name) : ua_delay_from_ms(args[0], &ms, name)) < 0 ||
        check_caller(self) < 0)
        return NULL;
    PyObject *cbargs = PyTuple_New(nargs - 2);
    if (!cbargs)
        return NULL;
    for (Py_ssize_t i = 2; i < nargs; i++)
        PyTuple_SET_ITEM(cbargs, i - 2, Py_NewRef(args[i]));
    int rc = call_later_ms(self, ms, args[1], cbargs);
    Py_DECREF(cbargs);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *loop_call_later(LoopObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return call_later_common(self, args, nargs, 1, "call_later");
}

static PyObject *loop_call_later_ms(LoopObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return call_later_common(self, args, nargs, 0, "call_later_ms");
}

static PyObject *loop_call_at_(LoopObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"time", "callback", "args", NULL};
    PyObject *time_obj, *cb, *cbargs = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|O!:call_at_", kwlist, &time_obj, &cb,
                                     &PyTuple_Type, &cbargs))
        return NULL;
    if (!PyLong_Check(time_obj)) {
        PyErr_Format(PyExc_TypeError, "call_at_(): time must be an int (ticks), not %.100s",
                     Py_TYPE(time_obj)->tp_name);
        return NULL;
    }
    uint32_t deadline = (uint32_t)(PyLong_AsUnsignedLongLongMask(time_obj) & UA_TICKS_MASK);
    if (PyErr_Occurred())
        return NULL;
    UA_DEBUG_LOG("Scheduling in waitq: %R at %u", cb, (unsigned)deadline);
    if (check_caller(self) < 0 || schedule(self, cb, cbargs, 1, deadline) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *loop_time(LoopObject *self, PyObject *unused)
{
    return PyLong_FromUnsignedLong(self->vclock ? self->vnow : ua_ticks_ms());
}

static PyObject *loop_wait(LoopObject *self, PyObject *arg)
{
    int overflow;
    long delay = PyLong_AsLongAndOverflow(arg, &overflow);
    if (delay == -1 && PyErr_Occurred())
        return NULL;
    if (overflow > 0 || delay > INT32_MAX)
        delay = INT32_MAX;
    if (delay < 0 || overflow < 0)
        delay = -1;
    if (check_caller(self) < 0 || ua_loop_poll(self, (int)delay) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static void release_all(LoopObject *self, int finalize);

static PyObject *loop_close(LoopObject *self, PyObject *unused)
{
    if (self->running) {
        PyErr_SetString(PyExc_RuntimeError, "cannot close a running event loop");
        return NULL;
    }
    if (!self->closed) {
        self->closed = 1;
        release_all(self, 1);
        ua_poller_close(&self->poller);
        ua_wakeup_close(&self->wakeup);
    }
    Py_RETURN_NONE;
}

static PyObject *loop_repr(LoopObject *self)
{
    return PyUnicode_FromFormat("<%s running=%s closed=%s queued=%zu timers=%u>",
                                ua_type_name(Py_TYPE(self)), self->running ? "True" : "False",
                                self->closed ? "True" : "False", self->runq.len,
                                (unsigned)self->timers.len);
}

/* ---- object life ------------------------------------------------------------ */

void ua_finalize_task_obj(PyObject *obj)
{
    PyObject *close;
    int rc = ua_getattr_optional(obj, "close", &close);
    if (rc > 0) {
        PyObject *r = PyObject_CallNoArgs(close);
        Py_DECREF(close);
        rc = r ? 0 : -1;
        Py_XDECREF(r);
    }
    if (rc < 0)
        PyErr_WriteUnraisable(obj);
}

/* close(): tasks parked in a Queue, a Lock or behind a WebSocket write
 * will never run again. They are taken off the loop's list (with a
 * reference each) before any finalizer runs: one may wake them (release the
 * Lock they wait for), which unlinks them, and they must still be closed. */
static void take_waiters(LoopObject *self, ua_runq *taken)
{
    size_t n = 0;
    for (ua_wnode *w = self->waiters; w; w = ua_wq_next(&self->waiters, w))
        n++;
    if (ua_runq_reserve(taken, n) < 0)
        return;   /* no memory: they stay linked, and are closed if still there */
    while (self->waiters) {
        ua_waiter_link *link = UA_WNODE_ENTRY(self->waiters, ua_waiter_link, node);
        ua_runq_push(taken, Py_NewRef(link->task));
        ua_loop_unlink_waiter(link);
    }
}

/* Close them now, in parking order, so their finally blocks run (and they
 * leave what they wait in). An owner with no close() (a v3 Task) is
 * finalized by its kind's release, with the kind's other tasks. */
static void finalize_waiters(LoopObject *self, ua_runq *taken)
{
    while (taken->len) {
        PyObject *task = ua_runq_pop(taken);
        ua_finalize_task_obj(task);
        Py_DECREF(task);
    }
    while (self->waiters) {
        ua_waiter_link *link = UA_WNODE_ENTRY(self->waiters, ua_waiter_link, node);
        PyObject *task = Py_NewRef(link->task);
        ua_loop_unlink_waiter(link);
        ua_finalize_task_obj(task);
        Py_DECREF(task);
    }
}

/* Detach every record first, then free them: freeing runs Python code
 * (finalizers) that may touch the loop. finalize (close()): close every
 * pending coroutine too, so its finally blocks run now. */
static void release_all(LoopObject *self, int finalize)
{
    /* The loop is going away (close() or collection): code run by the
     * finalizers below must find it closed, and no record in a queue. */
    self->closed = 1;
    ua_runq taken;
    ua_runq_init(&taken);
    if (finalize)
        take_waiters(self, &taken);
    ua_runq doomed;
    ua_runq_init(&doomed);
    ua_runq_reserve(&doomed, self->runq.len + self->timers.len + (size_t)self->poller.nwaiters +
                                 2 * self->iopoll.len + self->ts_calls.len + self->parked.len + 1);
    while (self->runq.len)
        ua_runq_push(&doomed, ua_runq_pop(&self->runq));
    while (self->ts_calls.len)
        ua_runq_push(&doomed, ua_runq_pop(&self->ts_calls));
    while (self->parked.len)
        ua_runq_push(&doomed, ua_runq_pop(&self->parked));
    ua_timer *tm;
    while ((tm = ua_timerheap_pop(&self->timers)))
        ua_runq_push(&doomed, ua_task_of_timer(tm));
    for (int fd = 0; fd < self->poller.nfds && self->poller.nwaiters; fd++)
        for (int dir = 0; dir < 2; dir++) {
            void *w = ua_poller_remove(&self->poller, fd, dir);
            if (w)
                ua_runq_push(&doomed, w);
        }
    ua_iopoll_take_all(self, &doomed);
    for (size_t i = 0; i < doomed.len; i++) {
        ua_task *t = ua_runq_at(&doomed, i);
        t->state = ST_NEW;
        /* A record something else points at (a wait_for() timer) is the
         * loop's to free now: what points at it, which finalizing its task
         * below may close, must not free it too. */
        if (ua_kinds[t->kind].detach)
            ua_kinds[t->kind].detach(t);
    }
    Py_CLEAR(self->cur_task);
    while (doomed.len) {
        ua_task *t = ua_runq_pop(&doomed);
        /* close(): what is left is finalized now (its finally blocks run),
         * even if something else still holds it. */
        PyObject *obj = finalize && (ua_kinds[t->kind].flags & UA_KIND_CLOSE) ? Py_NewRef(t->obj) : NULL;
        ua_task_drop(self, t);
        if (obj) {
            ua_finalize_task_obj(obj);
            Py_DECREF(obj);
        }
    }
    ua_runq_free(&doomed);
    if (finalize)
        finalize_waiters(self, &taken);
    ua_runq_free(&taken);
    for (int k = 0; k < nkinds; k++)
        if (ua_kinds[k].release)
            ua_kinds[k].release(self, finalize);
}

static int visit_task(ua_task *t, visitproc visit, void *arg)
{
    uint8_t flags = ua_kinds[t->kind].flags;
    if (flags & UA_KIND_EMBEDDED)
        return 0;   /* its owner is visited through its kind's traverse */
    Py_VISIT(t->obj);
    if (!(flags & UA_KIND_AUX_BORROWED))
        Py_VISIT(t->aux);
    return 0;
}

static int loop_traverse(LoopObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->cur_task);
    Py_VISIT(self->main_result);
    Py_VISIT(self->exc_handler);
    Py_VISIT(self->executor);
    for (int k = 0; k < nkinds; k++) {
        int vr = ua_kinds[k].traverse ? ua_kinds[k].traverse(self, visit, arg) : 0;
        if (vr)
            return vr;
    }
    ua_runq *queues[] = {&self->runq, &self->ts_calls, &self->parked};
    for (size_t q = 0; q < sizeof(queues) / sizeof(queues[0]); q++)
        for (size_t i = 0; i < queues[q]->len; i++) {
            int r = visit_task(ua_runq_at(queues[q], i), visit, arg);
            if (r)
                return r;
        }
    for (uint32_t i = 0; i < self->timers.len; i++) {
        int r = visit_task(ua_task_of_timer(self->timers.nodes[i]), visit, arg);
        if (r)
            return r;
    }
    for (int fd = 0; fd < self->poller.nfds; fd++)
        for (int dir = 0; dir < 2; dir++) {
            ua_task *t = self->poller.fds[fd].waiter[dir];
            int r = t ? visit_task(t, visit, arg) : 0;
            if (r)
                return r;
        }
    for (size_t i = 0; i < self->iopoll.len; i++) {
        Py_VISIT(self->iopoll.items[i].obj);
        for (int dir = 0; dir < 2; dir++) {
            ua_task *t = self->iopoll.items[i].waiter[dir];
            int r = t ? visit_task(t, visit, arg) : 0;
            if (r)
                return r;
        }
    }
    if (self->current) {
        int r = visit_task(self->current, visit, arg);
        if (r)
            return r;
    }
    return 0;
}

static int loop_clear(LoopObject *self)
{
    if (!self->running)
        release_all(self, 0);
    Py_CLEAR(self->cur_task);
    Py_CLEAR(self->main_result);
    Py_CLEAR(self->exc_handler);
    Py_CLEAR(self->executor);
    return 0;
}

static void unlink_loop(LoopObject *self)
{
    if (self->prev_loop)
        self->prev_loop->next_loop = self->next_loop;
    else if (ua_all_loops == self)
        ua_all_loops = self->next_loop;
    if (self->next_loop)
        self->next_loop->prev_loop = self->prev_loop;
    self->prev_loop = self->next_loop = NULL;
}

static void loop_dealloc(LoopObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)self);
    unlink_loop(self);
    loop_clear(self);
    ua_runq_free(&self->runq);
    ua_runq_free(&self->ts_calls);
    ua_runq_free(&self->parked);
    ua_timerheap_free(&self->timers);
    ua_ptrmap_free(&self->tasks);
    ua_poller_close(&self->poller);
    ua_wakeup_close(&self->wakeup);
    /* A Python subclass's type reference is dropped by subtype_dealloc. */
    tp->tp_free((PyObject *)self);
}

static int overridden(PyTypeObject *type, PyObject *name)
{
    return _PyType_Lookup(type, name) != _PyType_Lookup(&Loop_Type, name);
}

static PyObject *loop_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    LoopObject *self = (LoopObject *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    ua_runq_init(&self->runq);
    ua_runq_init(&self->ts_calls);
    ua_runq_init(&self->parked);
    ua_timerheap_init(&self->timers);
    ua_ptrmap_init(&self->tasks, offsetof(ua_task, obj));
    self->wakeup.rfd = self->wakeup.wfd = -1;
    if (ua_poller_init(&self->poller) < 0 || ua_wakeup_init(&self->wakeup) < 0 ||
        ua_poller_set_wakeup(&self->poller, self->wakeup.rfd) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        Py_DECREF(self);
        return NULL;
    }
    /* A Python subclass may supply its own clock or wait (tests run the loop
     * on a fake clock); the base class checks once here, not per pass. */
    self->py_time = (uint8_t)overridden(type, str_time);
    self->py_wait = (uint8_t)overridden(type, str_wait);
    self->next_loop = ua_all_loops;
    if (ua_all_loops)
        ua_all_loops->prev_loop = self;
    ua_all_loops = self;
    return (PyObject *)self;
}

static int loop_init(LoopObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"runq_len", "waitq_len", NULL};
    Py_ssize_t runq_len = 16, waitq_len = 16;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|nn:EventLoop", kwlist, &runq_len, &waitq_len))
        return -1;
    if (runq_len < 0 || waitq_len < 0) {
        PyErr_SetString(PyExc_ValueError, "EventLoop(): runq_len and waitq_len must be >= 0");
        return -1;
    }
    /* 2.0's fixed capacities are initial capacities here: the queues grow. */
    if (ua_runq_reserve(&self->runq, (size_t)runq_len) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static PyMethodDef loop_methods[] = {
    {"run_forever", (PyCFunction)loop_run_forever, METH_NOARGS,
     "Run until stop() or a StopLoop syscall; returns its value."},
    {"run_until_complete", (PyCFunction)loop_run_until_complete, METH_O,
     "Run until coro ends; returns what it returned."},
    {"stop", (PyCFunction)loop_stop, METH_NOARGS, "Make run_forever() return after the entries queued before."},
    {"close", (PyCFunction)loop_close, METH_NOARGS, "Drop every pending task and release the poller."},
    {"create_task", (PyCFunction)loop_create_task, METH_O, "Schedule a coroutine."},
    {"call_soon", (PyCFunction)(void (*)(void))loop_call_soon, METH_FASTCALL,
     "call_soon(cb, *args): run a callback or resume a coroutine in the next pass."},
    {"call_soon_threadsafe", (PyCFunction)(void (*)(void))loop_call_soon_threadsafe, METH_FASTCALL,
     "call_soon_threadsafe(cb, *args): call_soon() from any thread; wakes the loop at once."},
    {"call_later", (PyCFunction)(void (*)(void))loop_call_later, METH_FASTCALL,
     "call_later(secs, cb, *args)"},
    {"call_later_ms", (PyCFunction)(void (*)(void))loop_call_later_ms, METH_FASTCALL,
     "call_later_ms(ms, cb, *args)"},
    {"call_at_", (PyCFunction)(void (*)(void))loop_call_at_, METH_VARARGS | METH_KEYWORDS,
     "call_at_(ticks, cb, args=())"},
    {"time", (PyCFunction)loop_time, METH_NOARGS, "The loop's clock: ticks_ms()."},
    {"wait", (PyCFunction)loop_wait, METH_O,
     "wait(delay_ms): block in the poller (-1: no limit) and queue what became ready."},
    {NULL},
};

static PyMemberDef loop_members[] = {
    {"cur_task", T_OBJECT, offsetof(LoopObject, cur_task), READONLY,
     "The top-level coroutine being (or last) resumed."},
    {NULL},
};

PyTypeObject Loop_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "uasyncio.core.EventLoop",
    .tp_basicsize = sizeof(LoopObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "EventLoop(runq_len=16, waitq_len=16): the uasyncio scheduler.",
    .tp_new = loop_new,
    .tp_init = (initproc)loop_init,
    .tp_dealloc = (destructor)loop_dealloc,
    .tp_traverse = (traverseproc)loop_traverse,
    .tp_clear = (inquiry)loop_clear,
    .tp_repr = (reprfunc)loop_repr,
    .tp_weaklistoffset = offsetof(LoopObject, weakreflist),
    .tp_methods = loop_methods,
    .tp_members = loop_members,
};

/* ---- the kinds of task -------------------------------------------------------- */

ua_kind ua_kinds[UA_KINDS_MAX] = {
    [TASK_CORO] = {.flags = UA_KIND_MAPPED | UA_KIND_CLOSE, .end = coro_end, .park = coro_park},
    [TASK_CALL] = {.run = run_call},
    [TASK_STOP] = {.run = run_stop},
    [TASK_AT_POLL] = {.run = run_at_poll},
    [TASK_WAKE] = {.run = run_call},   /* never run: taken by take_threadsafe() */
};
static int nkinds = UA_KIND_API;

int ua_kind_add(const ua_kind *kind)
{
    if (nkinds == UA_KINDS_MAX || (!kind->run && (!kind->end || !kind->park))) {
        PyErr_SetString(PyExc_SystemError, "ua_kind_add(): the table is full, or the kind lacks an operation");
        return -1;
    }
    ua_kinds[nkinds] = *kind;
    return nkinds++;
}

int ua_loop_ready(PyObject *module)
{
    if (!(str_throw = PyUnicode_InternFromString("throw")) ||
        !(str_time = PyUnicode_InternFromString("time")) ||
        !(str_wait = PyUnicode_InternFromString("wait")))
        return -1;
    PyObject *signal = PyImport_ImportModule("signal");
    set_wakeup_fd = signal ? PyObject_GetAttrString(signal, "set_wakeup_fd") : NULL;
    Py_XDECREF(signal);
    PyObject *threading = set_wakeup_fd ? PyImport_ImportModule("threading") : NULL;
    PyObject *main = threading ? PyObject_CallMethod(threading, "main_thread", NULL) : NULL;
    PyObject *ident = main ? PyObject_GetAttrString(main, "ident") : NULL;
    Py_XDECREF(main);
    Py_XDECREF(threading);
    if (!ident)
        return -1;
    main_thread = PyLong_AsUnsignedLong(ident);
    Py_DECREF(ident);
    if (PyErr_Occurred())
        return -1;
    if (PyType_Ready(&Loop_Type) < 0 || PyModule_AddObjectRef(module, "EventLoop", (PyObject *)&Loop_Type) < 0 ||
        ua_loop_handler_ready(module) < 0)
        return -1;
    return ua_poll_loop_ready(module);
}
