"""The performance suite's own logic (benchmarks/run.py, probe.py, handwritten.py) and the
recommended small-image model it measures; the timings themselves run in `benchmarks/run.py`."""

from __future__ import annotations

import json
import os
import pathlib
import sys

import numpy as np
import pytest

import keras
import keras_zoo
from keras_zoo import factory
from keras_zoo.recipes import get_recipe

BENCH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import handwritten  # noqa: E402
import probe  # noqa: E402
import run  # noqa: E402


def test_summary_and_interleave_alternate_the_order():
    calls = []
    runs = run.interleave(4, {"a": lambda: calls.append("a") or 1.0, "b": lambda: calls.append("b") or 3.0})
    assert calls == ["a", "b", "b", "a", "a", "b", "b", "a"]
    assert runs == {"a": [1.0] * 4, "b": [3.0] * 4}
    assert run.summary([3.0, 1.0, 2.0, None]) == {"min": 1.0, "median": 2.0, "n": 3}
    assert run.summary([]) == {"min": None, "median": None, "n": 0}


def test_paired_ratios_alternate_in_a_chain_and_compare_each_call_with_its_neighbours(monkeypatch):
    import time

    monkeypatch.setattr(run, "PAIR_SECONDS", [0.02])
    monkeypatch.setattr(run, "PAIR_CALLS", [5])
    calls = []

    def side(name, seconds_per_unit):
        def run_for(n):
            calls.append((name, n))
            time.sleep(seconds_per_unit * n)
        return run_for

    # B takes three times as long per unit as A: A's rate is 3x B's in every round.
    out = run._paired_ratios(side("a", 0.004), side("b", 0.012), per_unit=10, rounds=2)
    timed = [name for name, n in calls if n == calls[-1][1]]
    assert timed[-10:] == ["a", "b", "a", "b", "a", "b", "a", "b", "a", "b"]  # round 2 starts with B
    assert len(out["ratio"]) == len(out["a"]) == len(out["b"]) == 2
    assert all(2.4 < r < 3.6 for r in out["ratio"]), out["ratio"]
    assert all(2.4 < a / b < 3.6 for a, b in zip(out["a"], out["b"]))


def test_time_to_accuracy_excludes_the_probe_time_spent_before(tmp_path):
    path = tmp_path / "probe.jsonl"
    rows = [{"epoch": 1, "time": 110.0, "probe_seconds": 4.0, "accuracy": 0.95},
            {"epoch": 2, "time": 120.0, "probe_seconds": 7.0, "accuracy": 0.981},
            {"epoch": 3, "time": 125.0, "probe_seconds": 9.0, "accuracy": 0.97}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = run._read_probe(str(path), launched=100.0, target=0.98)
    # epoch 2 ended 20 s after launch, 4 s of which the probe spent measuring epoch 1
    assert out["reached"] == {"epoch": 2, "seconds": 16.0}
    assert out["seconds_by_epoch"] == [10.0, 16.0, 18.0]
    assert run._read_probe(str(path), launched=100.0, target=0.99)["reached"] is None


def _fake_results():
    s = lambda m: {"min": m * 0.9, "median": m, "n": 3}  # noqa: E731
    machine = {"cpu": "Test CPU", "flags": ["avx2"], "load": [2.0, 1.0, 1.0]}
    return {
        "P1": {"machine": machine, "time_to_target_ratio": s(0.4), "zoo_final_accuracy": s(0.99),
               "hand_final_accuracy": s(0.985), "met": True},
        "P5": {"machine": machine, "list_over_bare": s(2.0), "help_over_bare": s(1.9),
               "import_over_bare": s(1.2), "train_1_epoch_over_handwritten": s(1.1)},
    }


def test_readme_table_is_rewritten_between_the_markers_only(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{run.BEGIN}\nold table\n{run.END}\noutro\n")
    assert run.update_readme(_fake_results(), str(readme))
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith(f"{run.END}\noutro\n") and "old table" not in text
    assert "| P1 | time to 98 %" in text and "0.400 (min 0.360) | <= 0.5 | yes |" in text
    assert "| P5 | `keras-zoo list` / `python -c pass` | 2.00 (min 1.80) | <= 1.5 | no |" in text
    assert "Test CPU" in text and "avx2" in text
    before = readme.read_text()
    run.update_readme(_fake_results(), str(readme))
    assert readme.read_text() == before
    plain = tmp_path / "plain.md"
    plain.write_text("no markers\n")
    assert not run.update_readme(_fake_results(), str(plain))


def test_unknown_benchmark_is_refused_by_name(capsys):
    with pytest.raises(SystemExit):
        run.main(["--only", "P1,P9"])
    assert "P9" in capsys.readouterr().err


def test_forward_flops_counts_convolutions_and_dense_layers():
    model = keras.Sequential([keras.Input((6, 6, 2)), keras.layers.Conv2D(4, 3, padding="same"),
                              keras.layers.Flatten(), keras.layers.Dense(5)])
    assert run.forward_flops(model) == 2 * 6 * 6 * 3 * 3 * 2 * 4 + 2 * 144 * 5
    # the recommended model spends a tenth of cnn_small's arithmetic on a 28x28 image
    fast, small = (run.forward_flops(keras_zoo.create_model(n)) for n in ("cnn_fast", "cnn_small"))
    assert fast < 4e6 and fast * 9 < small


def test_cnn_fast_pools_before_normalising_and_uses_its_recipe():
    model = keras_zoo.create_model("cnn_fast", input_shape=(16, 16, 1), num_classes=3)
    full = [l.name for l in model.layers if l.output.shape[1] == 16]
    assert full == ["inputs", "stage0_conv"]  # only the first convolution sees the full resolution
    assert model.output_shape == (None, 3)
    recipe = get_recipe(factory.get_spec("cnn_fast").recipe)
    assert recipe.name == "fast_classifier" and recipe.batch_size == 128 and recipe.warmup_epochs == 0
    with pytest.raises(ValueError, match="too small"):
        keras_zoo.create_model("cnn_fast", input_shape=(4, 4, 1))


def test_handwritten_loader_and_probe_write_per_epoch_accuracy(tmp_path):
    from PIL import Image

    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(4):
            value = 255 if label == "b" else 0
            Image.fromarray(np.full((8, 8), value, np.uint8)).save(tmp_path / label / f"{i}.png")
    x, y = handwritten.load_folder(str(tmp_path))
    assert x.shape == (8, 8, 8, 1) and x.dtype == np.float32 and x.max() == 1.0
    assert y.tolist() == [0] * 4 + [1] * 4
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    path = tmp_path / "probe.jsonl"
    model.fit(x, y, epochs=2, verbose=0, callbacks=[probe.TestAccuracyProbe(str(path), x, y)])
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert all(0.0 <= r["accuracy"] <= 1.0 and r["probe_seconds"] > 0 for r in rows)
    assert rows[1]["probe_seconds"] >= rows[0]["probe_seconds"] and rows[1]["time"] >= rows[0]["time"]


def test_p1_on_another_folder_targets_the_hand_written_final_accuracy():
    def r(acc, secs, final):
        return {"accuracy_by_epoch": acc, "seconds_by_epoch": secs, "final_accuracy": final}

    runs = {"handwritten": [r([0.80, 0.88, 0.90], [10.0, 14.0, 18.0], 0.90),
                            r([0.82, 0.89, 0.91], [10.0, 14.0, 18.0], 0.91)],
            "cnn_fast": [r([0.89, 0.905, 0.91], [6.0, 8.0, 10.0], 0.91),
                         r([0.88, 0.90, 0.905], [6.0, 8.0, 10.0], 0.905)]}
    s = run.p1_summary(runs, target=None)
    # round 1: 0.90 at 8 s vs 18 s; round 2: the zoo never reaches the hand-written 0.91
    assert s["targets"] == [0.90, 0.91]
    assert s["time_to_target_ratio"] == {"min": round(8 / 18, 4), "median": round(8 / 18, 4), "n": 1}
    assert not s["all_reached"]
    fixed = run.p1_summary(runs, target=0.88)
    assert fixed["all_reached"] and fixed["time_to_target_ratio"]["median"] == round((6 / 14 + 6 / 14) / 2, 4)
    assert fixed["zoo_final_accuracy"]["median"] == 0.9075 and fixed["hand_final_accuracy"]["min"] == 0.90


def test_p1_data_folder_is_checked_before_anything_runs(tmp_path, capsys):
    (tmp_path / "train" / "a").mkdir(parents=True)
    (tmp_path / "train" / "b").mkdir()
    with pytest.raises(ValueError, match=r"test/<class>/ .*found 0"):
        run.check_p1_folder(str(tmp_path))
    with pytest.raises(SystemExit):
        run.main(["--only", "P1", "--p1-data", str(tmp_path), "--no-readme"])
    assert str(tmp_path) in capsys.readouterr().err
    (tmp_path / "test" / "a").mkdir(parents=True)
    (tmp_path / "test" / "b").mkdir()
    assert run.check_p1_folder(str(tmp_path)) == str(tmp_path)
    with pytest.raises(SystemExit):
        run.main(["--only", "P5", "--p1-data", str(tmp_path), "--no-readme"])
    assert "P1 option" in capsys.readouterr().err
