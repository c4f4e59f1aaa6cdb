// metrics.c — Keras metrics accumulated over batches (mean over samples).
//
// 'accuracy' means one of three functions, chosen as Keras does: by the loss for the
// cross-entropies (sparse → sparse_categorical_accuracy, categorical →
// categorical_accuracy, binary → binary_accuracy), and by the shapes otherwise
// (Keras 3's get_metric: one output → binary; one label per sample against several
// outputs → sparse; else categorical).
#include "rt.h"

// First index of the maximum, as numpy's argmax.
static int64_t argmax(const float *v, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; i++)
    if (v[i] > v[best])
      best = i;
  return best;
}

typedef enum { ACC_BINARY, ACC_SPARSE, ACC_CATEGORICAL } accuracy_kind;

static accuracy_kind accuracy_for(nn_loss_kind loss, int64_t out_width, int64_t label_width) {
  switch (loss) {
  case NN_LOSS_SPARSE_CCE: return ACC_SPARSE;
  case NN_LOSS_CCE: return ACC_CATEGORICAL;
  case NN_LOSS_BCE: return ACC_BINARY;
  default: break;
  }
  if (out_width == 1)
    return ACC_BINARY;
  if (label_width == 1)
    return ACC_SPARSE;
  return ACC_CATEGORICAL;
}

void nn_metric_update(nn_metric_kind kind, nn_loss_kind loss, const float *out, const float *y,
                      int n, int64_t out_width, int64_t label_width, nn_metric_acc *acc) {
  for (int i = 0; i < n; i++) {
    const float *o = out + i * out_width, *t = y + i * label_width;
    double v = 0;
    if (kind == NN_METRIC_ACCURACY) {
      switch (accuracy_for(loss, out_width, label_width)) {
      case ACC_SPARSE:
        v = (double)argmax(o, out_width) == (double)t[0];
        break;
      case ACC_CATEGORICAL:
        v = argmax(o, out_width) == argmax(t, label_width);
        break;
      case ACC_BINARY: {
        // Mean over the sample's elements of (out > 0.5) == label.
        int64_t w = out_width < label_width ? out_width : label_width, hits = 0;
        for (int64_t j = 0; j < w; j++) hits += (float)(o[j] > 0.5f) == t[j];
        v = w ? (double)hits / (double)w : 0;
        break;
      }
      }
    } else {
      // mae / mse: mean over the sample's elements; a single label broadcasts.
      double s = 0;
      for (int64_t j = 0; j < out_width; j++) {
        double d = (double)o[j] - (double)t[label_width == out_width ? j : 0];
        s += kind == NN_METRIC_MAE ? (d < 0 ? -d : d) : d * d;
      }
      v = out_width ? s / (double)out_width : 0;
    }
    acc->sum += v;
  }
  acc->count += n;
}

const char *nn_metric_name(nn_metric_kind kind) {
  switch (kind) {
  case NN_METRIC_ACCURACY: return "accuracy";
  case NN_METRIC_MAE: return "mae";
  case NN_METRIC_MSE: return "mse";
  }
  return "metric";
}
