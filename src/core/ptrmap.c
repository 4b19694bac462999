#include "ptrmap.h"

#include <stdlib.h>

#define TAG_MASK UA_PTRMAP_TAG_MASK

static inline uint64_t hash_of(const void *key)
{
    /* Fibonacci hashing: the high bits of the product are well mixed. */
    return (uint64_t)(uintptr_t)key * 0x9E3779B97F4A7C15ull;
}

static inline size_t home_of(uint64_t h, size_t cap)
{
    return (size_t)(h >> 32) & (cap - 1);
}

static inline uintptr_t tag_of(uint64_t h)
{
    return (uintptr_t)(h >> 61);   /* the top 3 bits: independent of home_of's */
}

static inline const void *key_at(const ua_ptrmap *m, uintptr_t slot)
{
    return *(const void *const *)((const char *)(slot & ~TAG_MASK) + m->key_offset);
}

void ua_ptrmap_init(ua_ptrmap *m, size_t key_offset)
{
    m->slots = NULL;
    m->len = m->cap = 0;
    m->key_offset = key_offset;
}

void ua_ptrmap_free(ua_ptrmap *m)
{
    free(m->slots);
    ua_ptrmap_init(m, m->key_offset);
}

void *ua_ptrmap_get(const ua_ptrmap *m, const void *key)
{
    if (!m->len)
        return NULL;
    uint64_t h = hash_of(key);
    uintptr_t tag = tag_of(h);
    for (size_t i = home_of(h, m->cap);; i = (i + 1) & (m->cap - 1)) {
        uintptr_t s = m->slots[i];
        if (!s)
            return NULL;
        if ((s & TAG_MASK) == tag && key_at(m, s) == key)
            return (void *)(s & ~TAG_MASK);
    }
}

static void insert(uintptr_t *slots, size_t cap, uintptr_t slot, uint64_t h)
{
    size_t i = home_of(h, cap);
    while (slots[i])
        i = (i + 1) & (cap - 1);
    slots[i] = slot;
}

static int grow(ua_ptrmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    uintptr_t *slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return -1;
    for (size_t j = 0; j < m->cap; j++)
        if (m->slots[j])
            insert(slots, cap, m->slots[j], hash_of(key_at(m, m->slots[j])));
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

int ua_ptrmap_add(ua_ptrmap *m, void *item)
{
    if ((m->len + 1) * 5 > m->cap * 4 && grow(m) < 0)
        return -1;
    const void *key = *(const void *const *)((const char *)item + m->key_offset);
    uint64_t h = hash_of(key);
    insert(m->slots, m->cap, (uintptr_t)item | tag_of(h), h);
    m->len++;
    return 0;
}

void *ua_ptrmap_del(ua_ptrmap *m, const void *key)
{
    if (!m->len)
        return NULL;
    size_t mask = m->cap - 1;
    uint64_t h = hash_of(key);
    uintptr_t tag = tag_of(h);
    size_t i = home_of(h, m->cap);
    for (;; i = (i + 1) & mask) {
        uintptr_t s = m->slots[i];
        if (!s)
            return NULL;
        if ((s & TAG_MASK) == tag && key_at(m, s) == key)
            break;
    }
    void *item = (void *)(m->slots[i] & ~TAG_MASK);
    /* Backward shift: pull later members of the probe run into the hole
     * when their home slot does not lie (cyclically) in (hole, j]. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; m->slots[j]; j = (j + 1) & mask) {
        size_t home = home_of(hash_of(key_at(m, m->slots[j])), m->cap);
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            m->slots[hole] = m->slots[j];
            hole = j;
        }
    }
    m->slots[hole] = 0;
    m->len--;
    return item;
}
