"""One training step of every registered model on one device and on two replicas (run as a script).

Usage: ``distributed_step.py first|rest-a|rest-b|MODEL...``. Run by tests/test_distribute.py in a subprocess of
its own: the two logical CPU devices must be
configured before TensorFlow starts, which the test process has long done. For each model it
prints one JSON line: the loss of one step on a fixed global batch of 8 examples on one device, the
loss of the same step under a 2-replica `MirroredStrategy` (4 examples per replica, through
`keras_zoo.distribute`'s batch-norm synchronisation, as `train` does), and how far the updated
weights are apart.

Random draws (dropout masks, augmentations, a VAE's posterior sample, a GAN's noise) are pinned to
constants here: each replica draws its own numbers, so with them a 2-replica step differs from the
one-device step by the draws alone, and the comparison would say nothing about the arithmetic this
checks (the loss scaling, the gradient all-reduce, global batch-norm statistics, SimCLR's gathered
negatives, IIC's global joint distribution).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

if __name__ == "__main__":
    # Two logical CPU devices, before TensorFlow starts (only when run as the script: the test
    # process imports this module for `group` after its TensorFlow has long started).
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras.src.backend.tensorflow import random as tf_random  # noqa: E402

import keras_zoo  # noqa: E402
from keras_zoo import distribute, factory  # noqa: E402
from keras_zoo.recipes import get_recipe  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from generic import DEEPER_TWINS, fixed_batch, traced_once  # noqa: E402


_STEP = threading.local()  # the batch size of the step this thread (replica) is running


def _pattern(shape, low, high, dtype):
    """Deterministic "random" values in [low, high).

    A draw with one row per example of the step's batch (a GAN's noise, a VAE's posterior sample,
    an augmentation of the images) differs from row to row, and example k of the global batch
    gets the same value on one device and on the replica that holds it (each holds an equal,
    consecutive share). Any other draw (IIC augments its batch repeated, in an order that differs
    with the batch's size) is the same for every row.
    """
    shape = tf.convert_to_tensor(shape, tf.int32)
    rows = getattr(_STEP, "batch", None)
    per_row = tf.reduce_prod(shape[1:]) if shape.shape[0] else tf.constant(1)
    index = tf.range(tf.reduce_prod(shape))
    if shape.shape[0] and rows is not None and int(shape[0]) == rows:
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            index += context.replica_id_in_sync_group * rows * per_row
    else:
        index = index % per_row
    index = tf.cast(index, tf.float32)
    fraction = tf.math.floormod(index * 0.6180339887 + 0.123, 1.0)
    return tf.cast(tf.reshape(low + (high - low) * fraction, shape), dtype or "float32")


@contextlib.contextmanager
def pinned_randomness():
    """Random draws replaced by `_pattern` while the step runs (the weights are drawn before), and
    dropout by the identity (its mask is drawn per replica, its shape hides the batch)."""
    saved = {name: getattr(tf_random, name) for name in
             ("normal", "truncated_normal", "uniform", "randint", "dropout", "shuffle")}
    tf_random.normal = lambda shape, mean=0.0, stddev=1.0, dtype=None, seed=None: _pattern(
        shape, mean - 1.5 * stddev, mean + 1.5 * stddev, dtype)
    tf_random.truncated_normal = tf_random.normal
    tf_random.uniform = lambda shape, minval=0.0, maxval=1.0, dtype=None, seed=None: _pattern(
        shape, minval, maxval, dtype)
    tf_random.randint = lambda shape, minval, maxval, dtype="int32", seed=None: tf.cast(tf.floor(
        _pattern(shape, minval, maxval, "float32")), dtype)
    tf_random.dropout = lambda inputs, rate, noise_shape=None, seed=None: inputs
    tf_random.shuffle = lambda x, axis=0, seed=None: x
    try:
        yield
    finally:
        for name, function in saved.items():
            setattr(tf_random, name, function)


def one_step(name, strategy, batch=8):
    spec = factory.get_spec(name)
    shape = spec.small_input_shape()
    # Plain SGD: its step is linear in the gradient, so the weights differ as the gradients do
    # (Adam's first step is lr * sign(g) and would blow float noise in a near-zero gradient up to lr).
    recipe = get_recipe(spec.recipe).replace(optimizer="sgd", momentum=0.0, learning_rate=0.01,
                                             schedule="constant")
    keras.utils.set_random_seed(0)
    with distribute.scope(strategy):
        model = keras_zoo.create_model(name, input_shape=shape)
        recipe.compile(model)
    model.run_eagerly = True  # one step: tracing would cost more than it saves
    step = model.train_step

    def train_step(data):
        _STEP.batch = int(tf.shape(tf.nest.flatten(data)[0])[0])
        return step(data)

    model.train_step = train_step
    x, y = fixed_batch(spec, model, shape, batch=batch)
    x = x[:batch]
    data = tf.data.Dataset.from_tensor_slices((x, y[:batch]) if y is not None else x).batch(batch)
    before = [np.asarray(w) for w in model.get_weights()]
    synchronized = distribute.synchronize_batch_norm(model) if strategy is not None else []
    with pinned_randomness():
        history = model.fit(data, epochs=1, verbose=0, shuffle=False)
    distribute.restore_batch_norm(synchronized)
    return float(history.history["loss"][0]), before, [np.asarray(w) for w in model.get_weights()]


def main(names, train_too):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    for name in names:
        started, cpu_started = time.perf_counter(), time.process_time()
        loss_one, initial, weights_one = one_step(name, None)
        loss_two, _, weights_two = one_step(name, strategy)
        apart = max(float(np.max(np.abs(a - b))) for a, b in zip(weights_one, weights_two))
        moved = max(float(np.max(np.abs(a - b))) for a, b in zip(weights_one, initial))
        print(json.dumps({"model": name, "loss_one": loss_one, "loss_two": loss_two,
                          "weights_apart": apart, "weights_moved": moved,
                          "replicas": strategy.num_replicas_in_sync,
                          "seconds": round(time.perf_counter() - started, 2), "cpu_s": round(time.process_time() - cpu_started, 2)}), flush=True)
    if train_too:
        train_under(strategy)


def train_under(strategy):
    """A short `keras_zoo.train` of cnn_small on digits with per-replica batches of 32 and linear
    learning-rate scaling: what it records and whether it learns."""
    import tempfile

    recipe = get_recipe("classifier").replace(batch_size=32, batch_per_replica=True, lr_scaling="linear",
                                              epochs=2)
    with tempfile.TemporaryDirectory() as run_dir:
        result = keras_zoo.train("cnn_small", "digits", recipe=recipe, run_dir=run_dir, strategy=strategy,
                                 verbose=0, width=8)
        left = len(distribute.synchronize_batch_norm(result.model, synchronized=False))
        with open(os.path.join(run_dir, "metrics.json")) as f:
            written = json.load(f)
    print(json.dumps({"distribution": written["distribution"], "recipe_learning_rate": recipe.learning_rate,
                      "accuracy": result.metrics["accuracy"], "synchronized_left": left}), flush=True)
    # A search of one trial (the default configuration) built and trained under the strategy,
    # after the `train` above in the same process.
    with tempfile.TemporaryDirectory() as directory:
        searched = keras_zoo.tune("cnn_small", "digits", max_trials=1, epochs=1, directory=directory,
                                  strategy=strategy, verbose=0)
        (run,) = [os.path.join(root, "metrics.json") for root, _, files in os.walk(directory)
                  if "metrics.json" in files]
        with open(run) as f:
            replicas = json.load(f)["distribution"]["replicas"]
    print(json.dumps({"trial": {"score": searched.best_score, **searched.best_test}, "replicas": replicas}),
          flush=True)


GROUPS = ("first", "rest-a", "rest-b")


def group(which: str) -> list:
    """The registered models of one group. ``"first"``: for each recipe (each way of training:
    a compiled loss, or one of the custom training steps), the model with the smallest test input
    (by name on a tie); ``"rest-a"`` and ``"rest-b"``: all the others but the keras.applications
    backbones left to their family's smallest member (`generic.traced_once`) and the deeper twins
    left to their twin (`generic.DEEPER_TWINS`), alternately by name
    (two test files, so that two pytest workers share them). Every other model is in exactly one group."""
    if which not in GROUPS:
        raise ValueError(f"unknown group {which!r}; one of {GROUPS}")
    chosen = {}
    for name in sorted(keras_zoo.list_models()):
        spec = factory.get_spec(name)
        size = int(np.prod(spec.small_input_shape()))
        if spec.recipe not in chosen or size < chosen[spec.recipe][0]:
            chosen[spec.recipe] = (size, name)
    first = sorted(name for _, name in chosen.values())
    if which == "first":
        return first
    rest = sorted(set(keras_zoo.list_models()) - set(first) - traced_once() - set(DEEPER_TWINS))
    return rest[0::2] if which == "rest-a" else rest[1::2]


if __name__ == "__main__":
    # A group (``rest-a`` also runs `train_under`), or model names.
    if len(sys.argv) == 2 and sys.argv[1] in GROUPS:
        main(group(sys.argv[1]), train_too=sys.argv[1] == "rest-a")
    else:
        main(sys.argv[1:], train_too=False)
