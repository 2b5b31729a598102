"""Suite Q of `benchmarks/run.py`: quantised exports, their size, held-out accuracy and serving speed.

    python benchmarks/run.py --only Q --no-readme     # results/perf_Q.json
    python benchmarks/quantize.py --table             # the Markdown table of docs/quantization.md

Three models: `cnn_fast` trained on the real MNIST digits (8,000 train / 2,000 held-out PNGs) with its
recipe's defaults, the default classifier's shipped checkpoint ``cnn_small:mnist`` (trained on the
same 8,000, its held-out digits the folder's test split), and the recommended colour model `cnn_color` on CIFAR-10 photos (10,000 train /
5,000 held-out JPEGs): the shipped checkpoint ``cnn_color:cifar10`` as it is, not retrained (its
held-out photos are the folder's test split; ``KERAS_ZOO_Q_RETRAIN=1`` trains it on the folder
instead). Each model is exported as the float SavedModel, ONNX (float, int8) and LiteRT (float,
dynamic, float16, int8) by `export_model` (the quantised files calibrated on the train split and
checked on the held-out one, as `keras-zoo export --quantize` does). For each file: its size, its
accuracy on the whole held-out split (uint8 images through the file's own runtime, as served),
batch-1 latency (p50, p99) and batch-64 images/s. Every speed is a ratio to the float SavedModel's
``serving_default`` measured in the same round; rounds alternate the order of the runtimes. Each
runtime runs with its defaults as `keras_zoo.export.formats.load` and `tf.saved_model.load` give them.

``KERAS_ZOO_Q_EPOCHS=N`` caps the epochs of each model trained here (the recipe's own limit otherwise).
Data: ``KERAS_ZOO_MNIST_8K2K`` / ``KERAS_ZOO_CIFAR10_10K`` (train/ and test/ class folders), else the
folders are written from ../shared/data (mnist-t10k, cifar10-train); a model whose data is absent is
skipped with the reason in the JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.path.join(ROOT, "..", "shared", "data")
# (model, data folder env variable, shared source, make_folders arguments, shipped checkpoint tag)
MODELS = (
    ("cnn_fast", "KERAS_ZOO_MNIST_8K2K", "mnist-t10k", [], None),
    # The default classifier, as shipped: `cnn_small:mnist` held out the last 2,000 digits, the
    # folder's test split.
    ("cnn_small", "KERAS_ZOO_MNIST_8K2K", "mnist-t10k", [], "mnist"),
    # The recommended colour model, as shipped: its checkpoint held out the last 500 photos of each
    # class, the same photos as this folder's test split.
    ("cnn_color", "KERAS_ZOO_CIFAR10_10K", "cifar10-train", ["--per-class", "1000", "--held-out", "500"],
     "cifar10"),
)
RUNTIMES = ("savedmodel", "onnx", "onnx-int8", "litert", "litert-dynamic", "litert-float16", "litert-int8")
SIZE_BAR, ACCURACY_BAR = 0.3, 0.005  # int8 file / float file; points of held-out accuracy lost


def data_folder(env: str, shared: str, make_args, tmp: str) -> str | None:
    if os.environ.get(env):
        return os.environ[env]
    script = os.path.join(SHARED, shared, "make_folders.py")
    if not os.path.exists(script):
        return None
    out = os.path.join(tmp, f"q-{shared}")
    if not os.path.isdir(out):
        subprocess.run([sys.executable, script, out, *make_args], check=True, capture_output=True)
    return out


def _size(path: str) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def _exports(model, folder, tmp, class_names, splits) -> dict:
    from keras_zoo.export import export_model, formats

    from keras_zoo.export.errors import ExportVerificationError

    out = os.path.join(tmp, "exports")
    paths, refused = {"savedmodel": export_model(model, out, class_names=class_names)}, {}
    for runtime in RUNTIMES[1:]:
        fmt, _, mode = runtime.partition("-")
        kwargs = {"format": fmt, "quantize": mode or None, "class_names": class_names,
                  "data": splits if mode else None}
        try:
            version = export_model(model, out, **kwargs)
        except ExportVerificationError as err:
            # Refused by the agreement check: recorded, and the file measured all the same.
            refused[runtime] = str(err)
            version = export_model(model, out, min_agreement=0.0, **kwargs)
        paths[runtime] = formats.model_file(version)
    return paths, refused


def size_without_names(path: str) -> int:
    """The size of the float file at `path` without its names, as the quantised files are written."""
    import shutil
    import tempfile

    from keras_zoo.export import formats

    if path.endswith(".tflite"):
        with open(path, "rb") as f:
            return len(formats.strip_litert_names(f.read()))
    with tempfile.TemporaryDirectory() as tmp:
        copy = shutil.copy(path, os.path.join(tmp, "model.onnx"))
        formats.strip_onnx_names(copy)
        return os.path.getsize(copy)


def where_the_bytes_go(path: str) -> dict:
    """Bytes of an ONNX or LiteRT file by what they hold: weights (tensor data), names (of tensors,
    nodes, the graph), quantisation parameters (LiteRT's per-tensor or per-channel scales and zero
    points; in ONNX they are tensors, counted with the weights), shapes ONNX records (value_info),
    and the rest (the graph's structure: nodes, tensor tables, signatures, LiteRT's metadata)."""
    size = os.path.getsize(path)
    if path.endswith(".onnx"):
        import onnx
        from onnx import numpy_helper

        graph = onnx.load(path).graph
        weights = sum(numpy_helper.to_array(t).nbytes for t in graph.initializer)
        names = (sum(len(t.name) for t in graph.initializer) + sum(len(n.name) for n in graph.node)
                 + sum(len(x) for n in graph.node for x in list(n.input) + list(n.output)))
        shapes = sum(len(v.SerializeToString()) for v in graph.value_info)
        parts = {"weights": weights, "names": names, "value_info": shapes}
    else:
        from ai_edge_litert import schema_py_generated as schema

        with open(path, "rb") as f:
            model = schema.Model.GetRootAs(f.read(), 0)
        meta = {model.Metadata(i).Buffer() for i in range(model.MetadataLength())}
        weights = sum(model.Buffers(i).DataLength() for i in range(model.BuffersLength()) if i not in meta)
        names = quant = 0
        for s in range(model.SubgraphsLength()):
            subgraph = model.Subgraphs(s)
            names += len(subgraph.Name() or b"")
            for t in range(subgraph.TensorsLength()):
                tensor = subgraph.Tensors(t)
                names += len(tensor.Name() or b"")
                q = tensor.Quantization()
                if q is not None:  # float32 scales and min/max, int64 zero points
                    quant += 4 * (q.ScaleLength() + q.MinLength() + q.MaxLength()) + 8 * q.ZeroPointLength()
        parts = {"weights": weights, "names": names, "quantization_parameters": quant}
    parts["rest"] = size - sum(parts.values())
    return {"size_bytes": size, **parts}


def _callers(paths: dict) -> dict:
    """runtime -> {batch size -> callable(uint8 images)}; one LiteRT interpreter per batch size,
    so neither call pays for resizing the other's tensors."""
    import tensorflow as tf

    from keras_zoo.export import formats

    serve = tf.saved_model.load(paths["savedmodel"]).signatures["serving_default"]
    callers = {"savedmodel": {b: (lambda x: serve(inputs=tf.constant(x))) for b in (1, 64)}}
    for runtime in RUNTIMES[1:]:
        runners = {b: formats.load(paths[runtime]) for b in (1, 64)}
        callers[runtime] = {b: (lambda x, r=r: r(inputs=x)) for b, r in runners.items()}
    return callers


def _class_ids(call, images):
    import numpy as np

    ids = []
    for start in range(0, len(images), 64):
        chunk = images[start:start + 64]
        ids.append(np.asarray(call[64](chunk)["class_ids"]) if len(chunk) == 64
                   else np.asarray(call[1](chunk)["class_ids"]))
    return np.concatenate(ids)


def _speed(call, images, calls: int) -> dict:
    import numpy as np

    one, many = images[:1], images[:64]
    for _ in range(5):
        call[1](one)
        call[64](many)
    lat = []
    for i in range(calls):
        x = images[i % len(images):i % len(images) + 1]
        start = time.perf_counter()
        call[1](x)
        lat.append(time.perf_counter() - start)
    batch = []
    for _ in range(max(5, calls // 10)):
        start = time.perf_counter()
        call[64](many)
        batch.append(time.perf_counter() - start)
    return {"p50_ms": float(np.percentile(lat, 50)) * 1e3, "p99_ms": float(np.percentile(lat, 99)) * 1e3,
            "batch64_img_s": 64 / float(np.median(batch))}


def _median(values):
    import statistics

    return round(statistics.median(values), 4)


def model_for(name: str, checkpoint: str | None, folder: str, tmp: str, quick: bool):
    """(model, class names, how it was trained): the shipped checkpoint when there is one (unless
    KERAS_ZOO_Q_RETRAIN is set), else trained here by its recipe."""
    import keras_zoo
    from keras_zoo import weights
    from keras_zoo.data import load_splits

    started = time.perf_counter()
    if checkpoint and not os.environ.get("KERAS_ZOO_Q_RETRAIN"):
        entry = weights.get_entry(name, checkpoint)
        model = keras_zoo.create_model(name, pretrained=checkpoint)
        h, w, c = model.input_shape[1:]
        folder_classes = load_splits(folder, targets="label", batch_size=256, seed=0, image_size=(h, w),
                                     color_mode="grayscale" if c == 1 else "rgb").info.class_names
        if list(folder_classes) != list(entry["class_names"]):
            raise ValueError(f"{folder} has classes {list(folder_classes)}; the checkpoint {name}:{checkpoint} "
                             f"answers {entry['class_names']}")
        return model, list(entry["class_names"]), {
            "checkpoint": f"{name}:{checkpoint}", "epochs_run": entry["epochs_run"],
            "recipe": entry["recipe"]["name"], "trained_on": entry["dataset"]["description"],
            "checkpoint_heldout_accuracy": entry["metrics"]["accuracy"]}
    # KERAS_ZOO_Q_EPOCHS caps the recipe's epochs (the JSON records the epochs run).
    cap = int(os.environ.get("KERAS_ZOO_Q_EPOCHS", "0")) or None
    overrides = {"epochs": 1} if quick else ({"epochs": cap} if cap else {})
    result = keras_zoo.train(name, folder, run_dir=os.path.join(tmp, f"run-{name}"), export=False,
                             verbose=0, seed=0, **overrides)
    return result.model, list(result.info.class_names), {
        "epochs_run": result.summary["epochs_run"], "seconds": round(time.perf_counter() - started, 1),
        "recipe": result.summary["recipe"].get("name")}


def one_model(name: str, folder: str, tmp: str, rounds: int, quick: bool, checkpoint: str | None = None) -> dict:
    import keras
    import numpy as np

    from keras_zoo.data import load_splits

    model, class_names, train = model_for(name, checkpoint, folder, tmp, quick)
    h, w, c = model.input_shape[1:]
    options = {"image_size": (h, w), "color_mode": "grayscale" if c == 1 else "rgb"}
    splits = load_splits(folder, targets="none", batch_size=256, seed=0, **options)
    test = load_splits(folder, targets="label", batch_size=256, seed=0, **options).test
    xs, ys = zip(*[(np.asarray(x), np.asarray(y)) for x, y in test])
    floats, labels = np.concatenate(xs), np.concatenate(ys)
    images = np.clip(np.round(floats * 255.0), 0, 255).astype("uint8")
    keras_ids = model.predict(floats, batch_size=256, verbose=0).argmax(-1)
    keras_accuracy = float(np.mean(keras_ids == labels))

    paths, refused = _exports(model, folder, os.path.join(tmp, name), class_names, splits)
    callers = _callers(paths)
    sizes = {r: _size(paths[r]) for r in RUNTIMES}
    ids = {r: _class_ids(callers[r], images) for r in RUNTIMES}
    accuracy = {r: float(np.mean(ids[r] == labels)) for r in RUNTIMES}
    agreement = {}
    for r in RUNTIMES:
        if "-" in r:
            with open(os.path.join(os.path.dirname(paths[r]), "keras_zoo.json"), encoding="utf-8") as f:
                agreement[r] = json.load(f)["quantization"]["top1_agreement"]

    calls = 40 if quick else 300
    speed = {r: [] for r in RUNTIMES}
    for rnd in range(rounds):
        order = RUNTIMES if rnd % 2 == 0 else RUNTIMES[::-1]
        for r in order:
            speed[r].append(_speed(callers[r], images, calls))
    keras.backend.clear_session()

    rows = {}
    for r in RUNTIMES:
        ratios = lambda key: [a[key] / b[key] for a, b in zip(speed[r], speed["savedmodel"])]  # noqa: E731
        rows[r] = {
            "size_bytes": sizes[r],
            "size_over_savedmodel": round(sizes[r] / sizes["savedmodel"], 4),
            "heldout_accuracy": round(accuracy[r], 4),
            "heldout_top1_agreement_with_keras": round(float(np.mean(ids[r] == keras_ids)), 4),
            "p50_ms": _median([s["p50_ms"] for s in speed[r]]),
            "p99_ms": _median([s["p99_ms"] for s in speed[r]]),
            "batch64_img_s": _median([s["batch64_img_s"] for s in speed[r]]),
            "p50_over_savedmodel": _median(ratios("p50_ms")),
            "p99_over_savedmodel": _median(ratios("p99_ms")),
            "batch64_img_s_over_savedmodel": _median(ratios("batch64_img_s")),
        }
        if r in agreement:
            rows[r]["top1_agreement_at_export"] = agreement[r]
        if r in refused:
            rows[r]["refused_at_export"] = refused[r]
    bars = {}
    for fmt in ("litert", "onnx"):
        size_ratio = sizes[f"{fmt}-int8"] / sizes[fmt]
        lost = keras_accuracy - accuracy[f"{fmt}-int8"]
        bars[f"{fmt}-int8"] = {"size_over_float_file": round(size_ratio, 4), "size_met": size_ratio <= SIZE_BAR,
                               # The quantised files go without tensor names (formats.strip_*_names);
                               # against the float file stripped the same way:
                               "size_over_float_file_without_names": round(
                                   sizes[f"{fmt}-int8"] / size_without_names(paths[fmt]), 4),
                               "accuracy_points_lost": round(100 * lost, 3), "accuracy_met": lost <= ACCURACY_BAR,
                               "refused_at_export": f"{fmt}-int8" in refused,
                               "bytes": {"float": where_the_bytes_go(paths[fmt]),
                                         "int8": where_the_bytes_go(paths[f"{fmt}-int8"])}}
    return {"model": name, "data": folder, "input_shape": [h, w, c], "train": train,
            "heldout_images": int(len(labels)), "keras_heldout_accuracy": round(keras_accuracy, 4),
            "runtimes": rows, "bars": bars, "calls_per_round": calls}


def suite(args, tmp: str) -> dict:
    """The Q suite (called by `benchmarks/run.py --only Q`)."""
    out = {"split": "held-out test split (accuracy); train split (calibration)", "models": {}, "skipped": {}}
    for name, env, shared, make_args, checkpoint in MODELS:
        folder = data_folder(env, shared, make_args, tmp)
        if folder is None:
            out["skipped"][name] = f"no data: set {env} or provide {os.path.join(SHARED, shared)}"
            continue
        print(f"Q: {name} on {folder}", file=sys.stderr, flush=True)
        out["models"][name] = one_model(name, folder, tmp, args.rounds, args.quick, checkpoint)
    out["met"] = bool(out["models"]) and all(b["size_met"] and b["accuracy_met"] and not b["refused_at_export"]
                                              for m in out["models"].values() for b in m["bars"].values())
    return out


def table(result: dict) -> str:
    """The Markdown table of docs/quantization.md from a perf_Q.json."""
    lines = []
    machine = result.get("machine", {})
    for name, m in result["models"].items():
        train = m["train"]
        how = (f"the shipped checkpoint `{train['checkpoint']}` as it is ({train['epochs_run']} epochs by "
               f"`{train['recipe']}`), not retrained" if train.get("checkpoint")
               else f"trained {train['epochs_run']} epochs by `{train['recipe']}`")
        lines.append(f"**{name}** on `{os.path.basename(os.path.normpath(m['data']))}` "
                     f"({m['heldout_images']} held-out images; Keras float accuracy {m['keras_heldout_accuracy']:.4f}; "
                     f"{how})\n")
        lines.append("| file | size | size / SavedModel | held-out accuracy | batch-1 p50 | p50 / SavedModel "
                     "| p99 / SavedModel | batch-64 img/s / SavedModel |")
        lines.append("|---|---|---|---|---|---|---|---|")
        for r, row in m["runtimes"].items():
            mark = " (refused at export)" if "refused_at_export" in row else ""
            lines.append(f"| {r}{mark} | {row['size_bytes'] / 1024:.0f} KiB | {row['size_over_savedmodel']:.3f} | "
                         f"{row['heldout_accuracy']:.4f} | {row['p50_ms']:.3f} ms | {row['p50_over_savedmodel']:.3f} | "
                         f"{row['p99_over_savedmodel']:.3f} | {row['batch64_img_s_over_savedmodel']:.2f} |")
        lines.append("")
        for fmt, bar in m["bars"].items():
            same = bar.get("size_over_float_file_without_names")
            lines.append(f"- {fmt}: file {bar['size_over_float_file']:.3f}x its float file"
                         + (f" ({same:.3f}x the float file without names)" if same else "")
                         + f" (bar <= {SIZE_BAR}: {'met' if bar['size_met'] else 'NOT met'}), "
                         f"{bar['accuracy_points_lost']:+.2f} points of held-out accuracy lost (bar <= 0.5: "
                         f"{'met' if bar['accuracy_met'] else 'NOT met'})"
                         + ("; refused by the agreement check at export" if bar.get("refused_at_export") else ""))
        lines.append("")
        if all("bytes" in bar for bar in m["bars"].values()):
            lines.append("Where the bytes go (`where_the_bytes_go`; LiteRT quantisation parameters: scales and "
                         "zero points; ONNX keeps them as tensors, counted as weights):\n")
            lines.append("| file | size | weights | names | quantisation parameters | value_info | rest |")
            lines.append("|---|---|---|---|---|---|---|")
            for fmt, bar in m["bars"].items():
                for kind, part in bar["bytes"].items():
                    label = fmt.split("-")[0] + ("" if kind == "float" else "-int8")
                    lines.append(f"| {label} | {part['size_bytes']:,} | {part['weights']:,} | {part['names']:,} | "
                                 f"{part.get('quantization_parameters', 0):,} | {part.get('value_info', 0):,} | "
                                 f"{part['rest']:,} |")
            lines.append("")
    lines.append(f"CPU: {machine.get('cpu')} ({machine.get('cpus')} cores), flags {machine.get('flags')}, "
                 f"load {machine.get('load')} before / {result.get('machine_after', {}).get('load')} after; "
                 f"{result.get('rounds')} rounds, {result.get('date', machine.get('date'))}.")
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:] == ["--table"]:
        with open(os.path.join(HERE, "results", "perf_Q.json"), encoding="utf-8") as f:
            print(table(json.load(f)))
    else:
        sys.exit("usage: python benchmarks/run.py --only Q [--quick] [--no-readme]; "
                 "python benchmarks/quantize.py --table")
