/* Queues of waiters: what 2.0's Queue and Lock, v3's Event, Lock, Queue and
 * a Task's done-list, and the loop's list of parked tasks all keep.
 *
 * Intrusive (the waiter embeds its node: no allocation), circular and
 * doubly linked, FIFO; each node knows the queue it is in, so a waiter that
 * is cancelled leaves in O(1) without being told where it waits. A queue
 * is a pointer to its first node, NULL when empty, so a zeroed object holds
 * empty queues. */
#ifndef UA_WAITQ_H
#define UA_WAITQ_H

#include <stddef.h>

typedef struct ua_wnode {
    struct ua_wnode *next, *prev;   /* NULL while not linked */
    struct ua_wnode **queue;        /* the queue it is in, or NULL */
} ua_wnode;

/* The object that embeds node as its member. */
#define UA_WNODE_ENTRY(node, type, member) ((type *)((char *)(node) - offsetof(type, member)))

/* O(1). n (not linked) goes last in q. */
static inline void ua_wq_push(ua_wnode **q, ua_wnode *n)
{
    ua_wnode *head = *q;
    if (!head) {
        n->next = n->prev = n;
        *q = n;
    } else {
        n->next = head;
        n->prev = head->prev;
        head->prev->next = n;
        head->prev = n;
    }
    n->queue = q;
}

/* O(1). n leaves its queue; a node in none is left alone. */
static inline void ua_wq_unlink(ua_wnode *n)
{
    ua_wnode **q = n->queue;
    if (!q)
        return;
    if (n->next == n) {
        *q = NULL;
    } else {
        n->prev->next = n->next;
        n->next->prev = n->prev;
        if (*q == n)
            *q = n->next;
    }
    n->next = n->prev = NULL;
    n->queue = NULL;
}

/* The node after n in its queue q, or NULL after the last (for walking a
 * queue that does not change meanwhile). */
static inline ua_wnode *ua_wq_next(ua_wnode *const *q, const ua_wnode *n)
{
    return n->next == *q ? NULL : n->next;
}

#endif
