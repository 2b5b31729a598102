"""The colour reference of the P1 colour comparison: the classic Keras CIFAR-10 example, hand-written.

Its layers (conv32-conv32-pool-dropout-conv64-conv64-pool-dropout-dense512-dropout-dense), Adam at
Keras's defaults, batch 128, 15 epochs, a random horizontal flip as the model's first layer (a Keras
augmentation layer, active only while training), `validation_split=0.1`. It reads a folder of
``train/<class>/*.jpg`` and ``test/<class>/*.jpg`` with PIL (`handwritten.load_folder`), evaluates
the test set after training and saves the model, as a user's script would.

    python benchmarks/handwritten_color.py FOLDER [--epochs 15] [--probe PROBE.jsonl] [--out model.keras]

`--probe` appends one JSON line per epoch (see `probe.TestAccuracyProbe`); the probe only measures.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from folders import load_folder  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--probe", help="append per-epoch test accuracy lines to this file")
    parser.add_argument("--out", default=None, help="where to save the model (default: FOLDER/../hand_color.keras)")
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
        keras.layers.RandomFlip("horizontal"),
        keras.layers.Conv2D(32, (3, 3), padding="same", activation="relu"),
        keras.layers.Conv2D(32, (3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Dropout(0.25),
        keras.layers.Conv2D(64, (3, 3), padding="same", activation="relu"),
        keras.layers.Conv2D(64, (3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Dropout(0.25),
        keras.layers.Flatten(),
        keras.layers.Dense(512, activation="relu"),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(num_classes, activation="softmax"),
    ])
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    callbacks = []
    if args.probe:
        from probe import TestAccuracyProbe

        callbacks.append(TestAccuracyProbe(args.probe, x_test, y_test))
    model.fit(x_train, y_train, batch_size=128, epochs=args.epochs, validation_split=0.1,
              callbacks=callbacks, verbose=2)
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"test loss {loss:.4f} accuracy {accuracy:.4f}")
    model.save(args.out or os.path.join(os.path.dirname(os.path.abspath(args.folder)), "hand_color.keras"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
