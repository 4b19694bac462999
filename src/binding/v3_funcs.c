/* uasyncio.v3's gather() and wait_for(): Waits over tasks. */
#include "v3.h"

void ua_v3_gather_child_done(WaitObject *g, TaskObject *child)
{
}

void ua_v3_gather_forget(WaitObject *g)
{
}
