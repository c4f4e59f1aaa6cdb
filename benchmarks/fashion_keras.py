"""fashion_keras.py — the Keras/TensorFlow (CPU) side of benchmarks/frameworks.py.

The models of examples/fashion_cnn.nn and benchmarks/fashion_mlp.nn, written as those
scripts write them, trained with model.fit(validation_data=test set) like nnc's programs.
Reads the IDX files through fashion_data.py (keras.datasets would download). Prints a last line

    RESULT epochs=E threads=T sec_per_epoch=S train_samples_per_s=R test_acc=A

Run with the virtual environment's python that frameworks.py makes (tensorflow-cpu).
"""
import argparse
import os
import time

from fashion_data import load_fashion_uint8


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--model', choices=['cnn', 'mlp'], default='cnn')
    ap.add_argument('--epochs', type=int, default=1)
    ap.add_argument('--threads', type=int, default=os.cpu_count())
    ap.add_argument('--batch-size', type=int, default=32)
    ap.add_argument('--data-dir', default='/usr/share/datasets/fashion-mnist')
    args = ap.parse_args()

    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    keras = tf.keras
    x_train, y_train, x_test, y_test = load_fashion_uint8(args.data_dir)
    shape = (-1, 28, 28, 1) if args.model == 'cnn' else (-1, 784)
    x_train = x_train.reshape(shape).astype('float32') / 255.0
    x_test = x_test.reshape(shape).astype('float32') / 255.0
    if args.model == 'cnn':
        layers = [keras.Input(shape=(28, 28, 1)),
                  keras.layers.Conv2D(32, (3, 3), activation='relu'), keras.layers.MaxPooling2D((2, 2)),
                  keras.layers.Conv2D(64, (3, 3), activation='relu'), keras.layers.MaxPooling2D((2, 2)),
                  keras.layers.Flatten(), keras.layers.Dense(64, activation='relu'),
                  keras.layers.Dense(10, activation='softmax')]
    else:
        layers = [keras.Input(shape=(784,)), keras.layers.Dense(128, activation='relu'),
                  keras.layers.Dense(10, activation='softmax')]
    model = keras.Sequential(layers)
    model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
    t0 = time.perf_counter()
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
              validation_data=(x_test, y_test), verbose=2)
    sec = (time.perf_counter() - t0) / max(args.epochs, 1)
    _, acc = model.evaluate(x_test, y_test, verbose=0)
    print(f'RESULT epochs={args.epochs} threads={args.threads} sec_per_epoch={sec:.3f} '
          f'train_samples_per_s={len(x_train) / sec:.1f} test_acc={acc:.4f}', flush=True)


if __name__ == '__main__':
    main()
