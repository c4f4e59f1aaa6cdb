// progress.c — Keras 2's progress bar (tf.keras.utils.Progbar), line for line.
//
//   verbose 1, final: "1875/1875 [==============================] - 12s 6ms/step - loss: 0.4512"
//   verbose 1, live:  " 512/1875 [=======>......................] - ETA: 3s - loss: 0.5101"
//   verbose 2, final: "1875/1875 - 12s - 6ms/step - loss: 0.4512"
// The live bar is drawn only on a terminal, redrawn with '\r' at most 10 times a second;
// elsewhere only the final line appears, so logs stay readable.
#include "rt.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

void rt_progress_start(rt_progress *p, int64_t target, int verbose) {
  p->target = target;
  p->verbose = verbose;
  p->live = verbose == 1 && isatty(STDOUT_FILENO);
  p->start = nn_now();
  p->last_draw = -1;
  p->prev_width = 0;
}

__attribute__((format(printf, 4, 5)))
static size_t put(char *buf, size_t size, size_t n, const char *fmt, ...) {
  if (n >= size)
    return n;
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(buf + n, size - n, fmt, ap);
  va_end(ap);
  return k < 0 ? n : n + k;
}

static int digits(int64_t v) {
  int d = 1;
  while (v >= 10) {
    v /= 10;
    d++;
  }
  return d;
}

static size_t put_count(char *buf, size_t size, size_t n, int64_t current, int64_t target) {
  return put(buf, size, n, "%*lld/%lld", digits(target), (long long)current, (long long)target);
}

static size_t put_bar(char *buf, size_t size, size_t n, int64_t current, int64_t target) {
  n = put_count(buf, size, n, current, target);
  int width = 30, done = target ? (int)(width * (double)current / (double)target) : width;
  char bar[40];
  int k = 0;
  for (int i = 0; i < done - 1; i++) bar[k++] = '=';
  if (done > 0)
    bar[k++] = current < target ? '>' : '=';
  while (k < width) bar[k++] = '.';
  bar[k] = 0;
  return put(buf, size, n, " [%s]", bar);
}

static size_t put_time(char *buf, size_t size, size_t n, double t, const char *unit) {
  if (t >= 1 || t == 0)
    return put(buf, size, n, " %.0fs/%s", t, unit);
  if (t >= 1e-3)
    return put(buf, size, n, " %.0fms/%s", t * 1e3, unit);
  return put(buf, size, n, " %.0fus/%s", t * 1e6, unit);
}

static size_t put_values(char *buf, size_t size, size_t n, const rt_logs *l) {
  for (int i = 0; l && i < l->n; i++) {
    double v = l->value[i];
    n = put(buf, size, n, fabs(v) > 1e-3 ? " - %s: %.4f" : " - %s: %.4e", l->name[i], v);
  }
  return n;
}

static void emit(rt_progress *p, char *line, size_t n, size_t size, bool final) {
  // Overwrite the previous live line fully: pad with spaces to its width.
  size_t width = n;
  if (p->live) {
    while ((int)n < p->prev_width && n + 1 < size) line[n++] = ' ';
    line[n] = 0;
    p->prev_width = (int)width;
  }
  fputs(p->live ? "\r" : "", stdout);
  fputs(line, stdout);
  if (final)
    fputc('\n', stdout);
  fflush(stdout);
}

void rt_progress_update(rt_progress *p, int64_t current, const rt_logs *l) {
  if (!p->live || current >= p->target)
    return;
  double now = nn_now();
  if (p->last_draw >= 0 && now - p->last_draw < 0.1)
    return;
  p->last_draw = now;
  char line[1024];
  size_t n = put_bar(line, sizeof line, 0, current, p->target);
  double per_step = current > 0 ? (now - p->start) / (double)current : 0;
  double eta = per_step * (double)(p->target - current);
  if (eta > 3600)
    n = put(line, sizeof line, n, " - ETA: %d:%02d:%02d", (int)(eta / 3600),
            (int)fmod(eta, 3600) / 60, (int)fmod(eta, 60));
  else if (eta > 60)
    n = put(line, sizeof line, n, " - ETA: %d:%02d", (int)(eta / 60), (int)fmod(eta, 60));
  else
    n = put(line, sizeof line, n, " - ETA: %ds", (int)eta);
  n = put_values(line, sizeof line, n, l);
  emit(p, line, n < sizeof line ? n : sizeof line - 1, sizeof line, false);
}

void rt_progress_finish(rt_progress *p, const rt_logs *l) {
  if (p->verbose != 1 && p->verbose != 2)
    return;
  double elapsed = nn_now() - p->start;
  double per_step = p->target > 0 ? elapsed / (double)p->target : 0;
  char line[1024];
  size_t n;
  if (p->verbose == 1) {
    n = put_bar(line, sizeof line, 0, p->target, p->target);
    n = put(line, sizeof line, n, " - %.0fs", elapsed);
    n = put_time(line, sizeof line, n, per_step, "step");
  } else {
    n = put_count(line, sizeof line, 0, p->target, p->target);
    n = put(line, sizeof line, n, " - %.0fs -", elapsed);
    n = put_time(line, sizeof line, n, per_step, "step");
  }
  n = put_values(line, sizeof line, n, l);
  emit(p, line, n < sizeof line ? n : sizeof line - 1, sizeof line, true);
}
