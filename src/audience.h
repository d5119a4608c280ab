/* audience.h -- audiences: named rules (audience_rule.h) whose members the
 * service keeps up to date, stored in the store's automation tables.
 *
 * An audience is a name ([A-Za-z0-9_.-], at most AUDIENCE_NAME_MAX bytes),
 * its rule in canonical form, a numeric id that is never reused (members
 * are keyed by it, so a deleted audience's leftovers can never be taken
 * for a new one's), when it was defined, whether its first pass over the
 * store is done (`ready`) and how many members it has.
 *
 * Who changes what: the writer thread owns the in-memory set (the parsed
 * rules, evaluated for every customer automation looks at) and is the
 * only one that writes audiences and members (automation.h); any thread
 * reads them through a store_reader (list, one audience, a page of
 * members).  `audience add --data` runs the same code in the CLI on a
 * store no server holds. */
#ifndef LS_AUDIENCE_H
#define LS_AUDIENCE_H

#include <stddef.h>
#include <stdint.h>

#include "audience_rule.h"
#include "store.h"

#define AUDIENCE_NAME_MAX 64
/* Most audiences one store holds. */
#define AUDIENCE_MAX 256
/* Longest member page one call returns. */
#define AUDIENCE_PAGE_MAX 10000

typedef struct {
    char name[AUDIENCE_NAME_MAX + 1];
    uint32_t id;
    int64_t created_ms;
    int ready;                      /* the first pass over the store is done */
    uint64_t members;
    char rule[ARULE_MAX_TEXT + 1];  /* canonical form */
} audience_info;

/* One audience as the writer holds it. */
typedef struct {
    audience_info info;
    arule *rule;
    int64_t delta;                  /* members added (- removed) in the open txn */
    int dirty;                      /* info changed in the open txn */
} audience_def;

typedef struct {
    audience_def *defs;             /* name order */
    size_t n;
} audience_set;

/* 0 when name is a valid audience name, else LS_EBADREQ with the reason
 * in err. */
int audience_name_check(const char *name, size_t len, char *err, size_t errlen);

/* ---- the writer's side (inside a write txn) ---- */


/* Reads every definition and parses its rule into set (emptied first). */
int audience_set_load(audience_set *set, store_wtxn *w);
void audience_set_free(audience_set *set);

/* Defines (or redefines) audience name with rule text.  A new definition
 * gets a new id and starts not ready, with no members; redefining a name
 * with the same canonical rule changes nothing (*changed 0).  *created is
 * 1 when the name was new.  LS_EPARSE (reason, with its column, in err)
 * for a bad rule, LS_EBADREQ for a bad name, LS_ETOOLARGE past
 * AUDIENCE_MAX audiences. */
int audience_put(audience_set *set, store_wtxn *w, const char *name, size_t name_len, const char *rule_text,
                 int64_t now_ms, int *created, int *changed, char *err, size_t errlen);

/* Deletes audience name and its member index; *deleted says whether it
 * existed. */
int audience_delete(audience_set *set, store_wtxn *w, const char *name, size_t name_len, int *deleted);

/* Records customer id as entered (member 1) or left (0) audience d. */
int audience_set_member(audience_def *d, store_wtxn *w, const char *id, size_t len, int member, int64_t now_ms);

/* Writes the member counts and ready flags changed in this txn. */
int audience_flush(audience_set *set, store_wtxn *w);

/* The definition with id, or NULL. */
audience_def *audience_find_id(audience_set *set, uint32_t id);

/* ---- readers ---- */

/* Every audience, name order, into a new array (free it); *n says how
 * many. */
int audience_list(store_reader *r, audience_info **out, size_t *n);

/* One audience by name; LS_ENOTFOUND when there is none. */
int audience_get(store_reader *r, const char *name, size_t len, audience_info *out);

/* Calls fn for up to limit members of audience id with customer ids
 * greater than after (after_len 0: from the first), in id order.
 * *more is 1 when members remain after the last one given. */
typedef int (*audience_member_fn)(void *arg, const char *customer, size_t len, int64_t entered_ms);
int audience_members(store_reader *r, uint32_t id, const char *after, size_t after_len, size_t limit,
                     audience_member_fn fn, void *arg, int *more);

#endif
