"""One worker of a multi-worker `keras_zoo.train` run (run as a script by tests/test_distribute.py).

Usage: ``multi_worker_train.py RUN_DIR INDEX PORT0,PORT1 EPOCHS [KILL_AFTER_EPOCH]``. The cluster is
``worker`` tasks on 127.0.0.1 at the given ports (worker 0 is the chief); ``TF_CONFIG`` is set from
them unless INDEX is ``single``, which trains the same run in one process without a strategy. With
KILL_AFTER_EPOCH the process SIGKILLs itself at the end of that epoch (1-based) the first time it
runs (a marker file beside RUN_DIR remembers it). Prints the result as one JSON line.
"""

from __future__ import annotations

import json
import os
import signal
import sys

run_dir, index, ports, epochs = sys.argv[1], sys.argv[2], sys.argv[3].split(","), int(sys.argv[4])
kill_after = int(sys.argv[5]) if len(sys.argv) > 5 else None
if index != "single":
    os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                                          "task": {"type": "worker", "index": int(index)}})
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import keras_zoo  # noqa: E402


class KillOnce(keras.callbacks.Callback):
    def __init__(self, epoch, marker):
        super().__init__()
        self.epoch, self.marker = epoch, marker

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)


callbacks = []
if kill_after:
    callbacks.append(KillOnce(kill_after, os.path.normpath(run_dir) + f".killed-{index}"))
result = keras_zoo.train("cnn_small", "digits", epochs=epochs, run_dir=run_dir, seed=0, verbose=0,
                         strategy=None if index == "single" else "multi_worker", callbacks=callbacks,
                         width=16)
print(json.dumps({"index": index, "metrics": result.metrics, "history": result.history,
                  "distribution": result.summary["distribution"]}), flush=True)
