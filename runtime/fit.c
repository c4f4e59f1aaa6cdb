// fit.c — model.fit, model.evaluate, model.predict: batching, loss/metric means,
// validation, callbacks, progress and --json output.
//
// Keras's numbers: the loss shown is the mean over the samples seen so far (each batch's
// mean loss weighted by its size), metrics likewise; the last partial batch is trained
// and counted. All buffers are allocated before the first batch.
//
// Data parallel (a program built with --mpi, runtime/dist.c): batch_size stays the global
// batch; every rank draws the same permutation and trains its share of each batch (the
// generated step averages the gradients over all ranks); losses, metrics and validation
// are summed over the ranks, and rank 0's EarlyStopping decision is every rank's.
#include "rt.h"

void (*nn_on_first_step)(double step_seconds);

#include <stdlib.h>
#include <string.h>

// What the script's verbose means after --quiet / --json (which replace the bars).
static int shown_verbose(const nn_options *o, int verbose) {
  return o && (o->quiet || o->json) ? 0 : verbose;
}

static int check_pair(const nn_model *m, const nn_data *x, const nn_data *y, const char *what) {
  if (nn_data_width(x) != m->in_width)
    return rt_error("%s: %s has %lld values per sample, the model takes %lld", x->origin, what,
                    (long long)nn_data_width(x), (long long)m->in_width);
  if (!y)
    return 0;
  if (nn_data_width(y) != m->label_width)
    return rt_error("%s: %s labels have %lld values per sample, the model's loss needs %lld",
                    y->origin, what, (long long)nn_data_width(y), (long long)m->label_width);
  if (x->rows != y->rows)
    return rt_error("%s: %lld samples but %lld labels (%s)", what, (long long)x->rows,
                    (long long)y->rows, y->origin);
  if (m->loss == NN_LOSS_SPARSE_CCE && y->onehot == 0)
    return rt_check_class_labels(y, m->out_width);
  return 0;
}

typedef struct batch_buffers { float *x, *y, *out; } batch_buffers;

static int alloc_buffers(batch_buffers *b, const nn_model *m, int64_t batch) {
  int64_t y_width = m->label_width > m->out_width ? m->label_width : m->out_width;
  b->x = rt_alloc_array(batch, m->in_width, sizeof(float), "a batch of inputs");
  b->y = b->x ? rt_alloc_array(batch, y_width, sizeof(float), "a batch of labels") : NULL;
  b->out = b->y ? rt_alloc_array(batch, m->out_width, sizeof(float), "a batch of outputs") : NULL;
  return b->out ? 0 : -1;
}

static void free_buffers(batch_buffers *b) {
  free(b->x);
  free(b->y);
  free(b->out);
}

// Loss and metric means so far, named as Keras logs them ("val_" for validation).
static void add_logs(rt_logs *l, const nn_model *m, const char *prefix, double loss_sum,
                     double seen, const nn_metric_acc *acc) {
  rt_logs_add(l, prefix, "loss", seen > 0 ? loss_sum / seen : 0);
  for (int k = 0; k < m->n_metrics; k++)
    rt_logs_add(l, prefix, nn_metric_name(m->metrics[k]),
                acc[k].count > 0 ? acc[k].sum / acc[k].count : 0);
}

// Data parallel (runtime/dist.c): the loss and metric sums of a rank's rows, summed over
// every rank, so each holds the global values; loss_sum and seen are added to acc's.
static void reduce_sums(const nn_model *m, double *loss_sum, double *seen, nn_metric_acc *acc) {
  if (rt_dist.size == 1)
    return;
  double v[2 + 2 * 4] = {*loss_sum, *seen};
  for (int k = 0; k < m->n_metrics; k++) {
    v[2 + 2 * k] = acc[k].sum;
    v[3 + 2 * k] = acc[k].count;
  }
  rt_dist_sum(v, 2 + 2 * m->n_metrics);
  *loss_sum = v[0];
  *seen = v[1];
  for (int k = 0; k < m->n_metrics; k++) {
    acc[k].sum = v[2 + 2 * k];
    acc[k].count = v[3 + 2 * k];
  }
}

// Adds one trained batch (this rank's n rows of it) to the epoch's running sums.
static void add_batch(const nn_model *m, float loss, int n, const batch_buffers *b, double *loss_sum,
                      double *seen, nn_metric_acc *acc) {
  double step_loss = (double)loss * n, step_seen = n;
  nn_metric_acc step[4] = {{0}};
  nn_metric_acc *into = rt_dist.size == 1 ? acc : step;
  for (int k = 0; k < m->n_metrics; k++)
    nn_metric_update(m->metrics[k], m->loss, b->out, b->y, n, m->out_width, m->label_width, &into[k]);
  reduce_sums(m, &step_loss, &step_seen, step);
  *loss_sum += step_loss;
  *seen += step_seen;
  if (into == step)
    for (int k = 0; k < m->n_metrics; k++) {
      acc[k].sum += step[k].sum;
      acc[k].count += step[k].count;
    }
}

int nn_infer_batch(int max_batch, double budget, int64_t per_sample, size_t (*work)(int n)) {
  int lo = max_batch, hi = NN_INFER_BATCH_MAX;   // lo fits: generated code sizes for it
  while (lo < hi) {   // per_sample * n + work(n) grows with n
    int mid = lo + (hi - lo + 1) / 2;
    if ((double)per_sample * mid + (double)work(mid) <= budget) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

// Samples the forward pass takes at once in evaluate, predict and validation.
static int64_t infer_chunk(const nn_model *m) {
  return m->infer_batch > m->max_batch ? m->infer_batch : m->max_batch;
}

// Inference over rows first..first+count of x (and y when given), infer_chunk(m) rows
// at a time. Accumulates the size-weighted loss and the metrics; writes outputs to
// all_out if given. The progress bar counts steps of `batch` rows, as Keras's does.
static int infer_rows(nn_model *m, const nn_data *x, const nn_data *y, int64_t first,
                      int64_t count, int64_t batch, batch_buffers *b, int64_t *idx,
                      double *loss_sum, nn_metric_acc *acc, float *all_out, rt_progress *p) {
  if (!m->infer)
    return rt_error("this model has no inference function");
  int64_t chunk = infer_chunk(m), steps = (count + batch - 1) / batch, shown = 0;
  for (int64_t done = 0; done < count;) {
    int n = (int)(count - done < chunk ? count - done : chunk);
    for (int i = 0; i < n; i++) idx[i] = first + done + i;
    if (nn_data_gather(x, idx, n, b->x) != 0 || (y && nn_data_gather(y, idx, n, b->y) != 0))
      return -1;
    float *out = all_out ? all_out + done * m->out_width : b->out;
    float loss = m->infer(m, b->x, y ? b->y : NULL, n, out);
    if (y) {
      *loss_sum += (double)loss * n;
      for (int k = 0; k < m->n_metrics; k++)
        nn_metric_update(m->metrics[k], m->loss, out, b->y, n, m->out_width, m->label_width,
                         &acc[k]);
    }
    done += n;
    int64_t step = done == count ? steps : done / batch;
    if (p && p->live && step > shown) {
      rt_logs l = {0};
      if (y)
        add_logs(&l, m, "", *loss_sum, (double)done, acc);
      rt_progress_update(p, step, &l);
      shown = step;
    }
  }
  return 0;
}

// "loss: 0.3120 - accuracy: 0.8870": what --quiet keeps of an evaluation (its results).
static void print_logs_line(const rt_logs *l) {
  for (int i = 0; i < l->n; i++) printf("%s%s: %.4f", i ? " - " : "", l->name[i], l->value[i]);
  printf("\n");
  fflush(stdout);
}

static void print_json(const char *head, const rt_logs *l, double seconds) {
  printf("{%s", head);
  for (int i = 0; i < l->n; i++) {
    char num[64];
    rt_format_float(num, sizeof num, l->value[i]);
    printf(",\"%s\":%s", l->name[i], num);
  }
  if (seconds >= 0)
    printf(",\"seconds\":%.3f", seconds);
  printf("}\n");
  fflush(stdout);
}

int nn_fit(nn_model *m, const nn_fit_config *cfg, const nn_data *x, const nn_data *y,
           nn_rng *rng, const nn_options *o) {
  int64_t epochs = o && o->epochs >= 0 ? o->epochs : cfg->epochs;
  int64_t batch = o && o->batch_size > 0 ? o->batch_size : cfg->batch_size;
  if (batch <= 0)
    batch = 32;  // Keras's default
  if (epochs < 0)
    return rt_error("fit: epochs must be >= 0, got %lld", (long long)epochs);
  if (batch > m->max_batch)
    return rt_error("fit: batch size %lld is larger than this program's maximum %d "
                    "(rebuild with the larger batch size)",
                    (long long)batch, m->max_batch);
  if (!m->train_step)
    return rt_error("this model cannot be trained (no train step)");
  if (check_pair(m, x, y, "fit") != 0)
    return -1;

  // Validation: the given data, else the last validation_split of the rows, unshuffled.
  const nn_data *vx = NULL, *vy = NULL;
  int64_t train_rows = x->rows, val_first = 0, val_rows = 0;
  if (cfg->val_x && cfg->val_y) {
    vx = cfg->val_x;
    vy = cfg->val_y;
    if (check_pair(m, vx, vy, "validation_data") != 0)
      return -1;
    val_rows = vx->rows;
  } else if (cfg->validation_split > 0) {
    if (cfg->validation_split >= 1)
      return rt_error("fit: validation_split must be in [0, 1), got %g", cfg->validation_split);
    int64_t at = rt_split_at(x->rows, cfg->validation_split);
    if (at <= 0 || at >= x->rows)
      return rt_error("fit: validation_split=%g of %lld samples leaves no %s data",
                      cfg->validation_split, (long long)x->rows, at <= 0 ? "training" : "validation");
    vx = x;
    vy = y;
    train_rows = at;
    val_first = at;
    val_rows = x->rows - at;
  }
  if (train_rows <= 0)
    return rt_error("fit: no training samples");

  // The buffers serve the train steps and, in larger pieces, validation.
  int64_t rows_at_once = val_rows > 0 && infer_chunk(m) > batch ? infer_chunk(m) : batch;
  int64_t *idx = malloc(sizeof(int64_t) * (train_rows > rows_at_once ? train_rows : rows_at_once));
  batch_buffers b = {0};
  if (!idx || alloc_buffers(&b, m, rows_at_once) != 0) {
    free(idx);
    free_buffers(&b);
    return idx ? -1 : rt_error("out of memory");
  }
  // A device model that holds the inputs is sent row indices instead of batches.
  bool on_device = m->bind_inputs && m->train_step_rows && m->bind_inputs(m, x) == 0;
  int verbose = shown_verbose(o, cfg->verbose);
  rt_callbacks *cbs = rt_callbacks_begin(cfg->callbacks, cfg->n_callbacks, m, verbose > 0);
  int rc = cbs ? 0 : -1;
  int64_t steps = (train_rows + batch - 1) / batch;
  // BackupAndRestore / --resume: start where a stopped run left off (runtime/backup.c).
  rt_fit_pos pos = {0};
  rt_backup *bk = rc == 0 ? rt_backup_begin(cfg, o, m, train_rows, batch, &rc) : NULL;
  int restored = bk ? rt_backup_restore(bk, rng, &pos) : 0;
  if (restored < 0)
    rc = -1;
  nn_rng rng_resumed = *rng;
  rt_fit_pos resumed = pos;
  int64_t fit_steps = pos.epoch * steps + pos.step;
  bool stop = false;
  rt_signals_training(true);
  for (int64_t epoch = pos.epoch; epoch < epochs && rc == 0 && !stop; epoch++) {
    if (verbose)
      printf("Epoch %lld/%lld\n", (long long)epoch + 1, (long long)epochs);
    fflush(stdout);
    bool mid_epoch = restored > 0 && epoch == pos.epoch && pos.step > 0;
    if (mid_epoch)
      *rng = pos.rng_epoch;   // draw this epoch's permutation again
    pos = (rt_fit_pos){.epoch = epoch, .rng_epoch = *rng};
    for (int64_t i = 0; i < train_rows; i++) idx[i] = i;
    if (cfg->shuffle)
      nn_rng_shuffle(rng, idx, train_rows);
    if (mid_epoch) {
      *rng = rng_resumed;
      pos = resumed;
    }
    rt_progress p;
    rt_progress_start(&p, steps, verbose);
    double t0 = nn_now(), loss_sum = pos.loss_sum, seen = pos.seen;
    nn_metric_acc acc[4];
    memcpy(acc, pos.acc, sizeof acc);
    for (int64_t s = pos.step; s < steps; s++) {
      int64_t share, n64;
      rt_dist_share(train_rows - s * batch < batch ? train_rows - s * batch : batch, &share, &n64);
      int n = (int)n64;  // this rank's rows of the global batch (all of them in one process)
      const int64_t *rows = idx + s * batch + share;
      if ((!on_device && nn_data_gather(x, rows, n, b.x) != 0) || nn_data_gather(y, rows, n, b.y) != 0) {
        rc = -1;
        break;
      }
      double step_start = nn_on_first_step ? nn_now() : 0;
      float loss = on_device ? m->train_step_rows(m, rows, b.y, n, rng, b.out)
                             : m->train_step(m, b.x, b.y, n, rng, b.out);
      if (nn_on_first_step) {
        void (*hook)(double) = nn_on_first_step;
        nn_on_first_step = NULL;
        hook(nn_now() - step_start);
      }
      add_batch(m, loss, n, &b, &loss_sum, &seen, acc);
      int numerics = rt_numerics_after_step(m, cfg, o, loss, n, epoch, s);
      pos.step = s + 1;
      pos.loss_sum = loss_sum;
      pos.seen = seen;
      memcpy(pos.acc, acc, sizeof acc);
      if (numerics != 0 || rt_backup_after_step(bk, rng, &pos, ++fit_steps) != 0) {
        rc = numerics > 0 ? 0 : -1;
        stop = numerics > 0;
        break;
      }
      rt_fit_check_signals(bk, rng, &pos, cbs);
      if (p.live) {
        rt_logs l = {0};
        add_logs(&l, m, "", loss_sum, seen, acc);
        rt_progress_update(&p, s + 1, &l);
      }
    }
    if (rc != 0)
      break;
    rt_logs logs = {0};
    add_logs(&logs, m, "", loss_sum, seen, acc);
    if (val_rows > 0) {
      double vloss = 0, vseen;
      nn_metric_acc vacc[4] = {{0}};
      int64_t share, count;
      rt_dist_share(val_rows, &share, &count);
      vseen = (double)count;
      // idx is reused: the epoch's permutation is no longer needed.
      if (infer_rows(m, vx, vy, val_first + share, count, batch, &b, idx, &vloss, vacc, NULL, NULL)) {
        rc = -1;
        break;
      }
      reduce_sums(m, &vloss, &vseen, vacc);
      add_logs(&logs, m, "val_", vloss, vseen, vacc);
    }
    rt_progress_finish(&p, &logs);
    if (cfg->history) nn_history_add(cfg->history, logs.n, (const char (*)[40])logs.name, logs.value);
    if (o && o->json) {
      char head[64];
      snprintf(head, sizeof head, "\"epoch\":%lld", (long long)epoch + 1);
      print_json(head, &logs, nn_now() - t0);
    }
    if (rt_callbacks_epoch_end(cbs, epoch, &logs, &stop) != 0)
      rc = -1;
    rt_dist_bcast(&stop, sizeof stop);  // rank 0 decides for every rank
    pos = (rt_fit_pos){.epoch = epoch + 1, .rng_epoch = *rng};
    if (rc == 0 && rt_backup_epoch_end(bk, rng, &pos) != 0)
      rc = -1;
    rt_fit_check_signals(bk, rng, &pos, cbs);
  }
  rt_signals_training(false);
  rt_backup_end(bk, rc == 0);
  rt_callbacks_end(cbs);
  free(idx);
  free_buffers(&b);
  return rc;
}

int nn_evaluate(nn_model *m, const nn_data *x, const nn_data *y, int64_t batch_size,
                int verbose, const nn_options *o, double *results) {
  int64_t batch = batch_size > 0 ? batch_size : 32;   // the progress bar's steps
  if (infer_chunk(m) <= 0)
    return rt_error("evaluate: the model's maximum batch is %d", m->max_batch);
  if (check_pair(m, x, y, "evaluate") != 0)
    return -1;
  if (x->rows <= 0)
    return rt_error("evaluate: no samples in %s", x->origin);
  int64_t *idx = malloc(sizeof(int64_t) * infer_chunk(m));
  batch_buffers b = {0};
  if (!idx || alloc_buffers(&b, m, infer_chunk(m)) != 0) {
    free(idx);
    free_buffers(&b);
    return idx ? -1 : rt_error("out of memory");
  }
  int64_t share, count;
  rt_dist_share(x->rows, &share, &count);
  rt_progress p;
  rt_progress_start(&p, (count + batch - 1) / batch, shown_verbose(o, verbose));
  double t0 = nn_now(), loss_sum = 0, seen = (double)count;
  nn_metric_acc acc[4] = {{0}};
  int rc = infer_rows(m, x, y, share, count, batch, &b, idx, &loss_sum, acc, NULL, &p);
  if (rc == 0) {
    reduce_sums(m, &loss_sum, &seen, acc);
    rt_logs logs = {0};
    add_logs(&logs, m, "", loss_sum, seen, acc);
    rt_progress_finish(&p, &logs);
    if (o && o->json)
      print_json("\"evaluate\":true", &logs, nn_now() - t0);
    else if (o && o->quiet && verbose)  // --quiet drops the bars, not the results
      print_logs_line(&logs);
    if (results)
      for (int i = 0; i < logs.n; i++) results[i] = logs.value[i];
  }
  free(idx);
  free_buffers(&b);
  return rc;
}

float *nn_predict(nn_model *m, const nn_data *x, int64_t batch_size, int verbose,
                  const nn_options *o) {
  int64_t batch = batch_size > 0 ? batch_size : 32;   // the progress bar's steps
  if (infer_chunk(m) <= 0) {
    rt_error("predict: the model's maximum batch is %d", m->max_batch);
    return NULL;
  }
  if (check_pair(m, x, NULL, "predict") != 0)
    return NULL;
  float *all = rt_alloc_array(x->rows, m->out_width, sizeof(float), "the predictions");
  int64_t *idx = malloc(sizeof(int64_t) * infer_chunk(m));
  batch_buffers b = {0};
  if (!all || !idx || alloc_buffers(&b, m, infer_chunk(m)) != 0) {
    if (all && !idx)
      rt_error("out of memory");
    free(all);
    free(idx);
    free_buffers(&b);
    return NULL;
  }
  rt_progress p;
  rt_progress_start(&p, (x->rows + batch - 1) / batch, shown_verbose(o, verbose));
  if (infer_rows(m, x, NULL, 0, x->rows, batch, &b, idx, NULL, NULL, all, &p) != 0) {
    free(all);
    all = NULL;
  } else {
    rt_progress_finish(&p, NULL);
  }
  free(idx);
  free_buffers(&b);
  return all;
}
