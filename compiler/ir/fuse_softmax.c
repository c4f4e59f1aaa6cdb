// fuse_softmax.c — the softmax computed once: by the loss, which needs it anyway.
//
// A model ending in Dense(..., activation='softmax') trained with a cross-entropy has
// two kernels over the same logits: the softmax (the model's output, for metrics and
// predictions) and the loss, which Keras computes from the logits (_keras_logits) and
// whose kernel therefore computes the probabilities again, with the loss and the
// logits' gradient. Here the loss kernel writes those probabilities straight into the
// output's storage and the softmax kernel runs only when no loss does (predict, which
// has no labels). The same holds for a sigmoid output and binary cross-entropy.
//
// Needs: a differentiated graph (fuse_epilogues may have run: it never takes an
// activation whose input has a second use, and the logits have the loss as one).
// Guarantees: the loss keeps its inputs and arithmetic, so the loss, the gradient and
// the weights are the bits of the unfused step; its own probability buffer is gone (it
// aliases the output), and the output node is marked computed_by the loss.
#include "nnc.h"

int fuse_softmax_loss(Graph *g) {
  Node *loss = g->loss, *out = g->output;
  if (!loss || !out || loss->alias || out->computed_by) return 0;
  OpKind act;
  switch (loss->op) {
  case OP_sparse_softmax_xent:
  case OP_softmax_xent: act = OP_softmax; break;
  case OP_sigmoid_bce: act = OP_sigmoid; break;
  default: return 0;
  }
  // The output is that activation of the loss's logits (not from_logits=True on a model
  // whose last layer is already a softmax: then the loss reads the output itself).
  if (out->op != act || out->in[0] != loss->in[0] || out->id > loss->id) return 0;
  loss->alias = out;                   // the probabilities the kernel writes are the output
  out->computed_by = loss;
  return 1;
}
