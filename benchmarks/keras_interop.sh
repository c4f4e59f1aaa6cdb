#!/bin/bash
# keras_interop.sh — nnc's files in real Keras, and Keras's files in nnc (not run in CI).
#   bash benchmarks/keras_interop.sh [path/to/nnc]
# Makes a virtual environment with tensorflow-cpu from PyPI (NNC_KERAS_VENV, default
# ~/.cache/nnc/keras-venv), then:
#  1. trains examples/fashion_cnn.nn and examples/fashion_mlp_dropout.nn with nnc for one
#     epoch, saving .weights.h5, .keras and Keras 2 .h5 files, and evaluates those files in
#     Keras on the test set, beside the accuracy nnc printed;
#  2. trains an MLP and a BatchNormalization CNN in Keras for one epoch, and evaluates
#     Keras's .weights.h5, .keras and .h5 files in nnc programs of the same models;
#  3. trains an MLP one epoch in nnc, saves it as .keras (optimizer state included) and
#     trains a second epoch; Keras continues from the .keras file, and its weights are
#     compared with nnc's second epoch, beside Keras continuing with a fresh optimizer;
#  4. saves a model with every layer kind nnc has (and SGD with Nesterov momentum) after a
#     few steps, and compares Keras's predictions from its .keras and .h5 files with nnc's.
# Fashion-MNIST comes from /usr/share/datasets (dataset-fashion-mnist) or $NNC_DATA.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
nnc=$(realpath "${1:-$root/build/nnc}")
venv=${NNC_KERAS_VENV:-$HOME/.cache/nnc/keras-venv}
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import keras, h5py' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q tensorflow-cpu==2.18.0 keras==3.15.1 h5py
fi
py="$venv/bin/python"
echo "Keras $("$py" -c 'import os; os.environ["TF_CPP_MIN_LOG_LEVEL"]="3"; import keras; print(keras.__version__)' 2>/dev/null), TensorFlow backend"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

echo "== nnc -> Keras: trained 1 epoch by nnc, evaluated by nnc and by Keras"
for ex in fashion_cnn fashion_mlp_dropout; do
  # The example as written, saving Keras's files instead of safetensors.
  xt=x_test yt=y_test
  [ $ex = fashion_mlp_dropout ] && xt=test_images yt=test_labels
  grep -v "save_weights" "$root/examples/$ex.nn" >"$ex.nn"
  cat >>"$ex.nn" <<NN
model.evaluate($xt, $yt)
model.save_weights('$ex.weights.h5')
model.save_weights('${ex}_weights.h5')
model.save('$ex.keras')
model.save('${ex}_model.h5')
NN
  "$nnc" build "$ex.nn" -o "$ex" 2>/dev/null
  acc=$(./"$ex" --epochs 1 --seed 1 | grep -o 'loss: [0-9.]* - accuracy: [0-9.]*' | tail -1)
  echo "$ex: nnc printed $acc"
  "$py" "$root/benchmarks/keras_interop.py" evaluate "$ex.keras" "$ex.weights.h5" "${ex}_weights.h5" "${ex}_model.h5" 2>/dev/null
done

echo "== Keras -> nnc: trained 1 epoch by Keras, evaluated by Keras and by nnc"
"$py" "$root/benchmarks/keras_interop.py" train . 2>/dev/null
cat >keras_mlp.nn <<'NN'
import tensorflow as tf
(x_train, y_train), (x_test, y_test) = tf.keras.datasets.fashion_mnist.load_data()
x_test = x_test / 255.0
model = tf.keras.Sequential([
    tf.keras.Input(shape=(28, 28)),
    tf.keras.layers.Flatten(),
    tf.keras.layers.Dense(128, activation='relu'),
    tf.keras.layers.Dropout(0.2),
    tf.keras.layers.Dense(10),
])
model.compile(optimizer='adam', loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=['accuracy'])
for_each_file
NN
cat >keras_bn_cnn.nn <<'NN'
import tensorflow as tf
(x_train, y_train), (x_test, y_test) = tf.keras.datasets.fashion_mnist.load_data()
x_test = x_test.reshape(-1, 28, 28, 1) / 255.0
model = tf.keras.Sequential([
    tf.keras.Input(shape=(28, 28, 1)),
    tf.keras.layers.Conv2D(16, (3, 3), activation='relu'),
    tf.keras.layers.BatchNormalization(),
    tf.keras.layers.MaxPooling2D((2, 2)),
    tf.keras.layers.Flatten(),
    tf.keras.layers.Dense(10, activation='softmax'),
])
model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
for_each_file
NN
for m in mlp bn_cnn; do
  loads=""
  for f in "keras_$m.weights.h5" "keras_$m.keras" "keras_${m}_model.h5"; do
    loads+="model.load_weights('$f')\nl, a = model.evaluate(x_test, y_test, verbose=0)\nprint('  $f: loss', l, 'accuracy', a)\n"
  done
  sed -i "s|^for_each_file$|$loads|" "keras_$m.nn"
  "$nnc" build "keras_$m.nn" -o "keras_$m" 2>/dev/null
  echo "keras_$m in nnc:"
  ./"keras_$m"
done

echo "== every layer kind: nnc's predictions vs Keras's from nnc's .keras and .h5 files"
"$py" "$root/benchmarks/keras_interop.py" random x.npy 2>/dev/null
cat >every_layer.nn <<'NN'
import numpy as np
from tensorflow import keras
from tensorflow.keras import layers, regularizers
x = np.load('x.npy')
y = np.array([0, 1, 2, 3])
model = keras.Sequential([
    keras.Input(shape=(8, 8, 2)),
    layers.Conv2D(4, (3, 3), padding='same', activation='elu', kernel_initializer='he_normal',
                  kernel_regularizer=regularizers.l2(0.01)),
    layers.BatchNormalization(center=False, momentum=0.9, epsilon=0.01),
    layers.LeakyReLU(negative_slope=0.1),
    layers.AveragePooling2D((2, 2)),
    layers.Conv2D(6, 3, strides=2, use_bias=False, activation='gelu'),
    layers.ELU(alpha=0.5),
    layers.Reshape((6,)),
    layers.Dense(8, activation='tanh', kernel_regularizer=regularizers.l1_l2(l1=0.001, l2=0.002)),
    layers.Activation('selu'),
    layers.ReLU(),
    layers.Dropout(0.3),
    layers.Dense(4),
    layers.Softmax(),
], name='every_layer')
model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
              loss='sparse_categorical_crossentropy', metrics=['accuracy'])
model.fit(x, y, epochs=3, batch_size=2, verbose=0)
p = model.predict(x, verbose=0)
np.save('p.npy', p)
model.save('every_layer.keras')
model.save('every_layer.h5')
NN
"$nnc" build every_layer.nn -o every_layer 2>/dev/null
./every_layer
"$py" "$root/benchmarks/keras_interop.py" predict x.npy p.npy every_layer.keras every_layer.h5 2>/dev/null

echo "== optimizer state: nnc's epoch 2 vs Keras continuing from nnc's epoch-1 .keras file"
cat >resume.nn <<'NN'
import tensorflow as tf
(x_train, y_train), (x_test, y_test) = tf.keras.datasets.fashion_mnist.load_data()
x_train = x_train / 255.0
x_test = x_test / 255.0
model = tf.keras.Sequential([
    tf.keras.Input(shape=(28, 28)),
    tf.keras.layers.Flatten(),
    tf.keras.layers.Dense(64, activation='relu'),
    tf.keras.layers.Dense(10, activation='softmax'),
])
model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
model.fit(x_train, y_train, epochs=1, batch_size=64, shuffle=False, verbose=0)
model.save('resume.keras')
model.fit(x_train, y_train, epochs=1, batch_size=64, shuffle=False, verbose=0)
model.save_weights('resume2.weights.h5')
l, a = model.evaluate(x_test, y_test, verbose=0)
print('after epoch 2 in nnc: loss', l, 'accuracy', a)
NN
"$nnc" build resume.nn -o resume 2>/dev/null
./resume --seed 1
"$py" "$root/benchmarks/keras_interop.py" resume resume.keras resume2.weights.h5 2>/dev/null
cat >steps.nn <<'NN'
import numpy as np
from tensorflow import keras
x = np.array([[0.1, 0.2, 0.3, 0.4], [0.5, -0.1, 0.2, 0.0], [-0.3, 0.8, 0.1, 0.2],
              [0.9, 0.4, -0.6, 0.3], [0.0, 0.0, 1.0, -1.0], [0.7, 0.2, 0.2, 0.9],
              [-0.5, -0.5, 0.5, 0.5], [0.3, 0.6, 0.9, 0.1]])
y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(5, activation='relu'),
                          keras.layers.BatchNormalization(), keras.layers.Dense(3, activation='softmax')])
model.compile(optimizer='adam', loss='sparse_categorical_crossentropy')
model.fit(x, y, epochs=5, batch_size=4, shuffle=False, verbose=0,
          callbacks=[keras.callbacks.ModelCheckpoint('e{epoch}.keras', monitor='loss')])
NN
"$nnc" build steps.nn -o steps 2>/dev/null
./steps
"$py" "$root/benchmarks/keras_interop.py" resume_steps e1.keras e5.keras 2>/dev/null
