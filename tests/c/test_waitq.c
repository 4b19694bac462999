/* Unit tests of waitq.h: the intrusive FIFO queues of waiters. */
#include "check.h"
#include "waitq.h"

typedef struct {
    int id;
    ua_wnode node;
} item;

static int id_at(ua_wnode *n)
{
    return UA_WNODE_ENTRY(n, item, node)->id;
}

/* The ids in q, in order, as one number (digits), and the links checked
 * both ways on the way. */
static long ids(ua_wnode **q)
{
    long v = 0;
    for (ua_wnode *n = *q; n; n = ua_wq_next(q, n)) {
        if (!CHECK(n->queue == q) || !CHECK(n->next->prev == n) || !CHECK(n->prev->next == n))
            return -1;
        v = v * 10 + id_at(n);
    }
    return v;
}

static void test_push_keeps_fifo_order(void)
{
    item it[4] = {{.id = 1}, {.id = 2}, {.id = 3}, {.id = 4}};
    ua_wnode *q = NULL;
    CHECK_EQ(ids(&q), 0);
    for (int i = 0; i < 4; i++)
        ua_wq_push(&q, &it[i].node);
    CHECK_EQ(ids(&q), 1234);
    CHECK_EQ(id_at(q), 1);
}

static void test_unlink_first_middle_last_and_only(void)
{
    item it[4] = {{.id = 1}, {.id = 2}, {.id = 3}, {.id = 4}};
    ua_wnode *q = NULL;
    for (int i = 0; i < 4; i++)
        ua_wq_push(&q, &it[i].node);
    ua_wq_unlink(&it[0].node);
    CHECK_EQ(ids(&q), 234);
    ua_wq_unlink(&it[2].node);
    CHECK_EQ(ids(&q), 24);
    ua_wq_unlink(&it[3].node);
    CHECK_EQ(ids(&q), 2);
    ua_wq_unlink(&it[1].node);
    CHECK(q == NULL);
    for (int i = 0; i < 4; i++)
        CHECK(!it[i].node.queue && !it[i].node.next && !it[i].node.prev);
}

static void test_unlink_of_an_unlinked_node_does_nothing(void)
{
    item a = {.id = 1}, b = {.id = 2};
    ua_wnode *q = NULL;
    ua_wq_push(&q, &a.node);
    ua_wq_unlink(&b.node);   /* zeroed: in no queue */
    CHECK_EQ(ids(&q), 1);
    ua_wq_unlink(&a.node);
    ua_wq_unlink(&a.node);
    CHECK(q == NULL);
}

static void test_a_node_moves_between_queues(void)
{
    item it[3] = {{.id = 1}, {.id = 2}, {.id = 3}};
    ua_wnode *q1 = NULL, *q2 = NULL;
    for (int i = 0; i < 3; i++)
        ua_wq_push(&q1, &it[i].node);
    ua_wq_unlink(&it[1].node);
    ua_wq_push(&q2, &it[1].node);
    CHECK_EQ(ids(&q1), 13);
    CHECK_EQ(ids(&q2), 2);
    ua_wq_unlink(&it[0].node);
    ua_wq_push(&q2, &it[0].node);
    CHECK_EQ(ids(&q1), 3);
    CHECK_EQ(ids(&q2), 21);
}

int main(void)
{
    RUN(test_push_keeps_fifo_order);
    RUN(test_unlink_first_middle_last_and_only);
    RUN(test_unlink_of_an_unlinked_node_does_nothing);
    RUN(test_a_node_moves_between_queues);
    return check_summary("test_waitq");
}
