// target.h — what the C and OpenCL targets share: the emitter state, the dialect each
// target speaks, and the op emitters (kernels.c) written once for both.
//
// An op's emitter (ops.def's emit column) says which kernel a node calls and with what
// arguments, in terms of buffers and literal shapes: `conv2d_fwd(n, 28, 28, 1, ...,
// x, w, y)`. The dialect turns that into its language: `nnk_conv2d_fwd(..., s->work);`
// inside a C function, `nncl_conv2d_fwd(..., scratch);` inside an OpenCL kernel.
#ifndef NNC_TARGET_H
#define NNC_TARGET_H

#include "nnc.h"

typedef struct Emit Emit;

// Kernel traits the dialects need: a C convolution takes the shared workspace; an
// OpenCL function may take local-memory scratch.
enum { K_WORK = 1 };

// Where a kernel's returned scalar goes (losses and regularizers).
typedef enum { R_NONE, R_LOSS, R_REG } ResultKind;

typedef struct Dialect {
  const char *name;                                  // "c", "opencl"
  const char *(*buf)(Emit *e, const Node *nd);       // the node's storage
  const char *(*aux)(Emit *e, const Node *nd);       // its aux buffer
  const char *null_buf;                              // an absent optional input
  const char *ptr_space;                             // a buffer pointer's address space ("__global ")
  // Pointwise chains (fuse_elementwise.c): NULL, the dialect calls the library's chain
  // kernel with a table of the ops; else the prefix of the element functions its
  // kernels call in a loop printed into the kernel itself ("nncl_ew_").
  const char *ew_inline;
  const char *for_items;                             // that loop's head, given the count
  const char *seed, *step;                           // this step's dropout seed; Adam's t
  // One kernel call: kernel name without prefix ("conv2d_fwd"), its arguments, traits.
  void (*call)(Emit *e, const Node *nd, ResultKind result, const char *kernel, const char *args, int traits);
  void (*zero)(Emit *e, const Node *nd);             // nd's storage = 0
  // The host's statement that runs a node's kernel (a call, or a launch) for `n` samples.
  const char *(*run)(Emit *e, const Node *nd, bool infer, const char *n);
  const char *forward_prologue;                      // first statements of a forward pass
  const char *sync;                                  // waits for the kernels run so far (bench timers)
  // How an inference call gets its state `s` (NULL: the step's, m->state).
  const char *infer_state;
} Dialect;

struct Emit {
  FILE *out;
  const Program *p;
  Graph *g;
  const Plan *plan;
  const Dialect *d;
};

// kernels.c: the op emitters, through e->d. `infer` selects the op's inference form.
void emit_node_calls(Emit *e, const Node *nd, bool infer);
// The same calls as text (arena), for a target that wraps them in a function or kernel.
char *node_calls_text(Emit *e, const Node *nd, bool infer);
// A node runs differently in inference if its op says so (dropout, batchnorm) or it is
// a loss (no gradient output).
bool node_has_infer_variant(const Node *nd);
// Every kernel a target writes, in the plan's order: each forward node (and its inference
// form where it has one), then the backward nodes, then the updates.
typedef struct KernelRef { const Node *nd; bool infer; } KernelRef;
int list_kernels(Emit *e, KernelRef **out);
// "// conv2d_fwd_conv: conv2d (n, 28, 28, 1), (3, 3, 1, 32) -> (n, 26, 26, 32); 173056 FLOPs per sample"
void emit_node_comment(Emit *e, const Node *nd, bool infer);
void emit_shape_text(FILE *out, const Node *nd);
// The file's opening comment: what the model is and how the code is laid out.
void emit_model_summary_comment(Emit *e, const char *file);
const char *optimizer_name(OptKind k);
// host.c: initializers and the params table (weights at plan offsets from `base`),
// ending nnc_init with `after`; the nn_model's fields; the reported batch loss.
void emit_host_init(Emit *e, const char *base, const char *after);
void emit_host_model_fields(Emit *e, const char *base);
// The phases (nnc_forward_train, nnc_forward_infer, nnc_backward, nnc_update) as lists of
// the dialect's run statements, and the nn_model's train step and inference on top of
// nnc_load_batch, nnc_store_output and nnc_batch_loss, which each target writes.
void emit_host_phases(Emit *e);
void emit_host_steps(Emit *e);
// numerics.c: the buffer table and nnc_first_nonfinite (--check-numerics), after the
// target's nnc_numerics_view.
void emit_numerics(Emit *e);
const char *host_batch_loss_expr(const Graph *g, const char *loss, const char *reg);
bool is_fused_loss(OpKind op);
// emit_mpi.c (Program.mpi, C target): the gradients registered with the MPI runtime at
// model creation; the announcement after backward node bwd_index of the gradients it
// completes; the train step that averages them over the ranks before the update.
void emit_mpi_register(Emit *e);
void emit_mpi_backward_hook(Emit *e, int bwd_index);
void emit_mpi_train_loaded(Emit *e);

// keras_config.c: the model as Keras serializes it, for the files Keras loads whole
// models from: the config.json of a .keras archive (Keras 3, with compile_config) and the
// training_config of a Keras 2 .h5 file (NULL before compile()).
char *keras_model_config(const Program *p);
char *keras_training_config(const Program *p);

#endif
