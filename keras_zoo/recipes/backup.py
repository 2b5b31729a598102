"""Crash-safe training backups: `BackupAndRestore` whose files appear whole or not at all.

Keras's callback overwrites ``latest.weights.h5`` in place; a process killed (or a disk filling up)
during that write leaves a file every later run fails to read. `SafeBackupAndRestore` writes each
generation to a new file beside the last, fsyncs it, and only then points ``state.json`` (itself
replaced atomically) at it, keeping the generation before. On resume a latest generation that fails
its sha256 or does not load is reported in one line and the previous one is used; if neither loads
the run starts from epoch 0 with a message.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil

import keras

from keras_zoo._io import atomic_path, atomic_write_text, sha256_of

log = logging.getLogger("keras_zoo")
STATE_FILE = "state.json"


class DiskFullError(OSError):
    """No space left while writing a file; the message names it and says what was kept."""


def disk_full(err: OSError, path: str, kept: str) -> DiskFullError | None:
    """A `DiskFullError` for `err` if it is ENOSPC (h5py reports it only in its message), else None."""
    if getattr(err, "errno", None) == errno.ENOSPC or "No space left" in str(err) or "errno = 28" in str(err):
        return DiskFullError(errno.ENOSPC, f"no space left on the device writing {path}; {kept}", path)
    return None


class SafeBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` with whole-or-nothing generations (the last two kept)."""

    def __init__(self, backup_dir: str, save_freq="epoch", delete_checkpoint: bool = True):
        super().__init__(backup_dir, save_freq=save_freq, delete_checkpoint=delete_checkpoint)
        self.state_path = os.path.join(backup_dir, STATE_FILE)

    # === Restore ===

    def on_train_begin(self, logs=None):
        self._load_model()

    def _read_state(self) -> dict | None:
        if not os.path.exists(self.state_path):
            return None
        try:
            with open(self.state_path, encoding="utf-8") as f:
                state = json.load(f)
            return state if isinstance(state, dict) else None
        except (OSError, ValueError) as err:
            log.warning("backup: %s is unreadable (%s); starting from epoch 0", self.state_path, err)
            return None

    def _restore(self, generation: dict) -> None:
        name = str(generation.get("weights", ""))
        if not name or os.path.basename(name) != name:
            raise OSError(f"state names weights {name!r} outside {self.backup_dir}")
        path = os.path.join(self.backup_dir, name)
        if not os.path.isfile(path):
            raise OSError(f"{path} is missing")
        if sha256_of(path) != generation.get("sha256"):
            raise OSError(f"{path} does not match its sha256 (truncated or changed)")
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(path)
        self.model._initial_epoch = int(generation["epoch"])

    def _load_model(self):
        if not self.model.built:
            raise ValueError("SafeBackupAndRestore needs a built model before fit()")
        if os.path.isdir(self.backup_dir):  # temporaries of a save that was killed midway
            for entry in os.listdir(self.backup_dir):
                if entry.startswith(".") and entry.endswith(".weights.h5"):
                    os.unlink(os.path.join(self.backup_dir, entry))
        state = self._read_state()
        if state is None:
            if os.path.exists(os.path.join(self.backup_dir, "latest.weights.h5")):
                log.warning("backup: %s holds a backup in Keras's in-place format, which cannot be "
                            "trusted after a crash; starting from epoch 0", self.backup_dir)
            return
        generations = [g for g in (state, state.get("previous")) if isinstance(g, dict)]
        for i, generation in enumerate(generations):
            try:
                self._restore(generation)
            except (OSError, ValueError, KeyError) as err:
                fallback = ("resuming from the previous one" if i + 1 < len(generations)
                            else "starting from epoch 0")
                log.warning("backup: generation of epoch %s is unusable (%s); %s",
                            generation.get("epoch"), str(err).splitlines()[0] if str(err) else err, fallback)
                continue
            if i:
                log.warning("backup: resumed from epoch %s", generation["epoch"])
            return
        self.model._initial_epoch = 0

    # === Backup ===

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        name = f"epoch-{self._current_epoch:05d}-batch-{self._last_batch_seen:06d}.weights.h5"
        target = os.path.join(self.backup_dir, name)
        previous = self._read_state()
        kept = (f"the previous backup (epoch {previous['epoch']}) is intact: free some space and run the "
                "same command again to resume" if previous else "no backup was written yet")
        try:
            self._check_free_space(target)
            with atomic_path(target, suffix=".weights.h5") as tmp:
                self.model.save_weights(tmp, overwrite=True)
                with open(tmp, "rb+") as f:
                    os.fsync(f.fileno())
            generation = {"epoch": self._current_epoch, "batch": self._last_batch_seen,
                          "weights": name, "sha256": sha256_of(target)}
            if previous:
                previous.pop("previous", None)
                generation["previous"] = previous
            atomic_write_text(self.state_path, json.dumps(generation, indent=1) + "\n")
        except OSError as err:
            full = disk_full(err, target, kept)
            if full is not None:
                raise full from None
            raise
        keep = {name, (previous or {}).get("weights"), STATE_FILE}
        for entry in os.listdir(self.backup_dir):
            if entry not in keep and entry.endswith(".weights.h5") and not entry.startswith("."):
                os.unlink(os.path.join(self.backup_dir, entry))

    def _check_free_space(self, target: str) -> None:
        """ENOSPC before h5py starts a file it cannot finish: an HDF5 file whose writes fail leaves
        objects whose finalisers print tracebacks (and crashed the interpreter here, exit 139, on a
        full tmpfs); the weights' bytes plus a margin for HDF5's own structures must be free."""
        needed = sum(int(w.numpy().nbytes) for w in self.model.weights) * 11 // 10 + (256 << 10)
        free = shutil.disk_usage(os.path.dirname(target)).free
        if free < needed:
            raise OSError(errno.ENOSPC, f"No space left on device ({free} bytes free, about {needed} needed)")

    def on_train_end(self, logs=None):
        if self.delete_checkpoint and os.path.exists(self.backup_dir):
            shutil.rmtree(self.backup_dir, ignore_errors=True)
