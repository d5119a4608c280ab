/* audience.c -- audience definitions and the member index in the store
 * (see audience.h).
 *
 * Encodings, in the store's automation tables:
 *   audiences        name -> u8 version (1), be32 id, be64 created_ms,
 *                    u8 ready, be64 members, the canonical rule text
 *                    "\0next_id" -> be32: the next id to hand out
 *   audience_members be32 id + customer id -> be64 entered_ms */
#include "audience.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytecur.h"
#include "error_internal.h"
#include "leadscore/error.h"

#define DEF_VERSION 1
#define DEF_HEADER (1 + 4 + 8 + 1 + 8)
static const char NEXT_ID_KEY[] = "\0next_id";
#define NEXT_ID_KEY_LEN (sizeof NEXT_ID_KEY - 1)

int audience_name_check(const char *name, size_t len, char *err, size_t errlen)
{
    if (len == 0 || len > AUDIENCE_NAME_MAX)
        return ls_fail(err, errlen, LS_EBADREQ, "an audience name is 1 to %d characters", AUDIENCE_NAME_MAX);
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.'))
            return ls_fail(err, errlen, LS_EBADREQ,
                           "an audience name may hold only letters, digits, '_', '-' and '.' (bad character at %zu)",
                           i + 1);
    }
    return LS_OK;
}

/* ------------------------------------------------------------------ */
/* Encoding                                                            */
/* ------------------------------------------------------------------ */

static int decode_def(const store_bytes *key, const store_bytes *val, audience_info *out)
{
    bytecur_r r = {val->ptr, val->len, 0};
    uint8_t version = 0, ready = 0;
    if (key->len == 0 || key->len > AUDIENCE_NAME_MAX || val->len < DEF_HEADER ||
        val->len - DEF_HEADER > ARULE_MAX_TEXT)
        return LS_EPARSE;
    bytecur_get(&r, &version, 1);
    if (version != DEF_VERSION)
        return LS_EVERSION;
    memcpy(out->name, key->ptr, key->len);
    out->name[key->len] = '\0';
    out->id = bytecur_get_be32(&r);
    out->created_ms = (int64_t)bytecur_get_be64(&r);
    bytecur_get(&r, &ready, 1);
    out->ready = ready != 0;
    out->members = bytecur_get_be64(&r);
    memcpy(out->rule, r.p, r.left);
    out->rule[r.left] = '\0';
    return r.bad ? LS_EPARSE : LS_OK;
}

static int put_def(store_wtxn *w, const audience_info *in)
{
    uint8_t buf[DEF_HEADER + ARULE_MAX_TEXT];
    size_t rule_len = strlen(in->rule);
    bytecur_w c = {buf, sizeof buf, 0};
    uint8_t version = DEF_VERSION, ready = (uint8_t)in->ready;
    bytecur_put(&c, &version, 1);
    bytecur_put_be32(&c, in->id);
    bytecur_put_be64(&c, (uint64_t)in->created_ms);
    bytecur_put(&c, &ready, 1);
    bytecur_put_be64(&c, in->members);
    bytecur_put(&c, in->rule, rule_len);
    if (c.bad)
        return LS_ETOOLARGE;
    return store_wtxn_tput(w, STORE_T_AUDIENCES, in->name, strlen(in->name), buf, (size_t)(c.p - buf));
}

static int next_id(store_wtxn *w, uint32_t *out)
{
    store_bytes v;
    uint8_t b[4];
    int rc = store_wtxn_tget(w, STORE_T_AUDIENCES, NEXT_ID_KEY, NEXT_ID_KEY_LEN, &v);
    if (rc && rc != LS_ENOTFOUND)
        return rc;
    *out = rc == LS_OK && v.len == 4 ? bytecur_load_be32(v.ptr) : 1;
    bytecur_store_be32(b, *out + 1);
    return store_wtxn_tput(w, STORE_T_AUDIENCES, NEXT_ID_KEY, NEXT_ID_KEY_LEN, b, 4);
}


/* ------------------------------------------------------------------ */
/* The writer's set                                                    */
/* ------------------------------------------------------------------ */

void audience_set_free(audience_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        arule_free(&set->defs[i].rule);
    free(set->defs);
    set->defs = NULL;
    set->n = 0;
}

typedef struct {
    audience_set *set;
    int rc;
} load_ctx;

static int load_one(void *arg, const store_bytes *key, const store_bytes *val)
{
    load_ctx *lc = arg;
    audience_set *set = lc->set;
    if (key->len && key->ptr[0] == '\0')
        return 0; /* a reserved key */
    if (set->n == AUDIENCE_MAX)
        return 0;
    audience_def *d = &set->defs[set->n];
    memset(d, 0, sizeof *d);
    if (decode_def(key, val, &d->info) != LS_OK)
        return 0; /* unreadable: left alone, never evaluated */
    if (arule_parse(d->info.rule, &d->rule, NULL, 0) != LS_OK)
        return 0;
    set->n++;
    return 0;
}

int audience_set_load(audience_set *set, store_wtxn *w)
{
    audience_set_free(set);
    set->defs = calloc(AUDIENCE_MAX, sizeof *set->defs);
    if (!set->defs)
        return LS_ENOMEM;
    load_ctx lc = {set, LS_OK};
    int rc = store_wtxn_tscan(w, STORE_T_AUDIENCES, NULL, 0, load_one, &lc);
    return rc ? rc : lc.rc;
}

/* strcmp of a NUL-terminated name against name/len. */
static int name_cmp(const char *a, const char *b, size_t blen)
{
    size_t alen = strlen(a);
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c ? c : (alen > blen) - (alen < blen);
}

static audience_def *find_name(audience_set *set, const char *name, size_t len)
{
    for (size_t i = 0; i < set->n; i++)
        if (name_cmp(set->defs[i].info.name, name, len) == 0)
            return &set->defs[i];
    return NULL;
}

audience_def *audience_find_id(audience_set *set, uint32_t id)
{
    for (size_t i = 0; i < set->n; i++)
        if (set->defs[i].info.id == id)
            return &set->defs[i];
    return NULL;
}

/* Deletes an audience's member index (its id is never reused). */
static int drop_members(store_wtxn *w, uint32_t id)
{
    uint8_t prefix[4];
    size_t deleted;
    bytecur_store_be32(prefix, id);
    return store_wtxn_tdel_prefix(w, STORE_T_MEMBERS, prefix, 4, &deleted);
}

int audience_put(audience_set *set, store_wtxn *w, const char *name, size_t name_len, const char *rule_text,
                 int64_t now_ms, int *created, int *changed, char *err, size_t errlen)
{
    arule *rule = NULL;
    *created = *changed = 0;
    int rc = audience_name_check(name, name_len, err, errlen);
    if (rc)
        return rc;
    if ((rc = arule_parse(rule_text, &rule, err, errlen)) != LS_OK)
        return rc;
    audience_def *d = find_name(set, name, name_len);
    if (d && strcmp(d->info.rule, arule_text(rule)) == 0) {
        arule_free(&rule);
        return LS_OK; /* the same rule: nothing to rebuild */
    }
    if (!d && set->n == AUDIENCE_MAX) {
        arule_free(&rule);
        return ls_fail(err, errlen, LS_ETOOLARGE, "a store holds at most %d audiences: delete one first",
                       AUDIENCE_MAX);
    }
    uint32_t id;
    if ((rc = next_id(w, &id)) != LS_OK) {
        arule_free(&rule);
        return rc;
    }
    if (d) {
        if ((rc = drop_members(w, d->info.id)) != LS_OK) {
            arule_free(&rule);
            return rc;
        }
        arule_free(&d->rule);
    } else {
        size_t at = 0; /* keep name order */
        while (at < set->n && name_cmp(set->defs[at].info.name, name, name_len) < 0)
            at++;
        memmove(&set->defs[at + 1], &set->defs[at], (set->n - at) * sizeof *set->defs);
        set->n++;
        d = &set->defs[at];
        *created = 1;
    }
    memset(d, 0, sizeof *d);
    memcpy(d->info.name, name, name_len);
    d->info.id = id;
    d->info.created_ms = now_ms;
    snprintf(d->info.rule, sizeof d->info.rule, "%s", arule_text(rule));
    d->rule = rule;
    *changed = 1;
    return put_def(w, &d->info);
}

int audience_delete(audience_set *set, store_wtxn *w, const char *name, size_t name_len, int *deleted)
{
    *deleted = 0;
    audience_def *d = find_name(set, name, name_len);
    if (!d)
        return LS_OK;
    int rc = drop_members(w, d->info.id);
    if (rc == LS_OK)
        rc = store_wtxn_tdel(w, STORE_T_AUDIENCES, name, name_len);
    if (rc)
        return rc;
    arule_free(&d->rule);
    size_t at = (size_t)(d - set->defs);
    memmove(&set->defs[at], &set->defs[at + 1], (set->n - at - 1) * sizeof *set->defs);
    set->n--;
    *deleted = 1;
    return LS_OK;
}

int audience_set_member(audience_def *d, store_wtxn *w, const char *id, size_t len, int member, int64_t now_ms)
{
    uint8_t key[4 + STORE_MAX_KEY], val[8];
    if (len > STORE_MAX_KEY - 4)
        return LS_ETOOLARGE;
    bytecur_store_be32(key, d->info.id);
    memcpy(key + 4, id, len);
    int rc;
    store_bytes held;
    if (member) {
        /* a row already there (left by a store written without automation
         * before): the member is counted once */
        if ((rc = store_wtxn_tget(w, STORE_T_MEMBERS, key, 4 + len, &held)) != LS_ENOTFOUND)
            return rc;
        bytecur_store_be64(val, (uint64_t)now_ms);
        rc = store_wtxn_tput(w, STORE_T_MEMBERS, key, 4 + len, val, 8);
    } else {
        rc = store_wtxn_tdel(w, STORE_T_MEMBERS, key, 4 + len);
        if (rc == LS_ENOTFOUND)
            return LS_OK;
    }
    if (rc == LS_OK)
        d->delta += member ? 1 : -1;
    return rc;
}

int audience_flush(audience_set *set, store_wtxn *w)
{
    for (size_t i = 0; i < set->n; i++) {
        audience_def *d = &set->defs[i];
        if (!d->delta && !d->dirty)
            continue;
        int64_t m = (int64_t)d->info.members + d->delta;
        d->info.members = m < 0 ? 0 : (uint64_t)m;
        d->delta = 0;
        d->dirty = 0;
        int rc = put_def(w, &d->info);
        if (rc)
            return rc;
    }
    return LS_OK;
}

/* ------------------------------------------------------------------ */
/* Readers                                                             */
/* ------------------------------------------------------------------ */

typedef struct {
    audience_info *items;
    size_t n, cap;
    int rc;
} list_ctx;

static int list_one(void *arg, const store_bytes *key, const store_bytes *val)
{
    list_ctx *lc = arg;
    if (key->len && key->ptr[0] == '\0')
        return 0;
    if (lc->n == lc->cap) {
        size_t cap = lc->cap ? lc->cap * 2 : 8;
        audience_info *more = realloc(lc->items, cap * sizeof *more);
        if (!more) {
            lc->rc = LS_ENOMEM;
            return 1;
        }
        lc->items = more;
        lc->cap = cap;
    }
    if (decode_def(key, val, &lc->items[lc->n]) == LS_OK)
        lc->n++;
    return 0;
}

int audience_list(store_reader *r, audience_info **out, size_t *n)
{
    list_ctx lc = {NULL, 0, 0, LS_OK};
    int rc = store_reader_tscan(r, STORE_T_AUDIENCES, NULL, 0, list_one, &lc);
    if (rc == 1)
        rc = lc.rc;
    if (rc) {
        free(lc.items);
        return rc;
    }
    *out = lc.items;
    *n = lc.n;
    return LS_OK;
}

int audience_get(store_reader *r, const char *name, size_t len, audience_info *out)
{
    store_bytes v;
    if (len == 0 || len > AUDIENCE_NAME_MAX)
        return LS_ENOTFOUND;
    int rc = store_reader_tget(r, STORE_T_AUDIENCES, name, len, &v);
    if (rc)
        return rc;
    store_bytes k = {(const uint8_t *)name, len};
    return decode_def(&k, &v, out);
}

typedef struct {
    uint8_t prefix[4];
    const char *after;
    size_t after_len;
    size_t limit, given;
    audience_member_fn fn;
    void *arg;
    int more;
} members_ctx;

static int member_one(void *arg, const store_bytes *key, const store_bytes *val)
{
    members_ctx *mc = arg;
    if (key->len <= 4 || memcmp(key->ptr, mc->prefix, 4) != 0)
        return 1; /* past this audience */
    const char *id = (const char *)key->ptr + 4;
    size_t len = key->len - 4;
    if (mc->after_len && len == mc->after_len && memcmp(id, mc->after, len) == 0)
        return 0; /* the cursor itself: exclusive */
    if (mc->given == mc->limit) {
        mc->more = 1;
        return 1;
    }
    mc->given++;
    int rc = mc->fn(mc->arg, id, len, val->len == 8 ? (int64_t)bytecur_load_be64(val->ptr) : 0);
    return rc ? rc : 0;
}

int audience_members(store_reader *r, uint32_t id, const char *after, size_t after_len, size_t limit,
                     audience_member_fn fn, void *arg, int *more)
{
    uint8_t from[4 + STORE_MAX_KEY];
    members_ctx mc = {{0}, after, after_len, limit, 0, fn, arg, 0};
    bytecur_store_be32(mc.prefix, id);
    if (after_len > STORE_MAX_KEY - 4)
        return LS_EBADREQ;
    memcpy(from, mc.prefix, 4);
    if (after_len)
        memcpy(from + 4, after, after_len);
    int rc = store_reader_tscan(r, STORE_T_MEMBERS, from, 4 + after_len, member_one, &mc);
    *more = mc.more;
    return rc == 1 ? LS_OK : rc;
}
