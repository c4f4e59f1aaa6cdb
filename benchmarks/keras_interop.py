"""Keras side of benchmarks/keras_interop.sh (run with a Python that has Keras 3).

  keras_interop.py evaluate FILE [FILE...]   load each (.keras / legacy .h5 with load_model;
                                             .weights.h5 / .h5 into the model of the first
                                             .keras file) and evaluate on the test set
  keras_interop.py predict X.npy P.npy FILE...  Keras's predictions of each model file vs nnc's
  keras_interop.py resume M.keras W.weights.h5  continue nnc's epoch 1 (M.keras) in Keras and
                                             compare with nnc's epoch 2 (W.weights.h5)
  keras_interop.py random X.npy              4 random samples of shape (8, 8, 2)
  keras_interop.py train DIR                 train the interop MLP and BN CNN for 1 epoch in
                                             Keras, write their files into DIR, print evaluate

Data: Fashion-MNIST's IDX files in $NNC_DATA/fashion-mnist or /usr/share/datasets/fashion-mnist.
"""
import gzip
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras
import numpy as np


def idx(name):
    for d in (os.path.join(os.environ.get("NNC_DATA", ""), "fashion-mnist"), "/usr/share/datasets/fashion-mnist"):
        for suffix in (".gz", ""):
            p = os.path.join(d, name + suffix)
            if os.path.exists(p):
                data = (gzip.open if suffix else open)(p, "rb").read()
                nd = data[3]
                dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
                return np.frombuffer(data, np.uint8, offset=4 + 4 * nd).reshape(dims)
    sys.exit(f"{name}: Fashion-MNIST not found")


def test_set(shape):
    x = idx("t10k-images-idx3-ubyte").reshape((-1,) + shape).astype("float32") / 255.0
    return x, idx("t10k-labels-idx1-ubyte")


def report(label, model, shape):
    x, y = test_set(shape)
    loss, acc = model.evaluate(x, y, batch_size=256, verbose=0)
    print(json.dumps({"file": label, "loss": round(float(loss), 4), "accuracy": round(float(acc), 4)}))


def evaluate(files):
    base = None
    for f in files:
        if f.endswith(".keras") or (f.endswith(".h5") and not f.endswith(".weights.h5") and "model" in os.path.basename(f)):
            m = keras.models.load_model(f)
            base = base or m
        else:
            m = base
            m.load_weights(f)
        report(f, m, tuple(m.input_shape[1:]))


def models():
    mlp = keras.Sequential([
        keras.Input(shape=(28, 28)),
        keras.layers.Flatten(),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(10),
    ], name="sequential")
    mlp.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
    cnn = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(16, (3, 3), activation="relu"),
        keras.layers.BatchNormalization(),
        keras.layers.MaxPooling2D((2, 2)),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax"),
    ], name="sequential")
    cnn.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return {"mlp": (mlp, (28, 28)), "bn_cnn": (cnn, (28, 28, 1))}


def train(out):
    keras.utils.set_random_seed(0)
    for name, (m, shape) in models().items():
        x = idx("train-images-idx3-ubyte").reshape((-1,) + shape).astype("float32") / 255.0
        m.fit(x, idx("train-labels-idx1-ubyte"), epochs=1, batch_size=32, verbose=0)
        m.save_weights(os.path.join(out, f"keras_{name}.weights.h5"))
        m.save(os.path.join(out, f"keras_{name}.keras"))
        m.save(os.path.join(out, f"keras_{name}_model.h5"))
        report(f"keras_{name} (in Keras)", m, shape)
        keras.backend.clear_session()


def predict(x_file, p_file, files):
    """Each model file's predictions in Keras against the ones nnc saved."""
    x, p = np.load(x_file), np.load(p_file)
    for f in files:
        q = keras.models.load_model(f).predict(x, verbose=0)
        print(json.dumps({"file": f, "max_abs_diff_vs_nnc": float(np.abs(p - q).max())}))


def resume(keras_file, weights_file):
    """Continue nnc's training in Keras for one epoch (shuffle=False, as nnc did), with the
    optimizer state from nnc's file and with a fresh one; compare with nnc's own second epoch."""
    x = idx("train-images-idx3-ubyte").astype("float32") / 255.0
    y = idx("train-labels-idx1-ubyte")
    nnc = keras.models.load_model(keras_file)
    nnc.load_weights(weights_file)
    for label, fresh in (("state from nnc's file", False), ("fresh optimizer", True)):
        m = keras.models.load_model(keras_file)
        if fresh:
            m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        m.fit(x, y, epochs=1, batch_size=64, shuffle=False, verbose=0)
        diff = max(float(np.abs(a - b).max()) for a, b in zip(m.get_weights(), nnc.get_weights()))
        print(json.dumps({"keras_continues_with": label, "max_abs_weight_diff_vs_nnc_epoch_2": diff}))
        report(f"after epoch 2 in Keras ({label})", m, (28, 28))


def resume_steps(first, last):
    """small.nn's model and data: Keras continues from nnc's checkpoint `first` and must
    reach nnc's checkpoint `last` (same batches, Adam state from the file)."""
    x = np.array([[0.1, 0.2, 0.3, 0.4], [0.5, -0.1, 0.2, 0.0], [-0.3, 0.8, 0.1, 0.2], [0.9, 0.4, -0.6, 0.3],
                  [0.0, 0.0, 1.0, -1.0], [0.7, 0.2, 0.2, 0.9], [-0.5, -0.5, 0.5, 0.5], [0.3, 0.6, 0.9, 0.1]],
                 dtype="float32")
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    target = keras.models.load_model(last)
    for label, fresh in (("state from nnc's file", False), ("fresh optimizer", True)):
        m = keras.models.load_model(first)
        if fresh:
            m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        m.fit(x, y, epochs=4, batch_size=4, shuffle=False, verbose=0)
        diff = max(float(np.abs(a - b).max()) for a, b in zip(m.get_weights(), target.get_weights()))
        print(json.dumps({"keras_continues_with": label, "steps": 8, "max_abs_weight_diff_vs_nnc": diff}))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "resume_steps":
        resume_steps(sys.argv[2], sys.argv[3])
        sys.exit(0)
    if len(sys.argv) == 4 and sys.argv[1] == "resume":
        resume(sys.argv[2], sys.argv[3])
        sys.exit(0)
    if len(sys.argv) >= 5 and sys.argv[1] == "predict":
        predict(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif len(sys.argv) == 3 and sys.argv[1] == "random":
        np.random.seed(0)
        np.save(sys.argv[2], np.random.rand(4, 8, 8, 2).astype("float32"))
    elif len(sys.argv) >= 3 and sys.argv[1] == "evaluate":
        evaluate(sys.argv[2:])
    elif len(sys.argv) == 3 and sys.argv[1] == "train":
        train(sys.argv[2])
    else:
        sys.exit(__doc__)
