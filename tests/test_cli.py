"""The `keras-zoo` command end to end, as a user runs it (subprocesses in a temporary directory)."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from serving import assert_serving_contract

CLI = [sys.executable, "-m", "keras_zoo.cli"]


def run(args, cwd, check=True):
    proc = subprocess.run(CLI + list(args), cwd=cwd, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"keras-zoo {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def test_list_and_help_do_not_import_tensorflow(tmp_path):
    probe = ("import sys; from keras_zoo.cli import main; main({args}); "
             "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'imported TF'")
    # `list` starts in about 1.5x a bare interpreter: not even the factory, the download machinery
    # (urllib.request, http.client), ctypes or difflib are imported for it.
    heavy = "['keras_zoo.factory', 'urllib.request', 'ctypes', 'difflib']"
    light = probe + f"; heavy = set(sys.modules).intersection({heavy}); assert not heavy, heavy"
    proc = subprocess.run([sys.executable, "-c", light.format(args="['list']")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "cnn_small" in proc.stdout and "mlp_lecture" in proc.stdout
    from keras_zoo import cli, factory

    assert cli._CATALOG_PATH == factory.CATALOG_PATH  # the file `list` reads is the one docs writes
    proc = subprocess.run([sys.executable, "-c", "import sys\ntry:\n " + probe.format(args="['--help']") +
                           "\nexcept SystemExit:\n assert 'tensorflow' not in sys.modules"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "train" in proc.stdout and "export" in proc.stdout


@pytest.mark.parametrize("argv", [
    ["list", "cnn*", "--json"], ["info", "cnn_small:digits"],
    ["train", "cnn_fast", "--data", "digits", "--epochs", "2", "--set", "width=8", "--distribute", "mirrored"],
    ["evaluate", "runs/x", "--data", "digits", "--split", "validation"],
    ["export", "runs/x", "--out", "exports", "--format", "onnx"],
    ["finetune", "cnn_small:mnist", "--data", "folder", "--fine-tune-epochs", "0"],
    ["tune", "cnn_small", "--data", "digits", "--tuner", "hyperband", "--max-trials", "3"],
    ["predict", "runs/x", "a.png", "b.png"], ["sample", "dcgan:digits", "--num", "16"],
    ["experiment", "representations", "--size", "small"],
])
def test_a_command_parses_the_same_with_only_its_own_options_built(argv):
    from keras_zoo import cli

    assert cli.build_parser(argv[0]).parse_args(argv) == cli.build_parser().parse_args(argv)


def test_the_program_runs_main_through_console_main():
    import configparser

    config = configparser.ConfigParser()
    config.read(pathlib.Path(__file__).resolve().parents[1] / "setup.cfg")
    assert "keras-zoo = keras_zoo.cli:console_main" in config["options.entry_points"]["console_scripts"]
    proc = subprocess.run(CLI + ["info", "nonexistent_model"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "nonexistent_model" in proc.stderr  # main's status is the exit status


def test_the_command_table_names_every_subcommand():
    import argparse

    from keras_zoo import cli

    (commands,) = [a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert tuple(commands.choices) == cli.COMMANDS


def test_list_filters_and_info(tmp_path):
    out = run(["list", "cnn*"], tmp_path).stdout
    assert "cnn_small" in out and "mlp_lecture" not in out
    rows = json.loads(run(["list", "--family", "mlp", "--json"], tmp_path).stdout)
    assert {r["name"] for r in rows} == {"mlp_lecture", "mlp_wide", "mlp_deep"}
    info = json.loads(run(["info", "cnn_small"], tmp_path).stdout)
    assert info["task"] == "classification" and info["parameters"] > 0
    bad = run(["info", "cnn_smal"], tmp_path, check=False)
    assert bad.returncode == 2 and "cnn_small" in bad.stderr


def test_bad_arguments_are_reported_without_a_traceback(tmp_path):
    proc = run(["train", "cnn_small", "--data", "digits", "--set", "dropout=3"], tmp_path, check=False)
    assert proc.returncode == 2
    assert "dropout must be a float in [0, 1), got 3" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run(["train", "cnn_small", "--data", "digitz"], tmp_path, check=False)
    assert proc.returncode == 2 and "digitz" in proc.stderr and "Traceback" not in proc.stderr


def test_malformed_set_is_named(tmp_path, capsys, monkeypatch):
    from keras_zoo.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["train", "cnn_small", "--data", "digits", "--set", "width"]) == 2
    assert "--set expects KEY=VALUE, got 'width'" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # refused before anything was trained or written


def _digit_pngs(folder, size=28, per_class=None):
    """The real 8x8 digits, upscaled to size x size grayscale PNGs in class sub-folders."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    paths = []
    for i, (img, label) in enumerate(zip(digits.images, digits.target)):
        if per_class is not None and sum(1 for p in paths if f"/{label}/" in p) >= per_class:
            continue
        d = os.path.join(folder, str(label))
        os.makedirs(d, exist_ok=True)
        arr = (img / 16.0 * 255).astype("uint8")
        path = os.path.join(d, f"{i}.png")
        Image.fromarray(arr, mode="L").resize((size, size), Image.BILINEAR).save(path)
        paths.append(path)
    return paths


def test_train_evaluate_export_predict_on_digits(tmp_path):
    out = run(["train", "cnn_small", "--data", "digits", "--epochs", "4", "--out", "run"], tmp_path).stdout
    assert "accuracy" in out
    run_dir = tmp_path / "run"
    for name in ("model.keras", "metrics.json", "curves.png", "log.csv"):
        assert (run_dir / name).exists(), name
    exports = list((run_dir / "export" / "cnn_small").iterdir())
    assert [p.name for p in exports] == ["1"]
    summary = json.loads((run_dir / "metrics.json").read_text())
    accuracy = summary["test"]["accuracy"]
    assert f"accuracy: {accuracy:.4f}" in out
    # The program exits with its objects frozen out of the garbage collector (`console_main`):
    # the TensorBoard event files are nonetheless complete, one loss summary per epoch.
    import tensorflow as tf

    for split in ("train", "validation"):
        (events,) = (run_dir / "tensorboard" / split).glob("events.out.tfevents.*")
        steps = [e.step for e in tf.compat.v1.train.summary_iterator(str(events))
                 for v in e.summary.value if v.tag == "epoch_loss"]
        assert steps == [0, 1, 2, 3], (split, steps)

    metrics = json.loads(run(["evaluate", "run", "--data", "digits"], tmp_path).stdout)
    assert metrics["accuracy"] == pytest.approx(accuracy, abs=1e-6)

    path = run(["export", "run", "--out", "served"], tmp_path).stdout.strip()
    assert path.endswith(os.path.join("served", "cnn_small", "1"))
    assert (tmp_path / "served" / "cnn_small" / "1" / "assets" / "class_names.txt").exists()
    # The train run's own export and the re-export answer the one serving contract.
    assert_serving_contract(str(run_dir / "export" / "cnn_small" / "1"))
    assert_serving_contract(str(tmp_path / "served" / "cnn_small" / "1"))

    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = []
    for i in range(6):
        p = tmp_path / f"digit{i}.png"
        Image.fromarray((digits.images[i] / 16 * 255).astype("uint8"), mode="L").save(p)
        images.append(str(p))
    lines = run(["predict", "served/cnn_small", *images], tmp_path).stdout.strip().splitlines()
    assert len(lines) == 6
    predicted = [int(line.split("\t")[1]) for line in lines]
    assert np.mean(np.array(predicted) == digits.target[:6]) >= 0.5  # far above chance (1/10)
    for line in lines:
        assert 0.0 <= float(line.split("\t")[2]) <= 1.0
    same = run(["predict", "run", *images], tmp_path).stdout.strip().splitlines()
    assert [l.split("\t")[1] for l in same] == [l.split("\t")[1] for l in lines]


@pytest.mark.slow
def test_train_on_a_folder_of_28x28_grayscale_pngs_needs_no_other_flag(tmp_path):
    _digit_pngs(tmp_path / "digits28", size=28, per_class=60)
    out = run(["train", "cnn_small", "--data", "digits28", "--epochs", "10", "--out", "run"], tmp_path).stdout
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert summary["input_shape"] == [28, 28, 1]
    assert sum(summary["num_examples"].values()) == 600
    assert summary["class_names"] == [str(i) for i in range(10)]
    assert f"accuracy: {summary['test']['accuracy']:.4f}" in out
    assert summary["test"]["accuracy"] > 0.3  # chance is 0.1


def test_predict_writes_masks_and_reconstructions_as_pngs(tmp_path):
    """Segmentation models write class-id masks (palette PNGs), autoencoders reconstructions."""
    import keras
    from PIL import Image

    import keras_zoo

    keras.utils.set_random_seed(0)
    keras_zoo.create_model("unet", input_shape=(16, 16, 3), num_classes=3, filters=8).save(
        str(tmp_path / "unet.keras"))
    keras_zoo.create_model("conv_autoencoder", input_shape=(16, 16, 1)).save(str(tmp_path / "ae.keras"))
    images = []
    for i in range(2):
        path = tmp_path / f"image{i}.png"
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(path)
        images.append(str(path))
    proc = run(["predict", "unet.keras", *images, "--out", "masks"], tmp_path)
    assert "resizing" in proc.stderr  # 20x20 files for a 16x16 model: said, not silent
    for line, path in zip(proc.stdout.strip().splitlines(), images):
        source, written, shares = line.split("\t")
        assert source == path and written == os.path.join("masks", os.path.basename(path))
        mask = Image.open(tmp_path / written)
        assert mask.mode == "P" and mask.size == (16, 16) and np.asarray(mask).max() < 3
        assert sum(float(s.split("=")[1]) for s in shares.split()) == pytest.approx(1.0, abs=0.02)
    lines = run(["predict", "ae.keras", *images, "--out", "recon"], tmp_path).stdout.strip().splitlines()
    assert len(lines) == 2
    recon = Image.open(tmp_path / lines[0].split("\t")[1])
    assert recon.mode == "L" and recon.size == (16, 16)
    assert "mean abs error" in lines[0]


def test_sample_writes_a_grid_from_shipped_generators_and_refuses_classifiers(tmp_path):
    from PIL import Image

    out = run(["sample", "dcgan:digits", "--num", "12", "--columns", "4", "--out", "grid.png"], tmp_path)
    assert out.stdout.strip() == "grid.png"
    grid = Image.open(tmp_path / "grid.png")
    assert grid.mode == "L" and grid.size[0] > grid.size[1]  # 4 columns x 3 rows of 8x8 digits, scaled up
    pixels = np.asarray(grid, dtype="float32")
    assert pixels.std() > 10  # digits, not a blank canvas
    run(["sample", "vae:digits", "--num", "4", "--out", "vae.png"], tmp_path)
    assert (tmp_path / "vae.png").exists()
    refused = run(["sample", "cnn_small:digits"], tmp_path, check=False)
    assert refused.returncode == 2 and "generative models" in refused.stderr
    bad = run(["sample", "dcgan:digits", "--num", "0"], tmp_path, check=False)
    assert bad.returncode == 2 and "expected an int >= 1, got '0'" in bad.stderr
