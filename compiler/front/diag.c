// diag.c — diagnostics and the compilation arena.
//
// User errors print `file:line:col: error: message`, the source line and a caret
// (or ~~~ range) under the place, like clang. Internal errors say they are nnc's bug.
#include "nnc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const Source *diag_src;
static int n_errors;
static bool color;
static bool silent;  // diag_set_output(NULL): count errors, print nothing (fuzzer, tests)
static FILE *out_stream;

void diag_set_output(FILE *out) {
  silent = out == NULL;
  out_stream = out;
}

// stderr unless redirected (stderr is not a constant initializer).
static FILE *diag_out(void) { return out_stream ? out_stream : stderr; }

void diag_init(const Source *src) {
  diag_src = src;
  n_errors = 0;
  const char *nc = getenv("NO_COLOR");
  color = !nc && getenv("NNC_COLOR") && strcmp(getenv("NNC_COLOR"), "1") == 0;
}

int diag_error_count(void) { return n_errors; }

// Prints the source line `line`, with bytes that would garble a terminal replaced.
static void print_source_line(int line, int col, int end_col) {
  if (!diag_src || line < 1) return;
  const char *p = diag_src->text, *end = p + diag_src->len;
  for (int l = 1; l < line && p < end; p++)
    if (*p == '\n') l++;
  if (p >= end && line > 1) return;
  const char *eol = memchr(p, '\n', end - p);
  if (!eol) eol = end;
  // Very long lines are cut around the column so the caret stays visible.
  int start = 0, len = (int)(eol - p);
  if (len > 160) {
    start = col > 80 ? col - 80 : 0;
    if (len - start > 160) len = start + 160;
  }
  fputs("  ", diag_out());
  for (int i = start; i < len; i++) {
    unsigned char c = p[i];
    fputc(c == '\t' ? ' ' : (c < 0x20 || c == 0x7f) ? '?' : c, diag_out());
  }
  fputs("\n  ", diag_out());
  for (int i = start + 1; i < col; i++) fputc(' ', diag_out());
  fputc('^', diag_out());
  for (int i = col + 1; i <= end_col && i <= len; i++) fputc('~', diag_out());
  fputc('\n', diag_out());
}

static void vreport(const char *kind, Loc loc, const char *fmt, va_list ap) {
  if (silent) return;
  const char *path = diag_src ? diag_src->path : "<input>";
  if (color) fprintf(diag_out(), "\033[1m");
  fprintf(diag_out(), "%s:%d:%d: ", path, loc.line, loc.col);
  if (color) fprintf(diag_out(), strcmp(kind, "error") == 0 ? "\033[31m" : "\033[35m");
  fprintf(diag_out(), "%s: ", kind);
  if (color) fprintf(diag_out(), "\033[0m\033[1m");
  vfprintf(diag_out(), fmt, ap);
  if (color) fprintf(diag_out(), "\033[0m");
  fputc('\n', diag_out());
  print_source_line(loc.line, loc.col, loc.end_col);
}

void diag_error(Loc loc, const char *fmt, ...) {
  n_errors++;
  if (n_errors > DIAG_MAX_ERRORS) {
    if (n_errors == DIAG_MAX_ERRORS + 1 && !silent)
      fprintf(diag_out(), "%s: too many errors, stopping\n", diag_src ? diag_src->path : "nnc");
    return;
  }
  va_list ap;
  va_start(ap, fmt);
  vreport("error", loc, fmt, ap);
  va_end(ap);
}

void diag_warning(Loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vreport("warning", loc, fmt, ap);
  va_end(ap);
}

void diag_note(const char *fmt, ...) {
  if (n_errors > DIAG_MAX_ERRORS || silent) return;
  va_list ap;
  va_start(ap, fmt);
  fputs("  note: ", diag_out());
  vfprintf(diag_out(), fmt, ap);
  fputc('\n', diag_out());
  va_end(ap);
}

void diag_fatal(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("nnc: error: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

void internal_error(const char *pass, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "nnc: internal error in %s: ", pass);
  vfprintf(stderr, fmt, ap);
  fputs("\nThis is a bug in nnc, not in your model; please report it with the .nn file.\n", stderr);
  va_end(ap);
  exit(70);
}

// Levenshtein distance, case-insensitive, bounded by the short lengths we compare.
static int edit_distance(const char *a, const char *b) {
  int la = (int)strlen(a), lb = (int)strlen(b);
  if (la > 64 || lb > 64) return 1000;
  int prev[65], cur[65];
  for (int j = 0; j <= lb; j++) prev[j] = j;
  for (int i = 1; i <= la; i++) {
    cur[0] = i;
    for (int j = 1; j <= lb; j++) {
      char ca = a[i - 1] | 0x20, cb = b[j - 1] | 0x20;
      int sub = prev[j - 1] + (ca != cb);
      int del = prev[j] + 1, ins = cur[j - 1] + 1;
      cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
    }
    memcpy(prev, cur, sizeof(int) * (lb + 1));
  }
  return prev[lb];
}

const char *diag_closest(const char *word, const char *const *candidates, int n) {
  const char *best = NULL;
  int best_d = 1000;
  int limit = (int)strlen(word) / 3 + 1;
  if (limit > 3) limit = 3;
  for (int i = 0; i < n; i++) {
    int d = edit_distance(word, candidates[i]);
    if (d < best_d) best_d = d, best = candidates[i];
  }
  return best_d <= limit ? best : NULL;
}

//
// Arena: one list of blocks, freed by process exit. Compilations are short-lived.
//
typedef struct Block { struct Block *next; size_t used, cap; _Alignas(16) char data[]; } Block;
static Block *arena;

void *xalloc(size_t size) {
  size = (size + 15) & ~(size_t)15;
  if (!arena || arena->used + size > arena->cap) {
    size_t cap = size > (1u << 20) ? size : (1u << 20);
    Block *b = malloc(sizeof(Block) + cap);
    if (!b) {
      fputs("nnc: out of memory\n", stderr);
      exit(1);
    }
    b->next = arena, b->used = 0, b->cap = cap;
    arena = b;
  }
  void *p = arena->data + arena->used;
  arena->used += size;
  memset(p, 0, size);
  return p;
}

// Frees every block: a process that runs many compilations (tests, the fuzzer)
// calls it between them. Nothing from the previous compilation may be used after.
void arena_free_all(void) {
  while (arena) {
    Block *next = arena->next;
    free(arena);
    arena = next;
  }
}

char *xstrndup(const char *s, size_t n) {
  char *p = xalloc(n + 1);
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}

char *xstrdup(const char *s) { return xstrndup(s, strlen(s)); }

ReadStatus read_file(const char *path, size_t max, char **text, size_t *len) {
  struct stat st;
  if (stat(path, &st) != 0) return READ_OPEN;
  if (S_ISDIR(st.st_mode)) return READ_DIR;
  FILE *f = fopen(path, "rb");
  if (!f) return READ_OPEN;
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap + 1);
  for (;;) {
    if (n == cap) {
      if (cap >= max) {
        fclose(f);
        free(buf);
        return READ_TOO_BIG;
      }
      cap *= 2;
      buf = realloc(buf, cap + 1);
      if (!buf) diag_fatal("out of memory");
    }
    size_t got = fread(buf + n, 1, cap - n, f);
    if (got == 0) break;
    n += got;
  }
  if (ferror(f)) {
    int saved = errno;   // the read's reason, not fclose's
    fclose(f);
    free(buf);
    errno = saved;
    return READ_IO;
  }
  fclose(f);
  *text = xstrndup(buf, n);  // into the compilation's arena
  *len = n;
  free(buf);
  return READ_OK;
}

char *xprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *p = xalloc((size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(p, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return p;
}
