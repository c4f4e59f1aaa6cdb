// mpi.c — the MPI side of data-parallel training (include/nn_mpi.h): built into its own
// library, libnnrt_mpi.a, with MPI's flags, so libnnrt and programs built without --mpi
// never reference MPI.
//
// Gradients: each registered gradient has a slot in one staging buffer, laid out in the
// order the backward pass completes them and cut into buckets of about NNC_MPI_BUCKET_KB
// (default 256) KiB. When gradient k is final, nn_mpi_grad_ready copies it in, scaled by
// this rank's row count n_r; once every gradient of the next bucket is in, its
// MPI_Iallreduce (sum) starts. Buckets start in the same order on every rank, as MPI's
// collectives require. A last bucket carries the moving statistics, also scaled by n_r,
// and n_r itself, so after the sum every rank knows N = sum of n_r and divides: the
// gradient of the global batch's mean loss (regularization terms, added on every rank,
// come out once), and a row-weighted mean of the statistics. A rank with no rows sends
// zeros. Open MPI's reductions give every rank the same bits, so the weights stay equal
// (NNC_MPI_CHECK=1 verifies it at the end); for a given N the run is deterministic.
//
// Nonblocking collectives progress only inside MPI calls, so each grad_ready also tests
// the buckets in flight.
#include "nn_mpi.h"
#include "rt.h"

#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct mpi_slot { float *value; int64_t elems, at; } mpi_slot;

static struct {
  int rank, size;
  bool started;
  mpi_slot *grads, *stats;
  int n_grads, n_stats;
  float *stage;             // grads, then stats, then n_r
  int64_t grads_elems, stage_elems;
  int *bucket_end;          // bucket b holds grads [bucket_end[b-1], bucket_end[b])
  int n_buckets, next_bucket, n_ready;
  bool *ready;
  MPI_Request *req;         // one per bucket, and the last for the statistics and n_r
  int n_local;
  nn_model *model;
  int64_t steps;
  double t_step, t_wait, t_begin;   // NNC_MPI_STATS: seconds in steps, waiting in nn_mpi_reduce
} mp;

static void die_mpi(const char *what, int err) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(err, text, &len);
  fprintf(stderr, "error: rank %d of %d: %s failed: %s\n", mp.rank, mp.size, what, text);
  MPI_Abort(MPI_COMM_WORLD, 1);
}
#define CHECK(call)                              \
  do {                                           \
    int err_ = (call);                           \
    if (err_ != MPI_SUCCESS) die_mpi(#call, err_); \
  } while (0)

// Waits for requests. MPI's own waits spin; a rank that finished its share early would
// take the CPU its neighbours (other ranks, other jobs, its own OpenMP threads) need, as
// libgomp's spinning did (docs/internals.md). So: poll for 100 us, then sleep 20 us
// between polls, which also drives the nonblocking collectives' progress.
// NNC_MPI_SPIN=1 keeps polling (a machine of one's own, each rank on its own cores).
static void wait_requests(int n, MPI_Request *req) {
  static int spin = -1;
  if (spin < 0) {
    const char *v = getenv("NNC_MPI_SPIN");
    spin = v && *v && strcmp(v, "0");
  }
  double t0 = MPI_Wtime();
  for (;;) {
    int done = 0;
    CHECK(MPI_Testall(n, req, &done, MPI_STATUSES_IGNORE));
    if (done) return;
    if (!spin && MPI_Wtime() - t0 > 100e-6) nanosleep(&(struct timespec){0, 20000}, NULL);
  }
}

static void dist_sum(double *v, int n) {
  MPI_Request r;
  CHECK(MPI_Iallreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD, &r));
  wait_requests(1, &r);
}
static void dist_bcast(void *buf, size_t bytes) {
  MPI_Request r;
  CHECK(MPI_Ibcast(buf, (int)bytes, MPI_BYTE, 0, MPI_COMM_WORLD, &r));
  wait_requests(1, &r);
}

static int env_int(const char *name, int fallback) {
  const char *v = getenv(name);
  return v && *v ? atoi(v) : fallback;
}

void nn_mpi_prepare(nn_options *o) {
  // Launchers say how many ranks share this node before MPI_Init can (Open MPI, MPICH, Slurm).
  int local = env_int("OMPI_COMM_WORLD_LOCAL_SIZE", env_int("MPI_LOCALNRANKS", env_int("SLURM_NTASKS_PER_NODE", 1)));
  const char *omp = getenv("OMP_NUM_THREADS");
  if (o->threads <= 0 && !(omp && *omp) && local > 1) {
    o->threads = nn_default_threads() / local;
    if (o->threads < 1) o->threads = 1;
  }
}

void nn_mpi_start(void) {
  int provided;
  // OpenMP threads run kernels only; MPI is called from the main thread.
  if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
    fprintf(stderr, "error: MPI_Init failed\n");
    exit(1);
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &mp.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &mp.size);
  mp.started = true;
  // The ranks sharing this machine (its devices, its CPUs).
  MPI_Comm local;
  int local_rank = 0, local_size = 1;
  if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, mp.rank, MPI_INFO_NULL, &local) == MPI_SUCCESS) {
    MPI_Comm_rank(local, &local_rank);
    MPI_Comm_size(local, &local_size);
    MPI_Comm_free(&local);
  }
  rt_dist = (rt_dist_hooks){.rank = mp.rank, .size = mp.size, .local_rank = local_rank, .local_size = local_size,
                            .sum = dist_sum, .bcast = dist_bcast};
  if (mp.rank != 0) {
    fflush(stdout);
    if (!freopen("/dev/null", "w", stdout)) fprintf(stderr, "warning: rank %d: cannot silence stdout\n", mp.rank);
  }
}

void nn_mpi_model(nn_model *m) { mp.model = m; }
int nn_mpi_size(void) { return mp.started ? mp.size : 1; }

static void add_slot(mpi_slot **list, int *n, float *value, int64_t elems) {
  mpi_slot *grown = realloc(*list, sizeof **list * (*n + 1));
  if (!grown) {
    fprintf(stderr, "error: rank %d: out of memory\n", mp.rank);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  *list = grown;
  (*list)[(*n)++] = (mpi_slot){value, elems, 0};
}

void nn_mpi_add_grad(float *grad, int64_t elems) { add_slot(&mp.grads, &mp.n_grads, grad, elems); }
void nn_mpi_add_stat(float *value, int64_t elems) { add_slot(&mp.stats, &mp.n_stats, value, elems); }

// The staging buffer and the buckets, once every slot is registered (the first step).
static void layout(void) {
  int64_t bucket_elems = (int64_t)env_int("NNC_MPI_BUCKET_KB", 256) * 1024 / (int64_t)sizeof(float);
  if (bucket_elems < 1) bucket_elems = 1;
  int64_t at = 0, in_bucket = 0;
  mp.bucket_end = calloc(mp.n_grads + 1, sizeof(int));
  mp.ready = calloc(mp.n_grads + 1, sizeof(bool));
  for (int k = 0; k < mp.n_grads; k++) {
    mp.grads[k].at = at;
    at += mp.grads[k].elems;
    in_bucket += mp.grads[k].elems;
    if (in_bucket >= bucket_elems || k == mp.n_grads - 1) {
      mp.bucket_end[mp.n_buckets++] = k + 1;
      in_bucket = 0;
    }
  }
  mp.grads_elems = at;
  for (int k = 0; k < mp.n_stats; k++) {
    mp.stats[k].at = at;
    at += mp.stats[k].elems;
  }
  mp.stage_elems = at + 1;  // + n_r
  mp.stage = malloc(sizeof(float) * mp.stage_elems);
  mp.req = malloc(sizeof(MPI_Request) * (mp.n_buckets + 1));
  if (!mp.bucket_end || !mp.ready || !mp.stage || !mp.req || mp.stage_elems > (1ll << 31) - 1) {
    fprintf(stderr, "error: rank %d: cannot lay out %lld gradient values for MPI\n", mp.rank, (long long)mp.stage_elems);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  for (int b = 0; b <= mp.n_buckets; b++) mp.req[b] = MPI_REQUEST_NULL;
}

void nn_mpi_step_begin(int n, uint64_t *seed) {
  if (mp.size == 1)
    return;
  if (!mp.stage) layout();
  mp.t_begin = MPI_Wtime();
  mp.n_local = n;
  mp.next_bucket = 0;
  mp.n_ready = 0;
  memset(mp.ready, 0, sizeof(bool) * (mp.n_grads + 1));
  // Dropout: rank r's rows draw masks of their own (rank 0 keeps the one-process seed).
  *seed ^= 0x9E3779B97F4A7C15ull * (uint64_t)mp.rank;
}

static int64_t bucket_first(int b) { return b == 0 ? 0 : mp.grads[mp.bucket_end[b - 1]].at; }
static int64_t bucket_elems(int b) {
  int last = mp.bucket_end[b] - 1;
  return mp.grads[last].at + mp.grads[last].elems - bucket_first(b);
}

// Starts, in order, every bucket whose gradients are all in.
static void start_buckets(void) {
  while (mp.next_bucket < mp.n_buckets && mp.n_ready >= mp.bucket_end[mp.next_bucket]) {
    int b = mp.next_bucket++;
    CHECK(MPI_Iallreduce(MPI_IN_PLACE, mp.stage + bucket_first(b), (int)bucket_elems(b), MPI_FLOAT, MPI_SUM,
                         MPI_COMM_WORLD, &mp.req[b]));
  }
}

static void stage_grad(int k) {
  const mpi_slot *g = &mp.grads[k];
  float w = (float)mp.n_local, *to = mp.stage + g->at;
  for (int64_t i = 0; i < g->elems; i++) to[i] = g->value[i] * w;
  mp.ready[k] = true;
}

void nn_mpi_grad_ready(int k) {
  if (mp.size == 1 || k < 0 || k >= mp.n_grads || mp.ready[k]) return;
  stage_grad(k);
  // Gradients are announced in registration order; count the prefix that is in.
  while (mp.n_ready < mp.n_grads && mp.ready[mp.n_ready]) mp.n_ready++;
  start_buckets();
  int done;
  if (mp.next_bucket > 0) CHECK(MPI_Testall(mp.next_bucket, mp.req, &done, MPI_STATUSES_IGNORE));
}

void nn_mpi_reduce(void) {
  if (mp.size == 1)
    return;  // one process: the step is exactly the one a build without --mpi takes
  // A rank with no rows (or a gradient the backward pass never announced) fills in now.
  for (int k = 0; k < mp.n_grads; k++)
    if (!mp.ready[k]) stage_grad(k);
  mp.n_ready = mp.n_grads;
  start_buckets();
  float w = (float)mp.n_local;
  for (int k = 0; k < mp.n_stats; k++)
    for (int64_t i = 0; i < mp.stats[k].elems; i++) mp.stage[mp.stats[k].at + i] = mp.stats[k].value[i] * w;
  mp.stage[mp.stage_elems - 1] = w;
  int64_t tail = mp.grads_elems;
  CHECK(MPI_Iallreduce(MPI_IN_PLACE, mp.stage + tail, (int)(mp.stage_elems - tail), MPI_FLOAT, MPI_SUM,
                       MPI_COMM_WORLD, &mp.req[mp.n_buckets]));
  double t0 = MPI_Wtime();
  wait_requests(mp.n_buckets + 1, mp.req);
  double t1 = MPI_Wtime();
  float total = mp.stage[mp.stage_elems - 1];  // N, the global batch's rows
  for (int k = 0; k < mp.n_grads; k++)
    for (int64_t i = 0; i < mp.grads[k].elems; i++) mp.grads[k].value[i] = mp.stage[mp.grads[k].at + i] / total;
  for (int k = 0; k < mp.n_stats; k++)
    for (int64_t i = 0; i < mp.stats[k].elems; i++) mp.stats[k].value[i] = mp.stage[mp.stats[k].at + i] / total;
  mp.steps++;
  mp.t_wait += t1 - t0;
  mp.t_step += MPI_Wtime() - mp.t_begin;
}

// FNV-1a over the weights' bytes.
static uint64_t weights_hash(nn_model *m) {
  uint64_t h = 0xcbf29ce484222325ull;
  nn_model_pull_params(m);
  for (int i = 0; i < m->n_params; i++) {
    const unsigned char *b = (const unsigned char *)m->params[i].value;
    for (int64_t j = 0; b && j < m->params[i].size * (int64_t)sizeof(float); j++) h = (h ^ b[j]) * 0x100000001b3ull;
  }
  return h;
}

// NNC_MPI_CHECK=1: every rank's weights against rank 0's; 0 when all are equal.
static int check_weights(void) {
  uint64_t mine = mp.model ? weights_hash(mp.model) : 0;
  uint64_t *all = malloc(sizeof(uint64_t) * mp.size);
  if (!all) return 1;
  CHECK(MPI_Gather(&mine, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD));
  int bad = 0;
  if (mp.rank == 0) {
    for (int r = 1; r < mp.size; r++)
      if (all[r] != all[0]) {
        fprintf(stderr, "error: the weights of rank %d differ from rank 0's\n", r);
        bad = 1;
      }
    if (!bad) fprintf(stderr, "nnc-mpi: weights identical on all %d ranks (fnv1a64 %016llx)\n", mp.size,
                      (unsigned long long)all[0]);
  }
  free(all);
  CHECK(MPI_Bcast(&bad, 1, MPI_INT, 0, MPI_COMM_WORLD));
  return bad;
}

// NNC_MPI_STATS=1: time per step, the part of it spent waiting for the reduction, and a
// blocking allreduce of one step's values alone, for the benchmark's alpha-beta model.
static void print_stats(void) {
  double alone = 0;
  if (mp.stage) {
    const int reps = 20;
    CHECK(MPI_Barrier(MPI_COMM_WORLD));
    double t0 = MPI_Wtime();
    for (int i = 0; i < reps; i++)
      CHECK(MPI_Allreduce(MPI_IN_PLACE, mp.stage, (int)mp.stage_elems, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
    alone = (MPI_Wtime() - t0) / reps;
  }
  if (mp.rank == 0 && mp.steps > 0)
    fprintf(stderr,
            "nnc-mpi: ranks %d steps %lld step_ms %.3f wait_ms %.3f allreduce_alone_ms %.3f bytes %lld buckets %d\n",
            mp.size, (long long)mp.steps, 1e3 * mp.t_step / mp.steps, 1e3 * mp.t_wait / mp.steps, 1e3 * alone,
            (long long)(mp.stage_elems * sizeof(float)), mp.n_buckets + 1);
}

int nn_mpi_finish(int status) {
  if (!mp.started) return status;
  fflush(stdout);
  if (status != 0) {
    fprintf(stderr, "error: rank %d of %d failed (exit status %d); stopping every rank\n", mp.rank, mp.size, status);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, status);
  }
  const char *check = getenv("NNC_MPI_CHECK");
  if (check && *check && strcmp(check, "0")) status = check_weights();
  if (getenv("NNC_MPI_STATS")) print_stats();
  MPI_Finalize();
  return status;
}
