/* automation.h -- marketing automation on the write path: live audience
 * membership and the moments that fire, written to the trigger outbox
 * (trigger.h) in the same transaction as what caused them.
 *
 * The writer owns one automation.  Every customer whose events a group
 * commit stores is evaluated before the commit, at the server's clock:
 * the score result (assess.h), the moments that hold now, every
 * audience's rule.  What changed since the customer's stored state --
 * a moment that began, an audience entered or left -- becomes a trigger.
 * Time moves conditions without events, so each customer also sits in a
 * timer queue at the next time one of its time-based conditions can flip
 * (abandoned cart after `abandoned_cart_after` of silence, the review
 * window, win-back, lapse, birthday and anniversary windows, the end of a
 * disappointment), and a sweep re-evaluates everyone, a pass starting
 * `audience_refresh` after the last one ended (score and P(alive) drift
 * with time; a new audience needs its first members); it runs in small
 * chunks between groups and stops a chunk early when requests wait.
 *
 * A moment fires once per occurrence.  An occurrence of abandoned_cart,
 * win_back and review_request belongs to the last purchase (a new cart
 * after a purchase is a new one; an abandoned cart also ends when it is
 * bought, emptied or older than the model's cart_max_days); of birthday
 * and anniversary to the date; of vip_reward, recovery and account_invite
 * to one unbroken stretch of the condition.  On top, a per-moment
 * cool-down: an occurrence that starts within the cool-down of the last
 * trigger of that moment is recorded without firing.
 *
 * The sweep is also how customers the service never saw an event for
 * (imported, or stored before this version) get a state: their first
 * evaluation records what holds without firing (a baseline), so a
 * re-import or an upgrade does not fire years of moments at once.  A new
 * audience's first members are recorded the same way: it is `ready`, and
 * emits enter/exit, once its first pass is done. */
#ifndef LS_AUTOMATION_H
#define LS_AUTOMATION_H

#include <stddef.h>
#include <stdint.h>

#include "audience.h"
#include "journey.h"
#include "model.h"
#include "stats.h"
#include "store.h"

typedef struct {
    int64_t abandoned_cart_after_ms;   /* silence after which an open cart fires */
    int64_t cooldown_ms[JA_COUNT];     /* per moment */
    int64_t retention_ms;              /* triggers older than this leave the outbox */
    uint64_t outbox_max;               /* ... and beyond this many, the oldest */
    int64_t refresh_ms;                /* a sweep pass starts this long after the last began */
    feature_decay decay;               /* the store's half-lives */
    int offline_build;                 /* `audience add --data`: the first pass records the members of
                                        * the audiences not yet ready and nothing else -- no trigger,
                                        * no timer run or moved, no prune (the service does those, by
                                        * its own settings) */
} automation_config;

/* The defaults: cart after 1 h, retention 7 d / 1,000,000, refresh 15 min,
 * cool-downs abandoned_cart 1d, win_back 30d, birthday and anniversary 300d,
 * vip_reward 30d, review_request 7d, recovery 30d, account_invite 30d. */
void automation_config_defaults(automation_config *c);

/* Parses "moment=duration,..." (durations as timefmt: 30s, 2h, 7d; a
 * moment left out keeps what out holds).  0, or LS_EPARSE with the reason
 * in err. */
int automation_parse_cooldowns(const char *text, int64_t out[JA_COUNT], char *err, size_t errlen);

typedef struct automation automation;

/* st may be NULL (the CLI). */
int automation_open(automation **out, const automation_config *cfg, stats *st);
void automation_close(automation **a);

/* ---- one write txn: begin, touch / audience changes, finish, then
 * committed or aborted ---- */

int automation_begin(automation *a, store_wtxn *w, const model *m, int64_t now_ms);

/* Notes that customer id's events changed in this txn (evaluated at
 * finish).  An id aliased elsewhere is resolved at finish. */
int automation_touch(automation *a, const char *id, size_t len);

/* Notes that an alias folded another customer's record into id in this
 * txn: evaluated at finish as a touched customer, but no event of its own
 * was heard, so the silence after its last events (an open cart's) goes
 * on rather than starting again. */
int automation_touch_joined(automation *a, const char *id, size_t len);

/* Longest automation state of one customer, in bytes. */
#define AUTOMATION_STATE_MAX (18 + JA_COUNT * 18 + 2 + AUDIENCE_MAX * 4)

/* Copies customer id's automation state (kept in its value) into buf:
 * read it before a forget or an alias deletes the value.  *n 0: none. */
int automation_state_read(store_wtxn *w, const char *id, size_t len, uint8_t *buf, size_t cap, size_t *n);

/* After an alias merged `from` (its state read before, from_state) into
 * customer id: id keeps, for each moment, the later of the two times it
 * last fired, so what fired for the anonymous visitor (its abandoned
 * cart) is held by that moment's cool-down instead of firing again for
 * the customer.  Memberships and timer stay id's own.  No trigger. */
int automation_inherit(automation *a, store_wtxn *w, const char *id, size_t len, const uint8_t *from_state,
                       size_t from_len);

/* After customer id's value is gone (a forget, or an alias that merged
 * `from` away): takes it out of the audiences its state (read before)
 * names, and with erase_triggers erases its triggers from the outbox too
 * (a forget: 1; an alias: 0, what fired for it stays).  No trigger. */
int automation_forget(automation *a, store_wtxn *w, const char *id, size_t len, int erase_triggers,
                      const uint8_t *state, size_t state_len);

/* An alias is merging `from` (id) away: fires an `exit` of every ready
 * audience its state (read before the merge) lists, assessed on its
 * record f as it was before the merge, so a consumer that keeps member
 * lists from the trigger stream lets `from` go.  Call once the merge is
 * done, before automation_forget takes it out of the member lists. */
int automation_alias_exits(automation *a, store_wtxn *w, const char *id, size_t len, const ls_features *f,
                           const uint8_t *state, size_t state_len);

/* automation_forget for a server that runs no automation (--triggers
 * off): the audiences, the member lists and the outbox stay in the store
 * for when it runs again, so a forget (erase_triggers 1) or an alias (0)
 * must still take id out of every member list (their counts kept), drop
 * its timer, and with erase_triggers erase its triggers.  No trigger. */
int automation_forget_stopped(store_wtxn *w, const char *id, size_t len, int erase_triggers, const uint8_t *state,
                              size_t state_len, int64_t now_ms);

/* After customer id's value is gone when it was damaged (its state could
 * not be read: a forget or a cluster purge erases it all the same): takes it out of
 * every audience, since the state named which, and erases its triggers.
 * A timer of its finds no customer when it rings, and goes.  No trigger. */
int automation_forget_damaged(automation *a, store_wtxn *w, const char *id, size_t len);

/* Defines or deletes an audience in this txn (audience.h); a change
 * starts a sweep pass after the commit. */
int automation_audience_put(automation *a, store_wtxn *w, const char *name, size_t name_len, const char *rule,
                            int *created, int *changed, char *err, size_t errlen);
int automation_audience_delete(automation *a, store_wtxn *w, const char *name, size_t name_len, int *deleted);

/* Evaluates every touched customer and writes states, memberships,
 * triggers and timers into the txn. */
int automation_finish(automation *a, store_wtxn *w);

/* While a sweep pass runs, evaluates its next few customers in w: the
 * writer calls it in each group commit, so under load the sweep shares the
 * group's fsync instead of committing chunks of its own. */
int automation_sweep_along(automation *a, store_wtxn *w);

/* After the txn committed: its triggers are visible.  Returns the number
 * of triggers it appended. */
uint64_t automation_committed(automation *a);

/* After the txn was aborted: forget what it did in memory. */
void automation_aborted(automation *a);

/* ---- background work, in its own txns (the writer, between groups) ---- */

/* Runs due timers (at most a chunk), one chunk of a sweep pass, and the
 * outbox pruning, each in its own committed txn.  *busy is 1 when more is
 * waiting now (call again without sleeping); *wake_ms is the clock time
 * of the next due timer (0: none known).  *appended counts the triggers
 * committed.  0 or a status. */
int automation_tick(automation *a, store *s, const model *m, int64_t now_ms, int *busy, int64_t *wake_ms,
                    uint64_t *appended);

/* Runs sweep passes until every audience is ready (`audience add --data`),
 * in txns of s; progress (may be NULL) hears after each chunk how many
 * customers the running pass has evaluated.  0 or a status. */
typedef void (*automation_progress_fn)(void *arg, uint64_t visited);
int automation_build(automation *a, store *s, const model *m, int64_t now_ms, automation_progress_fn progress,
                     void *arg);

/* The sweep asks should_yield(arg) every few customers and ends its chunk
 * (committing what it did) when it answers 1: requests are waiting. */
void automation_set_yield(automation *a, int (*should_yield)(void *), void *arg);

/* 1 when every audience has had its first pass (is `ready`). */
int automation_audiences_ready(const automation *a);

/* The newest committed trigger seq (0: none yet). */
uint64_t automation_last_seq(const automation *a);

#endif
