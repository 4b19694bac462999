/* A hash map from pointer to pointer: open addressing, linear probing,
 * backward-shift deletion (no tombstones). The loop uses it to find the
 * task record of a coroutine; lookups and updates are O(1) expected.
 * NULL is not a valid key. */
#ifndef UA_PTRMAP_H
#define UA_PTRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct ua_ptrmap_slot {
    const void *key;
    void *value;
} ua_ptrmap_slot;

typedef struct ua_ptrmap {
    ua_ptrmap_slot *slots;
    size_t len;
    size_t cap;   /* a power of two, or 0 */
} ua_ptrmap;

void ua_ptrmap_init(ua_ptrmap *m);
void ua_ptrmap_free(ua_ptrmap *m);

void *ua_ptrmap_get(const ua_ptrmap *m, const void *key);   /* NULL if absent */
/* Inserts or replaces. 0, or -1 on no memory (map unchanged). */
int ua_ptrmap_put(ua_ptrmap *m, const void *key, void *value);
/* Removes the key; returns its value, or NULL if absent. */
void *ua_ptrmap_del(ua_ptrmap *m, const void *key);

#endif
