#include "ptrmap.h"

#include <stdlib.h>

static inline size_t slot_of(const void *key, size_t cap)
{
    /* Fibonacci hashing: objects are 16-byte aligned, so mix the high bits. */
    uint64_t h = (uint64_t)(uintptr_t)key * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 32) & (cap - 1);
}

void ua_ptrmap_init(ua_ptrmap *m)
{
    m->slots = NULL;
    m->len = m->cap = 0;
}

void ua_ptrmap_free(ua_ptrmap *m)
{
    free(m->slots);
    ua_ptrmap_init(m);
}

void *ua_ptrmap_get(const ua_ptrmap *m, const void *key)
{
    if (!m->len)
        return NULL;
    for (size_t i = slot_of(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->slots[i].key == key)
            return m->slots[i].value;
        if (!m->slots[i].key)
            return NULL;
    }
}

static int grow(ua_ptrmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    ua_ptrmap_slot *slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return -1;
    for (size_t j = 0; j < m->cap; j++) {
        if (!m->slots[j].key)
            continue;
        size_t i = slot_of(m->slots[j].key, cap);
        while (slots[i].key)
            i = (i + 1) & (cap - 1);
        slots[i] = m->slots[j];
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

int ua_ptrmap_put(ua_ptrmap *m, const void *key, void *value)
{
    /* Keep the load under 3/4 so probe runs stay short. */
    if ((m->len + 1) * 4 > m->cap * 3 && grow(m) < 0)
        return -1;
    size_t i = slot_of(key, m->cap);
    while (m->slots[i].key && m->slots[i].key != key)
        i = (i + 1) & (m->cap - 1);
    if (!m->slots[i].key) {
        m->slots[i].key = key;
        m->len++;
    }
    m->slots[i].value = value;
    return 0;
}

void *ua_ptrmap_del(ua_ptrmap *m, const void *key)
{
    if (!m->len)
        return NULL;
    size_t mask = m->cap - 1;
    size_t i = slot_of(key, m->cap);
    while (m->slots[i].key != key) {
        if (!m->slots[i].key)
            return NULL;
        i = (i + 1) & mask;
    }
    void *value = m->slots[i].value;
    /* Backward shift: pull later members of the probe run into the hole
     * when their home slot does not lie (cyclically) in (hole, j]. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
        size_t home = slot_of(m->slots[j].key, m->cap);
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            m->slots[hole] = m->slots[j];
            hole = j;
        }
    }
    m->slots[hole].key = NULL;
    m->slots[hole].value = NULL;
    m->len--;
    return value;
}
