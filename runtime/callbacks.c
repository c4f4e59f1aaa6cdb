// callbacks.c — EarlyStopping, ModelCheckpoint and CSVLogger, as Keras 3 runs them.
//
// Each runs after every epoch with that epoch's logs (loss, metrics, val_*). A monitored
// value missing from the logs gives one warning and the callback does nothing.
#include "rt.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct cb_state {
  const nn_callback *cb;
  const char *monitor;
  bool minimize, warned;
  // EarlyStopping / ModelCheckpoint(save_best_only)
  bool has_best;
  double best;
  int64_t wait, stopped_epoch, best_epoch;
  float *best_weights;     // EarlyStopping(restore_best_weights): every param, concatenated
  bool has_best_weights;
  // CSVLogger
  FILE *csv;
  bool header_needed, keys_set;
  rt_logs keys;
} cb_state;

struct rt_callbacks {
  nn_model *m;
  char last_checkpoint[4096];   // the file ModelCheckpoint wrote last, "" before
  bool verbose;
  int n;
  cb_state s[];
};

// Keras's mode 'auto': maximize what looks like an accuracy, minimize everything else.
static bool minimizes(const nn_callback *cb, const char *monitor) {
  if (cb->mode == 1) return true;
  if (cb->mode == 2) return false;
  return !strstr(monitor, "acc");
}

static int64_t params_size(const nn_model *m) {
  int64_t total = 0;
  for (int i = 0; i < m->n_params; i++) total += m->params[i].size;
  return total;
}

static void copy_params(nn_model *m, float *buf, bool to_model) {
  int64_t at = 0;
  if (!to_model) nn_model_pull_params(m);
  for (int i = 0; i < m->n_params; i++) {
    nn_param *p = &m->params[i];
    if (to_model)
      memcpy(p->value, buf + at, sizeof(float) * p->size);
    else
      memcpy(buf + at, p->value, sizeof(float) * p->size);
    at += p->size;
  }
  if (to_model) nn_model_push_params(m);
}

void rt_callbacks_end(rt_callbacks *c) {
  if (!c)
    return;
  for (int i = 0; i < c->n; i++) {
    cb_state *s = &c->s[i];
    if (s->cb->kind == NN_CB_EARLY_STOPPING) {
      if (s->stopped_epoch > 0 && c->verbose)
        printf("Epoch %lld: early stopping\n", (long long)s->stopped_epoch + 1);
      // Keras 3 restores the best weights at the end of training, stopped early or not.
      if (s->cb->restore_best_weights && s->has_best_weights) {
        if (c->verbose)
          printf("Restoring model weights from the end of the best epoch: %lld.\n",
                 (long long)s->best_epoch + 1);
        copy_params(c->m, s->best_weights, true);
      }
      fflush(stdout);
    }
    if (s->csv)
      fclose(s->csv);
    free(s->best_weights);
  }
  free(c);
}

rt_callbacks *rt_callbacks_begin(const nn_callback *cbs, int n, nn_model *m, bool verbose) {
  rt_callbacks *c = calloc(1, sizeof *c + sizeof(cb_state) * (n > 0 ? n : 0));
  if (!c) {
    rt_error("out of memory");
    return NULL;
  }
  c->m = m;
  c->verbose = verbose;
  for (int i = 0; i < n; i++) {
    cb_state *s = &c->s[i];
    const nn_callback *cb = &cbs[i];
    c->n = i + 1;
    s->cb = cb;
    s->monitor = cb->monitor && *cb->monitor ? cb->monitor : "val_loss";
    s->minimize = minimizes(cb, s->monitor);
    if (cb->kind == NN_CB_EARLY_STOPPING && cb->restore_best_weights) {
      s->best_weights = malloc(sizeof(float) * params_size(m) + 1);
      if (!s->best_weights) {
        rt_error("out of memory");
        rt_callbacks_end(c);
        return NULL;
      }
    }
    if (cb->kind == NN_CB_CSV_LOGGER) {
      if (!cb->path || !*cb->path) {
        rt_error("CSVLogger needs a filename");
        rt_callbacks_end(c);
        return NULL;
      }
      s->header_needed = true;
      if (cb->append) {
        // Keras writes the header only into a missing or empty file.
        FILE *old = fopen(cb->path, "r");
        if (old) {
          s->header_needed = fgetc(old) == EOF;
          fclose(old);
        }
      }
      // Data parallel: only rank 0 writes the log; the others write nowhere.
      s->csv = fopen(rt_dist_writes() ? cb->path : "/dev/null", cb->append ? "a" : "w");
      if (!s->csv) {
        rt_error("CSVLogger: cannot open %s: %s", cb->path, strerror(errno));
        rt_callbacks_end(c);
        return NULL;
      }
      // Unbuffered: a failed row leaves no bytes behind in a buffer to reappear later.
      setvbuf(s->csv, NULL, _IONBF, 0);
    }
  }
  return c;
}

// Looks up the monitored value, warning once if the logs do not have it.
static const double *monitored(cb_state *s, const rt_logs *l, const char *who) {
  const double *v = rt_logs_get(l, s->monitor);
  if (!v && !s->warned) {
    char names[512] = "";
    size_t n = 0;
    for (int i = 0; i < l->n && n < sizeof names; i++)
      n += snprintf(names + n, sizeof names - n, "%s%s", i ? ", " : "", l->name[i]);
    rt_warn("%s monitors '%s', which is not available (available: %s); it does nothing", who,
            s->monitor, names);
    s->warned = true;
  }
  return v;
}

static void early_stopping(rt_callbacks *c, cb_state *s, int64_t epoch, const rt_logs *l,
                           bool *stop) {
  const double *v = monitored(s, l, "EarlyStopping");
  if (!v)
    return;
  if (s->cb->restore_best_weights && !s->has_best_weights) {
    // Until something improves, the first epoch's weights are the best seen.
    copy_params(c->m, s->best_weights, false);
    s->has_best_weights = true;
    s->best_epoch = epoch;
  }
  s->wait++;
  double delta = fabs(s->cb->min_delta);
  bool better = !s->has_best || (s->minimize ? *v + delta < s->best : *v - delta > s->best);
  if (better) {
    s->has_best = true;
    s->best = *v;
    s->best_epoch = epoch;
    if (s->cb->restore_best_weights)
      copy_params(c->m, s->best_weights, false);
    s->wait = 0;
    return;
  }
  if (s->wait >= s->cb->patience && epoch > 0) {
    s->stopped_epoch = epoch;
    *stop = true;
  }
}

// Python's str.format for the filepath: {epoch}, {epoch:02d}, {val_loss:.2f}, {{, }}.
static int format_path(const char *tmpl, int64_t epoch, const rt_logs *l, char *out, size_t size) {
  size_t n = 0;
  for (const char *p = tmpl; *p;) {
    if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
      if (n + 1 < size) out[n++] = *p;
      p += 2;
      continue;
    }
    if (*p != '{') {
      if (n + 1 < size) out[n++] = *p;
      p++;
      continue;
    }
    const char *close = strchr(p, '}');
    if (!close)
      return rt_error("ModelCheckpoint filepath '%s': unmatched '{'", tmpl);
    char field[128];
    size_t flen = close - p - 1;
    if (flen >= sizeof field)
      return rt_error("ModelCheckpoint filepath '%s': field too long", tmpl);
    memcpy(field, p + 1, flen);
    field[flen] = 0;
    p = close + 1;
    char *spec = strchr(field, ':');
    if (spec)
      *spec++ = 0;
    bool is_int = strcmp(field, "epoch") == 0;
    const double *v = is_int ? NULL : rt_logs_get(l, field);
    if (!is_int && !v)
      return rt_error("ModelCheckpoint filepath '%s': no value named '%s' in the epoch's logs",
                      tmpl, field);
    // Spec subset: [0][width][.precision][d|f|e|g]
    const char *q = spec ? spec : "";
    bool zero = *q == '0';
    if (zero) q++;
    int width = 0, prec = -1;
    while (isdigit((unsigned char)*q)) width = width * 10 + (*q++ - '0');
    if (*q == '.') {
      q++;
      prec = 0;
      while (isdigit((unsigned char)*q)) prec = prec * 10 + (*q++ - '0');
    }
    char type = *q ? *q++ : 0;
    if (*q || (type && !strchr("dfeg", type)) || (type == 'd' && !is_int) || width > 100 || prec > 50)
      return rt_error("ModelCheckpoint filepath '%s': unsupported format '{%s:%s}'", tmpl, field,
                      spec ? spec : "");
    char val[256];
    if (is_int && (type == 'd' || !type)) {
      snprintf(val, sizeof val, zero ? "%0*lld" : "%*lld", width, (long long)epoch);
    } else {
      double x = is_int ? (double)epoch : (double)(float)*v;
      if (!type) {
        nn_format_float(val, sizeof val, x);
      } else {
        char fmt[16];
        snprintf(fmt, sizeof fmt, "%%%s*.*%c", zero ? "0" : "", type);
        snprintf(val, sizeof val, fmt, width, prec < 0 ? 6 : prec, x);
      }
    }
    for (const char *c = val; *c; c++)
      if (n + 1 < size) out[n++] = *c;
  }
  out[n] = 0;
  if (n + 1 >= size)
    return rt_error("ModelCheckpoint filepath '%s': too long", tmpl);
  return 0;
}

static int model_checkpoint(rt_callbacks *c, cb_state *s, int64_t epoch, const rt_logs *l) {
  char path[4096];
  if (!s->cb->path || format_path(s->cb->path, epoch + 1, l, path, sizeof path) != 0)
    return s->cb->path ? -1 : rt_error("ModelCheckpoint needs a filepath");
  if (s->cb->save_best_only) {
    const double *v = monitored(s, l, "ModelCheckpoint");
    if (!v)
      return 0;
    bool better = !s->has_best || (s->minimize ? *v < s->best : *v > s->best);
    if (!better)
      return 0;
    s->has_best = true;
    s->best = *v;
  }
  if ((s->cb->save ? s->cb->save(c->m, path) : nn_save_weights(c->m, path)) != 0)
    return -1;
  snprintf(c->last_checkpoint, sizeof c->last_checkpoint, "%s", path);
  return 0;
}

const char *rt_callbacks_last_checkpoint(const rt_callbacks *c) {
  return c && c->last_checkpoint[0] ? c->last_checkpoint : NULL;
}

static int cmp_names(const void *a, const void *b) { return strcmp(a, b); }

static int csv_logger(cb_state *s, int64_t epoch, const rt_logs *l) {
  const char *sep = s->cb->separator && *s->cb->separator ? s->cb->separator : ",";
  if (!s->keys_set) {
    // Keras fixes the columns at the first epoch: its log keys, sorted.
    s->keys = *l;
    qsort(s->keys.name, s->keys.n, sizeof s->keys.name[0], cmp_names);
    s->keys_set = true;
  }
  // A row that cannot be written whole (disk full) is cut off again: the rows before
  // it stay a well-formed file.
  long before = ftell(s->csv);
  // Python's csv module ends rows with "\r\n"; Keras's files do too.
  if (s->header_needed) {
    fputs("epoch", s->csv);
    for (int i = 0; i < s->keys.n; i++) fprintf(s->csv, "%s%s", sep, s->keys.name[i]);
    fputs("\r\n", s->csv);
    s->header_needed = false;
  }
  fprintf(s->csv, "%lld", (long long)epoch);
  for (int i = 0; i < s->keys.n; i++) {
    const double *v = rt_logs_get(l, s->keys.name[i]);
    char buf[64] = "NA";
    if (v)
      nn_format_float(buf, sizeof buf, (double)(float)*v);  // Keras logs float32 values
    fprintf(s->csv, "%s%s", sep, buf);
  }
  fputs("\r\n", s->csv);
  if (fflush(s->csv) != 0 || ferror(s->csv)) {
    int saved = errno;
    if (before >= 0 && ftruncate(fileno(s->csv), before) == 0)
      fseek(s->csv, before, SEEK_SET);
    clearerr(s->csv);
    return rt_error("CSVLogger: cannot write %s: %s (the rows before are kept)", s->cb->path,
                    strerror(saved));
  }
  return 0;
}

int rt_callbacks_epoch_end(rt_callbacks *c, int64_t epoch, const rt_logs *l, bool *stop) {
  for (int i = 0; i < c->n; i++) {
    cb_state *s = &c->s[i];
    switch (s->cb->kind) {
    case NN_CB_EARLY_STOPPING:
      early_stopping(c, s, epoch, l, stop);
      break;
    case NN_CB_MODEL_CHECKPOINT:
      if (model_checkpoint(c, s, epoch, l) != 0)
        return -1;
      break;
    case NN_CB_CSV_LOGGER:
      if (csv_logger(s, epoch, l) != 0)
        return -1;
      break;
    case NN_CB_BACKUP_AND_RESTORE:   // runtime/backup.c, called by nn_fit
    case NN_CB_TERMINATE_ON_NAN:     // runtime/numerics.c, after each step
      break;
    }
  }
  return 0;
}
