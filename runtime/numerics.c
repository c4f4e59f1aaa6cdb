// numerics.c — keras.callbacks.TerminateOnNaN and the --check-numerics option.
//
// TerminateOnNaN looks at the batch loss, as Keras's does, and ends training (the script
// goes on). --check-numerics looks at every buffer after every step through the model's
// first_nonfinite hook (generated code; a few memory scans per step, nothing when off)
// and stops the program at the first NaN or infinity, naming the graph node that
// produced it: buffers are scanned in execution order after a step whose inputs were all
// finite (the previous step's check saw to that), so the first bad one is its source.
#include "rt.h"

#include <math.h>

static bool wants_terminate(const nn_fit_config *cfg) {
  for (int i = 0; i < cfg->n_callbacks; i++)
    if (cfg->callbacks[i].kind == NN_CB_TERMINATE_ON_NAN)
      return true;
  return false;
}

// " (first produced by node X, op Y)" when the model can tell, else "".
static void source_of(nn_model *m, int n, char *buf, size_t size) {
  const char *node = NULL, *op = NULL;
  buf[0] = 0;
  if (m->first_nonfinite && m->first_nonfinite(m, n, &node, &op))
    snprintf(buf, size, ", first produced by node %s (op %s)", node, op);
}

int rt_numerics_after_step(nn_model *m, const nn_fit_config *cfg, const nn_options *o, float loss,
                           int n, int64_t epoch, int64_t step) {
  bool check = o && o->check_numerics;
  if (check && m->first_nonfinite) {
    const char *node, *op;
    if (m->first_nonfinite(m, n, &node, &op))
      return rt_error("--check-numerics: NaN or Inf first produced by node %s (op %s) at epoch %lld, "
                      "step %lld",
                      node, op, (long long)epoch + 1, (long long)step + 1);
  }
  if (isfinite(loss))
    return 0;
  char src[256];
  source_of(m, n, src, sizeof src);
  if (check)
    return rt_error("--check-numerics: the loss is %s at epoch %lld, step %lld%s", isnan(loss) ? "NaN" : "Inf",
                    (long long)epoch + 1, (long long)step + 1, src);
  if (!wants_terminate(cfg))
    return 0;
  fflush(stdout);
  // Keras's words, then where.
  printf("\nBatch %lld: Invalid loss, terminating training (epoch %lld, step %lld%s)\n",
         (long long)step, (long long)epoch + 1, (long long)step + 1, src);
  fflush(stdout);
  return 1;
}
