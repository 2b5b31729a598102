"""Hostile inputs: untrusted SavedModels, graphs with file/Python ops, bombs, bad values."""

import json
import os

import numpy as np
import pytest

import keras
import tensorflow as tf

import keras_zoo
from keras_zoo import cli
from keras_zoo.export import export_model, load_export
from keras_zoo.export.trust import METADATA_FILE, UnsafeExportError, UntrustedExportError, record_files


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return keras_zoo.create_model("mlp_lecture", input_shape=(8, 8, 1), num_classes=3)


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    return export_model(model, str(tmp_path_factory.mktemp("served")), class_names=["a", "b", "c"])


class _Foreign(tf.Module):
    """A SavedModel not written by keras_zoo; with `write_to`, its serving function writes a file."""

    def __init__(self, write_to=None, python=False):
        super().__init__()
        self.scale = tf.Variable(2.0)
        self.write_to, self.python = write_to, python

    @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 1], tf.float32, name="inputs")])
    def serve(self, inputs):
        if self.write_to:
            tf.io.write_file(self.write_to, "owned")
        if self.python:
            inputs = tf.py_function(lambda t: t, [inputs], tf.float32)
        flat = tf.reshape(inputs, [-1, 64])[:, :3] * self.scale
        return {"probabilities": tf.nn.softmax(flat)}


def _save_foreign(path, **kwargs):
    module = _Foreign(**kwargs)
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return str(path)


def _forge_metadata(path):
    """Write metadata with correct checksums, as an attacker could: provenance passes."""
    meta = {"model": "forged", "task": "classification", "input_shape": [8, 8, 1], "class_names": []}
    meta["files"] = record_files(path)
    os.makedirs(os.path.join(path, "assets.extra"), exist_ok=True)
    with open(os.path.join(path, METADATA_FILE), "w") as f:
        json.dump(meta, f)


def test_export_records_every_file_and_loads_unchanged(exported):
    meta = json.loads(open(os.path.join(exported, METADATA_FILE)).read())
    on_disk = sorted(os.path.relpath(os.path.join(d, n), exported).replace(os.sep, "/")
                     for d, _, names in os.walk(exported) for n in names)
    assert sorted(meta["files"]) == [p for p in on_disk if p != "assets.extra/keras_zoo.json"]
    assert "saved_model.pb" in meta["files"] and "assets/class_names.txt" in meta["files"]
    loaded, metadata = load_export(exported)
    assert metadata["class_names"] == ["a", "b", "c"]
    assert "serving_default" in loaded.signatures


def test_tampered_export_is_refused_unless_trusted(exported, tmp_path):
    import shutil

    copy = str(tmp_path / "copy")
    shutil.copytree(exported, copy)
    with open(os.path.join(copy, "assets", "class_names.txt"), "w") as f:  # relabel the classes
        f.write("c\nb\na\n")
    with pytest.raises(UntrustedExportError, match=r"assets/class_names.txt does not match.*trust=True"):
        load_export(copy)
    load_export(copy, trust=True)  # the user vouches for it
    open(os.path.join(copy, "extra.bin"), "wb").write(b"x")
    with pytest.raises(UntrustedExportError, match="extra.bin"):
        load_export(copy)


def test_foreign_savedmodel_needs_trust(tmp_path):
    path = _save_foreign(tmp_path / "foreign")
    with pytest.raises(UntrustedExportError, match="no readable keras_zoo metadata"):
        load_export(path)
    loaded, meta = load_export(path, trust=True)
    assert meta == {}
    out = loaded.signatures["serving_default"](inputs=tf.zeros([1, 8, 8, 1]))
    np.testing.assert_allclose(out["probabilities"].numpy().sum(), 1.0, rtol=1e-6)


@pytest.mark.parametrize("kind, op", [("write", "WriteFile"), ("python", "EagerPyFunc")])
def test_graph_with_file_or_python_ops_is_refused_even_trusted(tmp_path, kind, op):
    target = tmp_path / "written.txt"
    path = _save_foreign(tmp_path / "evil", **({"write_to": str(target)} if kind == "write" else {"python": True}))
    _forge_metadata(path)  # checksums match: only the deny-list stands in the way
    for trust in (False, True):
        with pytest.raises(UnsafeExportError, match=rf"op '{op}' in function '__inference_serve"):
            load_export(path, trust=trust)
    if kind == "write":  # the graph refused is harmful: run by TensorFlow unchecked, it writes the file
        assert not target.exists()
        tf.saved_model.load(path).signatures["serving_default"](inputs=tf.zeros([1, 8, 8, 1]))
        assert target.read_text() == "owned"


class _PrintToFile(tf.Module):
    def __init__(self, target):
        super().__init__()
        self.target = target

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="inputs")])
    def serve(self, inputs):
        tf.print(inputs, output_stream=f"file://{self.target}")
        return {"outputs": inputs}


def test_printing_to_a_file_and_symlinks_are_refused(exported, tmp_path):
    import shutil

    module = _PrintToFile(str(tmp_path / "printed.txt"))
    tf.saved_model.save(module, str(tmp_path / "printer"), signatures={"serving_default": module.serve})
    with pytest.raises(UnsafeExportError, match="'PrintV2'"):
        load_export(str(tmp_path / "printer"), trust=True)
    copy = tmp_path / "linked"
    shutil.copytree(exported, copy)
    os.symlink("/etc/hostname", copy / "assets" / "link.txt")
    with pytest.raises(UntrustedExportError, match="symbolic link"):
        load_export(str(copy))


def test_cli_predict_refuses_untrusted_and_unsafe_exports_in_one_line(tmp_path, capsys):
    from PIL import Image

    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((8, 8), "uint8"), mode="L").save(image)
    target = tmp_path / "written.txt"
    evil = _save_foreign(tmp_path / "evil", write_to=str(target))
    foreign = _save_foreign(tmp_path / "foreign")
    assert cli.main(["predict", foreign, str(image)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "pass trust=True (CLI: --trust)" in err
    assert cli.main(["predict", foreign, str(image), "--trust"]) == 0
    assert capsys.readouterr().out.startswith(str(image))
    assert cli.main(["predict", evil, str(image), "--trust"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "'WriteFile'" in err
    assert not target.exists()


def test_evaluate_and_finetune_honour_the_trust_model(model, exported, tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.uniform(size=(40, 8, 8, 1)).astype("float32"), rng.integers(0, 3, 40)
    metrics = keras_zoo.evaluate(exported, (x, y), split="test")
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    splits = keras_zoo.load_splits((x, y), batch_size=64)
    expected = model.evaluate(splits.test, return_dict=True, verbose=0)
    assert metrics["accuracy"] == pytest.approx(expected["accuracy"])
    assert metrics["loss"] == pytest.approx(expected["loss"], rel=1e-4)

    foreign = _save_foreign(tmp_path / "foreign")
    with pytest.raises(UntrustedExportError):
        keras_zoo.evaluate(foreign, (x, y))
    assert "accuracy" in keras_zoo.evaluate(foreign, (x, y), trust=True)
    evil = _save_foreign(tmp_path / "evil", write_to=str(tmp_path / "w.txt"))
    with pytest.raises(UnsafeExportError):
        keras_zoo.evaluate(evil, (x, y), trust=True)
    with pytest.raises(UntrustedExportError):
        keras_zoo.finetune(foreign, (x, y), epochs=1)
    with pytest.raises(UnsafeExportError):
        keras_zoo.finetune(evil, (x, y), epochs=1, trust=True)
    with pytest.raises(ValueError, match="SavedModel export, which has no Keras layers"):
        keras_zoo.finetune(foreign, (x, y), epochs=1, trust=True)
    assert not (tmp_path / "w.txt").exists()


# === Bounded and checked data ===


def _png(path, size=(8, 8), value=0):
    from PIL import Image

    Image.fromarray(np.full(size, value, "uint8"), mode="L").save(path)
    return str(path)


def _bomb_png(path, width, height):
    """A small PNG whose header announces width x height pixels (as a decompression bomb would)."""
    import struct
    import zlib

    data = bytearray(open(_png(path), "rb").read())
    ihdr = bytearray(data[16:29])  # after the signature, length and b"IHDR"
    ihdr[0:8] = struct.pack(">II", width, height)
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(ihdr)))
    open(path, "wb").write(bytes(data))
    return str(path)


def _class_folder(root, classes=("a", "b"), per_class=4):
    for c, name in enumerate(classes):
        os.makedirs(root / name, exist_ok=True)
        for i in range(per_class):
            _png(root / name / f"{i}.png", value=40 * c + i)
    return root


@pytest.mark.parametrize("image_size", [None, (8, 8)])
def test_an_image_bomb_in_a_folder_is_refused_naming_the_file(tmp_path, image_size):
    root = _class_folder(tmp_path / "data")
    bomb = _bomb_png(root / "b" / "huge.png", 20000, 20000)
    options = {"image_size": image_size} if image_size else {}
    with pytest.raises(ValueError, match=rf"{bomb}.* over the pixel limit of 67108864"):
        keras_zoo.load_splits(str(root), **options)


def test_a_truncated_image_is_found_at_load_naming_the_file(tmp_path):
    root = _class_folder(tmp_path / "data")
    from PIL import Image

    path = str(root / "a" / "cut.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (8, 8), dtype="uint8"), mode="L").save(path)
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) - 30])  # the header parses; the pixel data ends early
    with pytest.raises(ValueError, match=r"cut.png' is corrupt or truncated"):
        keras_zoo.load_splits(str(root))
    os.unlink(path)
    jpeg = str(root / "b" / "cut.jpg")
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (32, 32), dtype="uint8"), mode="L").save(jpeg)
    data = open(jpeg, "rb").read()
    open(jpeg, "wb").write(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut.jpg' is corrupt or truncated"):
        keras_zoo.load_splits(str(root), image_size=(8, 8))


def test_the_folder_scan_reads_headers_without_decoding_pixels(tmp_path, monkeypatch):
    """Complete PNGs and JPEGs are checked from their headers, chunks and end markers; a JPEG with
    bytes after its end marker is decoded once to decide, and loads."""
    from PIL import Image, ImageFile

    root = tmp_path / "data"
    for c, name in enumerate("ab"):
        os.makedirs(root / name)
        for i in range(3):
            Image.fromarray(np.full((8, 8), 40 * c + i, "uint8"), mode="L").save(root / name / f"{i}.jpg")
        _png(root / name / "p.png", value=7)
    decoded = []
    original_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda im: decoded.append(im.filename) or original_load(im))
    splits = keras_zoo.load_splits(str(root), batch_size=4)
    assert decoded == [] and splits.info.input_shape == (8, 8, 1)
    trailing = root / "a" / "0.jpg"
    trailing.write_bytes(trailing.read_bytes() + b"camera trailer")
    x, _ = next(iter(keras_zoo.load_splits(str(root), batch_size=16, validation_fraction=0.0,
                                           test_fraction=0.0).train))
    assert decoded == [str(trailing)] and x.shape == (8, 8, 8, 1)


@pytest.mark.parametrize("damage, reason", [
    (lambda d: d[:-12], "the file ends before its IEND"),                       # IEND cut off
    (lambda d: d[:37] + bytes([d[37] ^ 1]) + d[38:], "CRC mismatch"),  # a flipped bit in IDAT
    (lambda d: d[:8] + d[33:], "no PNG header"),                       # IHDR removed
    (lambda d: d[:33] + d[-12:], "no image data"),                     # IDAT removed
])
def test_the_png_chunk_walk_refuses_damaged_files_naming_them(tmp_path, damage, reason):
    """Small PNGs are checked by the package's own chunk walk (large ones by PIL): every damaged
    structure is refused at load, naming the file and what is wrong with it."""
    root = _class_folder(tmp_path / "data")
    path = root / "a" / "bad.png"
    _png(path, value=9)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ValueError, match=rf"bad.png' is corrupt or truncated \({reason}"):
        keras_zoo.load_splits(str(root))


def test_a_png_over_a_mebibyte_is_checked_by_pil_and_loads(tmp_path):
    from PIL import Image

    root = _class_folder(tmp_path / "data", per_class=2)
    noise = np.random.default_rng(0).integers(0, 255, (8, 8), dtype="uint8")
    big = root / "a" / "big.png"
    Image.fromarray(noise, mode="L").save(big, pnginfo=_text_chunk(1 << 20))
    assert big.stat().st_size > 1 << 20
    splits = keras_zoo.load_splits(str(root), validation_fraction=0.0, test_fraction=0.0, batch_size=16)
    assert splits.info.num_examples["train"] == 5
    big.write_bytes(big.read_bytes()[:-30])
    with pytest.raises(ValueError, match=r"big.png' is corrupt or truncated"):
        keras_zoo.load_splits(str(root))


def _text_chunk(nbytes):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("padding", "x" * nbytes)
    return info


def test_an_empty_class_folder_is_reported_and_kept_out(tmp_path, caplog):
    root = _class_folder(tmp_path / "data")
    os.makedirs(root / "c_empty")
    with caplog.at_level("WARNING"):
        splits = keras_zoo.load_splits(str(root))
    assert splits.info.class_names == ("a", "b")
    assert any("c_empty" in r.getMessage() and "hold no images" in r.getMessage() for r in caplog.records)


def test_numpy_inputs_with_nan_or_inf_are_refused():
    x = np.zeros((20, 4), "float32")
    x[7, 2] = np.nan
    with pytest.raises(ValueError, match=r"non-finite.*index \(7, 2\).*example 7"):
        keras_zoo.load_splits((x, np.zeros(20, int)))
    x[7, 2] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        keras_zoo.load_splits((x, np.zeros(20, int)))
    with pytest.raises(ValueError, match="must be numbers .* got dtype object"):
        keras_zoo.load_splits((np.array([[None, 1.0]] * 20, dtype=object), np.zeros(20, int)))


def test_string_labels_are_class_names():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(30, 4)).astype("float32")
    y = np.array(["cat", "dog", "emu"] * 10)
    splits = keras_zoo.load_splits((x, y), batch_size=64)
    assert splits.info.class_names == ("cat", "dog", "emu") and splits.info.num_classes == 3
    _, labels = next(iter(splits.train.unbatch().batch(100)))
    assert set(np.unique(labels.numpy())) <= {0, 1, 2}
    given = keras_zoo.load_splits((x, y), options={"class_names": ["emu", "dog", "cat"]})
    assert given.info.class_names == ("emu", "dog", "cat")
    with pytest.raises(ValueError, match=r"\['emu'\] are not among class_names"):
        keras_zoo.load_splits((x, y), options={"class_names": ["cat", "dog"]})


@pytest.mark.slow
def test_string_labels_reach_the_export_as_class_names(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(40, 8, 8, 1)).astype("float32")
    y = np.array(["cat", "dog"] * 20)
    result = keras_zoo.train("mlp_lecture", (x, y), epochs=1, run_dir=str(tmp_path / "run"), export=True,
                             verbose=0)
    assert result.info.class_names == ("cat", "dog")
    _, meta = load_export(result.export_path)
    assert meta["class_names"] == ["cat", "dog"]


def test_labels_beyond_the_models_classes_are_refused_before_fit(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.uniform(size=(40, 8, 8, 1)).astype("float32"), np.arange(40) % 5
    small = keras_zoo.create_model("mlp_lecture", input_shape=(8, 8, 1), num_classes=3)
    with pytest.raises(ValueError, match=r"has 5 classes .* outputs 3; build it with num_classes=5"):
        keras_zoo.train(small, (x, y), epochs=1, run_dir=str(tmp_path / "r"), verbose=0)
    assert not (tmp_path / "r" / "log.csv").exists()


# === Values (issue 14, point 10) ===


def test_bad_values_are_refused_and_numpy_integers_accepted():
    from keras_zoo.recipes import get_recipe

    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="learning_rate must be a finite number > 0"):
            get_recipe("classifier").replace(learning_rate=bad)
    with pytest.raises(ValueError, match=r"input_shape for 'mlp_lecture' must be a tuple of positive ints, got \(8.7, 8, 1\)"):
        keras_zoo.create_model("mlp_lecture", input_shape=(8.7, 8, 1))
    model = keras_zoo.create_model("mlp_lecture", input_shape=(np.int64(8), 8.0, 1), num_classes=np.int64(4))
    assert model.outputs[0].shape[-1] == 4 and tuple(model.inputs[0].shape[1:]) == (8, 8, 1)
    with pytest.raises(ValueError, match=r"100000, 100000, 3\).*values per example, more than"):
        keras_zoo.create_model("mlp_lecture", input_shape=(100000, 100000, 3))


# === The CLI: one line, non-zero exit, checks before TensorFlow ===


def test_cli_refuses_an_unknown_model_before_importing_tensorflow(tmp_path):
    import subprocess
    import sys

    probe = ("import sys; from keras_zoo.cli import main; rc = main(['train', 'cnn_smal', '--data', 'digits']); "
             "assert 'tensorflow' not in sys.modules, 'imported TF'; sys.exit(rc)")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, env=dict(os.environ, PYTHONPATH=root))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("keras-zoo: unknown model 'cnn_smal'. Did you mean: cnn_small") and proc.stderr.count("\n") == 1
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_cli_errors_are_one_line_and_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "mlp_lecture", "--data", "moons", "--learning-rate", "inf"])
    assert exit_.value.code == 2 and capsys.readouterr().err.count("\n") == 1
    # Divergence: a FloatingPointError inside train, reported in one line.
    assert cli.main(["train", "mlp_lecture", "--data", "moons", "--epochs", "2", "--learning-rate", "1e30",
                     "--no-export", "--out", "run"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("keras-zoo: training of 'mlp_lecture' stopped: the loss became")
    assert not any("Traceback" in line for line in err)
    bad = tmp_path / "not_an_image.png"
    bad.write_bytes(b"this is text")
    assert cli.main(["predict", "cnn_small", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "cannot read image" in err and "not_an_image.png" in err
    assert cli.main(["predict", "cnn_small", str(bad), "--debug"]) == 2
    assert "Traceback (most recent call last)" in capsys.readouterr().err
    bomb = _bomb_png(tmp_path / "bomb.png", 30000, 30000)
    assert cli.main(["predict", "cnn_small", bomb]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "bomb.png" in err and "pixel limit" in err


# === Bounded reads: archives and downloads ===


def test_keras_archive_bombs_are_refused_before_inflating(model, tmp_path):
    import zipfile

    from keras_zoo.weights import ArchiveBombError, check_archive_is_safe

    good = str(tmp_path / "good.keras")
    model.save(good)
    check_archive_is_safe(good)
    bomb = str(tmp_path / "bomb.keras")
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "config.json":  # valid JSON, padded to 65 MB of spaces
                data = data + b" " * (65 << 20)
            dst.writestr(info.filename, data)
    assert os.path.getsize(bomb) < 1 << 20
    with pytest.raises(ArchiveBombError, match=r"'config.json' inflates to \d+ bytes, more than"):
        check_archive_is_safe(bomb)
    with pytest.raises(ArchiveBombError):
        keras_zoo.evaluate(bomb, "moons")  # the loader behind evaluate, export and predict checks first
    ratio = str(tmp_path / "ratio.keras")
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(ratio, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
        dst.writestr("assets/zeros.bin", b"\0" * (8 << 20))
    with pytest.raises(ArchiveBombError, match=r"'assets/zeros.bin' would inflate \d+x"):
        check_archive_is_safe(ratio)


def test_downloads_over_the_size_limit_are_abandoned(tmp_path):
    import hashlib
    import http.server
    import threading

    from keras_zoo.weights import WeightIntegrityError, fetch

    payload = b"w" * (3 << 20)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            if self.path.endswith("announced.keras"):
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        digest = hashlib.sha256(payload).hexdigest()
        cache = tmp_path / "cache"
        with pytest.raises(WeightIntegrityError, match="announces 3145728 bytes, more than the limit"):
            fetch(f"{base}/announced.keras", digest, cache=str(cache), max_bytes=1 << 20)
        with pytest.raises(WeightIntegrityError, match="went past the limit of 1048576 bytes"):
            fetch(f"{base}/streamed.keras", digest, cache=str(cache), max_bytes=1 << 20)
        assert not [p for p in os.listdir(cache)]  # nothing kept, not even a partial file
        assert open(fetch(f"{base}/announced.keras", digest, cache=str(cache)), "rb").read() == payload
    finally:
        server.shutdown()
