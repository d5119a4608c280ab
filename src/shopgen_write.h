/* shopgen_write.h -- the synthetic shop's events as CSV or JSON Lines,
 * and its ground truth (shopgen_write.c).  Internal to shopgen.  Write
 * failures are sticky in g->out.err. */
#ifndef LS_SHOPGEN_WRITE_H
#define LS_SHOPGEN_WRITE_H

#include <stdio.h>

#include "shopgen_state.h"

/* Starts the events output: the header line for CSV. */
void sgw_begin(gen *g);
/* Sorts today's events (g->ev) by time, writes them numbering the event
 * ids, counts them into g->sum and empties the day. */
void sgw_flush_day(gen *g);
/* Writes out what is still buffered (check g->out.err after). */
void sgw_finish(gen *g);
/* Writes the ground truth CSV to f: one row per customer, then one
 * "alias" row per visitor who signed up.  0 or LS_EIO. */
int sgw_truth(const gen *g, FILE *f);

#endif
