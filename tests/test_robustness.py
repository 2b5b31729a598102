"""Common corruptions (15 x 5 severities), evaluation under them with the corruption error, the MNIST-M
style blend, and `evaluate` on data of another kind than the model's (converted with a note, or refused)."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest

import keras_zoo
from keras_zoo import robustness
from keras_zoo.data.corruptions import (COMMON_CORRUPTIONS, CORRUPTION_FAMILIES, check_corruptions, corrupt,
                                        corruption_stage)
from keras_zoo.data.domains import blend_arrays, blend_with_photos


def _images(n=4, size=32, channels=3, seed=0):
    """Smooth images with an edge (blurs and warps change them; flat ones would not)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    base = np.stack([0.2 + 0.6 * (xx > 0.5) * (yy > 0.3) + 0.1 * yy] * channels, axis=-1)
    tint = rng.uniform(0.7, 1.0, size=(n, 1, 1, channels))
    return np.clip(base[None] * tint, 0.0, 1.0).astype("float32")


def test_fifteen_corruptions_in_four_families():
    assert len(COMMON_CORRUPTIONS) == 15 and len(set(COMMON_CORRUPTIONS)) == 15
    assert sorted(CORRUPTION_FAMILIES) == ["blur", "digital", "noise", "weather"]
    assert check_corruptions("all") == (COMMON_CORRUPTIONS, (1, 2, 3, 4, 5))
    assert check_corruptions("noise", 2) == (("gaussian_noise", "shot_noise", "impulse_noise"), (2,))
    with pytest.raises(ValueError, match="'gausian_noise'.*accepted"):
        check_corruptions(["gausian_noise"])
    with pytest.raises(ValueError, match="severities must be integers from 1 to 5"):
        check_corruptions("all", (0, 6))


@pytest.mark.parametrize("name", COMMON_CORRUPTIONS)
def test_every_corruption_keeps_shape_and_dtype_is_seeded_and_grows_with_severity(name):
    floats = _images()
    pixels = np.round(floats * 255).astype("uint8")
    grey = floats[:2, :28, :24, :1]  # another size, one channel
    changes = []
    for severity in (1, 5):
        out = corrupt(floats, name, severity, seed=3).numpy()
        assert out.shape == floats.shape and out.dtype == np.float32
        assert out.min() >= 0.0 and out.max() <= 1.0
        np.testing.assert_array_equal(out, corrupt(floats, name, severity, seed=3).numpy())
        changes.append(float(np.abs(out - floats).mean()))
    as_uint8 = corrupt(pixels, name, 3, seed=0).numpy()
    assert as_uint8.dtype == np.uint8 and as_uint8.shape == pixels.shape
    one = corrupt(grey[0], name, 3, seed=0).numpy()
    assert one.shape == grey[0].shape
    assert changes[0] > 0.0, f"{name} at severity 1 left the images unchanged"
    # Elastic transform's CIFAR-10-C levels trade a shrinking affine part for a growing elastic one.
    if name != "elastic_transform":
        assert changes[1] > changes[0], f"{name}: severity 5 changed less ({changes[1]:.4f}) than 1 ({changes[0]:.4f})"


def test_corruption_stage_corrupts_each_batch_with_its_own_seed_in_a_pipeline():
    import tensorflow as tf

    x = _images(n=6)
    y = np.arange(6)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(3)
    out = list(ds.enumerate().map(corruption_stage("gaussian_noise", 4, seed=7)))
    assert [list(b[1].numpy()) for b in out] == [[0, 1, 2], [3, 4, 5]]
    for index, (batch, _) in enumerate(out):
        expected = corrupt(x[3 * index:3 * index + 3], "gaussian_noise", 4, seed=tf.constant([7, index], tf.int64))
        np.testing.assert_allclose(batch.numpy(), expected.numpy())
    assert not np.allclose(out[0][0].numpy(), out[1][0].numpy()[::-1])


def test_blend_is_the_absolute_difference_of_patch_and_digit(tmp_path):
    digits = np.zeros((3, 4, 4), np.uint8)
    digits[:, 1:3, 1:3] = 255
    photos = np.full((2, 6, 6, 3), [10, 100, 200], np.uint8)
    blended = blend_arrays(digits, photos, seed=0)
    assert blended.shape == (3, 4, 4, 3) and blended.dtype == np.uint8
    np.testing.assert_array_equal(blended[:, 0, 0], [[10, 100, 200]] * 3)  # background: the photo
    np.testing.assert_array_equal(blended[:, 1, 1], [[245, 155, 55]] * 3)  # stroke: |photo - 255|
    from PIL import Image

    for split in ("train", "test"):
        (tmp_path / "digits" / split / "7").mkdir(parents=True)
        Image.fromarray(digits[0]).save(tmp_path / "digits" / split / "7" / "a.png")
    (tmp_path / "photos").mkdir()
    for i in range(2):
        Image.fromarray(photos[i]).save(tmp_path / "photos" / f"{i}.png")
    made = blend_with_photos(tmp_path / "digits", tmp_path / "photos", tmp_path / "out")
    assert made["splits"] == {"test": 1, "train": 1}
    written = np.asarray(Image.open(tmp_path / "out" / "train" / "7" / "a.png"))
    np.testing.assert_array_equal(written[1, 1], [245, 155, 55])
    with pytest.raises(FileExistsError, match="overwrite"):
        blend_with_photos(tmp_path / "digits", tmp_path / "photos", tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="photos_dir"):
        blend_with_photos(tmp_path / "digits", tmp_path / "nothing", tmp_path / "out2")


@pytest.fixture(scope="module")
def digit_runs(tmp_path_factory):
    """cnn_small trained on digits as RGB (1 epoch) and the reference MLP (1 epoch), as run directories."""
    root = tmp_path_factory.mktemp("runs")
    cnn = keras_zoo.train("cnn_small", "digits", epochs=1, run_dir=str(root / "cnn"), verbose=0, resume=False,
                          data_options={"color_mode": "rgb"})
    mlp = keras_zoo.train("mlp_lecture", "digits", epochs=1, run_dir=str(root / "mlp"), verbose=0, resume=False)
    return cnn, mlp


def test_evaluate_under_corruptions_reports_accuracy_and_the_papers_corruption_error(digit_runs, tmp_path):
    cnn, mlp = digit_runs
    report = keras_zoo.evaluate(cnn.run_dir, "digits", corruptions=["gaussian_noise", "contrast"],
                                severities=(1, 5), reference=mlp.run_dir)
    assert report["clean_accuracy"] == pytest.approx(cnn.metrics["accuracy"], abs=1e-6)
    assert set(report["accuracy"]) == {"gaussian_noise", "contrast"}
    ref = report["reference"]
    for name in ("gaussian_noise", "contrast"):
        errors = sum(1 - a for a in report["accuracy"][name].values())
        ref_errors = sum(1 - a for a in ref["accuracy"][name].values())
        assert report["ce"][name] == pytest.approx(errors / ref_errors)
    assert report["mce"] == pytest.approx(np.mean(list(report["ce"].values())))
    every = [a for row in report["accuracy"].values() for a in row.values()]
    assert report["mean_accuracy"] == pytest.approx(np.mean(every))
    # Contrast 0.15 of the original wipes out more than contrast 0.75 does.
    assert report["accuracy"]["contrast"]["5"] < report["accuracy"]["contrast"]["1"]
    text = robustness.format_report(report)
    assert "mCE" in text and "contrast" in text
    path = robustness.plot_corruptions(report, str(tmp_path / "c.png"))
    assert (tmp_path / "c.png").stat().st_size > 1000 and path.endswith("c.png")


def test_cli_evaluates_a_colour_run_on_grey_images_with_a_note_and_under_corruptions(digit_runs, tmp_path, capsys):
    from keras_zoo import cli

    cnn, mlp = digit_runs
    assert cli.main(["evaluate", cnn.run_dir, "--data", "digits"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["accuracy"] == pytest.approx(cnn.metrics["accuracy"], abs=1e-6)
    assert "8x8x3" in captured.err and "8x8x1" in captured.err and "grayscale repeated to RGB" in captured.err
    # Asked for grey explicitly, the model's RGB contract cannot be met: one line naming both shapes.
    assert cli.main(["evaluate", cnn.run_dir, "--data", "digits", "--color-mode", "grayscale"]) != 0
    err = capsys.readouterr().err
    assert "(8, 8, 3)" in err and "(8, 8, 1)" in err and "color_mode" in err
    assert cli.main(["evaluate", cnn.run_dir, "--data", "digits", "--corruptions", "fog,pixelate",
                     "--severities", "2", "--reference", mlp.run_dir, "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "fog" in out and "pixelate" in out and "mCE" in out
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["severities"] == [2] and not math.isnan(saved["mce"])
    assert cli.main(["evaluate", cnn.run_dir, "--data", "digits", "--corruptions", "smog"]) != 0
    assert "'smog'" in capsys.readouterr().err


def test_evaluate_refuses_data_of_another_rank_naming_both_shapes(digit_runs):
    cnn, _ = digit_runs
    with pytest.raises(ValueError, match=r"\(8, 8, 3\).*\(2,\)"):
        keras_zoo.evaluate(cnn.run_dir, "moons")


def test_evaluate_converts_silently_nothing_when_the_data_fits(digit_runs, caplog):
    _, mlp = digit_runs
    with caplog.at_level(logging.WARNING, logger="keras_zoo"):
        keras_zoo.evaluate(mlp.run_dir, "digits")
    assert not [r for r in caplog.records if "evaluate:" in r.getMessage()]
