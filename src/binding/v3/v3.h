/* What v3/ (uasyncio.v3: today's MicroPython asyncio) offers the module's
 * init. */
#ifndef UA_V3_H
#define UA_V3_H

#include "loop/loop.h"

int ua_v3_ready(PyObject *module);          /* the submodule _v3 */
int ua_v3_stream_ready(PyObject *module);   /* Stream and Acceptor (stream.c), in the module itself */
LoopObject *ua_v3_default_loop_borrowed(void);   /* v3's default loop, or NULL */

#endif
