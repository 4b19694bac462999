/* Unit tests of ptrmap.h / ptrmap.c: the set of items found by the key
 * pointer each item holds. */
#include "check.h"
#include "ptrmap.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* An item as the loop has one: 16-byte aligned, key not at offset 0, so a
 * map that ignored key_offset would read the wrong field. */
typedef struct item {
    _Alignas(16) long id;
    const void *key;
} item;

#define KEY_OFFSET offsetof(item, key)

/* Keys are made-up addresses; the map only compares them. `stride` picks
 * their spacing: 16 is what object pointers look like. */
static const void *key_at(size_t i, size_t stride)
{
    return (const void *)(uintptr_t)(0x10000u + i * stride);
}

static item *new_items(size_t n)
{
    item *v = aligned_alloc(16, n * sizeof(item));
    if (v)
        for (size_t i = 0; i < n; i++)
            v[i] = (item){.id = (long)i, .key = NULL};
    return v;
}

static int is_pow2(size_t n)
{
    return n && !(n & (n - 1));
}

/* The item a table slot points at (the low bits are a hash tag). */
static item *slot_item(uintptr_t slot)
{
    return ua_ptrmap_slot_item(slot);
}

/* Counted members match len, load stays at most 4/5, and every member is
 * found by its key (so no probe run has been broken by a deletion). */
static int map_ok(const ua_ptrmap *m)
{
    size_t count = 0;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i])
            continue;
        count++;
        item *it = slot_item(m->slots[i]);
        if (ua_ptrmap_get(m, it->key) != it)
            return 0;
    }
    if (count != m->len)
        return 0;
    return m->cap == 0 || (is_pow2(m->cap) && m->len * 5 <= m->cap * 4);
}

static void test_empty_map_finds_nothing(void)
{
    ua_ptrmap m;
    ua_ptrmap_init(&m, KEY_OFFSET);
    CHECK_EQ(m.key_offset, KEY_OFFSET);
    CHECK(ua_ptrmap_get(&m, key_at(1, 16)) == NULL);
    CHECK(ua_ptrmap_del(&m, key_at(1, 16)) == NULL);
    CHECK_EQ(m.len, 0);
    ua_ptrmap_free(&m);
    CHECK(m.slots == NULL);
    CHECK_EQ(m.cap, 0);
}

static void test_add_get_del(void)
{
    item *v = new_items(2);
    if (!CHECK(v != NULL))
        return;
    ua_ptrmap m;
    ua_ptrmap_init(&m, KEY_OFFSET);
    const void *k = key_at(3, 16);
    v[0].key = k;
    CHECK_EQ(ua_ptrmap_add(&m, &v[0]), 0);
    CHECK_EQ(m.len, 1);
    CHECK(ua_ptrmap_get(&m, k) == &v[0]);
    CHECK(ua_ptrmap_get(&m, key_at(4, 16)) == NULL);
    /* The item's own address is not its key. */
    CHECK(ua_ptrmap_get(&m, &v[0]) == NULL);

    CHECK(ua_ptrmap_del(&m, k) == &v[0]);
    CHECK_EQ(m.len, 0);
    CHECK(ua_ptrmap_get(&m, k) == NULL);
    /* A second delete, or one of a key never there, is a no-op. */
    CHECK(ua_ptrmap_del(&m, k) == NULL);
    CHECK(ua_ptrmap_del(&m, key_at(4, 16)) == NULL);
    CHECK_EQ(m.len, 0);
    CHECK(map_ok(&m));
    ua_ptrmap_free(&m);
    free(v);
}

static void test_replace_is_del_then_add_of_another_item(void)
{
    item *v = new_items(2);
    if (!CHECK(v != NULL))
        return;
    ua_ptrmap m;
    ua_ptrmap_init(&m, KEY_OFFSET);
    const void *k = key_at(9, 16);
    v[0].key = v[1].key = k;
    CHECK_EQ(ua_ptrmap_add(&m, &v[0]), 0);
    CHECK(ua_ptrmap_get(&m, k) == &v[0]);
    CHECK(ua_ptrmap_del(&m, k) == &v[0]);
    CHECK_EQ(ua_ptrmap_add(&m, &v[1]), 0);
    CHECK_EQ(m.len, 1);
    CHECK(ua_ptrmap_get(&m, k) == &v[1]);
    CHECK(map_ok(&m));
    ua_ptrmap_free(&m);
    free(v);
}

static void test_free_keeps_key_offset_for_reuse(void)
{
    item *v = new_items(3);
    if (!CHECK(v != NULL))
        return;
    ua_ptrmap m;
    ua_ptrmap_init(&m, KEY_OFFSET);
    for (int i = 0; i < 3; i++) {
        v[i].key = key_at((size_t)i, 16);
        ua_ptrmap_add(&m, &v[i]);
    }
    ua_ptrmap_free(&m);
    CHECK(m.slots == NULL);
    CHECK_EQ(m.len, 0);
    CHECK_EQ(m.cap, 0);
    CHECK_EQ(m.key_offset, KEY_OFFSET);
    CHECK(ua_ptrmap_get(&m, key_at(1, 16)) == NULL);
    CHECK_EQ(ua_ptrmap_add(&m, &v[1]), 0);
    CHECK(ua_ptrmap_get(&m, key_at(1, 16)) == &v[1]);
    ua_ptrmap_free(&m);
    free(v);
}

static void test_real_heap_pointers_as_keys(void)
{
    enum { N = 300 };
    void *objs[N];
    item *v = new_items(N);
    if (!CHECK(v != NULL))
        return;
    ua_ptrmap m;
    ua_ptrmap_init(&m, KEY_OFFSET);
    for (int i = 0; i < N; i++) {
        objs[i] = malloc(32);
        v[i].key = objs[i];
        ua_ptrmap_add(&m, &v[i]);
    }
    CHECK_EQ(m.len, N);
    int ok = 1;
    for (int i = 0; i < N && ok; i++)
        ok = CHECK(ua_ptrmap_get(&m, objs[i]) == &v[i]);
    CHECK(map_ok(&m));
    for (int i = 0; i < N; i++)
        free(objs[i]);
    ua_ptrmap_free(&m);
    free(v);
}

static void growth_with_stride(size_t stride)
{
    enum { N = 100000 };
    item *v = new_items(N);
    if (!CHECK(v != NULL))
        return;
    ua_ptrmap m;
    ua_ptrmap_init(&m, KEY_OFFSET);
    int ok = 1;
    for (size_t i = 0; i < N && ok; i++) {
        v[i].key = key_at(i, stride);
        /* The header promises a load of at most 4/5 at all times. */
        ok = CHECK_EQ(ua_ptrmap_add(&m, &v[i]), 0) && CHECK(m.len * 5 <= m.cap * 4);
    }
    CHECK_EQ(m.len, N);
    CHECK(m.len * 5 <= m.cap * 4);
    CHECK(is_pow2(m.cap));
    for (size_t i = 0; i < N && ok; i++)
        ok = CHECK(ua_ptrmap_get(&m, key_at(i, stride)) == &v[i]);
    /* Keys next to the stored ones are absent. */
    for (size_t i = N; i < 2 * N && ok; i++)
        ok = CHECK(ua_ptrmap_get(&m, key_at(i, stride)) == NULL);
    CHECK(map_ok(&m));
    ua_ptrmap_free(&m);
    free(v);
}

static void test_growth_to_100k_items(void)
{
    /* Byte-spaced, object-like and page-spaced keys, so a hash that only
     * looks at some bits would cluster in one of them. */
    growth_with_stride(1);
    growth_with_stride(16);
    growth_with_stride(4096);
}

static void test_delete_every_other_key_keeps_rest_findable(void)
{
    enum { N = 5000 };
    item *v = new_items(N);
    if (!CHECK(v != NULL))
        return;
    ua_ptrmap m;
    ua_ptrmap_init(&m, KEY_OFFSET);
    for (size_t i = 0; i < N; i++) {
        v[i].key = key_at(i, 16);
        ua_ptrmap_add(&m, &v[i]);
    }
    int ok = 1;
    for (size_t i = 0; i < N && ok; i += 2)
        ok = CHECK(ua_ptrmap_del(&m, key_at(i, 16)) == &v[i]);
    CHECK_EQ(m.len, N / 2);
    for (size_t i = 0; i < N && ok; i++)
        ok = CHECK(ua_ptrmap_get(&m, key_at(i, 16)) == (i % 2 ? &v[i] : NULL));
    CHECK(map_ok(&m));
    ua_ptrmap_free(&m);
    free(v);
}

/* The slot an item lands in when alone in a fresh 16-slot map: its key's
 * home slot there. Read through the public slots array, no copy of the
 * hash. */
static size_t home16(item *it)
{
    ua_ptrmap m;
    ua_ptrmap_init(&m, KEY_OFFSET);
    ua_ptrmap_add(&m, it);
    size_t home = 0;
    while (home < m.cap && slot_item(m.slots[home]) != it)
        home++;
    ua_ptrmap_free(&m);
    return home;
}

static void test_deleting_in_a_run_that_wraps_the_table(void)
{
    /* Gather keys homed at slots 14, 15 and 0 of a 16-slot table: stored
     * together they form one probe run across the end of the array, the
     * case where backward shift has to compare positions modulo cap. */
    enum { N = 11 };   /* 11 members stay within the 16-slot table */
    item *v = new_items(N);
    if (!CHECK(v != NULL))
        return;
    size_t n = 0, want[3] = {4, 4, 3};
    for (size_t i = 0; n < N && i < 1000000; i++) {
        v[n].key = key_at(i, 16);
        size_t h = home16(&v[n]);
        size_t b = h == 14 ? 0 : h == 15 ? 1 : h == 0 ? 2 : 3;
        if (b < 3 && want[b]) {
            want[b]--;
            n++;
        }
    }
    if (!CHECK_EQ(n, N)) {
        free(v);
        return;
    }
    /* Delete each item in turn from a fresh map and check the others. */
    for (size_t victim = 0; victim < n; victim++) {
        ua_ptrmap m;
        ua_ptrmap_init(&m, KEY_OFFSET);
        for (size_t i = 0; i < n; i++)
            ua_ptrmap_add(&m, &v[i]);
        CHECK_EQ(m.cap, 16);
        /* The run really crosses the end: last and first slots in use. */
        CHECK(m.slots[15] && m.slots[0]);
        CHECK(ua_ptrmap_del(&m, v[victim].key) == &v[victim]);
        for (size_t i = 0; i < n; i++)
            CHECK(ua_ptrmap_get(&m, v[i].key) == (i == victim ? NULL : &v[i]));
        CHECK(map_ok(&m));
        ua_ptrmap_free(&m);
    }
    /* And delete all of them in a shuffled order from one map. */
    ua_ptrmap m;
    ua_ptrmap_init(&m, KEY_OFFSET);
    for (size_t i = 0; i < n; i++)
        ua_ptrmap_add(&m, &v[i]);
    size_t order[N];
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (size_t i = n; i > 1; i--) {
        size_t j = check_rand_below((unsigned)i), t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++) {
        ok = CHECK(ua_ptrmap_del(&m, v[order[i]].key) == &v[order[i]]) && CHECK(map_ok(&m));
        for (size_t j = i + 1; j < n && ok; j++)
            ok = CHECK(ua_ptrmap_get(&m, v[order[j]].key) == &v[order[j]]);
    }
    CHECK_EQ(m.len, 0);
    ua_ptrmap_free(&m);
    free(v);
}

/* Random add/del/get over a key universe, checked against a plain array of
 * which item holds each key now. Two items per key, so a key comes back
 * with a different item, as a finished task's coroutine address may. */
static void random_against_reference(size_t universe, size_t stride, int ops)
{
    item *v = new_items(2 * universe);
    item **ref = calloc(universe, sizeof(*ref));
    if (!CHECK(v != NULL && ref != NULL)) {
        free(v);
        free(ref);
        return;
    }
    for (size_t i = 0; i < 2 * universe; i++)
        v[i].key = key_at(i / 2, stride);
    size_t ref_len = 0;
    ua_ptrmap m;
    ua_ptrmap_init(&m, KEY_OFFSET);
    int ok = 1;
    for (int op = 0; op < ops && ok; op++) {
        size_t k = check_rand_below((unsigned)universe);
        const void *key = key_at(k, stride);
        unsigned what = check_rand_below(10);
        if (what < 4) {
            if (ref[k])
                continue;   /* adding a present key is not allowed */
            item *it = &v[2 * k + check_rand_below(2)];
            ok = CHECK_EQ(ua_ptrmap_add(&m, it), 0);
            ref[k] = it;
            ref_len++;
        } else if (what < 8) {
            ok = CHECK(ua_ptrmap_del(&m, key) == ref[k]);
            if (ref[k])
                ref_len--;
            ref[k] = NULL;
        } else {
            ok = CHECK(ua_ptrmap_get(&m, key) == ref[k]);
        }
        ok = ok && CHECK_EQ(m.len, ref_len);
        if (ok && op % 5000 == 0) {
            for (size_t j = 0; j < universe && ok; j++)
                ok = CHECK(ua_ptrmap_get(&m, key_at(j, stride)) == ref[j]);
            ok = ok && CHECK(map_ok(&m));
        }
    }
    for (size_t j = 0; j < universe && ok; j++)
        ok = CHECK(ua_ptrmap_get(&m, key_at(j, stride)) == ref[j]);
    CHECK(map_ok(&m));
    ua_ptrmap_free(&m);
    free(ref);
    free(v);
}

/* 32-bit platforms (armhf, i386): CPython's allocator aligns to 8, not 16.
 * Items at 8 mod 16 must be found like any others. */
typedef struct item8 {
    _Alignas(8) long long id;
    const void *key;
} item8;

static void test_items_only_8_byte_aligned(void)
{
    enum { N = 4096 };
    /* Every item at 8 mod 16: the worst case for a 4-bit tag. */
    enum { STRIDE = 32 };   /* a multiple of 16, room for an item8 */
    char *block = aligned_alloc(16, N * STRIDE + 16);
    CHECK(block != NULL);
    if (!block)
        return;
    static item8 *items[N];
    for (size_t i = 0; i < N; i++) {
        items[i] = (item8 *)(block + 8 + i * STRIDE);
        items[i]->id = (long long)i;
        items[i]->key = key_at(i, 16);
    }
    ua_ptrmap m;
    ua_ptrmap_init(&m, offsetof(item8, key));
    int found = 0, misplaced = 0;
    for (size_t i = 0; i < N; i++) {
        misplaced += ((uintptr_t)items[i] & 15) != 8;
        CHECK_EQ(ua_ptrmap_add(&m, items[i]), 0);
    }
    CHECK_EQ(misplaced, 0);
    for (size_t i = 0; i < N; i++)
        found += ua_ptrmap_get(&m, key_at(i, 16)) == items[i];
    CHECK_EQ(found, N);
    for (size_t i = 0; i < N; i += 2)
        CHECK(ua_ptrmap_del(&m, key_at(i, 16)) == items[i]);
    found = 0;
    for (size_t i = 0; i < N; i++)
        found += ua_ptrmap_get(&m, key_at(i, 16)) == (i % 2 ? items[i] : NULL);
    CHECK_EQ(found, N);
    CHECK_EQ(m.len, N / 2);
    ua_ptrmap_free(&m);
    free(block);
}

static void test_random_ops_match_reference(void)
{
    /* A small universe keeps the table dense and the probe runs long; a
     * big one makes it grow many times while deleting. */
    random_against_reference(12, 16, 100000);
    random_against_reference(40, 16, 300000);
    random_against_reference(5000, 16, 300000);
    random_against_reference(3000, 4096, 200000);
    random_against_reference(3000, 1, 200000);
}

int main(void)
{
    RUN(test_empty_map_finds_nothing);
    RUN(test_add_get_del);
    RUN(test_replace_is_del_then_add_of_another_item);
    RUN(test_free_keeps_key_offset_for_reuse);
    RUN(test_real_heap_pointers_as_keys);
    RUN(test_growth_to_100k_items);
    RUN(test_delete_every_other_key_keeps_rest_findable);
    RUN(test_deleting_in_a_run_that_wraps_the_table);
    RUN(test_items_only_8_byte_aligned);
    RUN(test_random_ops_match_reference);
    return check_summary("test_ptrmap");
}
