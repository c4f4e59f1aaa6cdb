// ast.c — builders the grammar's actions call; no meaning is attached here.
#include "nnc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static Expr *new_expr(ExprKind kind, Loc loc) {
  Expr *e = xalloc(sizeof(Expr));
  e->kind = kind;
  e->loc = loc;
  return e;
}

Loc loc_span(Loc a, Loc b) {
  if (a.line == b.line && b.end_col >= a.col) a.end_col = b.end_col;
  return a;
}

void exprlist_push(ExprList *l, Expr *e) {
  if (l->n == l->cap) {
    int cap = l->cap ? l->cap * 2 : 4;
    Expr **items = xalloc(sizeof(Expr *) * cap);
    if (l->n) memcpy(items, l->items, sizeof(Expr *) * l->n);
    l->items = items, l->cap = cap;
  }
  l->items[l->n++] = e;
}

Expr *ast_name(Loc loc, const char *name) {
  Expr *e = new_expr(E_NAME, loc);
  e->name = name;
  return e;
}

// Python ints are unbounded; ours are int64 and an overflow is reported by sema
// where the value is used, with the literal's location.
Expr *ast_int(Loc loc, const char *text) {
  Expr *e = new_expr(E_INT, loc);
  char *clean = xstrdup(text), *w = clean;
  for (const char *p = text; *p; p++)
    if (*p != '_') *w++ = *p;
  *w = 0;
  errno = 0;
  int base = 10;
  const char *digits = clean;
  if (clean[0] == '0' && (clean[1] == 'x' || clean[1] == 'X')) base = 16, digits = clean + 2;
  else if (clean[0] == '0' && (clean[1] == 'o' || clean[1] == 'O')) base = 8, digits = clean + 2;
  else if (clean[0] == '0' && (clean[1] == 'b' || clean[1] == 'B')) base = 2, digits = clean + 2;
  unsigned long long v = strtoull(digits, NULL, base);
  if (errno == ERANGE || v > (unsigned long long)INT64_MAX) {
    e->overflow = true;
    e->ival = INT64_MAX;
  } else {
    e->ival = (int64_t)v;
  }
  e->fval = e->overflow ? strtod(clean, NULL) : (double)e->ival;
  return e;
}

Expr *ast_float(Loc loc, const char *text) {
  Expr *e = new_expr(E_FLOAT, loc);
  char *clean = xstrdup(text), *w = clean;
  for (const char *p = text; *p; p++)
    if (*p != '_') *w++ = *p;
  *w = 0;
  errno = 0;
  e->fval = strtod(clean, NULL);
  e->overflow = errno == ERANGE && (e->fval > 1 || e->fval < -1);
  return e;
}

Expr *ast_string(Loc loc, const char *value) {
  Expr *e = new_expr(E_STRING, loc);
  e->name = value;
  return e;
}

Expr *ast_const(Loc loc, ExprKind kind) { return new_expr(kind, loc); }

Expr *ast_attr(Loc loc, Expr *obj, const char *name) {
  Expr *e = new_expr(E_ATTR, loc);
  e->lhs = obj;
  e->name = name;
  return e;
}

// Splits args into positional and keyword; keyword args carry ->kwname.
Expr *ast_call(Loc loc, Expr *fn, ExprList args) {
  Expr *e = new_expr(E_CALL, loc);
  e->fn = fn;
  for (int i = 0; i < args.n; i++) exprlist_push(args.items[i]->kwname ? &e->kwargs : &e->args, args.items[i]);
  // Remember whether a positional argument followed a keyword one (Python's error).
  bool seen_kw = false;
  for (int i = 0; i < args.n; i++) {
    if (args.items[i]->kwname) seen_kw = true;
    else if (seen_kw) {
      diag_error(args.items[i]->loc, "positional argument follows keyword argument");
      break;
    }
  }
  return e;
}

Expr *ast_index(Loc loc, Expr *base, Expr *index) {
  Expr *e = new_expr(E_INDEX, loc);
  e->lhs = base;
  e->rhs = index;
  return e;
}

Expr *ast_tuple(Loc loc, ExprList items) {
  Expr *e = new_expr(E_TUPLE, loc);
  e->args = items;
  return e;
}

Expr *ast_list(Loc loc, ExprList items) {
  Expr *e = new_expr(E_LIST, loc);
  e->args = items;
  return e;
}

Expr *ast_binary(Loc loc, int op, Expr *l, Expr *r) {
  Expr *e = new_expr(E_BINARY, loc);
  e->op = op;
  e->lhs = l;
  e->rhs = r;
  return e;
}

Expr *ast_unary(Loc loc, int op, Expr *operand) {
  Expr *e = new_expr(E_UNARY, loc);
  e->op = op;
  e->lhs = operand;
  return e;
}

Expr *ast_kwarg(Loc loc, const char *name, Expr *value) {
  // A keyword argument is its value tagged with the keyword; the location is the
  // keyword's, so messages about unknown keywords point at it.
  Expr *e = xalloc(sizeof(Expr));
  *e = *value;
  e->kwname = name;
  (void)loc;
  return e;
}

Expr *ast_slice(Loc loc, Expr *start, Expr *stop, Expr *step) {
  Expr *e = new_expr(E_SLICE, loc);
  e->lhs = start, e->rhs = stop, e->fn = step;
  return e;
}

Expr *ast_fstring(Loc loc, const char *template_text) {
  Expr *e = new_expr(E_FSTRING, loc);
  e->name = template_text;
  return e;
}

// Adjacent literals joined once, at the end (pairwise joining was quadratic). With an
// f-string among them, the plain parts' braces are doubled so they stay text.
Expr *ast_strings(Loc loc, ExprList parts) {
  if (parts.n == 1) { parts.items[0]->loc = loc; return parts.items[0]; }
  bool f = false;
  size_t len = 0;
  for (int i = 0; i < parts.n; i++) {
    f |= parts.items[i]->kind == E_FSTRING;
    len += 2 * strlen(parts.items[i]->name);
  }
  char *out = xalloc(len + 1), *w = out;
  for (int i = 0; i < parts.n; i++) {
    bool plain = parts.items[i]->kind == E_STRING;
    for (const char *c = parts.items[i]->name; *c; c++) {
      if (f && plain && (*c == '{' || *c == '}')) *w++ = *c;
      *w++ = *c;
    }
  }
  *w = 0;
  return f ? ast_fstring(loc, out) : ast_string(loc, out);
}

Stmt *ast_augassign(Loc loc, Loc op_loc, int op, Expr *target, Expr *value) {
  return ast_stmt(loc, S_ASSIGN, target, ast_binary(loc_span(target->loc, op_loc.line == value->loc.line ? value->loc : op_loc), op, target, value));
}

Stmt *ast_stmt(Loc loc, StmtKind kind, Expr *target, Expr *value) {
  Stmt *s = xalloc(sizeof(Stmt));
  s->kind = kind;
  s->loc = loc;
  s->target = target;
  s->value = value;
  return s;
}

// Iterative and bounded: a path of a million components is refused (NULL), not
// recursed into or copied a million times.
const char *ast_dotted(const Expr *e) {
  enum { MAX_COMPONENTS = 64 };
  const char *parts[MAX_COMPONENTS];
  int n = 0;
  size_t len = 0;
  for (; e->kind == E_ATTR; e = e->lhs) {
    if (n == MAX_COMPONENTS - 1) return NULL;
    parts[n++] = e->name;
    len += strlen(e->name) + 1;
  }
  if (e->kind != E_NAME) return NULL;
  if (n == 0) return e->name;
  parts[n++] = e->name;
  len += strlen(e->name);
  char *out = xalloc(len + 1), *w = out;
  for (int i = n - 1; i >= 0; i--) {
    size_t k = strlen(parts[i]);
    memcpy(w, parts[i], k);
    w += k;
    if (i) *w++ = '.';
  }
  *w = 0;
  return out;
}
