"""CIFAR-10 at real scale: the `resnet_cifar` recipe (He et al.'s schedule), the CIFAR-10 data source
of the shipped checkpoints, and the lecture's randomization test on a folder of photos."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile

import numpy as np
import pytest

import keras
import keras_zoo
from keras_zoo import experiments, pretrain, weights
from keras_zoo.recipes import Recipe, get_recipe


# --------------------------------------------------------------------------- the resnet_cifar recipe


def _per_epoch(schedule, steps_per_epoch, epochs):
    """The rates the steps of each epoch train at (the schedule reads the step count before the update)."""
    rates = []
    for epoch in range(epochs):
        seen = {round(float(schedule(step)), 8) for step in range(epoch * steps_per_epoch, (epoch + 1) * steps_per_epoch)}
        assert len(seen) == 1, (epoch, seen)  # the rate changes only between epochs
        rates.append(seen.pop())
    return rates


def test_resnet_cifar_is_he_et_al_table_6_schedule():
    recipe = get_recipe("resnet_cifar")
    assert (recipe.optimizer, recipe.learning_rate, recipe.momentum, recipe.nesterov) == ("sgd", 0.1, 0.9, False)
    assert (recipe.batch_size, recipe.epochs, recipe.schedule) == (128, 164, "step")
    assert recipe.step_at == (0.5, 0.75) and recipe.step_factor == 0.1 and recipe.warmup_epochs == 0
    assert set(recipe.augment) == {"crop", "flip"} and recipe.early_stopping_patience is None
    model = keras_zoo.create_model("resnet20", input_shape=(8, 8, 3), num_classes=3)
    recipe.compile(model, steps_per_epoch=391)  # 50,000 / 128, as in the paper
    optimizer = model.optimizer
    assert isinstance(optimizer, keras.optimizers.SGD) and not optimizer.nesterov
    assert optimizer.weight_decay == pytest.approx(1e-3)
    schedule = optimizer._learning_rate
    # x0.1 after epoch 82 (50 %) and after epoch 123 (75 %): the paper's 32k and 48k iterations.
    assert float(schedule(82 * 391 - 1)) == pytest.approx(0.1)
    assert float(schedule(82 * 391)) == pytest.approx(0.01)
    assert float(schedule(123 * 391 - 1)) == pytest.approx(0.01)
    assert float(schedule(123 * 391)) == pytest.approx(0.001)
    # Shorter runs keep the steps at 50 % and 75 % of their epochs (a half epoch rounds up).
    assert _per_epoch(recipe.replace(epochs=4).learning_rate_schedule(7), 7, 4) == [0.1, 0.1, 0.01, 0.001]
    assert _per_epoch(recipe.replace(epochs=5).learning_rate_schedule(7), 7, 5) == [0.1, 0.1, 0.1, 0.01, 0.001]
    assert _per_epoch(recipe.replace(epochs=8).learning_rate_schedule(3), 3, 8) == [0.1] * 4 + [0.01] * 2 + [0.001] * 2


def test_decoupled_weight_decay_of_resnet_cifar_matches_the_papers_l2_through_momentum():
    """The paper's L2 of 1e-4 (its gradient through momentum 0.9) and Keras's decoupled 1e-3 shrink
    a weight the loss does not pull on at the same rate (1e-4 of it per step at the rate 0.1)."""
    def shrink(optimizer, l2):
        w = keras.Variable(np.ones(4, "float32"))
        for _ in range(600):
            optimizer.apply_gradients([(l2 * w.value, w)])
        return float(np.asarray(w.value)[0])

    ours = get_recipe("resnet_cifar").replace(schedule="constant").build_optimizer()
    l2 = keras.optimizers.SGD(learning_rate=0.1, momentum=0.9)
    paper, keras_decay = shrink(l2, 1e-4), shrink(ours, 0.0)
    assert paper < 0.95  # the decay is visible over 600 steps...
    assert np.log(keras_decay) == pytest.approx(np.log(paper), rel=0.05)  # ...and the same


def test_step_schedule_checks_its_fields():
    with pytest.raises(ValueError, match=r"step_at must be increasing fractions .* got \(0.75, 0.5\)"):
        Recipe(schedule="step", step_at=(0.75, 0.5))
    with pytest.raises(ValueError, match=r"step_at must be .* got \(0.5, 1.0\)"):
        Recipe(schedule="step", step_at=(0.5, 1.0))
    with pytest.raises(ValueError, match="step_factor must be"):
        Recipe(schedule="step", step_factor=2.0)
    with pytest.raises(ValueError, match="schedule='step' takes no warmup; got warmup_epochs=2"):
        Recipe(schedule="step", warmup_epochs=2)
    with pytest.raises(ValueError, match="nesterov must be True or False"):
        Recipe(nesterov="no")
    with pytest.raises(ValueError, match="schedule must be one of"):
        Recipe(schedule="steps")


@pytest.mark.slow
def test_resnet_cifar_trains_from_the_command_line(tmp_path):
    from keras_zoo import cli

    run = tmp_path / "run"
    status = cli.main(["train", "resnet20", "--data", "shapes:count=200,size=16", "--recipe", "resnet_cifar",
                       "--epochs", "2", "--out", str(run), "--no-export"])
    assert status == 0
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["recipe"]["name"] == "resnet_cifar" and summary["recipe"]["epochs"] == 2
    assert summary["recipe"]["schedule"] == "step" and summary["epochs_run"] == 2


# --------------------------------------------------------------------------- the CIFAR-10 data source


def _archive(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, data, kind in members:
            info = tarfile.TarInfo(name)
            if kind == "link":
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return hashlib.md5(open(path, "rb").read()).hexdigest()


def test_cifar10_source_splits_the_archive_as_make_folders_does_and_refuses_what_it_should(tmp_path, monkeypatch):
    source = tmp_path / "cifar10-train"
    source.mkdir()
    members = [(f"train/{cls}/{i:04d}.jpg", f"{cls}{i}".encode(), "file") for cls in ("cat", "dog") for i in range(6)]
    members += [("train/cat/../../evil.jpg", b"x", "file"), ("train/dog/link.jpg", b"", "link"),
                ("train/cat/notes.txt", b"x", "file"), ("other/cat/0099.jpg", b"x", "file")]
    md5 = _archive(source / "cifar10-train.tar.gz", members)
    monkeypatch.setenv("KERAS_ZOO_CIFAR10_TRAIN", str(source))
    monkeypatch.setenv("KERAS_ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(pretrain, "CIFAR10_HELD_OUT", 2)

    # The archive must be the published one.
    with pytest.raises(ValueError, match=r"cifar10-train.tar.gz has md5 [0-9a-f]{32}, not the published"):
        pretrain.data_source(pretrain.CIFAR10_TRAIN)
    monkeypatch.setattr(pretrain, "CIFAR10_ARCHIVE", ("cifar10-train.tar.gz", md5))
    folder = pretrain.data_source(pretrain.CIFAR10_TRAIN)
    assert folder == str(tmp_path / "home" / "data" / "cifar10-train-jpeg")
    for cls in ("cat", "dog"):
        # The last photos of each class in name order are held out, the others train; nothing else is written.
        assert sorted(os.listdir(os.path.join(folder, "train", cls))) == [f"{i:04d}.jpg" for i in range(4)]
        assert sorted(os.listdir(os.path.join(folder, "test", cls))) == ["0004.jpg", "0005.jpg"]
        assert open(os.path.join(folder, "test", cls, "0005.jpg"), "rb").read() == f"{cls}5".encode()
    assert sorted(os.listdir(folder)) == ["test", "train"]
    assert not (tmp_path / "home" / "evil.jpg").exists() and not (tmp_path / "evil.jpg").exists()

    # Absent data is named, with the variable that points at it.
    monkeypatch.setenv("KERAS_ZOO_HOME", str(tmp_path / "other-home"))
    monkeypatch.setenv("KERAS_ZOO_CIFAR10_TRAIN", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"\(cifar10-train.tar.gz\) are not in .*nowhere; set KERAS_ZOO_CIFAR10_TRAIN"):
        pretrain.data_source(pretrain.CIFAR10_TRAIN)


def test_resnet20_cifar10_plan_trains_with_the_papers_recipe_on_the_training_photos():
    plan = pretrain.PLANS[("resnet20", "cifar10")]
    assert plan.data == pretrain.CIFAR10_TRAIN and plan.recipe == "resnet_cifar"
    assert "JPEG" in plan.description and "last 500 per class test" in plan.description
    assert plan.data_options == {"validation_fraction": 0.05} and not plan.default
    recipe = get_recipe(plan.recipe).replace(**plan.recipe_changes)
    assert recipe.schedule == "step" and recipe.epochs < 164


# --------------------------------------------------------------------------- randomization test on photos


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    """A folder of 16x16 RGB photos in two classes (train/ and test/), PNG files as a user would bring."""
    from PIL import Image

    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for split, count in (("train", 40), ("test", 10)):
        for cls, colour in (("red", 0), ("blue", 2)):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(count):
                image = rng.integers(0, 90, (16, 16, 3), dtype=np.uint8)
                image[4:12, 4:12, colour] = 230
                Image.fromarray(image).save(folder / f"{i:03d}.png")
    return str(root)


@pytest.mark.slow
def test_random_labels_fits_a_convnet_on_a_folder_of_photos(photo_folder, tmp_path):
    table = experiments.random_labels(photo_folder, size="small", model="cnn_fast", width=8, limit=60, epochs=6,
                                      corruptions=("true labels", "random labels", "gaussian"),
                                      plot_dir=str(tmp_path))
    assert table.title.startswith("Randomization test: cnn_fast (width 8, no dropout) on ")
    assert table.settings["model"] == "cnn_fast" and table.settings["limit"] == 60
    assert [r["corruption"] for r in table.rows] == ["true labels", "random labels", "gaussian"]
    true, rand = table.row("true labels"), table.row("random labels")
    assert true["chance"] == pytest.approx(0.5)
    assert true["test_accuracy"] > 0.9  # the colour square is easy to generalise from
    assert "slowdown" in table.columns
    if true["epochs_to_95"] and rand["epochs_to_95"]:
        assert rand["slowdown"] == pytest.approx(rand["epochs_to_95"] / true["epochs_to_95"], abs=0.01)
    assert all(len(c) == 6 for c in table.series["train_loss"].values())
    with pytest.raises(ValueError, match="model 'vae' is a 'generation' model; random_labels fits a classifier"):
        experiments.random_labels(photo_folder, size="small", model="vae")
    with pytest.raises(ValueError, match="limit must be an int >= 1, got 0"):
        experiments.random_labels(photo_folder, size="small", limit=0)


@pytest.mark.slow
def test_experiment_command_passes_data_and_model_and_refuses_what_an_experiment_does_not_take(
        photo_folder, tmp_path, capsys):
    from keras_zoo import cli

    status = cli.main(["experiment", "random_labels", "--size", "small", "--data", photo_folder, "--model", "cnn_fast",
                       "--limit", "40", "--epochs", "2", "--out", str(tmp_path / "out")])
    assert status == 0
    out = capsys.readouterr()
    assert "Randomization test: cnn_fast (width 16, no dropout) on " in out.out
    assert "data " + photo_folder in out.err and "limit 40" in out.err
    assert (tmp_path / "out" / "random_labels.json").exists()
    status = cli.main(["experiment", "geometric_view", "--limit", "10", "--out", str(tmp_path / "g")])
    assert status == 2
    assert "experiment geometric_view takes no --limit (it takes: --data" in capsys.readouterr().err


# --------------------------------------------------------------------------- resumable checkpoint builds


def test_a_build_in_a_run_directory_resumes_and_records_every_epoch_it_trained(tmp_path, monkeypatch):
    """`pretrain build --run-dir` resumes an interrupted build, and its manifest entry counts the
    epochs and seconds of both invocations and names the CPU."""
    store, run = tmp_path / "store", tmp_path / "run"
    store.mkdir()
    real_clock = pretrain._run_clock

    def interrupted_clock(path):
        clock = real_clock(path)
        finish = clock.on_epoch_end

        def on_epoch_end(epoch, logs=None):
            finish(epoch, logs)
            raise RuntimeError("interrupted after the first epoch")

        clock.on_epoch_end = on_epoch_end
        return clock

    monkeypatch.setattr(pretrain, "_run_clock", interrupted_clock)
    with pytest.raises(RuntimeError, match="interrupted after the first epoch"):
        pretrain.build("mlp_lecture", "digits", store=str(store), run_dir=str(run), epochs=3, verbose=0)
    first = json.loads((run / pretrain.CLOCK).read_text())
    assert first["epochs"] == 1 and (run / "backup" / "state.json").exists()
    monkeypatch.setattr(pretrain, "_run_clock", real_clock)
    entry = pretrain.build("mlp_lecture", "digits", store=str(store), run_dir=str(run), epochs=3, verbose=0)
    assert entry["epochs_run"] == 3 and entry["train_seconds"] >= first["seconds"]
    assert [int(r.split(",")[0]) for r in (run / "log.csv").read_text().splitlines()[1:]] == [0, 1, 2]
    assert entry["command"] == "python -m keras_zoo.pretrain build mlp_lecture --tag digits --epochs 3"
    assert entry["machine"]["cores"] == os.cpu_count() and "cpu" in entry["machine"]
    assert weights.read_manifest(str(store))["entries"][0]["sha256"] == entry["sha256"]
    # A run started again from epoch 0 (the finished run left no backup) carries no time over.
    again = pretrain.build("mlp_lecture", "digits", store=str(store), run_dir=str(run), epochs=1, verbose=0)
    assert again["epochs_run"] == 1 and again["train_seconds"] < entry["train_seconds"]
