"""`train`/`evaluate` and their callbacks: run directory, held-out metrics, NaN guard, resume."""

import csv
import json
import os

import numpy as np
import pytest

import keras
import keras_zoo
from keras_zoo.recipes import Recipe, get_recipe


def test_train_leaves_a_complete_run_directory(tmp_path):
    run = tmp_path / "run"
    result = keras_zoo.train("cnn_small", "digits", epochs=3, run_dir=str(run), verbose=0)
    assert result.info.input_shape == (8, 8, 1)
    assert result.model.output_shape == (None, 10)
    assert set(result.metrics) >= {"loss", "accuracy"}
    assert 0.5 < result.metrics["accuracy"] <= 1.0  # three epochs are far above chance (0.1)
    for name in ("model.keras", "best.keras", "metrics.json", "curves.png", "log.csv", "tensorboard"):
        assert (run / name).exists(), name
    assert not (run / "backup").exists()  # removed when the run finishes
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["test"] == result.metrics
    assert summary["class_names"] == [str(i) for i in range(10)]
    assert summary["epochs_run"] == 3 == len(result.history["loss"])
    reloaded = keras.saving.load_model(str(run / "model.keras"))
    again = keras_zoo.evaluate(reloaded, "digits")
    assert again["accuracy"] == pytest.approx(result.metrics["accuracy"], abs=1e-6)
    assert keras_zoo.evaluate(str(run), "digits")["accuracy"] == pytest.approx(result.metrics["accuracy"], abs=1e-6)


def test_same_seed_gives_the_same_run(tmp_path):
    a = keras_zoo.train("mlp_lecture", "moons", epochs=2, run_dir=str(tmp_path / "a"), verbose=0, resume=False)
    b = keras_zoo.train("mlp_lecture", "moons", epochs=2, run_dir=str(tmp_path / "b"), verbose=0, resume=False)
    assert a.history["loss"] == pytest.approx(b.history["loss"], rel=1e-6)
    for wa, wb in zip(a.model.get_weights(), b.model.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-6)


def test_nan_in_the_loss_stops_with_a_message_and_keeps_the_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(400, 4)).astype("float32")
    y = (x[:, 0] > 0.5).astype("int32")

    class PoisonAfterFirstEpoch(keras.callbacks.Callback):
        """Sets a weight to NaN once the first epoch (and its checkpoint) is done."""

        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                w = self.model.get_layer("head_logits").kernel
                w.assign(np.full(w.shape, np.nan, dtype="float32"))

    run = tmp_path / "run"
    with pytest.raises(FloatingPointError, match=r"loss became nan at epoch 2.*last good checkpoint"):
        keras_zoo.train("mlp_lecture", (x, y), epochs=5, run_dir=str(run), verbose=0,
                        callbacks=[PoisonAfterFirstEpoch()])
    good = keras.saving.load_model(str(run / "best.keras"))
    assert all(np.all(np.isfinite(w)) for w in good.get_weights())


def test_the_default_callbacks_do_no_per_step_logging_work(tmp_path, monkeypatch):
    """TensorBoard summaries are written per epoch, and nothing is called per training step for them."""
    import tensorflow.summary as summary  # the module Keras's TensorBoard writes through

    calls = []
    scalar = summary.scalar
    monkeypatch.setattr(summary, "scalar", lambda name, *a, **k: calls.append(name) or scalar(name, *a, **k))
    result = keras_zoo.train("mlp_lecture", "moons", epochs=2, batch_size=16, run_dir=str(tmp_path / "run"),
                             verbose=0)
    steps = -(-result.info.num_examples["train"] // 16)
    assert steps > 20 and not [name for name in calls if name.startswith("batch_")]
    assert {"epoch_loss", "epoch_accuracy"} <= set(calls) and len(calls) < 2 * 12


def test_an_interrupted_run_resumes_when_the_same_call_is_repeated(tmp_path):
    class Crash(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("simulated kill after epoch 2")

    run = str(tmp_path / "run")
    with pytest.raises(RuntimeError, match="simulated kill"):
        keras_zoo.train("mlp_lecture", "moons", epochs=4, run_dir=run, verbose=0, callbacks=[Crash()])
    assert os.path.isdir(os.path.join(run, "backup"))
    with open(os.path.join(run, "best.json")) as f:
        before = json.load(f)
    assert before["monitor"] == "val_loss" and before["epoch"] in (1, 2)

    result = keras_zoo.train("mlp_lecture", "moons", epochs=4, run_dir=run, verbose=0)
    assert len(result.history["loss"]) == 2  # epochs 3 and 4 only: 1 and 2 came from the backup
    with open(os.path.join(run, "log.csv")) as f:
        epochs = [int(line.split(",")[0]) for line in f.read().splitlines()[1:] if line and line[0].isdigit()]
    assert epochs == [0, 1, 2, 3]
    assert not os.path.exists(os.path.join(run, "backup"))
    # best.keras holds the best epoch of the whole run, both invocations together.
    with open(os.path.join(run, "log.csv")) as f:
        rows = list(csv.DictReader(f))
    val = [float(r["val_loss"]) for r in rows]
    with open(os.path.join(run, "best.json")) as f:
        after = json.load(f)
    assert after["epoch"] == 1 + int(np.argmin(val)) and after["value"] == pytest.approx(min(val))


def test_a_resumed_checkpoint_keeps_the_best_value_of_the_interrupted_run(tmp_path):
    from keras_zoo.recipes.callbacks import AtomicCheckpoint

    path = str(tmp_path / "best.keras")
    (tmp_path / "best.keras").write_bytes(b"saved by the interrupted run")
    (tmp_path / "best.json").write_text(json.dumps({"monitor": "val_loss", "value": 0.25, "epoch": 2}))
    (tmp_path / "backup").mkdir()
    resumed = AtomicCheckpoint(path, "val_loss", "min", resume_from=str(tmp_path / "backup"))
    resumed.on_train_begin()
    assert resumed.best == 0.25
    resumed.on_epoch_end(2, {"val_loss": 0.5})  # worse: the interrupted run's checkpoint stays
    assert (tmp_path / "best.keras").read_bytes() == b"saved by the interrupted run"
    fresh = AtomicCheckpoint(path, "val_loss", "min")  # resume=False: a new run starts from scratch
    fresh.on_train_begin()
    assert fresh.best == float("inf")


def test_bad_arguments_fail_before_any_training(tmp_path):
    with pytest.raises(ValueError, match="dropout must be a float in"):
        keras_zoo.train("cnn_small", "digits", dropout=2.0, run_dir=str(tmp_path / "r"))
    with pytest.raises(ValueError, match=r"unknown argument\(s\) \['widht'\]"):
        keras_zoo.train("cnn_small", "digits", widht=3, run_dir=str(tmp_path / "r"))
    with pytest.raises(ValueError, match="epochs must be an int >= 1, got 0"):
        keras_zoo.train("cnn_small", "digits", epochs=0, run_dir=str(tmp_path / "r"))
    with pytest.raises(KeyError, match="unknown recipe 'clasifier'; did you mean 'classifier'"):
        keras_zoo.train("cnn_small", "digits", recipe="clasifier", run_dir=str(tmp_path / "r"))
    assert not (tmp_path / "r" / "model.keras").exists()


def test_recipe_validation_and_replace():
    recipe = get_recipe("classifier")
    assert recipe.replace(epochs=3).epochs == 3 and recipe.epochs != 3
    with pytest.raises(ValueError, match=r"unknown recipe field\(s\) \['epoch'\]"):
        recipe.replace(epoch=3)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        Recipe(optimizer="adamax")
    with pytest.raises(ValueError, match="unknown loss 'mse2'"):
        Recipe(loss="mse2")
    with pytest.raises(ValueError, match="label_smoothing must be a float in"):
        Recipe(label_smoothing=1.5)


def test_min_steps_gives_small_data_more_epochs_and_an_explicit_count_is_kept(tmp_path, caplog):
    recipe = get_recipe("classifier").replace(epochs=2, min_steps=12, batch_size=256, early_stopping_patience=None)
    with pytest.raises(ValueError, match="min_steps must be an int >= 1, got 0"):
        recipe.replace(min_steps=0)
    assert recipe.epochs_for(256 * 20) == 2 and recipe.epochs_for(600) == 4 and recipe.epochs_for(10) == 12
    assert recipe.replace(min_steps=None).epochs_for(10) == 2

    rates = []

    class Rates(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            rates.append(float(self.model.optimizer.learning_rate))

    with caplog.at_level("INFO", logger="keras_zoo"):
        result = keras_zoo.train("mlp_lecture", "moons", recipe=recipe, run_dir=str(tmp_path / "a"), verbose=0,
                                 callbacks=[Rates()])
    steps = recipe.steps_per_epoch(result.info.num_examples["train"])
    expected = -(-12 // steps)
    assert expected >= 4  # the data is small enough for the floor to act
    assert len(result.history["loss"]) == expected == result.summary["epochs_run"]
    assert result.summary["recipe"]["epochs"] == expected and result.summary["recipe"]["min_steps"] == 12
    assert f"{expected} epochs instead of 2" in caplog.text
    # The cosine schedule spans the stretched run: still above half way after 2 epochs, near 0 at the end.
    assert rates[1] >= 0.45 * recipe.learning_rate and rates[-1] < 0.05 * recipe.learning_rate

    exact = keras_zoo.train("mlp_lecture", "moons", recipe=recipe, epochs=2, run_dir=str(tmp_path / "b"), verbose=0)
    assert len(exact.history["loss"]) == 2 and exact.summary["recipe"]["min_steps"] is None


def test_recipe_schedule_warms_up_then_decays():
    recipe = Recipe(learning_rate=0.1, warmup_epochs=2, epochs=10, schedule="cosine")
    schedule = recipe.learning_rate_schedule(steps_per_epoch=10)
    lrs = [float(schedule(step)) for step in (0, 10, 20, 60, 99)]
    assert lrs[0] < lrs[1] < lrs[2] == pytest.approx(0.1)
    assert lrs[2] > lrs[3] > lrs[4] >= 0.0


def test_label_smoothing_loss_round_trips_through_a_keras_file(tmp_path):
    model = keras_zoo.create_model("mlp_lecture", input_shape=(2,), num_classes=3)
    get_recipe("classifier").replace(label_smoothing=0.1).compile(model)
    x = np.zeros((4, 2), "float32")
    y = np.array([0, 1, 2, 0], "int32")
    model.train_on_batch(x, y)
    before = model.evaluate(x, y, verbose=0, return_dict=True)["loss"]
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.loss.label_smoothing == pytest.approx(0.1)
    assert loaded.evaluate(x, y, verbose=0, return_dict=True)["loss"] == pytest.approx(before, rel=1e-6)


def test_mixed_precision_the_cpu_would_emulate_trains_in_float32_saying_so_once(tmp_path, monkeypatch, caplog):
    from keras_zoo.recipes import precision

    recipe = keras_zoo.get_recipe("classifier").replace(precision="mixed_bfloat16", epochs=1)
    monkeypatch.setattr(precision, "_warned", set())
    monkeypatch.setattr(precision, "_has_gpu", lambda: False)
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "fma", "avx512f"}))
    with caplog.at_level("WARNING", logger="keras_zoo.recipes.precision"):
        result = keras_zoo.train("mlp_lecture", "moons", recipe=recipe, run_dir=str(tmp_path / "run"), verbose=0)
        assert result.model.dtype_policy.name == "float32"
        assert precision.effective_precision("mixed_bfloat16") == "float32"  # a second model: no second line
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "keras_zoo.recipes.precision"]
    assert "mixed_bfloat16" in warning and "amx_bf16 or avx512_bf16" in warning and "training in float32" in warning
    assert precision.effective_precision("float32") == "float32"
    for native in ({"avx512f", "amx_bf16", "amx_tile"}, {"avx512f", "avx512_bf16"}):
        monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset(native))
        assert precision.effective_precision("mixed_bfloat16") == "mixed_bfloat16"
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2"}))
    monkeypatch.setenv("KERAS_ZOO_KEEP_PRECISION", "1")
    assert precision.effective_precision("mixed_float16") == "mixed_float16"
