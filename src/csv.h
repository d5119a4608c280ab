/* csv.h -- a streaming RFC 4180 CSV reader with bounded memory.
 *
 * `leadscore import` reads exports of millions of rows through this
 * reader.  It reads plain or gzip-compressed input (zlib detects which),
 * from a path or an open descriptor, one record at a time, and copies each
 * record into one reusable buffer: no allocation per field or per row.
 * Memory is bounded: a 256 KiB read buffer, zlib's buffers, the record
 * buffer (at most max_record_bytes) and an index of three words per field
 * (a field takes at least one byte of the record, so that is bounded too).
 *
 * Grammar (RFC 4180 with the usual extensions):
 *  - Records end at LF, CRLF or a lone CR; the last record may lack one.
 *  - A UTF-8 byte order mark at the very start of the input is skipped.
 *  - Lines with nothing on them (in whitespace mode: nothing but spaces and
 *    tabs) are skipped and produce no row.
 *  - A field that starts with '"' is quoted: it runs to the next lone '"',
 *    may hold delimiters, CR and LF, and writes '"' as "".  After the
 *    closing quote only a delimiter or a line end may follow, anything
 *    else is LS_EPARSE; so is input that ends inside quotes.
 *  - A '"' anywhere else in an unquoted field is lenient: it is kept as an
 *    ordinary character (a"b is the 3 bytes a"b).
 *  - Spaces are data ("a, b" has the field " b"), except in whitespace
 *    mode, where fields are separated by runs of spaces and tabs and
 *    leading and trailing blanks on a line are ignored (quoted fields still
 *    work, and are the only way to get an empty field there).
 *  - NUL bytes are data; len[] is authoritative.
 *
 * Errors are sticky: after csv_next() fails, every later call returns the
 * same status, and csv_error() keeps the message. */
#ifndef LS_CSV_H
#define LS_CSV_H

#include <stddef.h>
#include <stdint.h>

/* Default for csv_options.max_record_bytes: 1 MiB. */
#define CSV_DEFAULT_MAX_RECORD (1u << 20)

typedef struct csv_reader csv_reader;

/* Reader settings.  All-zero (or a NULL pointer) means the defaults. */
typedef struct {
    /* Field separator; 0 means ','.  '\t' and ';' are common.  May not be
     * '"', '\r' or '\n'.  Ignored in whitespace mode. */
    char delimiter;
    /* Non-zero: fields are separated by runs of spaces and tabs, and the
     * blanks at both ends of a line are ignored (CDNOW_master.txt). */
    int whitespace;
    /* Largest record accepted, 0 meaning CSV_DEFAULT_MAX_RECORD.  The size
     * of a record is the bytes of its fields after unquoting plus one per
     * field (for the separator); a bigger record is LS_ETOOLARGE. */
    size_t max_record_bytes;
} csv_options;

/* One record.  field[i] is a NUL-terminated pointer to field i and len[i]
 * its length in bytes, for i < nfields (nfields >= 1).  Everything it
 * points to is owned by the reader and valid only until the next
 * csv_next() or csv_close() on it: copy what must outlive that. */
typedef struct {
    size_t nfields;
    const char *const *field;
    const size_t *len;
    uint64_t line; /* physical line (1-based) where the record starts */
} csv_row;

/* Opens path for reading, plain or gzip.  Returns LS_OK and sets *out to a
 * reader the caller must csv_close(); LS_EINVAL for NULL arguments or bad
 * options, LS_ENOTFOUND if path does not exist, LS_ENOMEM, or LS_EIO for
 * any other open failure.  *out is NULL on failure. */
int csv_open(csv_reader **out, const char *path, const csv_options *opt);

/* As csv_open() but reads the open descriptor fd (stdin for "-").  The
 * reader works on a dup() of fd and closes only that: the caller still
 * owns fd.  The descriptor's offset advances as input is read. */
int csv_open_fd(csv_reader **out, int fd, const csv_options *opt);

/* Closes the reader and its input and sets *r to NULL; does nothing if r
 * or *r is NULL, so closing twice is harmless. */
void csv_close(csv_reader **r);

/* Reads the next record into *row (see csv_row for how long it lives).
 * Returns 1 when a row was read, 0 at the clean end of the input, or:
 *   LS_EPARSE    bad quoting (message "line N: ..." from csv_error());
 *   LS_ETOOLARGE a record over max_record_bytes;
 *   LS_EIO       read or decompression failure, truncated gzip included;
 *   LS_ENOMEM    the record buffer could not grow;
 *   LS_EINVAL    r or row is NULL.
 * Rows before a failure are returned normally; the failure is sticky. */
int csv_next(csv_reader *r, csv_row *row);

/* Message for the last failure of csv_next(), e.g. "line 17: unterminated
 * quoted field", or "" if none.  Owned by the reader, valid until it is
 * closed. */
const char *csv_error(const csv_reader *r);

/* Index of the first field of hdr equal (byte for byte) to name, or -1 if
 * none does or an argument is NULL.  Call it while hdr is still valid,
 * i.e. before the next csv_next(). */
int csv_header_index(const csv_row *hdr, const char *name);

#endif
