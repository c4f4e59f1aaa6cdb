// backup.c — keras.callbacks.BackupAndRestore and --resume DIR: exact resumption.
//
// One file, DIR/backup.nnc, holds everything the rest of training depends on: every
// weight (BatchNorm statistics included), the optimizer's slots and step count, the
// next epoch and the steps already done in it, the generator's state now and before
// the epoch's shuffle (so the same permutation is drawn again), and the epoch's running
// loss and metric sums (so the logs match too). A run stopped anywhere (SIGKILL
// included) and started again with the same seed, threads and data ends with the same
// bits as one that never stopped.
//
// Layout (little-endian): "NNCBAK1\n", RT_BACKUP_FIELDS int64 fields (see save), the
// weights as float32 in params[] order, the optimizer slots as float32, then the FNV-1a
// 64 hash of everything before it. Anything that does not match this model and fit is
// refused by name.
//
// Two files take turns, DIR/backup-0.nnc and DIR/backup-1.nnc, and the one with the
// higher generation is the backup. A new one is written as an unnamed file (O_TMPFILE),
// fsynced, and linked under the older one's name once that is unlinked: at every moment
// the newer backup is whole on disk, and no temporary file ever has a name, so even
// SIGKILL leaves nothing behind. (Without O_TMPFILE: rt_atomic's temp and rename.)
#define _GNU_SOURCE
#include "rt.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
  F_VERSION, F_PARAMS, F_WEIGHTS, F_SLOTS, F_ROWS, F_BATCH, F_MODEL, F_EPOCH, F_STEP,
  F_OPT_STEP, F_RNG, F_RNG_EPOCH = F_RNG + 4, F_LOSS_SUM = F_RNG_EPOCH + 4, F_SEEN,
  F_ACC, F_GENERATION = F_ACC + 8, F_FIT, RT_BACKUP_FIELDS
};
static const char magic[8] = {'N', 'N', 'C', 'B', 'A', 'K', '1', '\n'};

struct rt_backup {
  nn_model *m;
  char dir[4000];
  char path[2][4096];      // the two files; path[gen % 2] holds generation gen
  int64_t gen;             // generation of the newest backup on disk (0: none)
  int64_t save_freq;       // 0: at each epoch's end
  bool delete_when_done;
  int64_t rows, batch;
  int64_t weights, slots;  // float counts
  uint64_t model;          // hash of the weights' names and sizes
  float *buf;              // slots while saving
  int64_t fit;             // which fit of the script this is (1, 2, ...)
  bool later_fit;          // DIR holds a later fit's backup: this fit neither saves nor deletes
};

// A script may call fit more than once with the same backup_dir. A backup belongs to the
// fit that wrote it: an earlier fit, run again from the start (the same seed gives the
// same bits), leaves a later fit's backup alone for that fit to resume from.
static int64_t fits_begun;

static uint64_t fnv(uint64_t h, const void *data, size_t n) {
  const unsigned char *p = data;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}
#define FNV_START 0xcbf29ce484222325ULL

static uint64_t model_hash(const nn_model *m) {
  uint64_t h = FNV_START;
  for (int i = 0; i < m->n_params; i++) {
    h = fnv(h, m->params[i].name, strlen(m->params[i].name) + 1);
    h = fnv(h, &m->params[i].size, sizeof m->params[i].size);
  }
  return h;
}


// Temporaries a SIGKILL caught between naming and renaming (a window of microseconds).
static void remove_stale_temps(const rt_backup *b) {
  DIR *d = opendir(b->dir);
  if (!d)
    return;
  struct dirent *e;
  char path[8192];
  while ((e = readdir(d)))
    if (strncmp(e->d_name, "backup-", 7) == 0 && strstr(e->d_name, ".nnc.tmp.")) {
      snprintf(path, sizeof path, "%s/%s", b->dir, e->d_name);
      unlink(path);
    }
  closedir(d);
}

rt_backup *rt_backup_begin(const nn_fit_config *cfg, const nn_options *o, nn_model *m,
                           int64_t rows, int64_t batch, int *err) {
  *err = 0;
  int64_t fit = ++fits_begun;
  const nn_callback *cb = NULL;
  for (int i = 0; i < cfg->n_callbacks; i++)
    if (cfg->callbacks[i].kind == NN_CB_BACKUP_AND_RESTORE)
      cb = &cfg->callbacks[i];
  const char *dir = o && o->resume_dir ? o->resume_dir : cb ? cb->path : NULL;
  if (!dir)
    return NULL;
  rt_backup *b = calloc(1, sizeof *b);
  if (!b || strlen(dir) >= sizeof b->dir || !*dir) {
    free(b);
    *err = b ? rt_error("BackupAndRestore: bad directory '%s'", dir) : rt_error("out of memory");
    return NULL;
  }
  snprintf(b->dir, sizeof b->dir, "%s", dir);
  for (int k = 0; k < 2; k++) snprintf(b->path[k], sizeof b->path[k], "%s/backup-%d.nnc", dir, k);
  b->m = m;
  b->fit = fit;
  b->save_freq = cb ? cb->save_freq : 0;
  b->delete_when_done = cb ? cb->delete_checkpoint : true;
  b->rows = rows;
  b->batch = batch;
  for (int i = 0; i < m->n_params; i++) b->weights += m->params[i].size;
  b->slots = m->optimizer_state ? m->optimizer_elems : 0;
  b->model = model_hash(m);
  b->buf = malloc(sizeof(float) * (b->slots + 1));
  // Keras creates backup_dir (and its parents) when missing.
  int dir_err = b->buf ? rt_make_dirs(dir, 0777) : 0;
  if (!b->buf || dir_err) {
    *err = b->buf ? rt_error("BackupAndRestore: cannot create %s: %s", dir, strerror(dir_err))
                  : rt_error("out of memory");
    free(b->buf);
    free(b);
    return NULL;
  }
  remove_stale_temps(b);
  return b;
}

const char *rt_backup_path(const rt_backup *b) { return b && b->gen ? b->path[b->gen % 2] : NULL; }

static void put(rt_atomic *a, uint64_t *h, const void *data, size_t n) {
  *h = fnv(*h, data, n);
  fwrite(data, 1, n, a->f);
}

int rt_backup_save(rt_backup *b, const nn_rng *rng, const rt_fit_pos *pos) {
  nn_model *m = b->m;
  if (b->later_fit || !rt_dist_writes())   // under MPI every rank holds the same state: rank 0 writes it
    return 0;
  int64_t f[RT_BACKUP_FIELDS] = {0};
  f[F_VERSION] = 1;
  f[F_FIT] = b->fit;
  f[F_PARAMS] = m->n_params;
  f[F_WEIGHTS] = b->weights;
  f[F_SLOTS] = b->slots;
  f[F_ROWS] = b->rows;
  f[F_BATCH] = b->batch;
  f[F_MODEL] = (int64_t)b->model;
  f[F_EPOCH] = pos->epoch;
  f[F_STEP] = pos->step;
  memcpy(&f[F_RNG], rng->s, sizeof rng->s);
  memcpy(&f[F_RNG_EPOCH], pos->rng_epoch.s, sizeof rng->s);
  memcpy(&f[F_LOSS_SUM], &pos->loss_sum, 8);
  memcpy(&f[F_SEEN], &pos->seen, 8);
  for (int k = 0; k < 4; k++) {
    memcpy(&f[F_ACC + 2 * k], &pos->acc[k].sum, 8);
    memcpy(&f[F_ACC + 2 * k + 1], &pos->acc[k].count, 8);
  }
  if (m->optimizer_state)
    m->optimizer_state(m, b->buf, &f[F_OPT_STEP], true);
  nn_model_pull_params(m);
  rt_atomic a;
  f[F_GENERATION] = b->gen + 1;
  if (rt_atomic_open(&a, b->path[(b->gen + 1) % 2]) != 0)
    return -1;
  uint64_t h = FNV_START;
  put(&a, &h, magic, sizeof magic);
  put(&a, &h, f, sizeof f);
  for (int i = 0; i < m->n_params; i++)
    put(&a, &h, m->params[i].value, sizeof(float) * m->params[i].size);
  put(&a, &h, b->buf, sizeof(float) * b->slots);
  fwrite(&h, 1, sizeof h, a.f);
  if (rt_atomic_commit_as(&a, b->path[(b->gen + 1) % 2]) != 0)
    return -1;
  b->gen++;
  return 0;
}

// Reads and checks one backup file: its fields in f and its contents in *data (to
// free), or a reason it cannot be used (NULL data, *why set; *why NULL when absent).
static char *read_backup(rt_backup *b, const char *path, int64_t *f, const char **why) {
  *why = NULL;
  struct stat st;
  if (stat(path, &st) != 0) {
    if (errno != ENOENT)
      *why = strerror(errno);
    return NULL;
  }
  size_t len;
  char *data = rt_read_file(path, &len);
  if (!data) {
    *why = "unreadable";
    return NULL;
  }
  size_t want = sizeof magic + sizeof(int64_t) * RT_BACKUP_FIELDS + sizeof(float) * (size_t)(b->weights + b->slots) + 8;
  uint64_t stored;
  if (len < sizeof magic + sizeof(int64_t) * RT_BACKUP_FIELDS + 8 || memcmp(data, magic, sizeof magic) != 0)
    *why = "not an nnc backup";
  else if (memcpy(&stored, data + len - 8, 8), fnv(FNV_START, data, len - 8) != stored)
    *why = "damaged (checksum mismatch)";
  else {
    memcpy(f, data + sizeof magic, sizeof(int64_t) * RT_BACKUP_FIELDS);
    if (f[F_VERSION] != 1)
      *why = "written by another version of nnc";
    else if (f[F_PARAMS] != b->m->n_params || f[F_WEIGHTS] != b->weights || f[F_SLOTS] != b->slots ||
             (uint64_t)f[F_MODEL] != b->model || len != want)
      *why = "written by a different model or optimizer";
    else if (f[F_ROWS] != b->rows || f[F_BATCH] != b->batch)
      *why = "written by a fit with other data or another batch size";
    else if (f[F_GENERATION] <= 0)
      *why = "damaged (no generation)";
  }
  if (*why) {
    free(data);
    return NULL;
  }
  return data;
}

// Loads the newest backup in DIR if there is one: 1 restored (model, rng and pos set),
// 0 none. A file that cannot be used is an error naming it, unless the other file is a
// newer usable backup (the older one may be anything a crash left).
int rt_backup_restore(rt_backup *b, nn_rng *rng, rt_fit_pos *pos) {
  int64_t fk[2][RT_BACKUP_FIELDS];
  const char *why[2];
  char *data[2];
  for (int k = 0; k < 2; k++) data[k] = read_backup(b, b->path[k], fk[k], &why[k]);
  int use = data[0] && (!data[1] || fk[0][F_GENERATION] > fk[1][F_GENERATION]) ? 0 : data[1] ? 1 : -1;
  for (int k = 0; k < 2; k++)
    if (why[k] && use < 0)
      return rt_error("%s: %s; remove it to start training from the beginning", b->path[k], why[k]);
    else if (why[k])
      rt_warn("%s: %s; using %s", b->path[k], why[k], b->path[use]);
  if (use >= 0 && fk[use][F_FIT] != b->fit) {
    // Another fit's: a later one keeps it; an earlier one's is replaced by this fit's.
    b->later_fit = fk[use][F_FIT] > b->fit;
    b->gen = fk[use][F_GENERATION];
    use = -1;
  }
  if (use < 0) {
    free(data[0]);
    free(data[1]);
    return 0;
  }
  int64_t *f = fk[use];
  const char *at = data[use] + sizeof magic + sizeof fk[0];
  for (int i = 0; i < b->m->n_params; i++) {
    memcpy(b->m->params[i].value, at, sizeof(float) * b->m->params[i].size);
    at += sizeof(float) * b->m->params[i].size;
  }
  nn_model_push_params(b->m);
  memcpy(b->buf, at, sizeof(float) * b->slots);
  if (b->m->optimizer_state)
    b->m->optimizer_state(b->m, b->buf, &f[F_OPT_STEP], false);
  b->gen = f[F_GENERATION];
  pos->epoch = f[F_EPOCH];
  pos->step = f[F_STEP];
  memcpy(rng->s, &f[F_RNG], sizeof rng->s);
  memcpy(pos->rng_epoch.s, &f[F_RNG_EPOCH], sizeof rng->s);
  memcpy(&pos->loss_sum, &f[F_LOSS_SUM], 8);
  memcpy(&pos->seen, &f[F_SEEN], 8);
  for (int k = 0; k < 4; k++) {
    memcpy(&pos->acc[k].sum, &f[F_ACC + 2 * k], 8);
    memcpy(&pos->acc[k].count, &f[F_ACC + 2 * k + 1], 8);
  }
  fprintf(stderr, "resuming from %s: epoch %lld, step %lld\n", b->path[use], (long long)pos->epoch + 1,
          (long long)pos->step);
  free(data[0]);
  free(data[1]);
  return 1;
}

// After each training step (steps counts every step of this fit): a backup when
// save_freq asks for one.
int rt_backup_after_step(rt_backup *b, const nn_rng *rng, const rt_fit_pos *pos, int64_t steps) {
  if (!b || b->save_freq <= 0 || steps % b->save_freq != 0)
    return 0;
  return rt_backup_save(b, rng, pos);
}

int rt_backup_epoch_end(rt_backup *b, const nn_rng *rng, const rt_fit_pos *pos) {
  if (!b || b->save_freq > 0)
    return 0;
  return rt_backup_save(b, rng, pos);
}

void rt_backup_end(rt_backup *b, bool completed) {
  if (!b)
    return;
  if (completed && b->delete_when_done && !b->later_fit && rt_dist_writes()) {
    unlink(b->path[0]);
    unlink(b->path[1]);
    rmdir(b->dir);   // only when empty: the directory may hold the user's other files
  }
  free(b->buf);
  free(b);
}

void rt_fit_check_signals(rt_backup *b, const nn_rng *rng, const rt_fit_pos *pos,
                          const rt_callbacks *cbs) {
  int sig = rt_signals_pending();
  if (rt_dist.size > 1) {
    // Under mpirun every rank stops at the same step, or the others would wait in the
    // next reduction forever: a signal any rank has seen stops them all.
    double seen[2] = {sig != 0, sig};
    rt_dist_sum(seen, 2);
    if (seen[0] > 0 && !sig)
      sig = (int)(seen[1] / seen[0]);
  }
  if (!sig)
    return;
  fflush(stdout);
  char where[64];
  if (pos->step == 0 && pos->epoch > 0)
    snprintf(where, sizeof where, "after epoch %lld", (long long)pos->epoch);
  else
    snprintf(where, sizeof where, "at epoch %lld, step %lld", (long long)pos->epoch + 1,
             (long long)pos->step);
  const char *ckpt = rt_callbacks_last_checkpoint(cbs);
  bool saved = b && !b->later_fit && rt_backup_save(b, rng, pos) == 0;
  if (!rt_dist_writes())   // rank 0 says it for all
    exit(128 + sig);
  if (saved)
    fprintf(stderr, "interrupted %s; training state saved in %s (run again to resume)\n", where,
            rt_backup_path(b));
  else if (ckpt)
    fprintf(stderr, "interrupted %s; last checkpoint: %s\n", where, ckpt);
  else
    fprintf(stderr, "interrupted %s; nothing saved (BackupAndRestore or --resume DIR would resume)\n",
            where);
  exit(128 + sig);
}
