/* eventfile_fold.h -- order folding and derived event ids
 * (eventfile_fold.c).  Internal to eventfile: eventfile_next() drives
 * these over the checked rows.  Events handed out point into f (the
 * fold's own copies or f->row_id) until the next call. */
#ifndef LS_EVENTFILE_FOLD_H
#define LS_EVENTFILE_FOLD_H

#include <stdint.h>

#include "eventfile_internal.h"

/* 1 when ev is an order line to fold (a purchase or refund with an order
 * id, folding not turned off). */
int eff_foldable(const eventfile *f, const ls_event *ev);
/* 1 when ev is one more line of the open order g. */
int eff_continues(const order_fold *g, const ls_event *ev);
/* Opens f->grp with ev (from line) as its first line, copying its strings. */
void eff_start_order(eventfile *f, const ls_event *ev, uint64_t line);
/* Folds one more checked line into the open order. */
void eff_add_line(eventfile *f, const ls_event *ev, uint64_t line);
/* Closes the open order: hands it out in *out (1) or reports it
 * (EVENTFILE_BAD_ROW). */
int eff_emit_order(eventfile *f, ls_event *out);
/* A refused row that names an order (customer and order_id of the row as
 * read) taints that order: the open one, or the next one to start with
 * them.  A tainted order is skipped whole when it closes, so that the run
 * after the row is fixed imports the whole order (a part imported now
 * would make the fixed order a duplicate of it). */
void eff_note_refused_row(eventfile *f, uint64_t line);
/* Closes the order being folded, if any: 1 with it in *out, the bad row
 * when it is refused, 0 when none is open. */
int eff_finish_order(eventfile *f, ls_event *out);
/* Hands out a row that is not part of an order, with its id (1). */
int eff_emit_row(eventfile *f, ls_event *ev, ls_event *out);

#endif
