/* A hash set of items found by a key pointer that each item holds: the loop
 * uses it to find the task record of a coroutine.
 *
 * A slot is one word: the item's address, whose low 3 bits carry 3 bits of
 * the key's hash, so a probe rarely (1 in 8) has to read an item that does
 * not match. Items must be 8-byte aligned: malloc and CPython's allocator
 * give that on every platform, 32-bit ones included (where they give 8, not
 * 16).
 * Open addressing, linear probing, backward-shift deletion (no tombstones),
 * load at most 4/5: about 10 bytes a member. O(1) expected. */
#ifndef UA_PTRMAP_H
#define UA_PTRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct ua_ptrmap {
    uintptr_t *slots;
    size_t len;
    size_t cap;          /* a power of two, or 0 */
    size_t key_offset;   /* where an item keeps its key: *(void **)(item + key_offset) */
} ua_ptrmap;

#define UA_PTRMAP_TAG_MASK ((uintptr_t)7)

/* The item a non-empty slot points at (for walking m->slots). */
static inline void *ua_ptrmap_slot_item(uintptr_t slot)
{
    return (void *)(slot & ~UA_PTRMAP_TAG_MASK);
}

void ua_ptrmap_init(ua_ptrmap *m, size_t key_offset);
void ua_ptrmap_free(ua_ptrmap *m);   /* frees the table, not the items */

/* The item whose key is key, or NULL. */
void *ua_ptrmap_get(const ua_ptrmap *m, const void *key);
/* Adds item (its key must not be present; item 8-byte aligned).
 * 0, or -1 on no memory (map unchanged). */
int ua_ptrmap_add(ua_ptrmap *m, void *item);
/* Removes the item whose key is key and returns it, or NULL if absent. */
void *ua_ptrmap_del(ua_ptrmap *m, const void *key);

#endif
