"""Makes the Keras-written fixtures of tests/keras/ with real Keras 3 (not run in CI).

Run with a Python that has Keras 3 (scripts/keras_interop.sh makes one):
    ~/.cache/nnc/keras-venv/bin/python tests/keras/make_fixtures.py

Writes, for small.nn's model (Input(4) -> Dense(5, relu) -> BatchNormalization ->
Dense(3, softmax), trained a few steps so every weight and moving statistic is non-trivial):
  small.weights.h5      model.save_weights (Keras 3 layout, with the optimizer's variables)
  small.keras           model.save (Keras 3 archive)
  small_legacy.h5       model.save('x.h5') (Keras 2 whole-model layout)
  small_deflated.keras  small.keras with its entries deflated
  small.safetensors     the same weights under nnc's names, for bit-exact comparisons
  small_expected.txt    evaluate() of the trained model on small.nn's data: loss, accuracy
  wider.weights.h5      the same model with Dense(6): a file that must be refused
  foreign.h5            an HDF5 file that holds no Keras weights
"""
import json
import os
import struct
import zipfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import h5py
import keras
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

# The data small.nn writes as literals.
X = np.array([[0.1, 0.2, 0.3, 0.4], [0.5, -0.1, 0.2, 0.0], [-0.3, 0.8, 0.1, 0.2],
              [0.9, 0.4, -0.6, 0.3], [0.0, 0.0, 1.0, -1.0], [0.7, 0.2, 0.2, 0.9],
              [-0.5, -0.5, 0.5, 0.5], [0.3, 0.6, 0.9, 0.1]], dtype="float32")
Y = np.array([0, 1, 2, 0, 1, 2, 0, 1])


def model(units):
    m = keras.Sequential([
        keras.Input(shape=(4,)),
        keras.layers.Dense(units, activation="relu"),
        keras.layers.BatchNormalization(),
        keras.layers.Dense(3, activation="softmax"),
    ])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def save_safetensors(m, path):
    names = []
    for layer in m.layers:
        for w in layer.weights:
            names.append((f"{layer.name}.{w.name}", np.asarray(w.numpy(), dtype="<f4")))
    header, offset = {"__metadata__": {"producer": "keras fixture"}}, 0
    for name, a in names:
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for _, a in names:
            f.write(a.tobytes())


keras.utils.set_random_seed(1)
m = model(5)
m.fit(X, Y, epochs=20, batch_size=4, verbose=0)
m.save_weights(os.path.join(HERE, "small.weights.h5"))
m.save(os.path.join(HERE, "small.keras"))
m.save(os.path.join(HERE, "small_legacy.h5"))
save_safetensors(m, os.path.join(HERE, "small.safetensors"))
loss, acc = m.evaluate(X, Y, batch_size=8, verbose=0)
with open(os.path.join(HERE, "small_expected.txt"), "w") as f:
    f.write(f"{loss!r} {acc!r}\n")

# The same archive with deflated entries (Keras stores them; other zip tools compress).
with zipfile.ZipFile(os.path.join(HERE, "small.keras")) as src, \
        zipfile.ZipFile(os.path.join(HERE, "small_deflated.keras"), "w", zipfile.ZIP_DEFLATED) as dst:
    for item in src.infolist():
        dst.writestr(item.filename, src.read(item.filename))

keras.backend.clear_session()
w = model(6)
w.fit(X, Y, epochs=1, verbose=0)
w.save_weights(os.path.join(HERE, "wider.weights.h5"))

with h5py.File(os.path.join(HERE, "foreign.h5"), "w") as f:
    f.create_dataset("measurements/temperature", data=np.arange(12, dtype="float64").reshape(3, 4))
    f.attrs["instrument"] = "thermometer"
print("keras", keras.__version__, "loss", loss, "accuracy", acc)
