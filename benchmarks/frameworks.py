#!/usr/bin/python3
"""frameworks.py — nnc, PyTorch and Keras/TensorFlow (CPU) on the same models, interleaved.

    benchmarks/frameworks.py [--epochs 1] [--threads N] [--rounds 1] [--nnc build/nnc]
                             [--only nnc,torch,keras] [--data-dir DIR]

Cases: the Fashion-MNIST CNN (examples/fashion_cnn.nn) at batch 32 and 128, and the MLP
784-128-10 (benchmarks/fashion_mlp.nn) at batch 128. For each round, each case runs
nnc, then PyTorch, then Keras, one after the other, so that a change in the machine's
load hits all three alike. Every side trains with the test set as validation data
(what the .nn scripts do), so seconds per epoch include one validation pass.

Reported per run: samples/s (60000 / seconds per epoch, the framework's own epoch time),
the ratio against nnc, peak RSS of the process (getrusage of the child), test accuracy.

PyTorch is Debian's python3-torch under /usr/bin/python3. Keras runs in a virtual
environment this script makes with tensorflow-cpu from PyPI (pinned below) at
~/.cache/nnc/keras-venv ($NNC_KERAS_VENV), reused when it already has tensorflow.
A framework that is not installed is reported as such, not skipped silently.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TENSORFLOW_PIN = 'tensorflow-cpu==2.18.0'
TRAIN_ROWS = 60000
CASES = [  # name, nnc script, model for torch/keras, batch
    ('fashion_cnn b32', 'examples/fashion_cnn.nn', 'cnn', 32),
    ('fashion_cnn b128', 'examples/fashion_cnn.nn', 'cnn', 128),
    ('mlp 784-128-10 b128', 'benchmarks/fashion_mlp.nn', 'mlp', 128),
]


def run(argv, cwd=None):
    """Runs argv; returns (exit status, stdout text, peak RSS in MiB of the child)."""
    p = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, out, ru.ru_maxrss / 1024


def keras_python(venv):
    py = os.path.join(venv, 'bin', 'python')
    if os.path.exists(py) and subprocess.run([py, '-c', 'import tensorflow'], capture_output=True).returncode == 0:
        return py
    print(f'== making {venv} with {TENSORFLOW_PIN} (once)', flush=True)
    if subprocess.run([sys.executable, '-m', 'venv', venv]).returncode != 0:
        return None
    if subprocess.run([py, '-m', 'pip', 'install', '--quiet', TENSORFLOW_PIN]).returncode != 0:
        return None
    return py


def result_line(out):
    for line in reversed(out.splitlines()):
        if line.startswith('RESULT '):
            return dict(f.split('=', 1) for f in line.split()[1:])
    return None


def run_nnc(nnc, case, args, work):
    _, script, _, batch = case
    prog = os.path.join(work, os.path.basename(script) + '.bin')
    if not os.path.exists(prog):
        rc, out, _ = run([nnc, 'build', os.path.join(ROOT, script), '-o', prog])
        if rc != 0:
            return {'error': 'nnc build failed: ' + out.strip()[-200:]}
    argv = [prog, '--epochs', str(args.epochs), '--batch-size', str(batch), '--threads', str(args.threads), '--json']
    if args.data_dir:
        argv += ['--data-dir', args.data_dir]
    rc, out, rss = run(argv, cwd=work)
    if rc != 0:
        return {'error': out.strip()[-300:]}
    secs, acc = [], None
    for line in out.splitlines():
        if not line.startswith('{'):
            continue
        rec = json.loads(line)
        if 'epoch' in rec and 'seconds' in rec:
            secs.append(rec['seconds'])
        elif 'accuracy' in rec:
            acc = rec['accuracy']
    if not secs:
        return {'error': 'no epoch time in the output'}
    sec = sum(secs) / len(secs)
    return {'sps': TRAIN_ROWS / sec, 'rss': rss, 'acc': acc}


def run_python(python, script, case, args):
    if not python:
        return {'error': 'not installed'}
    _, _, model, batch = case
    argv = [python, os.path.join(HERE, script), '--model', model, '--epochs', str(args.epochs),
            '--threads', str(args.threads), '--batch-size', str(batch)]
    if args.data_dir:
        argv += ['--data-dir', os.path.join(args.data_dir, 'fashion-mnist')]
    rc, out, rss = run(argv)
    res = result_line(out) if rc == 0 else None
    if not res:
        return {'error': out.strip()[-300:]}
    return {'sps': float(res['train_samples_per_s']), 'rss': rss, 'acc': float(res['test_acc'])}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--epochs', type=int, default=1)
    ap.add_argument('--threads', type=int, default=os.cpu_count())
    ap.add_argument('--rounds', type=int, default=1)
    ap.add_argument('--nnc', default=os.path.join(ROOT, 'build', 'nnc'))
    ap.add_argument('--only', default='nnc,torch,keras')
    ap.add_argument('--data-dir', default=None)
    args = ap.parse_args()
    sides = args.only.split(',')

    torch_py = '/usr/bin/python3'
    if 'torch' in sides and subprocess.run([torch_py, '-c', 'import torch'], capture_output=True).returncode != 0:
        print('== PyTorch: /usr/bin/python3 cannot import torch (apt-get install python3-torch)', flush=True)
        torch_py = None
    venv = os.environ.get('NNC_KERAS_VENV', os.path.expanduser('~/.cache/nnc/keras-venv'))
    keras_py = keras_python(venv) if 'keras' in sides else None

    rows = []
    with tempfile.TemporaryDirectory() as work:
        for rnd in range(args.rounds):
            for case in CASES:
                res = {}
                for side in sides:
                    print(f'== round {rnd + 1}: {case[0]}: {side}', flush=True)
                    if side == 'nnc':
                        res[side] = run_nnc(os.path.abspath(args.nnc), case, args, work)
                    elif side == 'torch':
                        res[side] = run_python(torch_py, 'fashion_cnn_torch.py', case, args)
                    else:
                        res[side] = run_python(keras_py, 'fashion_keras.py', case, args)
                    if 'error' in res[side]:
                        print(f'   {side}: {res[side]["error"]}', flush=True)
                rows.append((case[0], res))

    names = {'nnc': 'nnc', 'torch': 'PyTorch', 'keras': 'Keras/TF'}
    print(f'\n{args.epochs} epoch(s), {args.threads} thread(s), {os.cpu_count()} CPUs; '
          'samples/s = 60000 / (train + validation seconds of an epoch); ratio = nnc / other')
    print(f'{"case":22} {"framework":10} {"samples/s":>10} {"nnc ratio":>10} {"peak RSS MiB":>13} {"test acc":>9}')
    for case, res in rows:
        base = res.get('nnc', {}).get('sps')
        for side in sides:
            r = res[side]
            if 'error' in r:
                print(f'{case:22} {names[side]:10} {"-":>10} {"-":>10} {"-":>13} {"-":>9}  ({r["error"][:60]})')
                continue
            ratio = f'{base / r["sps"]:.2f}x' if base else '-'
            acc = f'{r["acc"]:.4f}' if r['acc'] is not None else '-'
            print(f'{case:22} {names[side]:10} {r["sps"]:10.0f} {ratio:>10} {r["rss"]:13.0f} {acc:>9}')


if __name__ == '__main__':
    main()
