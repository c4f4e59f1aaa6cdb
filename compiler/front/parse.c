// parse.c — runs the flex scanner and bison parser over a Source.
//
// Needs: the whole file in memory. Guarantees: a list of statements in order, or
// NULL after reporting every syntax error (bounded by DIAG_MAX_ERRORS).
#include "nnc.h"
#include "parser.h"
#include "lexer.h"
#include "lexstate.h"

#include <stdarg.h>
#include <string.h>

void lex_error(struct LexState *st, Loc loc, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  diag_error(loc, "%s", msg);
  st->errors++;
}

// Python refuses source that is not UTF-8 or holds NUL bytes; so do we, pointing at
// the first bad byte.
static bool check_utf8(const Source *src) {
  const unsigned char *p = (const unsigned char *)src->text;
  int line = 1, col = 1;
  for (size_t i = 0; i < src->len;) {
    unsigned c = p[i];
    int need = c < 0x80 ? 0 : (c >= 0xC2 && c <= 0xDF) ? 1 : (c >= 0xE0 && c <= 0xEF) ? 2 : (c >= 0xF0 && c <= 0xF4) ? 3 : -1;
    bool ok = need >= 0 && i + need < src->len + (need == 0);
    for (int k = 1; ok && k <= need; k++) ok = i + k < src->len && (p[i + k] & 0xC0) == 0x80;
    // Overlong 3-byte forms and surrogates are invalid too.
    if (ok && c == 0xE0 && p[i + 1] < 0xA0) ok = false;
    if (ok && c == 0xED && p[i + 1] >= 0xA0) ok = false;
    if (ok && c == 0xF0 && p[i + 1] < 0x90) ok = false;
    if (ok && c == 0xF4 && p[i + 1] >= 0x90) ok = false;
    if (!ok) {
      diag_error((Loc){line, col, col}, "invalid UTF-8 byte 0x%02x (a .nn file must be UTF-8)", c);
      return false;
    }
    // NUL is refused here, so inside the scanner input() == 0 can only mean EOF
    // (flex 2.6 returns 0 there, not EOF).
    if (c == 0) {
      diag_error((Loc){line, col, col}, "NUL byte in source");
      return false;
    }
    if (c == '\n') line++, col = 1;
    else col++;
    i += need + 1;
  }
  return true;
}

Stmt *parse_source(const Source *src) {
  if (!check_utf8(src)) return NULL;
  struct LexState st = {.line = 1, .col = 1};
  yyscan_t scanner;
  if (yylex_init_extra(&st, &scanner)) diag_fatal("cannot start the scanner");
  // Skip a UTF-8 byte-order mark, as Python does.
  size_t skip = src->len >= 3 && memcmp(src->text, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
  YY_BUFFER_STATE buf = yy_scan_bytes(src->text + skip, (int)(src->len - skip), scanner);
  int rc = yyparse(scanner, &st);
  yy_delete_buffer(buf, scanner);
  yylex_destroy(scanner);
  if (rc != 0 || st.errors > 0 || st.fatal || diag_error_count() > 0) return NULL;
  // Empty or only comments: say so here, so NULL always comes with a message.
  if (!st.first)
    diag_error((Loc){1, 1, 1}, "the file has no statements: expected a Keras script that builds a Sequential model");
  return st.first;
}

// An f-string field: the text is parsed as a one-line script, "(text)", whose tokens
// carry the field's own line and column, so errors point into the f-string.
Expr *parse_expression(const char *text, Loc at) {
  struct LexState st = {.line = at.line, .col = at.col > 1 ? at.col - 1 : 1, .no_indent_check = 1};
  char *wrapped = xprintf("(%s)\n", text);
  yyscan_t scanner;
  if (yylex_init_extra(&st, &scanner)) diag_fatal("cannot start the scanner");
  YY_BUFFER_STATE buf = yy_scan_bytes(wrapped, (int)strlen(wrapped), scanner);
  int rc = yyparse(scanner, &st);
  yy_delete_buffer(buf, scanner);
  yylex_destroy(scanner);
  if (rc != 0 || st.errors > 0 || st.fatal) return NULL;
  if (!st.first || st.first->next || st.first->kind != S_EXPR) {
    diag_error(at, "an f-string field must be one expression");
    return NULL;
  }
  return st.first->value;
}
