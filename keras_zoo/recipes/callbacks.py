"""Callbacks every recipe run gets: NaN guard, an atomic best-model checkpoint, epoch TensorBoard.

Early stopping, backup/restore and CSV logs are Keras's own; `default_callbacks` assembles them for a
run directory. None of them does more than a few microseconds of work per training step.
"""

from __future__ import annotations

import json
import math
import os

import keras

from keras_zoo._io import atomic_path, atomic_write_text


class NanGuard(keras.callbacks.Callback):
    """Stop training at the first non-finite loss and remember where it happened.

    `keras.callbacks.TerminateOnNaN` stops too, but silently for the caller; `train()` reads
    `diverged_at` and raises an error that says what happened and where the last good checkpoint is.
    """

    def __init__(self):
        super().__init__()
        self.diverged_at = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        # `loss` and every other `*_loss` log (a GAN's `g_loss`, a VAE's `kl_loss`): a model with
        # several objectives can diverge in any of them.
        for key, value in (logs or {}).items():
            if (key == "loss" or key.endswith("_loss")) and not math.isfinite(float(value)):
                self.diverged_at = (self._epoch, batch, float(value))
                self.model.stop_training = True
                return


class AtomicCheckpoint(keras.callbacks.Callback):
    """Save the best model so far to `path` (a `.keras` file), written beside and then renamed.

    Keras's `ModelCheckpoint` writes in place, so a run killed mid-save would leave a broken file.
    The monitored value and epoch of the saved model go to ``<path>.json`` beside it; with
    `resume_from` set to the run's backup directory, a resumed run reads that value back, so an
    epoch worse than the best of the interrupted run never overwrites its checkpoint.
    With ``monitor=None`` (models with no validation number to select on, such as GANs) it keeps
    the latest epoch whose losses are all finite.
    """

    def __init__(self, path: str, monitor: str = "val_loss", mode: str = "min",
                 resume_from: str | None = None):
        super().__init__()
        self.path, self.monitor, self.mode = path, monitor, mode
        self.record = os.path.splitext(path)[0] + ".json"
        self.resume_from = resume_from
        self.best = math.inf if mode == "min" else -math.inf

    def on_train_begin(self, logs=None):
        if not (self.resume_from and os.path.isdir(self.resume_from) and os.path.exists(self.path)
                and os.path.exists(self.record)):
            return
        with open(self.record) as f:
            saved = json.load(f)
        if saved.get("monitor") == self.monitor and saved.get("value") is not None:
            self.best = float(saved["value"])

    def _save(self, epoch, value):
        with atomic_path(self.path, suffix=".keras") as tmp:
            self.model.save(tmp)
        atomic_write_text(self.record, json.dumps(
            {"monitor": self.monitor, "value": value, "epoch": epoch + 1}) + "\n")

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor is None:
            losses = [v for k, v in (logs or {}).items() if k == "loss" or k.endswith("_loss")]
            if all(math.isfinite(float(v)) for v in losses) and not self.model.stop_training:
                self._save(epoch, None)
            return
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(float(value)):
            return
        better = value < self.best if self.mode == "min" else value > self.best
        if better:
            self.best = float(value)
            self._save(epoch, self.best)


class EpochTensorBoard(keras.callbacks.TensorBoard):
    """`keras.callbacks.TensorBoard` writing per-epoch summaries only, with no per-step cost.

    Keras's callback runs its batch hook after every training step even with ``update_freq="epoch"``:
    one `summary.scalar` call per metric that records nothing, about 1 ms a step on a CPU, which
    is most of the step time of a small model. With epoch summaries, no graph and no profiling the
    hook has nothing to do, so this one skips it.
    """

    def __init__(self, log_dir: str):
        super().__init__(log_dir, update_freq="epoch", write_graph=False, profile_batch=0,
                         write_steps_per_second=False)

    def on_train_batch_end(self, batch, logs=None):
        pass


def default_callbacks(run_dir: str, recipe, resume: bool = True) -> list:
    """The standard set for one run directory.

    Order matters: the NaN guard runs first so nothing is checkpointed after a divergence, and
    `BackupAndRestore` comes last so it backs up the state the others have settled.
    """
    backup = os.path.join(run_dir, "backup")
    callbacks = [NanGuard(), AtomicCheckpoint(os.path.join(run_dir, "best.keras"), recipe.monitor,
                                              recipe.monitor_mode, resume_from=backup if resume else None)]
    if recipe.early_stopping_patience:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=recipe.monitor, mode=recipe.monitor_mode,
            patience=recipe.early_stopping_patience, restore_best_weights=True))
    callbacks.append(keras.callbacks.CSVLogger(os.path.join(run_dir, "log.csv"), append=resume))
    callbacks.append(EpochTensorBoard(os.path.join(run_dir, "tensorboard")))
    if resume:
        from keras_zoo.recipes.backup import SafeBackupAndRestore

        callbacks.append(SafeBackupAndRestore(backup))
    return callbacks
