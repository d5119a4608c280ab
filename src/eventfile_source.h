/* eventfile_source.h -- the CSV and JSON Lines sources of an event file
 * (eventfile_source.c).  Internal to eventfile.  Each reads one row's
 * field texts into f->val[] / f->vlen[] and its line into f->row_line. */
#ifndef LS_EVENTFILE_SOURCE_H
#define LS_EVENTFILE_SOURCE_H

#include <stddef.h>

#include "eventfile_internal.h"

/* 1 when path's extension says JSON Lines (.jsonl, .ndjson, .json, also
 * gzipped). */
int efs_looks_jsonl(const char *path);
/* Sets f up to read CSV from f->fd: reads the header and maps the
 * columns to fields.  0, or a status with a message in err. */
int efs_open_csv(eventfile *f, char *err, size_t errlen);
/* Sets f up to read JSON Lines (maybe gzipped) from f->fd and maps the
 * keys to fields.  0, or a status with a message in err. */
int efs_open_jsonl(eventfile *f, char *err, size_t errlen);
/* Reads the next record's field texts.  1, 0 at the end,
 * EVENTFILE_BAD_ROW, or < 0 (fatal, recorded in f). */
int efs_csv_row(eventfile *f);
int efs_jsonl_row(eventfile *f);

#endif
