"""Bounded waits and reads: a missing multi-worker peer, downloads past their expected size, links
leaving a data folder, animated GIFs, and no traceback on stderr for handled errors."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from subprocesses import env, free_ports



@pytest.mark.slow  # a 20 s limit plus TensorFlow's start-up in a child process
def test_a_worker_that_never_comes_is_named_and_the_run_stops_within_the_limit(tmp_path):
    ports = free_ports(2)
    config = {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker", "index": 0}}
    limit = 20
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "keras_zoo.cli", "train", "cnn_small", "--data", "digits", "--epochs", "1",
         "--out", str(tmp_path / "run"), "--distribute", "multi_worker", "--worker-timeout", str(limit)],
        env=env(TF_CONFIG=json.dumps(config)), capture_output=True, text=True, timeout=limit + 120, cwd=tmp_path)
    elapsed = time.monotonic() - start
    assert done.returncode == 1, done.stderr[-2000:]
    assert elapsed < limit + 60, elapsed
    lines = done.stderr.strip().splitlines()
    assert f"keras-zoo: waiting for worker 1 at 127.0.0.1:{ports[1]}" in done.stderr, done.stderr
    assert lines[-1] == (f"keras-zoo: worker 1 at 127.0.0.1:{ports[1]} did not start within {limit} s "
                         "(--worker-timeout); stopping"), lines
    assert "Traceback" not in done.stderr


def test_worker_timeout_is_checked():
    from keras_zoo import distribute

    with pytest.raises(ValueError, match=r"finite number of seconds > 0, got 'soon'"):
        distribute.set_worker_timeout("soon")


def test_an_archive_of_many_small_members_is_refused_by_its_aggregate_ratio(tmp_path):
    import zipfile

    from keras_zoo.export.archive import ArchiveBombError, check_archive_members

    path = tmp_path / "many.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(40):  # each member 1 MiB of zeros: at the per-member floor, so only the sum tells
            archive.writestr(f"assets/{i}.bin", b"\0" * (1 << 20))
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
        assert all(m.file_size <= 1 << 20 for m in members)
        with pytest.raises(ArchiveBombError, match=r"its 40 members would inflate \d+x in all"):
            check_archive_members(str(path), members)


def test_a_download_stops_once_past_its_expected_size(tmp_path):
    import hashlib
    import http.server
    import threading

    from keras_zoo.weights import WeightIntegrityError, fetch

    payload, sent = b"w" * (8 << 20), []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            try:
                for i in range(0, len(payload), 1 << 16):
                    self.wfile.write(payload[i:i + (1 << 16)])
                    sent.append(1 << 16)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/small.keras"
        with pytest.raises(WeightIntegrityError, match=r"went past the limit of 1000 bytes \(the expected size"):
            fetch(url, hashlib.sha256(payload[:1000]).hexdigest(), cache=str(tmp_path / "cache"), size=1000)
        assert not os.listdir(tmp_path / "cache")
    finally:
        server.shutdown()
    assert sum(sent) < len(payload)  # the server was cut off, not read to the end


def _png(path, value=0):
    from PIL import Image

    Image.fromarray(np.full((8, 8), value, "uint8"), mode="L").save(path)


def test_links_leaving_the_data_folder_and_link_loops_are_skipped_with_one_warning(tmp_path, caplog):
    import keras_zoo

    root = tmp_path / "data"
    for c in "ab":
        os.makedirs(root / c)
        for i in range(4):
            _png(root / c / f"{i}.png", 40 * (c == "b") + i)
    outside = tmp_path / "outside"
    os.makedirs(outside)
    _png(outside / "secret.png", 200)
    os.symlink(outside / "secret.png", root / "a" / "stolen.png")   # a file outside
    os.symlink(outside, root / "c")                                  # a class folder outside
    os.symlink("..", root / "b" / "up")                              # a loop
    os.symlink(root / "a" / "0.png", root / "b" / "same.png")        # inside: followed
    with caplog.at_level("WARNING"):
        splits = keras_zoo.load_splits(str(root), validation_fraction=0.0, test_fraction=0.0, batch_size=64)
    assert splits.info.class_names == ("a", "b")
    assert splits.info.num_examples["train"] == 9  # 4 + 4 + the inside link
    warnings = [r.getMessage() for r in caplog.records if "symbolic link" in r.getMessage()]
    assert len(warnings) == 1, warnings
    for name in ("stolen.png", os.path.join("data", "c"), os.path.join("b", "up")):
        assert name in warnings[0], warnings[0]


def test_an_animated_gif_is_bounded_by_all_its_frames(tmp_path):
    from PIL import Image

    from keras_zoo.data import checks

    path = tmp_path / "anim.gif"
    frames = [Image.fromarray(np.full((64, 64), 10 * i, "uint8"), mode="L") for i in range(20)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=10)
    assert checks.image_header(str(path), max_pixels=64 * 64 * 20) == ((64, 64), "P")
    with pytest.raises(checks.ImageFileError, match=r"animation of 20 frames of 64x64 = 81920 pixels in all"):
        checks.image_header(str(path), max_pixels=64 * 64 * 10)  # each frame is well under it


def test_a_backup_that_cannot_fit_is_refused_before_hdf5_starts_the_file(tmp_path, monkeypatch):
    """On a real full tmpfs, an HDF5 file whose writes fail printed a traceback per object from
    h5py's finalisers and the interpreter then crashed (exit 139); the free space is checked first."""
    import collections

    import keras_zoo
    from keras_zoo.recipes import backup
    from keras_zoo.recipes.backup import DiskFullError

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(backup.shutil, "disk_usage", lambda path: usage(1 << 30, (1 << 30) - 4096, 4096))
    with pytest.raises(DiskFullError, match=r"no space left on the device writing .*epoch-00001.*no backup was written yet"):
        keras_zoo.train("mlp_lecture", "moons", epochs=1, run_dir=str(tmp_path / "run"), verbose=0)
    assert os.listdir(tmp_path / "run" / "backup") == []
