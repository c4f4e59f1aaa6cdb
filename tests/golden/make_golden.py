#!/usr/bin/python3
"""make_golden.py — golden fixtures for nnc from a float64 PyTorch reference.

Run with Debian's /usr/bin/python3 (torch + numpy), from anywhere:

    /usr/bin/python3 tests/golden/make_golden.py            # writes tests/golden/<case>/
    /usr/bin/python3 tests/golden/make_golden.py --check    # also reports float32 drift

Each case directory holds what tests/test_golden.sh needs to run nnc with no Python:
model.nn, x.npy, y.npy, init.safetensors (the starting weights, Keras names and
layouts), pred_expected.npy (model.predict before training) and out_expected.safetensors
(the weights after one epoch of fit with shuffle=False), plus expected.json (loss per
step, float32 drift of this reference).

The reference follows Keras 3, not PyTorch, wherever they differ: optimizer updates are
written out by hand with Keras's formulas, losses are per-sample means then a batch
mean, softmax/sigmoid + cross-entropy are computed from logits as Keras does, BatchNorm
uses the biased batch variance and momentum 0.99, 'same' padding puts the odd extra
pixel at the bottom/right. Gradients come from autograd in float64, starting from the
float32 values written to the files, so the only difference nnc should show is its own
float32 rounding.
"""
import json
import math
import os
import re
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


#
# Files: NPY through numpy (v1, '<f4' / '<i8'); safetensors written by hand so the
# generator needs no pip package.
#
def write_safetensors(path, tensors):
    """tensors: list of (name, float32 ndarray), kept in this order in the file."""
    header, blobs, offset = {}, [], 0
    for name, arr in tensors:
        data = np.ascontiguousarray(arr, dtype='<f4').tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(',', ':')).encode()
    text += b' ' * (-len(text) % 8)  # the data must start 8-aligned
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, 'rb') as f:
        raw = f.read()
    n = struct.unpack('<Q', raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == '__metadata__':
            continue
        b, e = t['data_offsets']
        out[name] = np.frombuffer(raw[8 + n + b:8 + n + e], '<f4').reshape(t['shape'])
    return out


#
# Layers. Each knows its Keras source text, its weights (Keras names, layouts, initial
# values) and its forward pass on channels-last tensors.
#
ACTS = {
    'linear': lambda t: t, 'relu': torch.relu, 'sigmoid': torch.sigmoid,
    'tanh': torch.tanh, 'softmax': lambda t: torch.softmax(t, -1),
}


def glorot_uniform(rng, shape, fan_in, fan_out):
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(np.float32)


def small(rng, shape):
    """Nonzero starting biases, so a bias that is ignored in the forward pass shows."""
    return rng.uniform(-0.1, 0.1, size=shape).astype(np.float32)


def same_pads(size, k, s):
    """TF 'same': out = ceil(size/s); the odd pixel of padding goes after."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def kw(args):
    return ', '.join(a for a in args if a)


class Layer:
    kind = None          # Keras class name, also the base of the automatic layer name
    act = 'linear'
    weights = ()         # weight names in Keras order
    trainable = ()

    def init(self, rng, in_shape):
        return {}

    def out_shape(self, in_shape):
        return in_shape

    def call(self, x, w, training, state, act=None):
        raise NotImplementedError


class Dense(Layer):
    kind, weights, trainable = 'Dense', ('kernel', 'bias'), ('kernel', 'bias')

    def __init__(self, units, activation='linear', reg=None, use_bias=True):
        self.units, self.act, self.reg = units, activation, reg
        if not use_bias:
            self.weights = self.trainable = ('kernel',)

    def source(self, first):
        return 'Dense(' + kw([str(self.units),
                              f"activation='{self.act}'" if self.act != 'linear' else '',
                              f"kernel_regularizer=regularizers.{self.reg[0]}({self.reg[1]})"
                              if self.reg else '',
                              'use_bias=False' if 'bias' not in self.weights else '', first]) + ')'

    def init(self, rng, in_shape):
        n = in_shape[-1]
        return {'kernel': glorot_uniform(rng, (n, self.units), n, self.units),
                'bias': small(rng, (self.units,))}

    def out_shape(self, in_shape):
        return in_shape[:-1] + (self.units,)

    def call(self, x, w, training, state, act=None):
        y = x @ w['kernel']
        return ACTS[act or self.act](y + w['bias'] if 'bias' in w else y)


class Conv2D(Layer):
    kind, weights, trainable = 'Conv2D', ('kernel', 'bias'), ('kernel', 'bias')

    def __init__(self, filters, kernel, strides=(1, 1), padding='valid', activation='linear',
                 use_bias=True):
        self.filters, self.k, self.s, self.padding, self.act = filters, kernel, strides, padding, activation
        if not use_bias:
            self.weights = self.trainable = ('kernel',)

    def source(self, first):
        return 'Conv2D(' + kw([str(self.filters), str(self.k),
                               f'strides={self.s}' if self.s != (1, 1) else '',
                               f"padding='{self.padding}'" if self.padding != 'valid' else '',
                               f"activation='{self.act}'" if self.act != 'linear' else '',
                               'use_bias=False' if 'bias' not in self.weights else '',
                               first]) + ')'

    def init(self, rng, in_shape):
        kh, kw_, cin = self.k[0], self.k[1], in_shape[-1]
        w = {'kernel': glorot_uniform(rng, (kh, kw_, cin, self.filters),
                                      kh * kw_ * cin, kh * kw_ * self.filters)}
        if 'bias' in self.weights:
            w['bias'] = small(rng, (self.filters,))
        return w

    def out_shape(self, in_shape):
        h, w_, _ = in_shape
        if self.padding == 'same':
            return (-(-h // self.s[0]), -(-w_ // self.s[1]), self.filters)
        return ((h - self.k[0]) // self.s[0] + 1, (w_ - self.k[1]) // self.s[1] + 1, self.filters)

    def call(self, x, w, training, state, act=None):
        x = x.permute(0, 3, 1, 2)
        if self.padding == 'same':
            t, b = same_pads(x.shape[2], self.k[0], self.s[0])
            l, r = same_pads(x.shape[3], self.k[1], self.s[1])
            x = F.pad(x, (l, r, t, b))
        y = F.conv2d(x, w['kernel'].permute(3, 2, 0, 1), w.get('bias'), stride=self.s)
        return ACTS[act or self.act](y.permute(0, 2, 3, 1))


class Pool2D(Layer):
    def __init__(self, kind, pool=(2, 2), strides=None, padding='valid'):
        self.kind, self.pool, self.strides, self.padding = kind, pool, strides or pool, padding

    def source(self, first):
        return f'{self.kind}(' + kw([f'pool_size={self.pool}',
                                     f'strides={self.strides}' if self.strides != self.pool else '',
                                     f"padding='{self.padding}'" if self.padding != 'valid' else '',
                                     first]) + ')'

    def out_shape(self, in_shape):
        h, w_, c = in_shape
        if self.padding == 'same':
            return (-(-h // self.strides[0]), -(-w_ // self.strides[1]), c)
        return ((h - self.pool[0]) // self.strides[0] + 1, (w_ - self.pool[1]) // self.strides[1] + 1, c)

    def call(self, x, w, training, state, act=None):
        x = x.permute(0, 3, 1, 2)
        pads = (0, 0, 0, 0)
        if self.padding == 'same':
            t, b = same_pads(x.shape[2], self.pool[0], self.strides[0])
            l, r = same_pads(x.shape[3], self.pool[1], self.strides[1])
            pads = (l, r, t, b)
        if self.kind == 'MaxPooling2D':  # padded cells never win a max
            y = F.max_pool2d(F.pad(x, pads, value=-math.inf), self.pool, self.strides)
        else:  # TF averages over the cells inside the input only
            total = F.avg_pool2d(F.pad(x, pads), self.pool, self.strides, divisor_override=1)
            count = F.avg_pool2d(F.pad(torch.ones_like(x[:1, :1]), pads), self.pool, self.strides,
                                 divisor_override=1)
            y = total / count
        return y.permute(0, 2, 3, 1)


class GlobalAveragePooling2D(Layer):
    kind = 'GlobalAveragePooling2D'

    def source(self, first):
        return 'GlobalAveragePooling2D()'

    def out_shape(self, in_shape):
        return in_shape[-1:]

    def call(self, x, w, training, state, act=None):
        return x.mean(dim=(1, 2))


class Flatten(Layer):
    kind = 'Flatten'

    def source(self, first):
        return 'Flatten()'

    def out_shape(self, in_shape):
        return (int(np.prod(in_shape)),)

    def call(self, x, w, training, state, act=None):
        return x.reshape(x.shape[0], -1)  # channels-last order, as Keras flattens


class Reshape(Layer):
    kind = 'Reshape'

    def __init__(self, shape):
        self.shape = tuple(shape)

    def source(self, first):
        return f'Reshape({self.shape})'

    def out_shape(self, in_shape):
        return self.shape

    def call(self, x, w, training, state, act=None):
        return x.reshape((x.shape[0],) + self.shape)  # row-major over channels-last


class Activation(Layer):
    kind = 'Activation'

    def __init__(self, act):
        self.act = act

    def source(self, first):
        return f"Activation('{self.act}')"

    def call(self, x, w, training, state, act=None):
        return ACTS[act or self.act](x)


class BatchNormalization(Layer):
    kind = 'BatchNormalization'
    weights = ('gamma', 'beta', 'moving_mean', 'moving_variance')
    trainable = ('gamma', 'beta')
    momentum, eps = 0.99, 1e-3

    def source(self, first):
        return 'BatchNormalization()'

    def init(self, rng, in_shape):
        # Not Keras's ones/zeros: starting values that make each weight's role visible.
        c = in_shape[-1]
        return {'gamma': rng.uniform(0.5, 1.5, c).astype(np.float32),
                'beta': small(rng, (c,)),
                'moving_mean': rng.uniform(-0.5, 0.5, c).astype(np.float32),
                'moving_variance': rng.uniform(0.5, 2.0, c).astype(np.float32)}

    def call(self, x, w, training, state, act=None):
        if training:
            mean = x.mean(0)
            var = x.var(0, unbiased=False)  # Keras: biased, for both uses
            m = self.momentum
            state['moving_mean'] = m * w['moving_mean'] + (1 - m) * mean.detach()
            state['moving_variance'] = m * w['moving_variance'] + (1 - m) * var.detach()
        else:
            mean, var = w['moving_mean'], w['moving_variance']
        return w['gamma'] * (x - mean) / torch.sqrt(var + self.eps) + w['beta']


#
# Optimizers: Keras 3 update rules, one call per step on float64 tensors.
#
class SGD:
    def __init__(self, lr=0.01, momentum=0.0, nesterov=False):
        self.lr, self.mom, self.nesterov = lr, momentum, nesterov

    def source(self):
        args = [f'learning_rate={self.lr}']
        if self.mom:
            args.append(f'momentum={self.mom}')
        if self.nesterov:
            args.append('nesterov=True')
        return f"SGD({', '.join(args)})"

    def step(self, w, g, slot, t):
        if not self.mom:
            return w - self.lr * g
        m = slot.get('m', torch.zeros_like(w))
        m = self.mom * m - self.lr * g
        slot['m'] = m
        return w + (self.mom * m - self.lr * g if self.nesterov else m)


class Adam:
    def __init__(self, lr=0.001, b1=0.9, b2=0.999, eps=1e-7):
        self.lr, self.b1, self.b2, self.eps = lr, b1, b2, eps

    def source(self):
        return f'Adam(learning_rate={self.lr})' if self.lr != 0.001 else "'adam'"

    def step(self, w, g, slot, t):
        m = slot.get('m', torch.zeros_like(w))
        v = slot.get('v', torch.zeros_like(w))
        alpha = self.lr * math.sqrt(1 - self.b2 ** t) / (1 - self.b1 ** t)
        m = m + (g - m) * (1 - self.b1)
        v = v + (g * g - v) * (1 - self.b2)
        slot['m'], slot['v'] = m, v
        return w - alpha * m / (torch.sqrt(v) + self.eps)


class RMSprop:
    def __init__(self, lr=0.001, rho=0.9, eps=1e-7):
        self.lr, self.rho, self.eps = lr, rho, eps

    def source(self):
        return f'RMSprop(learning_rate={self.lr})'

    def step(self, w, g, slot, t):
        v = slot.get('v', torch.zeros_like(w))
        v = self.rho * v + (1 - self.rho) * g * g
        slot['v'] = v
        return w - self.lr * g / torch.sqrt(v + self.eps)


#
# Losses as Keras computes them: per sample over the last axis, then the batch mean.
# `logits` is the last layer's pre-activation, used where Keras uses it.
#
CLIP = 1e-7


# Loss objects the scripts may name instead of strings: (source, kind, from_logits).
LOSS_OBJECTS = {
    'sparse_from_logits': ('keras.losses.SparseCategoricalCrossentropy(from_logits=True)',
                           'sparse_categorical_crossentropy'),
}


def loss_value(kind, out, logits, last_act, y):
    if kind in LOSS_OBJECTS:  # from_logits=True: the model's output is the logits
        kind, last_act, logits = LOSS_OBJECTS[kind][1], 'softmax', out
    if kind == 'mse':
        return ((out - y) ** 2).mean(-1).mean()
    if kind == 'mae':
        return (out - y).abs().mean(-1).mean()
    if kind == 'binary_crossentropy':
        if last_act == 'sigmoid':  # stable logits form
            z = logits
            return (torch.relu(z) - z * y + torch.log1p(torch.exp(-z.abs()))).mean(-1).mean()
        p = out.clamp(CLIP, 1 - CLIP)
        return (-(y * torch.log(p) + (1 - y) * torch.log(1 - p))).mean(-1).mean()
    if kind in ('categorical_crossentropy', 'sparse_categorical_crossentropy'):
        if last_act == 'softmax':
            logp = torch.log_softmax(logits, -1)
        else:
            p = out / out.sum(-1, keepdim=True)
            logp = torch.log(p.clamp(CLIP, 1 - CLIP))
        if kind == 'sparse_categorical_crossentropy':
            return -logp.gather(1, y.long().reshape(-1, 1)).mean()
        return -(y * logp).sum(-1).mean()
    raise ValueError(kind)


#
# A case: model, data, fit settings → files.
#
class Case:
    def __init__(self, name, input_shape, layers, loss, opt, rows, batch, y_kind,
                 metrics=(), seed=0, note='', input_layer=False):
        self.input_layer = input_layer  # keras.Input(shape=...) first, not input_shape=
        self.name, self.input_shape, self.layers = name, tuple(input_shape), layers
        self.loss, self.opt, self.rows, self.batch = loss, opt, rows, batch
        self.y_kind, self.metrics, self.seed, self.note = y_kind, metrics, seed, note
        counts = {}
        self.names = []
        for l in layers:  # Keras automatic names: conv2d, conv2d_1, dense, dense_1, ...
            base = re.sub('(.)([A-Z][a-z]+)', r'\1_\2', l.kind)
            base = re.sub('([a-z])([A-Z])', r'\1_\2', base).lower()
            n = counts.get(base, 0)
            counts[base] = n + 1
            self.names.append(base if n == 0 else f'{base}_{n}')

    def script(self):
        layers = [f'    keras.Input(shape={self.input_shape}),'] if self.input_layer else []
        for i, l in enumerate(self.layers):
            first = i == 0 and not self.input_layer
            layers.append('    ' + l.source(f'input_shape={self.input_shape}' if first else '') + ',')
        loss = LOSS_OBJECTS[self.loss][0] if self.loss in LOSS_OBJECTS else f"'{self.loss}'"
        metrics = ', '.join(f"'{m}'" for m in self.metrics)
        return '\n'.join([
            f'# Golden case {self.name}: generated by tests/golden/make_golden.py; do not edit.',
            f'# {self.note}' if self.note else '#',
            'import numpy as np',
            'from tensorflow import keras',
            'from tensorflow.keras import regularizers',
            'from tensorflow.keras.models import Sequential',
            'from tensorflow.keras.layers import ' + ', '.join(sorted({l.kind for l in self.layers})),
            'from tensorflow.keras.optimizers import ' + type(self.opt).__name__,
            '',
            "x = np.load('x.npy')",
            "y = np.load('y.npy')",
            '',
            'model = Sequential([',
            *layers,
            '])',
            f"model.compile(optimizer={self.opt.source()}, loss={loss}"
            + (f', metrics=[{metrics}])' if metrics else ')'),
            "model.load_weights('init.safetensors')",
            'p = model.predict(x, verbose=0)',
            "np.save('pred.npy', p)",
            f'model.fit(x, y, epochs=1, batch_size={self.batch}, shuffle=False, verbose=0)',
            "model.save_weights('out.safetensors')",
            '',
        ])

    def make_data(self, rng):
        x = rng.normal(0.0, 1.0, size=(self.rows,) + self.input_shape).astype(np.float32)
        kind, n = self.y_kind
        if kind == 'sparse':
            y = rng.randint(0, n, size=self.rows).astype(np.int64)
        elif kind == 'onehot':
            y = np.eye(n, dtype=np.float32)[rng.randint(0, n, size=self.rows)]
        elif kind == 'binary':
            y = rng.randint(0, 2, size=(self.rows, n)).astype(np.float32)
        else:
            y = rng.normal(0.0, 1.0, size=(self.rows, n)).astype(np.float32)
        return x, y

    def init_weights(self, rng):
        shape, weights = self.input_shape, []
        for l, name in zip(self.layers, self.names):
            values = l.init(rng, shape)
            for wname in l.weights:
                weights.append((f'{name}.{wname}', values[wname]))
            shape = l.out_shape(shape)
        return weights

    def forward(self, x, w, training, states, want_logits=False):
        logits = None
        for i, (l, name) in enumerate(zip(self.layers, self.names)):
            lw = {k: w[f'{name}.{k}'] for k in l.weights}
            if i == len(self.layers) - 1 and want_logits and l.act in ('softmax', 'sigmoid'):
                logits = l.call(x, lw, training, states.setdefault(name, {}), act='linear')
                x = ACTS[l.act](logits)
            else:
                x = l.call(x, lw, training, states.setdefault(name, {}))
        return x, logits

    def regularization(self, w):
        total = 0.0
        for l, name in zip(self.layers, self.names):
            if getattr(l, 'reg', None):
                kind, c = l.reg
                k = w[f'{name}.kernel']
                total = total + c * (k.abs().sum() if kind == 'l1' else (k * k).sum())
        return total

    def run(self, x, y, init, dtype):
        """predict, then one epoch of fit; returns (pred, final weights, losses)."""
        w = {n: torch.tensor(v, dtype=dtype) for n, v in init}
        xt = torch.tensor(x, dtype=dtype)
        yt = torch.tensor(y, dtype=torch.int64 if y.dtype == np.int64 else dtype)
        with torch.no_grad():
            pred, _ = self.forward(xt, w, False, {})
        trainable = {f'{name}.{k}' for l, name in zip(self.layers, self.names) for k in l.trainable}
        slots, losses = {n: {} for n in w}, []
        last_act = self.layers[-1].act
        for t, start in enumerate(range(0, self.rows, self.batch), 1):
            xb, yb = xt[start:start + self.batch], yt[start:start + self.batch]
            params = {n: (v.clone().requires_grad_(True) if n in trainable else v) for n, v in w.items()}
            states = {}
            out, logits = self.forward(xb, params, True, states, want_logits=True)
            loss = loss_value(self.loss, out, logits, last_act, yb) + self.regularization(params)
            grads = torch.autograd.grad(loss, [params[n] for n in w if n in trainable])
            g = dict(zip([n for n in w if n in trainable], grads))
            losses.append(float(loss))
            with torch.no_grad():
                for n in w:
                    if n in trainable:
                        w[n] = self.opt.step(w[n], g[n], slots[n], t)
                for lname, st in states.items():  # BatchNorm moving statistics
                    for k, v in st.items():
                        w[f'{lname}.{k}'] = v
        return pred.numpy(), {n: v.numpy() for n, v in w.items()}, losses


def update_error(init, got, want):
    """Relative error of the update (got - init) against (want - init)."""
    du, dw = got.astype(np.float64) - init, want - init
    return float(np.linalg.norm(du - dw) / max(np.linalg.norm(dw), 1e-300))


CASES = [
    Case('cnn_sgd', (8, 8, 1), [
        Conv2D(4, (3, 3), activation='relu'),
        Pool2D('MaxPooling2D', (2, 2)),
        Conv2D(3, (2, 2), padding='same', activation='sigmoid'),
        Pool2D('AveragePooling2D', (2, 2), strides=(1, 1)),
        Flatten(),
        Dense(5, 'softmax'),
    ], 'sparse_categorical_crossentropy', SGD(0.1), rows=16, batch=8, y_kind=('sparse', 5),
        metrics=('accuracy',), seed=1,
        note="valid conv, max/avg pooling, 'same' 2x2 conv (pad after only), NHWC flatten"),
    Case('cnn_adam_strided', (9, 9, 2), [
        Conv2D(4, (3, 3), strides=(2, 2), padding='same', activation='tanh'),
        Pool2D('MaxPooling2D', (2, 2), padding='same'),
        GlobalAveragePooling2D(),
        Dense(3, 'softmax'),
    ], 'categorical_crossentropy', Adam(0.01), rows=10, batch=4, y_kind=('onehot', 3),
        metrics=('accuracy',), seed=2,
        note="strided 'same' conv, 'same' max pooling, partial last batch (4, 4, 2)"),
    Case('mlp_rmsprop_mse', (5,), [
        Dense(8, 'relu'), Dense(6, 'sigmoid'), Dense(2),
    ], 'mse', RMSprop(0.01), rows=12, batch=4, y_kind=('real', 2), metrics=('mae',), seed=3,
        note='RMSprop, mse, linear output'),
    Case('mlp_bce', (6,), [
        Dense(4, 'tanh'), Dense(1, 'sigmoid'),
    ], 'binary_crossentropy', SGD(0.05, momentum=0.9, nesterov=True), rows=12, batch=4,
        y_kind=('binary', 1), metrics=('accuracy',), seed=4,
        note='sigmoid + binary cross-entropy from logits, Nesterov momentum over 3 steps'),
    Case('mlp_mae_l2', (3,), [
        Dense(6, 'relu', reg=('l1', 0.01)), Dense(4, reg=('l2', 0.01)),
    ], 'mae', Adam(), rows=8, batch=4, y_kind=('real', 4), metrics=('mse',), seed=5,
        note='mae, Adam defaults, l1 and l2 kernel regularizers'),
    Case('batchnorm', (4,), [
        Dense(6, use_bias=False), BatchNormalization(), Activation('relu'), Dense(3, 'softmax'),
    ], 'sparse_categorical_crossentropy', SGD(0.1), rows=12, batch=6, y_kind=('sparse', 3),
        metrics=('accuracy',), seed=6,
        note='BatchNormalization: batch statistics in fit, moving statistics in predict; '
             'no bias before it (its gradient would be exactly 0)'),
    Case('cnn_same_avg_reshape', (6, 6, 2), [
        Conv2D(3, (3, 3), padding='same', activation='relu', use_bias=False),
        Pool2D('AveragePooling2D', (3, 3), strides=(2, 2), padding='same'),
        Reshape((27,)),
        Dense(4, 'softmax'),
    ], 'mse', SGD(0.5, momentum=0.9), rows=9, batch=3, y_kind=('onehot', 4), seed=7,
        input_layer=True,
        note="keras.Input, conv without bias, 'same' average pooling (TF: mean of the cells "
             "inside), Reshape, softmax under mse (softmax backward, not fused), SGD momentum"),
    Case('cnn_pool_fused', (9, 9, 2), [
        Conv2D(16, (3, 3), padding='same', activation='relu'),
        Pool2D('MaxPooling2D', (2, 2)),
        Flatten(),
        Dense(3, 'softmax'),
    ], 'sparse_categorical_crossentropy', Adam(0.01), rows=10, batch=4, y_kind=('sparse', 3),
        metrics=('accuracy',), seed=9,
        note="first conv (16 filters) + relu + max pooling that leaves a row and a column "
             "uncovered: fused into one kernel each way (fuse_pool.c); partial last batch"),
    Case('cnn_trim', (13, 13, 2), [
        Conv2D(8, (3, 3), activation='relu'),
        Pool2D('MaxPooling2D', (2, 2)),
        Conv2D(12, (3, 3), padding='same'),
        Pool2D('AveragePooling2D', (2, 2)),
        Flatten(),
        Dense(4, 'softmax'),
    ], 'sparse_categorical_crossentropy', Adam(0.01), rows=10, batch=4, y_kind=('sparse', 4),
        metrics=('accuracy',), seed=10,
        note="convolutions whose pools leave their last row and column unread (11x11 under a "
             "2x2 max pool, 'same' 5x5 under a 2x2 average pool): trim_pool.c computes only "
             "the cells the pools read; partial last batch"),
    Case('mlp_from_logits', (5,), [
        Dense(7, 'relu'), Dense(4),
    ], 'sparse_from_logits', RMSprop(0.005), rows=10, batch=5, y_kind=('sparse', 4),
        metrics=('accuracy',), seed=8,
        note='SparseCategoricalCrossentropy(from_logits=True) on a linear output; predict '
             'returns logits'),
]


def make(case, check):
    d = os.path.join(HERE, case.name)
    os.makedirs(d, exist_ok=True)
    rng = np.random.RandomState(case.seed)
    x, y = case.make_data(rng)
    init = case.init_weights(rng)
    pred, final, losses = case.run(x, y, init, torch.float64)
    with open(os.path.join(d, 'model.nn'), 'w') as f:
        f.write(case.script())
    np.save(os.path.join(d, 'x.npy'), x)
    np.save(os.path.join(d, 'y.npy'), y)
    write_safetensors(os.path.join(d, 'init.safetensors'), init)
    np.save(os.path.join(d, 'pred_expected.npy'), pred.astype(np.float32))
    write_safetensors(os.path.join(d, 'out_expected.safetensors'),
                      [(n, final[n].astype(np.float32)) for n, _ in init])
    info = {'case': case.name, 'note': case.note, 'steps': len(losses), 'batch_size': case.batch,
            'rows': case.rows, 'loss_per_step': losses}
    # The same computation in float32: how far plain float32 rounding moves the results,
    # i.e. the floor under the test's tolerances (update error 2e-3, pred 1e-4 + 1e-3|b|).
    pred32, final32, _ = case.run(x, y, init, torch.float32)
    init64 = {n: v.astype(np.float64) for n, v in init}
    drift = {n: update_error(init64[n], final32[n], final[n]) for n, _ in init}
    info['float32_update_error'] = drift
    info['float32_pred_max_abs_error'] = float(np.abs(pred32 - pred).max())
    with open(os.path.join(d, 'expected.json'), 'w') as f:
        json.dump(info, f, indent=1)
        f.write('\n')
    if check:
        # Round trip of what was written, and the update sizes the test divides by.
        back = read_safetensors(os.path.join(d, 'out_expected.safetensors'))
        for n, v in init:
            norm = np.linalg.norm(final[n] - v)
            print(f'  {case.name:18s} {n:36s} |update| {norm:9.3e}  float32 err {drift[n]:9.2e}')
            assert back[n].shape == v.shape and norm > 0, n
    worst = max(drift.values())
    print(f'{case.name}: {len(losses)} steps, loss {losses[0]:.6f} -> {losses[-1]:.6f}, '
          f'float32 drift: update {worst:.1e}, pred {info["float32_pred_max_abs_error"]:.1e}')
    if worst > 2e-4:
        sys.exit(f'{case.name}: float32 drift {worst:.1e} is too close to the test tolerance')


def main():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    check = '--check' in sys.argv[1:]
    for case in CASES:
        make(case, check)


if __name__ == '__main__':
    main()
