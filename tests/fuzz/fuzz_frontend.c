// fuzz_frontend.c — libFuzzer harness for the front end: lexer, parser, sema, summary.
//
// Each input is one .nn file. Diagnostics are counted but not printed; the arena is
// freed after every input, so memory stays flat over millions of runs. The front end
// must never exit(), crash, hang or read out of bounds on any input: every finding
// becomes a file in tests/bad/ or tests/fuzz/regressions/.
//
// Build and run: tests/fuzz/run.sh [SECONDS]
#include "nnc.h"

#include <stdlib.h>
#include <string.h>



static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  devnull = fopen("/dev/null", "w");
  diag_set_output(NULL);
  // Data sets are looked up only where the harness says: no dependence on the host.
  unsetenv("NNC_DATA");
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  // A copy with a terminating NUL, as read_source gives the front end.
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = 0;
  Source src = {.path = "fuzz.nn", .text = text, .len = size};
  diag_init(&src);
  Stmt *stmts = parse_source(&src);
  if (stmts) {
    Program *p = sema_check(stmts, &src, "/nonexistent-nnc-data");
    if (p && devnull) print_summary(devnull, p);
  }
  arena_free_all();
  free(text);
  return 0;
}
