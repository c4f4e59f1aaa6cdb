"""fashion_data.py — Fashion-MNIST's IDX files as uint8 numpy arrays, for the PyTorch and
Keras sides of the benchmarks (no torchvision, no keras.datasets download)."""
import gzip
import os

import numpy as np


def load_idx(path):
    with gzip.open(path, 'rb') if path.endswith('.gz') else open(path, 'rb') as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], 'big') for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_fashion_uint8(data_dir):
    """x_train, y_train, x_test, y_test from data_dir (files with or without .gz)."""
    def find(stem):
        for name in (stem + '.gz', stem):
            p = os.path.join(data_dir, name)
            if os.path.exists(p):
                return p
        raise SystemExit(f'error: {stem}(.gz) not found in {data_dir}')
    parts = ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte',
             't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte']
    return tuple(load_idx(find(p)) for p in parts)
