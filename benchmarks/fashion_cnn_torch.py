#!/usr/bin/python3
"""fashion_cnn_torch.py — the PyTorch side of the Fashion-MNIST benchmark.

The model of examples/fashion_cnn.nn (DESIGN.md §1), trained the way Keras trains it:

    Conv2D(32, 3x3, relu) → MaxPool 2x2 → Conv2D(64, 3x3, relu) → MaxPool 2x2 →
    Flatten → Dense(64, relu) → Dense(10, softmax), sparse categorical cross-entropy,
    glorot_uniform kernels and zero biases, Adam(lr=1e-3, eps=1e-7), batch 32,
    shuffled every epoch, the last partial batch trained, test set evaluated after
    each epoch (validation_data) and at the end.

Reads the IDX files through fashion_data.py (no torchvision), from --data-dir or
/usr/share/datasets/fashion-mnist/. Prints one line per epoch and a last line

    RESULT epochs=E threads=T sec_per_epoch=S train_samples_per_s=R test_acc=A

that benchmarks/compare_fashion.sh reads. Run with Debian's /usr/bin/python3.
Note: torch.optim.Adam puts epsilon after the bias correction, Keras before it; with
eps=1e-7 the difference is far below what accuracy or timing can show.
"""
import argparse
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from fashion_data import load_fashion_uint8


def load_fashion(data_dir):
    xtr, ytr, xte, yte = load_fashion_uint8(data_dir)
    # Keras: reshape(-1, 28, 28, 1).astype('float32') / 255; torch wants NCHW.
    to_x = lambda a: torch.from_numpy(a.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    to_y = lambda a: torch.from_numpy(a.astype(np.int64))
    return to_x(xtr), to_y(ytr), to_x(xte), to_y(yte)


def keras_init(model):  # Keras defaults: glorot_uniform kernels, zero biases
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


class FashionMLP(nn.Module):
    """benchmarks/fashion_mlp.nn: Dense(128, relu) → Dense(10, softmax)."""
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 128)
        self.fc2 = nn.Linear(128, 10)
        keras_init(self)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


class FashionCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.fc1 = nn.Linear(64 * 5 * 5, 64)
        self.fc2 = nn.Linear(64, 10)
        keras_init(self)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))  # logits; softmax is fused into the loss


@torch.no_grad()
def evaluate(model, x, y, batch=1000):
    model.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(x), batch):
        out = model(x[i:i + batch])
        loss += F.cross_entropy(out, y[i:i + batch], reduction='sum').item()
        correct += (out.argmax(1) == y[i:i + batch]).sum().item()
    return loss / len(x), correct / len(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--epochs', type=int, default=10)
    ap.add_argument('--threads', type=int, default=os.cpu_count())
    ap.add_argument('--batch-size', type=int, default=32)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--model', choices=['cnn', 'mlp'], default='cnn')
    ap.add_argument('--data-dir', default=os.environ.get('NNC_DATA') and
                    os.path.join(os.environ['NNC_DATA'], 'fashion-mnist')
                    or '/usr/share/datasets/fashion-mnist')
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    x_train, y_train, x_test, y_test = load_fashion(args.data_dir)
    model = FashionCNN() if args.model == 'cnn' else FashionMLP()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    n = len(x_train)
    epoch_times = []
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(n)
        total, correct = 0.0, 0
        for i in range(0, n, args.batch_size):
            idx = order[i:i + args.batch_size]
            xb, yb = x_train[idx], y_train[idx]
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            correct += (out.argmax(1) == yb).sum().item()
        t1 = time.perf_counter()
        val_loss, val_acc = evaluate(model, x_test, y_test)
        t2 = time.perf_counter()
        epoch_times.append(t2 - t0)  # like Keras fit: training + validation pass
        print(f'epoch {epoch}/{args.epochs}: {t2 - t0:.2f} s (train {t1 - t0:.2f} s, val {t2 - t1:.2f} s)'
              f' - loss: {total / n:.4f} - accuracy: {correct / n:.4f}'
              f' - val_loss: {val_loss:.4f} - val_accuracy: {val_acc:.4f}', flush=True)
    test_loss, test_acc = evaluate(model, x_test, y_test)
    print(f'test loss: {test_loss:.4f} - accuracy: {test_acc:.4f}')
    sec = sum(epoch_times) / len(epoch_times) if epoch_times else 0.0
    print(f'RESULT epochs={args.epochs} threads={args.threads} sec_per_epoch={sec:.3f} '
          f'train_samples_per_s={n / sec if sec else 0:.1f} test_acc={test_acc:.4f}')


if __name__ == '__main__':
    main()
