#!/usr/bin/python3
"""kernel_lab.py — nnc's GEMM and convolution kernels against OpenBLAS and TensorFlow.

    benchmarks/kernel_lab.py [--rounds 3] [--threads N] [--min-time 0.3]
                             [--cc gcc,clang-14] [--only nnc,openblas,tf] [--cases SUBSTR]

Shapes: every GEMM and convolution of a training step of examples/fashion_cnn.nn at
batch 32 and 128 (forward, data gradient, filter gradient; the first convolution has no
data gradient) and of the MLP 784-128-10 (benchmarks/fashion_mlp.nn) at batch 128.

Sides, run one after the other in each round (so a change in the machine's load hits all
alike); every figure is the median over the rounds of each round's median per call:
- nnc: kernels/nn_kernels.h compiled by benchmarks/kernel_lab.c with
  `-O2 -march=native -fopenmp` (and -fno-unroll-loops for clang), as `nnc build
  --specialize` compiles the kernels (the kernel library nn_kernels_lib.c gets the same
  flags from CMake); once per compiler in --cc, so gcc and clang builds of the same
  kernels are compared side by side;
- OpenBLAS: cblas_sgemm (Debian libopenblas-dev, loaded by kernel_lab.c), on the GEMM
  of the im2col formulation for a convolution (the gather/scatter not counted);
- TF: tf.matmul, tf.nn.conv2d and its two gradients, oneDNN-backed TensorFlow CPU in
  the Keras virtual environment of frameworks.py (~/.cache/nnc/keras-venv).
The FMA peak is nnc bench's (include/nn_profile.h), measured by the first compiler's lab
on the same threads in every round, the best of the rounds. Threads: --threads (default: all CPUs) for every side; OpenMP waits
passively, as programs nnc builds do.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from frameworks import keras_python  # noqa: E402


def cnn_cases(n):
    """fashion_cnn: conv 28x28x1 -> 26x26x32, pool, conv 13x13x32 -> 11x11x64, pool,
    Dense 1600 -> 64 -> 10."""
    cases = [(f'cnn{n} conv1 fwd', f'conv_fwd,{n},28,28,1,3,32'),
             (f'cnn{n} conv1 dW', f'conv_bwd_filter,{n},28,28,1,3,32'),
             (f'cnn{n} conv2 fwd', f'conv_fwd,{n},13,13,32,3,64'),
             (f'cnn{n} conv2 dX', f'conv_bwd_data,{n},13,13,32,3,64'),
             (f'cnn{n} conv2 dW', f'conv_bwd_filter,{n},13,13,32,3,64')]
    return cases + dense_cases(f'cnn{n}', n, [(1600, 64), (64, 10)])


def dense_cases(prefix, n, layers):
    """A Dense layer in -> out at batch n: y = x·W (M n, N out, K in), dx = dy·Wᵀ,
    dW = xᵀ·dy (nnc's matmul and matmul_tn). The first layer has no dx."""
    cases = []
    for i, (fan_in, fan_out) in enumerate(layers):
        name = f'{prefix} dense{i + 1} {fan_in}x{fan_out}'
        cases.append((f'{name} fwd', f'gemm,{n},{fan_out},{fan_in},0,0'))
        if i > 0:
            cases.append((f'{name} dX', f'gemm,{n},{fan_in},{fan_out},0,1'))
        cases.append((f'{name} dW', f'gemm,{fan_in},{fan_out},{n},1,0'))
    return cases


CASES = cnn_cases(32) + cnn_cases(128) + dense_cases('mlp128', 128, [(784, 128), (128, 10)])


def conv_cases(prefix, n, h, c, f, first=False):
    """The three convolutions of a 3x3 layer h x h x c -> f at batch n (a first layer has
    no data gradient)."""
    spec = f'{n},{h},{h},{c},3,{f}'
    return [(f'{prefix} fwd', f'conv_fwd,{spec}')] + \
        ([] if first else [(f'{prefix} dX', f'conv_bwd_data,{spec}')]) + \
        [(f'{prefix} dW', f'conv_bwd_filter,{spec}')]


# --layouts: fashion_cnn's convolutions at batch 32 and 128, the two of examples/cnn_224.nn
# (the same model on 224x224x3) and two ResNet-sized layers, at batch 8 and 4 (their
# time per sample hardly depends on the batch; a larger one only lengthens the run).
# 'trimmed': fashion_cnn's second convolution as trim_pool.c leaves it (input 12x12, output 10x10).
LAYOUT_CASES = (conv_cases('cnn32 conv1', 32, 28, 1, 32, True) + conv_cases('cnn32 conv2', 32, 13, 32, 64) +
                conv_cases('cnn32 conv2 trimmed', 32, 12, 32, 64) +
                conv_cases('cnn128 conv1', 128, 28, 1, 32, True) + conv_cases('cnn128 conv2', 128, 13, 32, 64) +
                conv_cases('56x56x64>64 b8', 8, 56, 64, 64) + conv_cases('28x28x128>128 b8', 8, 28, 128, 128) +
                conv_cases('cnn224 conv1 b4', 4, 224, 3, 32, True) + conv_cases('cnn224 conv2 b4', 4, 111, 32, 64))
VARIANTS = ['nhwc', 'packed', 'direct', 'blocked', 'blocked+cvt', 'nnc-blocked']


def build_lab(cc, exe):
    """kernel_lab.c built by cc as nnc builds the kernels; returns exe."""
    argv = [cc, '-O2', '-march=native', '-fopenmp', '-I', os.path.join(ROOT, 'kernels'), '-I',
            os.path.join(ROOT, 'include'), os.path.join(HERE, 'kernel_lab.c'), '-o', exe, '-ldl', '-lm']
    if 'clang' in os.path.basename(cc):   # as nnc compiles the kernels with clang (CMakeLists.txt)
        argv.insert(1, '-fno-unroll-loops')
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f'kernel_lab: {cc} failed:\n{r.stderr}')
    return exe


def gflops(times, i, cols):
    """GFLOP/s of case i in each column that has times: FLOPs over the median of the
    rounds' medians."""
    gf = {}
    for c in cols:
        v = times.get((i, c))
        if v:
            gf[c] = v[0][1] / statistics.median(t for t, _ in v) / 1e9
    return gf


def parse_rows(out, into):
    peak = None
    for line in out.splitlines():
        f = line.split()
        if len(f) == 5 and f[0] == 'row' and f[3] != '-':
            into.setdefault((int(f[1]), f[2]), []).append((float(f[3]), float(f[4])))
        elif len(f) == 2 and f[0] == 'peak':
            peak = float(f[1])
    return peak


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--threads', type=int, default=os.cpu_count())
    ap.add_argument('--min-time', type=float, default=0.3, help='seconds per case and side in a round')
    ap.add_argument('--cc', default='gcc', help='comma list of C compilers for the nnc side')
    ap.add_argument('--only', default='nnc,openblas,tf')
    ap.add_argument('--cases', default='', help='only cases whose name contains this')
    ap.add_argument('--cpu-time', action='store_true', help='--layouts: time with the process CPU time')
    ap.add_argument('--layouts', action='store_true',
                    help='each convolution in every layout (NHWC, packed, blocked channels), nnc side only')
    args = ap.parse_args()
    if args.layouts:
        return layouts(args)
    sides = args.only.split(',')
    cases = [c for c in CASES if args.cases in c[0]]
    if not cases:
        sys.exit(f'kernel_lab: no case name contains {args.cases!r}')
    specs = [f'{i}={spec}' for i, (_, spec) in enumerate(cases)]
    env = dict(os.environ, OMP_WAIT_POLICY=os.environ.get('OMP_WAIT_POLICY', 'passive'))

    work = tempfile.mkdtemp(prefix='kernel-lab-')
    labs = []
    for cc in args.cc.split(',') if 'nnc' in sides or 'openblas' in sides else []:
        labs.append((cc, build_lab(cc, os.path.join(work, f'lab-{os.path.basename(cc)}'))))
    tf_py = None
    if 'tf' in sides:
        tf_py = keras_python(os.environ.get('NNC_KERAS_VENV', os.path.expanduser('~/.cache/nnc/keras-venv')))
        if not tf_py:
            print('== TensorFlow: no virtual environment with tensorflow; its column is empty', flush=True)

    times = {}  # (case index, column) -> [(seconds, flops)] over rounds
    peak = None
    for rnd in range(args.rounds):
        for li, (cc, exe) in enumerate(labs):
            print(f'== round {rnd + 1}: nnc kernels built by {cc}, OpenBLAS', flush=True)
            argv = [exe, '--threads', str(args.threads), '--min-time', str(args.min_time)]
            argv += ['--peak'] if li == 0 else []
            r = subprocess.run(argv + specs, capture_output=True, text=True, env=env)
            if r.returncode != 0:
                sys.exit(f'kernel_lab: {exe} failed:\n{r.stderr}')
            got = {}
            round_peak = parse_rows(r.stdout, got)
            peak = max(peak or 0, round_peak or 0) or None   # the best of the rounds
            for (i, side), v in got.items():
                if side == 'nnc':
                    times.setdefault((i, f'nnc-{os.path.basename(cc)}'), []).extend(v)
                elif li == 0 and 'openblas' in sides:
                    times.setdefault((i, 'openblas'), []).extend(v)
        if tf_py:
            print(f'== round {rnd + 1}: TensorFlow', flush=True)
            argv = [tf_py, os.path.join(HERE, 'kernel_lab_tf.py'), '--threads', str(args.threads),
                    '--min-time', str(args.min_time)]
            r = subprocess.run(argv + specs, capture_output=True, text=True, env=env)
            if r.returncode != 0:
                print(f'   TensorFlow failed: {r.stderr.strip()[-300:]}', flush=True)
            parse_rows(r.stdout, times)
    shutil.rmtree(work, ignore_errors=True)

    cols = [f'nnc-{os.path.basename(cc)}' for cc, _ in labs if 'nnc' in sides]
    cols += [c for c in ('openblas', 'tf') if c in sides]
    print(f'\nGFLOP/s (FLOPs of the GEMM formulation / median time), {args.threads} thread(s), '
          f'{args.rounds} round(s), median of rounds')
    if peak:
        print(f'FMA peak (nnc bench\'s loop) on {args.threads} thread(s): {peak:.1f} GFLOP/s')
    head = f'{"case":30} {"M x N x K":>18}'
    for c in cols:
        head += f' {c:>12}'
    # Ratios of the first column (nnc built by the first compiler) to each other one.
    ratios = [(cols[0], c, f'{cols[0]}/{c}') for c in cols[1:]] if cols and cols[0].startswith('nnc') else []
    for _, _, label in ratios:
        head += f' {label:>{len(label)}}'
    print(head)
    for i, (name, spec) in enumerate(cases):
        gf = gflops(times, i, cols)
        row = f'{name:30} {gemm_dims(spec):>18}'
        for c in cols:
            row += f' {gf[c]:12.1f}' if c in gf else f' {"-":>12}'
        for a, b, label in ratios:
            w = len(label) - 1
            row += f' {gf[a] / gf[b]:{w}.2f}x' if a in gf and b in gf else f' {"-":>{w + 1}}'
        print(row)
    return 0


def layouts(args):
    """--layouts: kernel_lab --layouts over LAYOUT_CASES, once per round with the variants
    interleaved call by call inside each case; the table gives GFLOP/s (the median over the
    rounds of each round's median) and each blocked variant over the better of NHWC and
    packed."""
    cases = [c for c in LAYOUT_CASES if args.cases in c[0]]
    if not cases:
        sys.exit(f'kernel_lab: no case name contains {args.cases!r}')
    work = tempfile.mkdtemp(prefix='kernel-lab-')
    exe = build_lab(args.cc.split(',')[0], os.path.join(work, 'lab'))
    env = dict(os.environ, OMP_WAIT_POLICY=os.environ.get('OMP_WAIT_POLICY', 'passive'))
    specs = [f'{i}={spec}' for i, (_, spec) in enumerate(cases)]
    times, checks = {}, {}
    for rnd in range(args.rounds):
        print(f'== round {rnd + 1}: load', ' '.join(f'{x:.2f}' for x in os.getloadavg()), flush=True)
        r = subprocess.run([exe, '--layouts', '--threads', str(args.threads), '--min-time', str(args.min_time)] +
                           (['--cpu-time'] if args.cpu_time else []) + specs, capture_output=True, text=True, env=env)
        if r.returncode != 0:
            sys.exit(f'kernel_lab: {exe} failed:\n{r.stderr}')
        for line in r.stdout.splitlines():
            f = line.split()
            if f[0] == 'row' and f[3] != '-':
                times.setdefault((int(f[1]), f[2]), []).append((float(f[3]), float(f[4])))
            elif f[0] == 'check':
                checks[int(f[1])] = max(checks.get(int(f[1]), 0), float(f[2]), float(f[3]), float(f[4]))
    shutil.rmtree(work, ignore_errors=True)
    print(f'\nGFLOP/s (FLOPs of the convolution / median time), {args.threads} thread(s), '
          f'{"CPU" if args.cpu_time else "wall"} time, {args.rounds} round(s), median of rounds; '
          'ratios: GFLOP/s over the best of nhwc and packed')
    print(f'{"case":26} {"N x H x W x C > F":>20}' + ''.join(f' {v:>11}' for v in VARIANTS) +
          f' {"dir/best":>8} {"blk/best":>8} {"blk+cvt/best":>12} {"nnc-blk/best":>12} {"max rel err":>11}')
    for i, (name, spec) in enumerate(cases):
        gf = gflops(times, i, VARIANTS)
        n, h, w, c, k, f = spec.split(',')[1:]
        row = f'{name:26} {f"{n}x{h}x{w}x{c}>{f}":>20}'
        row += ''.join(f' {gf[v]:11.1f}' if v in gf else f' {"-":>11}' for v in VARIANTS)
        best = max((gf[v] for v in ('nhwc', 'packed') if v in gf), default=None)
        for v, wdt in (('direct', 8), ('blocked', 8), ('blocked+cvt', 12), ('nnc-blocked', 12)):
            row += f' {gf[v] / best:{wdt - 1}.2f}x' if best and v in gf else f' {"-":>{wdt}}'
        row += f' {checks[i]:11.1e}' if i in checks else f' {"-":>11}'
        print(row)
    return 0


def gemm_dims(spec):
    """M x N x K of a case's GEMM (for a convolution, of its im2col formulation)."""
    kind, *v = spec.split(',')
    v = [int(x) for x in v]
    if kind == 'gemm':
        return f'{v[0]}x{v[1]}x{v[2]}'
    n, h, w, c, k, f = v
    rows, kdim = n * (h - k + 1) * (w - k + 1), k * k * c
    m, nn, kk = {'conv_fwd': (rows, f, kdim), 'conv_bwd_data': (rows, kdim, f),
                 'conv_bwd_filter': (kdim, f, rows)}[kind]
    return f'{m}x{nn}x{kk}'


if __name__ == '__main__':
    sys.exit(main())
