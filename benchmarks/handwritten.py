"""The reference every P1/P5 figure is a ratio against: a hand-written keras.io-style convnet.

conv32-pool-conv64-pool-flatten-dropout-dense (https://keras.io/examples/vision/mnist_convnet/),
Adam at Keras's defaults, batch 128, 15 epochs, `validation_split=0.1`; it reads a folder of
``train/<class>/*.png`` and ``test/<class>/*.png`` with PIL, evaluates the test set after training
and saves the model, as a user's script would.

    python benchmarks/handwritten.py FOLDER [--epochs 15] [--probe PROBE.jsonl] [--out model.keras]

`--probe` appends one JSON line per epoch (wall-clock time at the epoch's end, the seconds spent
measuring so far, test accuracy), written by `probe.TestAccuracyProbe`; the measurement time is
excluded by the suite. The probe only measures: nothing here selects on the test set.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from folders import load_folder


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--probe", help="append per-epoch test accuracy lines to this file")
    parser.add_argument("--out", default=None, help="where to save the model (default: FOLDER/../hand.keras)")
    args = parser.parse_args(argv)

    import keras

    x_train, y_train = load_folder(os.path.join(args.folder, "train"))
    x_test, y_test = load_folder(os.path.join(args.folder, "test"))
    # The folder lists the classes in turn; validation_split takes the last 10 % before fit shuffles.
    order = np.random.default_rng(0).permutation(len(x_train))
    x_train, y_train = x_train[order], y_train[order]
    num_classes = int(y_train.max()) + 1
    model = keras.Sequential([
        keras.Input(shape=x_train.shape[1:]),
        keras.layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(num_classes, activation="softmax"),
    ])
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    callbacks = []
    if args.probe:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from probe import TestAccuracyProbe

        callbacks.append(TestAccuracyProbe(args.probe, x_test, y_test))
    model.fit(x_train, y_train, batch_size=128, epochs=args.epochs, validation_split=0.1,
              callbacks=callbacks, verbose=2)
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"test loss {loss:.4f} accuracy {accuracy:.4f}")
    model.save(args.out or os.path.join(os.path.dirname(os.path.abspath(args.folder)), "hand.keras"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
