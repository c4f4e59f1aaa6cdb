// test_runtime_util.h — helpers shared by the runtime's unit tests: scratch
// directories, writing fixture files, capturing stdout/stderr.
#ifndef TEST_RUNTIME_UTIL_H
#define TEST_RUNTIME_UTIL_H

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char scratch_path[64];
static pid_t scratch_owner;
static inline void scratch_remove(void) {
  if (getpid() != scratch_owner)
    return;  // a forked child exiting: the directory is still the parent's
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch_path);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", scratch_path);
}

// A fresh directory per test (Criterion runs each test in its own process), in memory
// when /dev/shm is there (the robustness tests write thousands of files), removed at exit.
static inline const char *scratch_dir(void) {
  if (!scratch_path[0]) {
    strcpy(scratch_path, access("/dev/shm", W_OK) == 0 ? "/dev/shm/nnrt_test_XXXXXX"
                                                       : "/tmp/nnrt_test_XXXXXX");
    cr_assert_not_null(mkdtemp(scratch_path));
    scratch_owner = getpid();
    atexit(scratch_remove);
  }
  return scratch_path;
}

// scratch_dir()/name, in a rotating static buffer so several can be alive at once.
static inline const char *scratch(const char *name) {
  static char bufs[8][512];
  static int next;
  char *b = bufs[next++ % 8];
  snprintf(b, 512, "%s/%s", scratch_dir(), name);
  return b;
}

static inline void write_bytes(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f, "cannot write %s", path);
  cr_assert_eq(fwrite(data, 1, n, f), n);
  fclose(f);
}

static inline void write_text(const char *path, const char *text) {
  write_bytes(path, text, strlen(text));
}

// Malloc'ed contents of a file (NUL-terminated), length in *n if n is given.
static inline char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "cannot read %s", path);
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc(len + 1);
  cr_assert_eq(fread(buf, 1, len, f), (size_t)len);
  buf[len] = 0;
  fclose(f);
  if (n)
    *n = len;
  return buf;
}

// Redirects fd (1 or 2) into a file until capture_end, which returns what was written.
typedef struct capture { int fd, saved; char path[512]; } capture;
static inline capture capture_begin(int fd, const char *name) {
  capture c = {fd, -1, ""};
  snprintf(c.path, sizeof c.path, "%s", scratch(name));
  fflush(fd == 1 ? stdout : stderr);
  c.saved = dup(fd);
  int f = open(c.path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  dup2(f, fd);
  close(f);
  return c;
}
static inline char *capture_end(capture *c) {
  fflush(c->fd == 1 ? stdout : stderr);
  dup2(c->saved, c->fd);
  close(c->saved);
  return slurp(c->path, NULL);
}

#endif
