"""kernel_lab_tf.py — the TensorFlow side of the kernel lab (benchmarks/kernel_lab.py).

    python kernel_lab_tf.py [--threads T] [--min-time S] CASE...

Same CASE syntax and output ("row NAME tf MEDIAN_SECONDS FLOPS") as kernel_lab.c. Each
case is tf.matmul, tf.nn.conv2d or one of its two gradients (Conv2DBackpropInput,
Conv2DBackpropFilter: what Keras's training step runs, through oneDNN on x86), inside a
tf.function that runs the op REPEAT times, each on inputs of its own (so that grappler
cannot merge them into one), so Python's dispatch is paid once per REPEAT ops; each op's
result feeds one element into the returned sum, so none is pruned. inter_op threads are 1: the repeats run one after the other, each on
the intra_op pool of T threads.
"""
import argparse
import os
import statistics
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')  # the default on x86 Linux; said here
import tensorflow as tf  # noqa: E402

REPEAT = 10


def op_for(kind, a):
    """The op of a case, its input tensors, and the FLOPs of its GEMM formulation."""
    rnd = lambda *shape: tf.random.uniform(shape, -0.5, 0.5)  # noqa: E731
    if kind == 'gemm':
        m, n, k, ta, tb = a
        x = rnd(k, m) if ta else rnd(m, k)
        y = rnd(n, k) if tb else rnd(k, n)
        return (lambda: tf.matmul(x, y, transpose_a=bool(ta), transpose_b=bool(tb))), 2.0 * m * n * k
    n, h, w, c, k, f = a
    oh, ow = h - k + 1, w - k + 1
    flops = 2.0 * n * oh * ow * f * k * k * c
    x, filt, dy = rnd(n, h, w, c), rnd(k, k, c, f), rnd(n, oh, ow, f)
    if kind == 'conv_fwd':
        return (lambda: tf.nn.conv2d(x, filt, 1, 'VALID')), flops
    if kind == 'conv_bwd_data':
        return (lambda: tf.raw_ops.Conv2DBackpropInput(input_sizes=[n, h, w, c], filter=filt, out_backprop=dy,
                                                       strides=[1, 1, 1, 1], padding='VALID')), flops
    if kind == 'conv_bwd_filter':
        return (lambda: tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=[k, k, c, f], out_backprop=dy,
                                                        strides=[1, 1, 1, 1], padding='VALID')), flops
    raise ValueError(kind)


def median_time(fn, min_time):
    """The median time of one op: calls of REPEAT ops until min_time (at least 5)."""
    fn()
    fn()
    times, start = [], time.perf_counter()
    while len(times) < 5 or (time.perf_counter() - start < min_time and len(times) < 1000):
        t0 = time.perf_counter()
        fn().numpy()
        times.append((time.perf_counter() - t0) / REPEAT)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--threads', type=int, default=0)
    ap.add_argument('--min-time', type=float, default=0.3)
    ap.add_argument('cases', nargs='*')
    args = ap.parse_args()
    if args.threads > 0:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    for spec in args.cases:
        name, rest = spec.split('=', 1)
        kind, *nums = rest.split(',')
        ops = [op_for(kind, [int(v) for v in nums]) for _ in range(REPEAT)]
        flops = ops[0][1]

        @tf.function
        def repeated():
            return tf.add_n([tf.reshape(op(), [-1])[0] for op, _ in ops])

        print(f'row {name} tf {median_time(repeated, args.min_time):.9g} {flops:.9g}', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
