"""Per-epoch test accuracy of a run, for time-to-accuracy (benchmark P1), with its own cost excluded.

`TestAccuracyProbe` appends ``{"epoch", "time", "probe_seconds", "accuracy"}`` JSON lines: `time`
is the wall clock (``time.time()``) when the epoch ended, before the probe ran; `probe_seconds`
the total time the probe has spent so far, including this epoch's measurement (the suite subtracts
what was spent before each epoch ended). It predicts only; the run never sees its numbers.

    python benchmarks/probe.py PROBE.jsonl TEST_FOLDER -- train cnn_fast --data FOLDER ...

runs the `keras-zoo` command line in this process with the probe added to `keras_zoo.train`'s
callbacks: the default command's code path, plus a measurement.
"""

from __future__ import annotations

import json
import os
import sys
import time

import keras
import numpy as np


class TestAccuracyProbe(keras.callbacks.Callback):
    def __init__(self, path: str, x_test=None, y_test=None, folder: str | None = None):
        super().__init__()
        self.path, self.x, self.y, self.folder = path, x_test, y_test, folder
        self.spent = 0.0

    def on_epoch_end(self, epoch, logs=None):
        ended = time.time()
        start = time.perf_counter()
        if self.x is None:
            from folders import load_folder

            self.x, self.y = load_folder(self.folder)
        probabilities = self.model.predict(self.x, batch_size=500, verbose=0)
        accuracy = float(np.mean(np.argmax(probabilities, axis=-1) == self.y))
        self.spent += time.perf_counter() - start
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"epoch": epoch + 1, "time": ended, "probe_seconds": self.spent,
                                "accuracy": accuracy}) + "\n")


def main(argv) -> int:
    path, test_folder, rest = argv[0], argv[1], argv[argv.index("--") + 1:]
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import keras_zoo
    from keras_zoo import cli

    real_train = keras_zoo.train

    def train_with_probe(*args, callbacks=(), **kwargs):
        return real_train(*args, callbacks=[*callbacks, TestAccuracyProbe(path, folder=test_folder)], **kwargs)

    keras_zoo.train = train_with_probe
    return cli.main(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
