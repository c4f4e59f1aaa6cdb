// model.c — what the runtime asks of any nn_model beyond its function pointers.
#include "nn.h"

void nn_model_pull_params(nn_model *m) {
  if (m->pull_params) m->pull_params(m);
}

void nn_model_push_params(nn_model *m) {
  if (m->push_params) m->push_params(m);
}
