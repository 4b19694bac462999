/* What v2/ (uasyncio 2.0 beyond the loop: its module functions, wait_for,
 * Queue and Lock) offers the module's init. */
#ifndef UA_V2_H
#define UA_V2_H

#include "loop/loop.h"

int ua_v2_ready(PyObject *module);
LoopObject *ua_v2_default_loop_borrowed(void);   /* 2.0's default loop, or NULL */

#endif
