// sema_format.c — text a script builds: f-strings, '%' formatting and str.format, of
// compile-time values (formatted now, with the runtime's own formatter) and of values
// known only when the program runs (evaluate() results, history, np.argmax & co.),
// which become print items formatted by the built program.
#include "sema_internal.h"
#include "nn.h"

#include <stdlib.h>
#include <string.h>

void text_append_literal(PrintItem **items, int *n, const char *s) {
  if (*n && (*items)[*n - 1].kind == P_STRING && strlen((*items)[*n - 1].text) < 4096) {
    (*items)[*n - 1].text = xprintf("%s%s", (*items)[*n - 1].text, s);
    return;
  }
  *items = sema_grow(*items, *n, sizeof(PrintItem));
  (*items)[(*n)++] = (PrintItem){.kind = P_STRING, .text = s};
}

static void append_item(PrintItem **items, int *n, PrintItem it) {
  *items = sema_grow(*items, *n, sizeof(PrintItem));
  (*items)[(*n)++] = it;
}

bool runtime_item(const Value *v, PrintItem *out, bool *is_int) {
  if (v->kind == V_RESULT_ITEM) {
    *out = (PrintItem){.kind = P_EVAL_RESULT, .action = (int)v->i, .result = v->result};
    *is_int = false;
    return true;
  }
  if (v->kind == V_INT && v->shape_of) {
    *out = (PrintItem){.kind = P_SHAPE_DIM, .data = v->shape_of - 1, .dim = v->shape_dim};
    *is_int = true;
    return true;
  }
  if (v->kind == V_RUNTIME && v->rt.kind != P_HIST && v->rt.kind != P_DATA) {
    *out = v->rt;
    *is_int = v->rt_int;
    return true;
  }
  return false;
}

// Python's str() of a compile-time value (repr() for strings when conv is 'r').
static const char *compile_time_text(const Value *v, char conv);

bool text_append(PrintItem **items, int *n, const Value *v, char conv, const char *spec, Loc loc) {
  PrintItem it;
  bool is_int;
  if (spec && !*spec) spec = NULL;
  if (runtime_item(v, &it, &is_int)) {
    char probe[64];
    if (spec && nn_format_spec(probe, sizeof probe, NULL, 1, is_int, spec) < 0) {
      diag_error(loc, "invalid format spec '%s' for %s", spec, is_int ? "an integer" : "a number");
      return false;
    }
    it.spec = spec ? xstrdup(spec) : NULL;
    it.is_int = is_int;
    append_item(items, n, it);
    return true;
  }
  if (v->kind == V_TEXT) {
    if (spec) {
      diag_error(loc, "a format spec on text with run-time parts is not supported");
      return false;
    }
    for (int i = 0; i < v->n; i++) {
      if (v->parts[i].kind == P_STRING) text_append_literal(items, n, v->parts[i].text);
      else append_item(items, n, v->parts[i]);
    }
    return true;
  }
  PrintItem whole = {0};
  if (v->kind == V_RESULT) whole = (PrintItem){.kind = P_EVAL_LIST, .action = (int)v->i};
  else if (v->kind == V_SHAPE) whole = (PrintItem){.kind = P_SHAPE, .data = (int)v->i};
  else if (v->kind == V_RUNTIME) whole = v->rt;  // a history list, data
  else if (v->kind == V_DATA) whole = (PrintItem){.kind = P_DATA, .data = (int)v->i};
  if (whole.kind != P_STRING) {
    if (spec) {
      diag_error(loc, "a format spec on %s is not supported", value_kind_name(v));
      return false;
    }
    append_item(items, n, whole);
    return true;
  }
  const char *t = compile_time_text(v, conv);
  if (!t) {
    diag_error(loc, "%s cannot be printed or formatted (strings, numbers, shapes, evaluate() results, history and data can)",
               value_kind_name(v));
    return false;
  }
  if (spec) {
    char buf[1200];
    bool num = v->kind == V_INT || v->kind == V_FLOAT || v->kind == V_BOOL;
    if (nn_format_spec(buf, sizeof buf, num ? NULL : t, v->f, v->kind != V_FLOAT, spec) < 0) {
      diag_error(loc, "invalid format spec '%s' for %s", spec, value_kind_name(v));
      return false;
    }
    t = xstrdup(buf);
  }
  text_append_literal(items, n, t);
  return true;
}

static const char *compile_time_text(const Value *v, char conv) {
  char buf[64];
  switch (v->kind) {
  case V_STR: return conv == 'r' ? xprintf("'%s'", v->s) : v->s;
  case V_INT: return xprintf("%lld", (long long)v->i);
  case V_FLOAT: format_pyfloat(v->f, buf, sizeof buf); return xstrdup(buf);
  case V_BOOL: return v->i ? "True" : "False";
  case V_NONE: return "None";
  case V_TUPLE:
  case V_LIST: {
    if (v->n > 1000) return NULL;
    const char *s = v->kind == V_TUPLE ? "(" : "[";
    for (int i = 0; i < v->n; i++) {
      const char *t = compile_time_text(v->items[i], 'r');
      if (!t) return NULL;
      s = xprintf("%s%s%s", s, i ? ", " : "", t);
    }
    return xprintf("%s%s", s, v->kind == V_TUPLE ? (v->n == 1 ? ",)" : ")") : "]");
  }
  default: return NULL;
  }
}

// Items → a value: a plain string when everything was known at compile time.
static Value *text_value(PrintItem *items, int n, Loc loc) {
  if (n == 0 || (n == 1 && items[0].kind == P_STRING)) {
    Value *v = value_new(V_STR, loc);
    v->s = n ? items[0].text : "";
    return v;
  }
  Value *v = value_new(V_TEXT, loc);
  v->parts = items, v->n = n;
  return v;
}

// The end of a replacement field's expression: the first top-level '!', ':' or '}'.
static const char *field_end(const char *p) {
  int depth = 0;
  char quote = 0;
  for (; *p; p++) {
    if (quote) { if (*p == quote) quote = 0; continue; }
    if (*p == '\'' || *p == '"') quote = *p;
    else if (*p == '(' || *p == '[' || *p == '{') depth++;
    else if ((*p == ')' || *p == ']' || *p == '}') && depth > 0) depth--;
    else if (depth == 0 && (*p == '}' || *p == ':' || (*p == '!' && p[1] != '='))) return p;
  }
  return p;
}

// Splits "{name!r:.3f}" at p (after '{'): the name, conversion and spec; returns the
// position after '}', or NULL after an error.
static const char *parse_field(const char *p, Loc loc, const char **name, char *conv, const char **spec) {
  const char *e = field_end(p);
  *name = xstrndup(p, e - p);
  *conv = 0, *spec = NULL;
  if (*e == '!') {
    if (!e[1] || !strchr("rsa", e[1])) { diag_error(loc, "invalid conversion in a format field (use !r or !s)"); return NULL; }
    *conv = e[1];
    e += 2;
  }
  if (*e == ':') {
    const char *s = ++e;
    while (*e && *e != '}') {
      if (*e == '{') { diag_error(loc, "nested format fields such as {x:{width}} are not supported"); return NULL; }
      e++;
    }
    *spec = xstrndup(s, e - s);
  }
  if (*e != '}') { diag_error(loc, "a format field is not closed: expected '}'"); return NULL; }
  return e + 1;
}

// Walks a str.format / f-string template; field() gives each field's value.
typedef Value *(*FieldFn)(const char *name, Loc loc, void *ctx);
static Value *format_template(const char *t, Loc loc, FieldFn field, void *ctx) {
  PrintItem *items = NULL;
  int n = 0;
  const char *lit = t;
  for (const char *p = t; *p;) {
    if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
      text_append_literal(&items, &n, xstrndup(lit, p - lit + 1));
      p += 2, lit = p;
      continue;
    }
    if (*p == '}') { diag_error(loc, "single '}' in a format string (write '}}')"); return value_error(); }
    if (*p != '{') { p++; continue; }
    if (p > lit) text_append_literal(&items, &n, xstrndup(lit, p - lit));
    const char *name, *spec;
    char conv;
    const char *next = parse_field(p + 1, loc, &name, &conv, &spec);
    if (!next) return value_error();
    Value *v = field(name, loc, ctx);
    if (v->kind == V_ERROR) return v;
    if (!text_append(&items, &n, v, conv, spec, loc)) return value_error();
    p = lit = next;
  }
  if (*lit) text_append_literal(&items, &n, xstrdup(lit));
  return text_value(items, n, loc);
}

static Value *fstring_field(const char *name, Loc loc, void *ctx) {
  (void)ctx;
  size_t len = strlen(name);
  while (len && (name[len - 1] == ' ')) len--;
  if (!len) { diag_error(loc, "empty expression in an f-string field"); return value_error(); }
  if (name[len - 1] == '=') {
    diag_error(loc, "f-string self-documenting fields {x=} are not supported; write 'x =' {x}");
    return value_error();
  }
  Expr *e = parse_expression(name, loc);
  if (!e) return value_error();
  return eval(e);
}

Value *eval_fstring(const Expr *e) { return format_template(e->name, e->loc, fstring_field, NULL); }

typedef struct { const Expr *call; Value **pos; int npos, next; } FormatArgs;

static Value *format_field(const char *name, Loc loc, void *ctx) {
  FormatArgs *fa = ctx;
  if (!*name) {
    if (fa->next >= fa->npos) { diag_error(loc, "str.format(): more fields than arguments"); return value_error(); }
    return fa->pos[fa->next++];
  }
  if (name[0] >= '0' && name[0] <= '9') {
    int k = atoi(name);
    if (k >= fa->npos || strspn(name, "0123456789") != strlen(name)) {
      diag_error(loc, "str.format(): field {%s} has no argument", name);
      return value_error();
    }
    return fa->pos[k];
  }
  for (int i = 0; i < fa->call->kwargs.n; i++)
    if (!strcmp(fa->call->kwargs.items[i]->kwname, name)) return eval(fa->call->kwargs.items[i]);
  diag_error(loc, "str.format(): no argument named '%s' (fields may name arguments, not attributes or items)", name);
  return value_error();
}

Value *format_method(const Value *fmt, const Expr *call) {
  FormatArgs fa = {.call = call, .npos = call->args.n};
  fa.pos = xalloc(sizeof(Value *) * (call->args.n + 1));
  for (int i = 0; i < call->args.n; i++) {
    fa.pos[i] = eval(call->args.items[i]);
    if (fa.pos[i]->kind == V_ERROR) return fa.pos[i];
  }
  return format_template(fmt->s, call->loc, format_field, &fa);
}

// 'loss: %.4f, acc: %d%%' % (a, b): each conversion as the matching format spec.
Value *format_percent(const Expr *e, Value *fmt, Value *args) {
  Value one = {0}, *list[1] = {args};
  if (args->kind != V_TUPLE) one.kind = V_TUPLE, one.items = list, one.n = 1, args = &one;
  PrintItem *items = NULL;
  int n = 0, used = 0;
  const char *lit = fmt->s;
  for (const char *p = fmt->s; *p;) {
    if (*p != '%') { p++; continue; }
    if (p > lit) text_append_literal(&items, &n, xstrndup(lit, p - lit));
    p++;
    if (*p == '%') { text_append_literal(&items, &n, "%"); lit = ++p; continue; }
    char flags[8] = "", *fl = flags;
    while (*p && strchr("-+ 0#", *p) && fl < flags + 6) *fl++ = *p++;
    *fl = 0;
    int width = 0, prec = -1;
    while (*p >= '0' && *p <= '9') width = width * 10 + (*p++ - '0');
    if (*p == '.') { p++; prec = 0; while (*p >= '0' && *p <= '9') prec = prec * 10 + (*p++ - '0'); }
    char type = *p ? *p++ : 0;
    if (!type || !strchr("diufFeEgGsrxXo", type)) {
      diag_error(e->loc, "unsupported '%%' conversion '%%%c'", type ? type : ' ');
      return value_error();
    }
    if (used >= args->n) { diag_error(e->loc, "not enough arguments for the format string"); return value_error(); }
    Value *v = args->items[used++];
    char spec[48];
    int k = 0;
    if (strchr(flags, '-')) spec[k++] = '<';
    if (strchr(flags, '+')) spec[k++] = '+';
    else if (strchr(flags, ' ')) spec[k++] = ' ';
    if (strchr(flags, '0') && !strchr(flags, '-')) spec[k++] = '0';
    if (width) k += snprintf(spec + k, sizeof spec - k, "%d", width);
    if (prec >= 0 && type != 's' && type != 'r') k += snprintf(spec + k, sizeof spec - k, ".%d", prec);
    char t = type == 'i' || type == 'u' ? 'd' : type;
    bool is_int = v->kind == V_INT || v->kind == V_BOOL || (v->kind == V_RUNTIME && v->rt_int) ||
                  (v->kind == V_INT && v->shape_of);
    if (t == 'd' && !is_int) {
      // '%d' % 3.7 is '3' in Python; a float is shown without decimals here.
      k += snprintf(spec + k, sizeof spec - k, ".0f");
    } else if (t != 's' && t != 'r') spec[k++] = t;
    spec[k] = 0;
    if (!text_append(&items, &n, v, t == 'r' ? 'r' : 0, k ? spec : NULL, e->loc)) return value_error();
    lit = p;
  }
  if (*lit) text_append_literal(&items, &n, xstrdup(lit));
  if (used < args->n) {
    diag_error(e->loc, "not all arguments converted during string formatting");
    return value_error();
  }
  return text_value(items, n, e->loc);
}

//
// numpy reductions and len() on data
//
Value *np_reduce(const char *fn, const Expr *call) {
  static const char *const p[] = {"a", "axis", "out", "keepdims"};
  const Expr *a[4];
  if (!bind_args(call, xprintf("np.%s", fn), p, 4, 2, a)) return value_error();
  if (!a[0]) { diag_error(call->loc, "np.%s() needs an array", fn); return value_error(); }
  Value *x = eval(a[0]);
  if (x->kind == V_ERROR) return x;
  static const char *const names[] = {"argmax", "argmin", "max", "min", "sum", "mean"};
  int op = 0;
  while (strcmp(names[op], fn) && strcmp(fn, op == 2 ? "amax" : op == 3 ? "amin" : names[op])) op++;
  if (x->kind == V_LIST || x->kind == V_TUPLE) {  // of compile-time numbers
    if (x->n == 0) { diag_error(a[0]->loc, "np.%s() of an empty list", fn); return value_error(); }
    double best = 0, sum = 0;
    int at = 0;
    for (int i = 0; i < x->n; i++) {
      const Value *it = x->items[i];
      if (it->kind != V_INT && it->kind != V_FLOAT) { diag_error(a[0]->loc, "np.%s() needs numbers", fn); return value_error(); }
      sum += it->f;
      if (i == 0 || ((op == 0 || op == 2) ? it->f > best : it->f < best)) best = it->f, at = i;
    }
    Value *v = value_new(op < 2 ? V_INT : V_FLOAT, call->loc);
    v->f = op < 2 ? at : op < 4 ? best : op == 4 ? sum : sum / x->n;
    v->i = (int64_t)v->f;
    return v;
  }
  if (x->kind != V_DATA) {
    diag_error(a[0]->loc, "np.%s() needs data or a list of numbers, got %s", fn, value_kind_name(x));
    return value_error();
  }
  if (a[1] && a[1]->kind != E_NONE) {
    diag_error(a[1]->loc, "np.%s(..., axis=...) is not supported; reduce one sample, e.g. np.%s(predictions[0])", fn, fn);
    return value_error();
  }
  for (int i = 2; i < 4; i++)
    if (a[i]) { diag_error(a[i]->loc, "np.%s() argument '%s' is not supported", fn, p[i]); return value_error(); }
  Value *v = value_new(V_RUNTIME, call->loc);
  v->rt = (PrintItem){.kind = P_REDUCE, .op = op, .data = (int)x->i};
  v->rt_int = op < 2;
  return v;
}

Value *builtin_len(const Expr *call) {
  if (call->args.n != 1 || call->kwargs.n) { diag_error(call->loc, "len() takes exactly one argument"); return value_error(); }
  Value *x = eval(call->args.items[0]);
  if (x->kind == V_ERROR) return x;
  Value *v = value_new(V_INT, call->loc);
  if (x->kind == V_DATA) {
    const DataValue *d = &sema_program()->data[x->i];
    if (d->row_index) {
      if (d->shape.rank == 0) { diag_error(call->loc, "len() of a single number"); return value_error(); }
      v->i = d->shape.dim[0];
    } else {
      v->i = d->rows;
      v->shape_of = (int)x->i + 1, v->shape_dim = 0;  // the run-time row count
    }
  } else if (x->kind == V_LIST || x->kind == V_TUPLE) v->i = x->n;
  else if (x->kind == V_STR) v->i = (int64_t)strlen(x->s);
  else if (x->kind == V_RESULT) v->i = 1 + sema_program()->n_metrics;
  else {
    diag_error(call->args.items[0]->loc, "len() of %s is not supported", value_kind_name(x));
    return value_error();
  }
  v->f = (double)v->i;
  return v;
}
