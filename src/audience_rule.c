/* audience_rule.c -- the audience rule language (see audience_rule.h):
 * a lexer and a recursive-descent parser that resolve field names and check
 * types, the compact tree they build (one block: nodes, literal-list items,
 * string pool, canonical text), its evaluation and its canonical form.
 *
 * The tree is a flat array of nodes.  and/or nodes are n-ary: their
 * children are chained through `next`, and a child of the same kind is
 * spliced in, so `(a or b) or c` is one `or` of three.  A comparison node
 * holds both operands inline; an operand is a field id, a constant or a
 * literal list (a range of `items`). */
#include "audience_rule.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadscore/error.h"

/* ------------------------------------------------------------------ */
/* Types, fields and the compact tree                                  */
/* ------------------------------------------------------------------ */

enum { T_NUM, T_STR, T_BOOL, T_LIST };

/* The score-result fields; feature ids follow them. */
#define ARULE_FIELD_MAP(X)                                                         \
    X(SCORE, "score", T_NUM) X(SCORE_100, "score_100", T_NUM) X(TIER, "tier", T_STR) \
    X(P_ALIVE, "p_alive", T_NUM) X(EXPECTED_30D, "expected_purchases_30d", T_NUM)   \
    X(CLV, "clv", T_NUM) X(CUSTOMER_TYPE, "customer_type", T_STR)                   \
    X(PHASE, "phase", T_STR) X(LOYALTY_POINTS, "loyalty_points", T_NUM)            \
    X(LOYALTY_TIER, "loyalty_tier", T_STR) X(ACTIONS, "actions", T_LIST)           \
    X(SEGMENT, "segment", T_STR) X(SEGMENTS, "segments", T_LIST) X(KNOWN, "known", T_BOOL)

#define ARULE_FIELD_ENUM(sym, name, type) F_##sym,
enum { ARULE_FIELD_MAP(ARULE_FIELD_ENUM) F_COUNT };
#undef ARULE_FIELD_ENUM

#define ARULE_FIELD_ROW(sym, name, type) {name, type},
static const struct {
    const char *name;
    int type;
} score_fields[] = {ARULE_FIELD_MAP(ARULE_FIELD_ROW)};
#undef ARULE_FIELD_ROW

/* Node kinds; the comparison operators first, in the order of cmp_text. */
enum { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_IN, OP_TRUTH, OP_NOT, OP_AND, OP_OR };
static const char *const cmp_text[] = {"==", "!=", "<", "<=", ">", ">=", "in"};

enum { K_FIELD, K_CONST, K_LIST };

typedef struct {
    uint8_t kind;   /* K_FIELD, K_CONST or K_LIST (a literal list) */
    uint8_t type;   /* T_*; a field's type, T_LIST for a literal list */
    uint8_t elem;   /* element type of a list */
    uint16_t field; /* K_FIELD: field id */
    uint32_t off;   /* K_CONST string: pool offset; K_LIST: first item */
    uint32_t len;   /* K_CONST string: length; K_LIST: number of items */
    double num;     /* K_CONST number, or boolean 0/1 */
} arule_operand;

typedef struct {
    uint8_t op;
    int16_t first; /* and/or/not: first child, -1 if none */
    int16_t next;  /* next sibling under an and/or, -1 at the end */
    arule_operand l, r;
} arule_node;

struct arule {
    int root;
    const arule_node *nodes;
    const arule_operand *items;
    const char *pool;
    const char *text; /* canonical form, NUL-terminated */
    size_t textlen;
    int uses_segments; /* reads `segment` or `segments` */
};

static const char *field_name(int id)
{
    return id < F_COUNT ? score_fields[id].name : feature_name(id - F_COUNT);
}

static int field_type(int id)
{
    return id < F_COUNT ? score_fields[id].type : T_NUM;
}

/* The field id of name[0..len), or -1. */
static int field_lookup(const char *name, size_t len)
{
    char buf[128];
    if (len >= sizeof buf)
        return -1;
    memcpy(buf, name, len);
    buf[len] = '\0';
    for (int i = 0; i < F_COUNT; i++)
        if (strcmp(score_fields[i].name, buf) == 0)
            return i;
    int f = feature_lookup(buf);
    return f < 0 ? -1 : F_COUNT + f;
}

/* ------------------------------------------------------------------ */
/* Evaluation                                                          */
/* ------------------------------------------------------------------ */

typedef struct {
    double num;
    const char *s;
    size_t n;
} arule_value;

static void set_str(arule_value *v, const char *s)
{
    v->s = s ? s : "";
    v->n = strlen(v->s);
}

/* The value of scalar field id for in (lists are read by in_list). */
static void field_value(int id, const arule_input *in, arule_value *v)
{
    const assess_result *a = in->result;
    v->num = 0.0;
    v->s = "";
    v->n = 0;
    switch (id) {
    case F_SCORE: v->num = a->logistic.score; break;
    case F_SCORE_100: v->num = a->logistic.score_100; break;
    case F_TIER: set_str(v, a->logistic.tier); break;
    case F_P_ALIVE: v->num = a->p_alive; break;
    case F_EXPECTED_30D: v->num = a->expected_purchases_30d; break;
    case F_CLV: v->num = a->clv; break;
    case F_CUSTOMER_TYPE: set_str(v, journey_type_name(a->journey.type)); break;
    case F_PHASE: set_str(v, journey_phase_name(a->journey.phase)); break;
    case F_LOYALTY_POINTS: v->num = (double)a->journey.loyalty_points; break;
    case F_LOYALTY_TIER: set_str(v, a->journey.loyalty_tier); break;
    case F_SEGMENT: set_str(v, a->nsegments > 0 ? a->segments[0].segment : ""); break;
    case F_KNOWN: v->num = in->known ? 1.0 : 0.0; break;
    default:
        if (id >= F_COUNT)
            v->num = feature_value(in->features, id - F_COUNT, in->ctx);
        break;
    }
}

static int str_eq(const char *a, size_t an, const char *b, size_t bn)
{
    return an == bn && memcmp(a, b, an) == 0;
}

/* 1 when the list field id holds the string v. */
static int in_list_field(int id, const arule_input *in, const arule_value *v)
{
    const assess_result *a = in->result;
    if (id == F_ACTIONS) {
        for (int i = 0; i < JA_COUNT; i++) {
            const char *name = journey_action_name((journey_action)i);
            if ((a->journey.actions & (1u << i)) && str_eq(name, strlen(name), v->s, v->n))
                return 1;
        }
    } else if (id == F_SEGMENTS) {
        int n = a->nsegments < SEGMENTS_MAX_K ? a->nsegments : SEGMENTS_MAX_K;
        for (int i = 0; i < n; i++) {
            const char *name = a->segments[i].segment;
            if (str_eq(name, strnlen(name, SEGMENTS_NAME), v->s, v->n))
                return 1;
        }
    }
    return 0;
}

static void operand_value(const arule *r, const arule_operand *o, const arule_input *in, arule_value *v)
{
    if (o->kind == K_FIELD) {
        field_value(o->field, in, v);
    } else {
        v->num = o->num;
        v->s = r->pool + o->off;
        v->n = o->type == T_STR ? o->len : 0;
    }
}

static int values_equal(int type, const arule_value *a, const arule_value *b)
{
    return type == T_STR ? str_eq(a->s, a->n, b->s, b->n) : a->num == b->num;
}

static int eval_in(const arule *r, const arule_node *n, const arule_input *in, const arule_value *lv)
{
    if (n->r.kind == K_FIELD)
        return in_list_field(n->r.field, in, lv);
    for (uint32_t i = 0; i < n->r.len; i++) {
        arule_value iv;
        operand_value(r, &r->items[n->r.off + i], in, &iv);
        if (values_equal(n->r.elem, lv, &iv))
            return 1;
    }
    return 0;
}

static int eval_compare(const arule *r, const arule_node *n, const arule_input *in)
{
    arule_value lv, rv;
    operand_value(r, &n->l, in, &lv);
    if (n->op == OP_TRUTH)
        return lv.num != 0.0;
    if (n->op == OP_IN)
        return eval_in(r, n, in, &lv);
    operand_value(r, &n->r, in, &rv);
    switch (n->op) {
    case OP_EQ: return values_equal(n->l.type, &lv, &rv);
    case OP_NE: return !values_equal(n->l.type, &lv, &rv);
    case OP_LT: return lv.num < rv.num;
    case OP_LE: return lv.num <= rv.num;
    case OP_GT: return lv.num > rv.num;
    case OP_GE: return lv.num >= rv.num;
    }
    return 0;
}

/* Recursion depth is bounded by the parser (ARULE_MAX_DEPTH). */
static int eval_node(const arule *r, int i, const arule_input *in)
{
    const arule_node *n = &r->nodes[i];
    switch (n->op) {
    case OP_NOT: return !eval_node(r, n->first, in);
    case OP_AND:
        for (int c = n->first; c >= 0; c = r->nodes[c].next)
            if (!eval_node(r, c, in))
                return 0;
        return 1;
    case OP_OR:
        for (int c = n->first; c >= 0; c = r->nodes[c].next)
            if (eval_node(r, c, in))
                return 1;
        return 0;
    default: return eval_compare(r, n, in);
    }
}

int arule_eval(const arule *r, const arule_input *in)
{
    if (!r || !in || !in->result || !in->features || !in->ctx)
        return 0;
    return eval_node(r, r->root, in);
}

/* ------------------------------------------------------------------ */
/* Canonical form                                                      */
/* ------------------------------------------------------------------ */

typedef struct {
    char *buf;
    size_t cap; /* 0: only count */
    size_t len; /* bytes the full text needs, without the NUL */
} outbuf;

static void put(outbuf *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++, o->len++)
        if (o->len + 1 < o->cap)
            o->buf[o->len] = s[i];
}

static void puts_(outbuf *o, const char *s)
{
    put(o, s, strlen(s));
}

/* The shortest %g form that reads back as v (v is finite): 100, not 1e+02. */
static void put_num(outbuf *o, double v)
{
    char tmp[40], best[40] = "";
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v && (!best[0] || strlen(tmp) < strlen(best)))
            memcpy(best, tmp, sizeof best);
    }
    puts_(o, best[0] ? best : tmp);
}

static void put_string(outbuf *o, const char *s, size_t n)
{
    put(o, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\')
            put(o, "\\", 1);
        put(o, &s[i], 1);
    }
    put(o, "\"", 1);
}

static void put_operand(outbuf *o, const arule *r, const arule_operand *op)
{
    if (op->kind == K_FIELD) {
        puts_(o, field_name(op->field));
    } else if (op->kind == K_LIST) {
        put(o, "(", 1);
        for (uint32_t i = 0; i < op->len; i++) {
            if (i)
                put(o, ", ", 2);
            put_operand(o, r, &r->items[op->off + i]);
        }
        put(o, ")", 1);
    } else if (op->type == T_STR) {
        put_string(o, r->pool + op->off, op->len);
    } else if (op->type == T_BOOL) {
        puts_(o, op->num != 0.0 ? "true" : "false");
    } else {
        put_num(o, op->num);
    }
}

static int precedence(int op)
{
    return op == OP_OR ? 1 : op == OP_AND ? 2 : 3;
}

static void put_node(outbuf *o, const arule *r, int i);

/* Child c under an operator of precedence prec, in parentheses if needed. */
static void put_child(outbuf *o, const arule *r, int c, int prec)
{
    int paren = precedence(r->nodes[c].op) < prec;
    if (paren)
        put(o, "(", 1);
    put_node(o, r, c);
    if (paren)
        put(o, ")", 1);
}

static void put_node(outbuf *o, const arule *r, int i)
{
    const arule_node *n = &r->nodes[i];
    if (n->op == OP_AND || n->op == OP_OR) {
        for (int c = n->first; c >= 0; c = r->nodes[c].next) {
            if (c != n->first)
                puts_(o, n->op == OP_AND ? " and " : " or ");
            put_child(o, r, c, precedence(n->op) + 1);
        }
    } else if (n->op == OP_NOT) {
        puts_(o, "not ");
        put_child(o, r, n->first, 3);
    } else {
        put_operand(o, r, &n->l);
        if (n->op != OP_TRUTH) {
            put(o, " ", 1);
            puts_(o, cmp_text[n->op]);
            put(o, " ", 1);
            put_operand(o, r, &n->r);
        }
    }
}

/* Writes the canonical form of r into o; returns the length it needs. */
static size_t format_into(const arule *r, char *buf, size_t cap)
{
    outbuf o = {buf, cap, 0};
    put_node(&o, r, r->root);
    if (cap)
        buf[o.len < cap ? o.len : cap - 1] = '\0';
    return o.len;
}

int arule_format(const arule *r, char *buf, size_t cap)
{
    if (!r || !buf || cap == 0)
        return LS_EINVAL;
    size_t n = r->textlen < cap ? r->textlen : cap - 1;
    memcpy(buf, r->text, n);
    buf[n] = '\0';
    return r->textlen < cap ? LS_OK : LS_ETOOLARGE;
}

const char *arule_text(const arule *r)
{
    return r ? r->text : "";
}

/* ------------------------------------------------------------------ */
/* Lexer                                                               */
/* ------------------------------------------------------------------ */

enum {
    TK_END, TK_NUM, TK_STR, TK_IDENT, TK_LPAREN, TK_RPAREN, TK_COMMA,
    TK_EQ, TK_NE, TK_LT, TK_LE, TK_GT, TK_GE, TK_IN, TK_AND, TK_OR, TK_NOT, TK_TRUE, TK_FALSE
};

typedef struct {
    int type;
    size_t start, len; /* byte offset and length in the text */
    double num;
    uint32_t soff, slen; /* TK_STR: decoded string in the pool */
} token;

typedef struct {
    const char *text;
    size_t len, pos;
    token t;
    char *err;
    size_t errlen;
    int nnodes, nitems;
    size_t npool;
    arule_node nodes[ARULE_MAX_NODES];
    arule_operand items[ARULE_MAX_ITEMS];
    char pool[ARULE_MAX_TEXT];
} parser;

/* Writes "at column N: <message>" into the error buffer; returns -1. */
__attribute__((format(printf, 3, 4))) static int fail_at(parser *p, size_t offset, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (p->errlen)
        snprintf(p->err, p->errlen, "at column %zu: %s", offset + 1, msg);
    return -1;
}

/* A short description of token t for messages: 'and', "tier", the end. */
static void describe_token(const parser *p, const token *t, char *buf, size_t cap)
{
    int n = t->len > 40 ? 40 : (int)t->len;
    switch (t->type) {
    case TK_END: snprintf(buf, cap, "the end of the rule"); break;
    case TK_STR: snprintf(buf, cap, "a string"); break;
    case TK_NUM: snprintf(buf, cap, "the number %.*s", n, p->text + t->start); break;
    case TK_IDENT: snprintf(buf, cap, "\"%.*s\"", n, p->text + t->start); break;
    default: snprintf(buf, cap, "'%.*s'", n, p->text + t->start); break;
    }
}

static int is_ident_start(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int is_ident_char(int c)
{
    return is_ident_start(c) || is_digit(c);
}

static int lex_digits(parser *p, size_t *i, const char *after)
{
    if (!is_digit((unsigned char)p->text[*i]))
        return fail_at(p, *i, "expected a digit after '%s' in a number", after);
    while (is_digit((unsigned char)p->text[*i]))
        (*i)++;
    return 0;
}

static int lex_number(parser *p, token *t)
{
    size_t i = t->start;
    char tmp[64];
    if (p->text[i] == '-')
        i++;
    if (lex_digits(p, &i, "-"))
        return -1;
    if (p->text[i] == '.' && (++i, lex_digits(p, &i, ".")))
        return -1;
    if (p->text[i] == 'e' || p->text[i] == 'E') {
        i++;
        if (p->text[i] == '+' || p->text[i] == '-')
            i++;
        if (lex_digits(p, &i, "e"))
            return -1;
    }
    if (is_ident_char((unsigned char)p->text[i]) || p->text[i] == '.')
        return fail_at(p, t->start, "malformed number");
    t->len = i - t->start;
    if (t->len >= sizeof tmp)
        return fail_at(p, t->start, "number longer than %zu characters", sizeof tmp - 1);
    memcpy(tmp, p->text + t->start, t->len);
    tmp[t->len] = '\0';
    errno = 0;
    t->num = strtod(tmp, NULL);
    if (!isfinite(t->num) || (errno == ERANGE && t->num == 0 && tmp[strspn(tmp, "-+0.")] >= '1' &&
                              tmp[strspn(tmp, "-+0.")] <= '9'))
        return fail_at(p, t->start, "number out of range"); /* 1e-400 is not 0 */
    t->num += 0.0; /* -0 is 0: the same rule in any spelling */
    t->type = TK_NUM;
    return 0;
}

static int lex_string(parser *p, token *t)
{
    size_t i = t->start + 1;
    t->soff = (uint32_t)p->npool;
    for (;;) {
        unsigned char c = (unsigned char)p->text[i];
        if (c == '\0')
            return fail_at(p, t->start, "unterminated string");
        if (c == '"')
            break;
        if (c < 0x20)
            return fail_at(p, i, "control character 0x%02x in a string", c);
        if (c == '\\') {
            unsigned char e = (unsigned char)p->text[i + 1];
            if (e == '\0')
                return fail_at(p, t->start, "unterminated string");
            if (e != '"' && e != '\\')
                return e >= 0x20 && e < 0x7f ? fail_at(p, i, "unknown escape '\\%c' (only \\\" and \\\\)", e)
                                             : fail_at(p, i, "unknown escape in a string (only \\\" and \\\\)");
            c = e;
            i++;
        }
        p->pool[p->npool++] = (char)c; /* the pool is as long as the longest text */
        i++;
    }
    t->slen = (uint32_t)(p->npool - t->soff);
    t->len = i + 1 - t->start;
    t->type = TK_STR;
    return 0;
}

static const struct {
    const char *word;
    int type;
} keywords[] = {{"and", TK_AND}, {"or", TK_OR}, {"not", TK_NOT}, {"in", TK_IN}, {"true", TK_TRUE}, {"false", TK_FALSE}};

static void lex_ident(parser *p, token *t)
{
    size_t i = t->start;
    while (is_ident_char((unsigned char)p->text[i]))
        i++;
    t->len = i - t->start;
    t->type = TK_IDENT;
    for (size_t k = 0; k < sizeof keywords / sizeof keywords[0]; k++)
        if (strlen(keywords[k].word) == t->len && memcmp(keywords[k].word, p->text + t->start, t->len) == 0)
            t->type = keywords[k].type;
}

static const struct {
    const char *text;
    int type;
} punct[] = {{"==", TK_EQ}, {"!=", TK_NE}, {"<=", TK_LE}, {">=", TK_GE}, {"<", TK_LT},
             {">", TK_GT},  {"(", TK_LPAREN}, {")", TK_RPAREN}, {",", TK_COMMA}};

static int lex_punct(parser *p, token *t)
{
    const char *s = p->text + t->start;
    for (size_t k = 0; k < sizeof punct / sizeof punct[0]; k++) {
        size_t n = strlen(punct[k].text);
        if (strncmp(s, punct[k].text, n) == 0) {
            t->type = punct[k].type;
            t->len = n;
            return 0;
        }
    }
    unsigned char c = (unsigned char)*s;
    if (c == '=')
        return fail_at(p, t->start, "'=' is not an operator (use '==')");
    if (c > 0x20 && c < 0x7f)
        return fail_at(p, t->start, "unexpected character '%c'", c);
    return fail_at(p, t->start, "unexpected byte 0x%02x", c);
}

/* Reads the next token into p->t; -1 (error written) on a lexical error. */
static int next(parser *p)
{
    size_t i = p->pos;
    while (p->text[i] == ' ' || p->text[i] == '\t' || p->text[i] == '\n' || p->text[i] == '\r')
        i++;
    token t = {TK_END, i, 0, 0.0, 0, 0};
    unsigned char c = (unsigned char)p->text[i];
    int rc = 0;
    if (c == '\0')
        t.type = TK_END;
    else if (is_digit(c) || (c == '-' && is_digit((unsigned char)p->text[i + 1])))
        rc = lex_number(p, &t);
    else if (c == '"')
        rc = lex_string(p, &t);
    else if (is_ident_start(c))
        lex_ident(p, &t);
    else
        rc = lex_punct(p, &t);
    if (rc)
        return -1;
    p->t = t;
    p->pos = t.start + t.len;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Parser                                                              */
/* ------------------------------------------------------------------ */

static const char *type_name(int type)
{
    switch (type) {
    case T_NUM: return "a number";
    case T_STR: return "a string";
    case T_BOOL: return "a boolean";
    default: return "a list";
    }
}

/* "field \"tier\" (a string)" or "a number", for type errors. */
static void describe_operand(const arule_operand *o, char *buf, size_t cap)
{
    if (o->kind == K_FIELD)
        snprintf(buf, cap, "field \"%s\" (%s)", field_name(o->field), type_name(o->type));
    else if (o->kind == K_LIST)
        snprintf(buf, cap, "a list of %s", o->elem == T_NUM ? "numbers" : o->elem == T_STR ? "strings" : "booleans");
    else
        snprintf(buf, cap, "%s", type_name(o->type));
}

static int new_node(parser *p, int op, size_t at)
{
    if (p->nnodes >= ARULE_MAX_NODES)
        return fail_at(p, at, "rule too complex (more than %d terms)", ARULE_MAX_NODES);
    arule_node *n = &p->nodes[p->nnodes];
    memset(n, 0, sizeof *n);
    n->op = (uint8_t)op;
    n->first = -1;
    n->next = -1;
    return p->nnodes++;
}

/* Appends child c to and/or node n; a child of n's own kind is spliced. */
static void add_child(parser *p, int n, int c)
{
    int head = p->nodes[c].op == p->nodes[n].op ? p->nodes[c].first : c;
    if (p->nodes[n].first < 0) {
        p->nodes[n].first = (int16_t)head;
        return;
    }
    int last = p->nodes[n].first;
    while (p->nodes[last].next >= 0)
        last = p->nodes[last].next;
    p->nodes[last].next = (int16_t)head;
}

static int is_value_token(int type)
{
    return type == TK_NUM || type == TK_STR || type == TK_IDENT || type == TK_TRUE || type == TK_FALSE;
}

/* Reads the value at p->t (a value token) into o and moves on. */
static int parse_value(parser *p, arule_operand *o)
{
    const token *t = &p->t;
    memset(o, 0, sizeof *o);
    o->kind = K_CONST;
    if (t->type == TK_NUM) {
        o->type = T_NUM;
        o->num = t->num;
    } else if (t->type == TK_STR) {
        o->type = T_STR;
        o->off = t->soff;
        o->len = t->slen;
    } else if (t->type == TK_TRUE || t->type == TK_FALSE) {
        o->type = T_BOOL;
        o->num = t->type == TK_TRUE;
    } else {
        int id = field_lookup(p->text + t->start, t->len);
        if (id < 0) {
            int n = t->len > 64 ? 64 : (int)t->len;
            if (p->errlen)
                snprintf(p->err, p->errlen, "unknown field \"%.*s\"%s at column %zu", n, p->text + t->start,
                         t->len > 64 ? "..." : "", t->start + 1);
            return -1;
        }
        o->kind = K_FIELD;
        o->field = (uint16_t)id;
        o->type = (uint8_t)field_type(id);
        o->elem = o->type == T_LIST ? T_STR : 0;
    }
    return next(p);
}

/* "( literal, ... )" after `in`, at p->t == '('. */
static int parse_list(parser *p, arule_operand *o)
{
    size_t open = p->t.start;
    memset(o, 0, sizeof *o);
    o->kind = K_LIST;
    o->type = T_LIST;
    o->off = (uint32_t)p->nitems;
    if (next(p))
        return -1;
    for (;;) {
        char what[64];
        size_t at = p->t.start;
        if (p->t.type == TK_IDENT)
            return fail_at(p, at, "list items must be numbers, strings or booleans, not a field");
        if (!is_value_token(p->t.type)) {
            describe_token(p, &p->t, what, sizeof what);
            return fail_at(p, at, "expected a list item, found %s", what);
        }
        if (p->nitems >= ARULE_MAX_ITEMS)
            return fail_at(p, at, "too many list items (more than %d in one rule)", ARULE_MAX_ITEMS);
        arule_operand *item = &p->items[p->nitems];
        if (parse_value(p, item))
            return -1;
        if (o->len == 0)
            o->elem = item->type;
        else if (item->type != o->elem)
            return fail_at(p, at, "list mixes %s and %s", type_name(o->elem), type_name(item->type));
        p->nitems++;
        o->len++;
        if (p->t.type == TK_RPAREN)
            return next(p);
        if (p->t.type != TK_COMMA) {
            describe_token(p, &p->t, what, sizeof what);
            return fail_at(p, p->t.start, "expected ',' or ')' to close the list opened at column %zu, found %s",
                           open + 1, what);
        }
        if (next(p))
            return -1;
    }
}

/* Type checks of comparison node n (operator at column `at`). */
static int check_types(parser *p, const arule_node *n, size_t at)
{
    char l[128], r[128];
    describe_operand(&n->l, l, sizeof l);
    describe_operand(&n->r, r, sizeof r);
    if (n->op == OP_IN) {
        if (n->l.type == T_LIST)
            return fail_at(p, at, "'in' needs a single value on its left, not %s", l);
        if (n->r.type != T_LIST)
            return fail_at(p, at, "'in' needs a list on its right, not %s", r);
        if (n->l.type != n->r.elem)
            return fail_at(p, at, "cannot look for %s in %s", l, r);
        return 0;
    }
    if (n->op >= OP_LT && n->op <= OP_GE) {
        if (n->l.type != T_NUM)
            return fail_at(p, at, "'%s' needs numbers, not %s", cmp_text[n->op], l);
        if (n->r.type != T_NUM)
            return fail_at(p, at, "'%s' needs numbers, not %s", cmp_text[n->op], r);
        return 0;
    }
    if (n->l.type == T_LIST || n->r.type == T_LIST)
        return fail_at(p, at, "cannot compare %s with %s (use 'in' for a list)", l, r);
    if (n->l.type != n->r.type)
        return fail_at(p, at, "cannot compare %s with %s", l, r);
    return 0;
}

static int cmp_op(int tk)
{
    switch (tk) {
    case TK_EQ: return OP_EQ;
    case TK_NE: return OP_NE;
    case TK_LT: return OP_LT;
    case TK_LE: return OP_LE;
    case TK_GT: return OP_GT;
    case TK_GE: return OP_GE;
    case TK_IN: return OP_IN;
    default: return -1;
    }
}

/* The right side of a comparison, after operator op (already consumed). */
static int parse_rhs(parser *p, arule_node *n, const char *optext)
{
    char what[64];
    if (n->op == OP_IN && p->t.type == TK_LPAREN)
        return parse_list(p, &n->r);
    if (!is_value_token(p->t.type)) {
        describe_token(p, &p->t, what, sizeof what);
        return p->t.type == TK_END ? fail_at(p, p->t.start, "expected a value after '%s'", optext)
                                   : fail_at(p, p->t.start, "expected a value after '%s', found %s", optext, what);
    }
    return parse_value(p, &n->r);
}

/* cond := value (op value | in list)? */
static int parse_cond(parser *p, const char *after)
{
    char what[64];
    if (!is_value_token(p->t.type)) {
        describe_token(p, &p->t, what, sizeof what);
        if (p->t.type == TK_END && !after)
            return fail_at(p, p->t.start, "empty rule");
        return after ? fail_at(p, p->t.start, "expected a condition after '%s', found %s", after, what)
                     : fail_at(p, p->t.start, "expected a condition, found %s", what);
    }
    int i = new_node(p, OP_TRUTH, p->t.start);
    if (i < 0)
        return -1;
    arule_node *n = &p->nodes[i];
    size_t lstart = p->t.start, llen = p->t.len > 64 ? 64 : p->t.len;
    if (parse_value(p, &n->l))
        return -1;
    int op = cmp_op(p->t.type);
    if (op < 0) {
        if (n->l.type == T_BOOL)
            return i;
        describe_token(p, &p->t, what, sizeof what);
        return fail_at(p, p->t.start, "expected a comparison operator or 'in' after %.*s, found %s", (int)llen,
                       p->text + lstart, what);
    }
    size_t at = p->t.start;
    n->op = (uint8_t)op;
    if (next(p) || parse_rhs(p, n, cmp_text[op]) || check_types(p, n, at))
        return -1;
    return i;
}

static int parse_or(parser *p, int depth, const char *after);

/* unary := "not" unary | "(" or ")" | cond */
static int parse_unary(parser *p, int depth, const char *after)
{
    if (p->t.type != TK_NOT && p->t.type != TK_LPAREN)
        return parse_cond(p, after);
    if (depth >= ARULE_MAX_DEPTH)
        return fail_at(p, p->t.start, "nesting deeper than %d levels", ARULE_MAX_DEPTH);
    size_t open = p->t.start;
    if (p->t.type == TK_NOT) {
        int i = new_node(p, OP_NOT, open);
        if (i < 0 || next(p))
            return -1;
        int c = parse_unary(p, depth + 1, "not");
        if (c < 0)
            return -1;
        p->nodes[i].first = (int16_t)c;
        return i;
    }
    if (next(p))
        return -1;
    int c = parse_or(p, depth + 1, "(");
    if (c < 0)
        return -1;
    if (p->t.type != TK_RPAREN) {
        char what[64];
        describe_token(p, &p->t, what, sizeof what);
        return fail_at(p, p->t.start, "expected ')' to close '(' at column %zu, found %s", open + 1, what);
    }
    return next(p) ? -1 : c;
}

/* One level of and (op OP_AND, token TK_AND) or or. */
static int parse_chain(parser *p, int depth, const char *after, int op)
{
    int tk = op == OP_AND ? TK_AND : TK_OR;
    const char *word = op == OP_AND ? "and" : "or";
    int first = op == OP_AND ? parse_unary(p, depth, after) : parse_chain(p, depth, after, OP_AND);
    if (first < 0 || p->t.type != tk)
        return first;
    int n = new_node(p, op, p->t.start);
    if (n < 0)
        return -1;
    add_child(p, n, first);
    while (p->t.type == tk) {
        if (next(p))
            return -1;
        int c = op == OP_AND ? parse_unary(p, depth, word) : parse_chain(p, depth, word, OP_AND);
        if (c < 0)
            return -1;
        add_child(p, n, c);
    }
    return n;
}

static int parse_or(parser *p, int depth, const char *after)
{
    return parse_chain(p, depth, after, OP_OR);
}

/* rule := or, then the end of the text. */
static int parse_rule(parser *p)
{
    if (next(p))
        return -1;
    int root = parse_or(p, 0, NULL);
    if (root < 0)
        return -1;
    if (p->t.type != TK_END) {
        char what[64];
        describe_token(p, &p->t, what, sizeof what);
        return fail_at(p, p->t.start, "expected 'and', 'or' or the end of the rule, found %s", what);
    }
    return root;
}

static size_t align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

/* Copies the parsed tree and its canonical form into one new block. */
static int reads_segments(const arule_operand *o)
{
    return o->kind == K_FIELD && (o->field == F_SEGMENT || o->field == F_SEGMENTS);
}

static int build(parser *p, int root, arule **out)
{
    arule view = {root, p->nodes, p->items, p->pool, NULL, 0, 0};
    size_t textlen = format_into(&view, NULL, 0);
    if (textlen > ARULE_MAX_TEXT) {
        fail_at(p, 0, "rule too long (its canonical form is over %d bytes)", ARULE_MAX_TEXT);
        return LS_EPARSE;
    }
    size_t o_nodes = align8(sizeof(arule));
    size_t o_items = o_nodes + align8(sizeof(arule_node) * (size_t)p->nnodes);
    size_t o_pool = o_items + align8(sizeof(arule_operand) * (size_t)p->nitems);
    size_t o_text = o_pool + p->npool;
    char *block = malloc(o_text + textlen + 1);
    if (!block)
        return LS_ENOMEM;
    arule *r = (arule *)(void *)block;
    memcpy(block + o_nodes, p->nodes, sizeof(arule_node) * (size_t)p->nnodes);
    memcpy(block + o_items, p->items, sizeof(arule_operand) * (size_t)p->nitems);
    memcpy(block + o_pool, p->pool, p->npool);
    int segs = 0;
    for (int i = 0; i < p->nnodes; i++)
        segs |= reads_segments(&p->nodes[i].l) || reads_segments(&p->nodes[i].r);
    *r = (arule){root, (arule_node *)(void *)(block + o_nodes), (arule_operand *)(void *)(block + o_items),
                 block + o_pool, block + o_text, textlen, segs};
    format_into(r, block + o_text, textlen + 1);
    *out = r;
    return LS_OK;
}

int arule_parse(const char *text, arule **out, char *err, size_t errlen)
{
    if (out)
        *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (!text || !out || (!err && errlen))
        return LS_EINVAL;
    size_t len = strnlen(text, ARULE_MAX_TEXT + 1);
    if (len > ARULE_MAX_TEXT) {
        if (errlen)
            snprintf(err, errlen, "rule longer than %d bytes", ARULE_MAX_TEXT);
        return LS_EPARSE;
    }
    parser *p = calloc(1, sizeof *p);
    if (!p)
        return LS_ENOMEM;
    p->text = text;
    p->len = len;
    p->err = err;
    p->errlen = errlen;
    int root = parse_rule(p);
    int rc = root < 0 ? LS_EPARSE : build(p, root, out);
    free(p);
    return rc;
}

void arule_free(arule **r)
{
    if (!r || !*r)
        return;
    free(*r);
    *r = NULL;
}

int arule_uses_segments(const arule *r)
{
    return r && r->uses_segments;
}
