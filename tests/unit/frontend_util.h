// frontend_util.h — helpers shared by the front-end tests: compile a string in memory
// and capture the diagnostics it produces.
#ifndef FRONTEND_UTIL_H
#define FRONTEND_UTIL_H
#include "nnc.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>



static char *diag_text;      // everything diagnostics printed during the last compile
static size_t diag_len;

// Parses and checks `text` as file "t.nn"; NULL after errors (see last_error()).
static inline Program *compile_with(const char *text, size_t len, Stmt **stmts_out) {
  static FILE *mem;
  if (mem) fclose(mem);
  free(diag_text);
  diag_text = NULL, diag_len = 0;
  mem = open_memstream(&diag_text, &diag_len);
  diag_set_output(mem);
  Source *src = xalloc(sizeof(Source));
  src->path = "t.nn", src->text = xstrndup(text, len), src->len = len;
  diag_init(src);
  Stmt *stmts = parse_source(src);
  if (stmts_out) *stmts_out = stmts;
  Program *p = stmts ? sema_check(stmts, src, "/nonexistent-nnc-data") : NULL;
  fflush(mem);
  return p;
}
static inline Program *compile(const char *text) { return compile_with(text, strlen(text), NULL); }
static inline Stmt *parse(const char *text) {
  Stmt *s;
  compile_with(text, strlen(text), &s);
  return s;
}

// The first "t.nn:L:C: error: ..." line, without the path ("L:C: error: ..."), or "".
static inline const char *last_error(void) {
  static char line[1024];
  line[0] = 0;
  if (!diag_text) return line;
  const char *p = strstr(diag_text, ": error: ");
  if (!p) return line;
  const char *start = p;
  while (start > diag_text && start[-1] != '\n') start--;
  start += strlen("t.nn:");
  const char *end = strchr(start, '\n');
  size_t n = end ? (size_t)(end - start) : strlen(start);
  if (n >= sizeof line) n = sizeof line - 1;
  memcpy(line, start, n);
  line[n] = 0;
  return line;
}

// Asserts that `text` is refused and the first error starts with `prefix`.
#define expect_error(text, prefix)                                                          \
  do {                                                                                      \
    Program *p_ = compile(text);                                                            \
    cr_assert_null(p_, "expected an error for:\n%s", text);                                 \
    cr_assert(strncmp(last_error(), prefix, strlen(prefix)) == 0, "want '%s'\n got '%s'", \
              prefix, last_error());                                                        \
  } while (0)

#define compile_ok(text)                                                                    \
  ({                                                                                        \
    Program *p_ = compile(text);                                                            \
    cr_assert_not_null(p_, "unexpected error: %s\n%s", last_error(), text);                 \
    p_;                                                                                     \
  })

#define HEADER                                                                              \
  "import numpy as np\nfrom tensorflow import keras\nfrom tensorflow.keras.layers import *\n"
#endif
