"""The int8 files of suite Q's models made with each converter option tried (`export_model`'s choices).

    python benchmarks/run.py --only quantize_options -- [MODEL ...]    # results/quantize_options.json

For each model of suite Q (`cnn_fast` trained on the real MNIST digits, the shipped `cnn_color:cifar10`
checkpoint on CIFAR-10 photos; data as suite Q finds it), the int8 LiteRT and ONNX files made with
each option below, written by the converters directly (not by `export_model`, so that options it
does not take can be compared) from the same serving function and float file, then stripped of
their names as `export_model` strips them. Each is measured as suite Q measures: file size (as the
converter wrote it, without names, and as a ratio to the float file with and without names), top-1
agreement with the Keras model on the whole held-out split and on its first 1,000 images (the ones
the export's check reads), and held-out accuracy. The first row of each format holds the options
`export_model` used before these were measured. Calibration: the first 300 (or 1,000) images of
the train split.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # benchmarks/ (this suite is in suites/)
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import quantize  # noqa: E402
from run import RESULTS, machine  # noqa: E402

LITERT_VARIANTS = {
    "per-channel, 300 calibration images": {},
    "per-tensor": {"per_channel": False},
    "per-channel, 1000 calibration images": {"calibration": 1000},
    "per-tensor, 1000 calibration images": {"per_channel": False, "calibration": 1000},
    "int16 activations (16x8)": {"int16": True},
}
ONNX_VARIANTS = {
    "QDQ, per-tensor, MinMax, U8S8, 300 calibration images": {},
    "per-channel": {"per_channel": True},
    "reduce_range (7-bit weights)": {"reduce_range": True},
    "per-channel, reduce_range": {"per_channel": True, "reduce_range": True},
    "S8S8 (int8 activations)": {"activation": "QInt8"},
    "per-channel, S8S8": {"per_channel": True, "activation": "QInt8"},
    "U8U8 (uint8 weights)": {"weight": "QUInt8"},
    "per-channel, U8U8": {"per_channel": True, "weight": "QUInt8"},
    "per-channel, Entropy calibration": {"per_channel": True, "method": "Entropy"},
    "per-channel, Percentile calibration": {"per_channel": True, "method": "Percentile"},
    "per-channel, 1000 calibration images": {"per_channel": True, "calibration": 1000},
    "per-channel, Softmax kept in float": {"per_channel": True, "float_ops": ["Softmax"]},
    "per-channel, quant_pre_process first": {"per_channel": True, "pre_process": True},
    "QOperator format": {"format": "QOperator"},
}


def _litert_variant(saved_model_dir, calibration, out, per_channel=True, int16=False, **_):
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=["serving_default"])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ({"inputs": calibration[i:i + 1]} for i in range(len(calibration)))
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8 if int16
        else tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter._experimental_disable_per_channel = not per_channel  # TFLite's only switch for it
    with open(out, "wb") as f:
        f.write(converter.convert())


def _onnx_variant(float_path, calibration, out, per_channel=False, reduce_range=False, activation="QUInt8",
                  weight="QInt8", method="MinMax", float_ops=(), pre_process=False, format="QDQ", **_):
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._starts = iter(range(0, len(calibration), 16))

        def get_next(self):
            start = next(self._starts, None)
            return None if start is None else {"inputs": calibration[start:start + 16]}

    source = float_path
    if pre_process:
        from onnxruntime.quantization.shape_inference import quant_pre_process

        source = out + ".pre.onnx"
        quant_pre_process(float_path, source, skip_symbolic_shape=True)
    ops = None
    if float_ops:
        ops = sorted({n.op_type for n in onnx.load(source).graph.node} - set(float_ops))
    quantize_static(source, out, Reader(), quant_format=getattr(QuantFormat, format),
                    activation_type=getattr(QuantType, activation), weight_type=getattr(QuantType, weight),
                    per_channel=per_channel, reduce_range=reduce_range,
                    calibrate_method=getattr(CalibrationMethod, method), op_types_to_quantize=ops)


def variants(name: str, folder: str, tmp: str, checkpoint: str | None) -> dict:
    """Each option of LITERT_VARIANTS and ONNX_VARIANTS on one model (see above)."""
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_zoo.data import load_splits
    from keras_zoo.export import contract, formats

    model, _, train = quantize.model_for(name, checkpoint, folder, tmp, quick=False)
    h, w, c = model.input_shape[1:]
    options = {"image_size": (h, w), "color_mode": "grayscale" if c == 1 else "rgb"}
    splits = load_splits(folder, targets="none", batch_size=256, seed=0, **options)
    test = load_splits(folder, targets="label", batch_size=256, seed=0, **options).test
    xs, ys = zip(*[(np.asarray(x), np.asarray(y)) for x, y in test])
    images = np.clip(np.round(np.concatenate(xs) * 255.0), 0, 255).astype("uint8")
    labels = np.concatenate(ys)
    train_images = []
    for x in splits.train:
        train_images.append(np.clip(np.round(np.asarray(x) * 255.0), 0, 255).astype("uint8"))
        if sum(map(len, train_images)) >= 1000:
            break
    train_images = np.concatenate(train_images)[:1000]

    endpoints = contract.endpoints_for(model, "classification", "classify_uint8", [], (h, w, c))
    fn, specs = endpoints["serving_default"]
    work = os.path.join(tmp, f"variants-{name}")
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name="serving_default", fn=fn, input_signature=specs)
    saved = os.path.join(work, "saved")
    archive.write_out(saved, verbose=False)
    keras_ids = np.concatenate([np.asarray(fn(tf.constant(images[i:i + 500]))["class_ids"])
                                for i in range(0, len(images), 500)])
    keras_accuracy = float(np.mean(keras_ids == labels))
    floats = {}
    for fmt in ("litert", "onnx"):
        os.makedirs(os.path.join(work, fmt))
        floats[fmt] = formats.convert(fmt, fn, specs, os.path.join(work, fmt), saved, name)
    rows = {}
    for fmt, table_ in (("litert", LITERT_VARIANTS), ("onnx", ONNX_VARIANTS)):
        float_size = os.path.getsize(floats[fmt])
        float_bare = quantize.size_without_names(floats[fmt])
        rows[fmt] = {"float_size_bytes": float_size, "float_size_without_names": float_bare, "variants": {}}
        for label, opts in table_.items():
            path = os.path.join(work, f"{fmt}-{len(rows[fmt]['variants'])}" + (".tflite" if fmt == "litert" else ".onnx"))
            converter_options = {k: v for k, v in opts.items() if k != "calibration"}
            calibration = train_images[:opts.get("calibration", 300)]
            started = time.perf_counter()
            try:
                if fmt == "litert":
                    _litert_variant(saved, calibration, path, **converter_options)
                else:
                    _onnx_variant(floats[fmt], calibration, path, **converter_options)
            except Exception as err:  # an option the converter or runtime refuses is a result too
                rows[fmt]["variants"][label] = {"error": f"{type(err).__name__}: {str(err)[:300]}"}
                print(f"{name} {fmt} {label}: {rows[fmt]['variants'][label]}", file=sys.stderr, flush=True)
                continue
            seconds = time.perf_counter() - started
            size = os.path.getsize(path)
            if fmt == "litert":
                with open(path, "rb") as f:
                    data = formats.strip_litert_names(f.read())
                with open(path, "wb") as f:
                    f.write(data)
            else:
                formats.strip_onnx_names(path)
            runner = formats.Runner(path, {})
            ids = np.concatenate([np.asarray(runner(inputs=images[i:i + 250])["class_ids"])
                                  for i in range(0, len(images), 250)])
            bare = os.path.getsize(path)
            rows[fmt]["variants"][label] = {
                "options": opts, "size_bytes": size, "size_without_names": bare,
                "size_over_float_file": round(bare / float_size, 4),
                "size_over_float_file_without_names": round(bare / float_bare, 4),
                "heldout_top1_agreement_with_keras": round(float(np.mean(ids == keras_ids)), 4),
                "check_agreement_first_1000": round(float(np.mean(ids[:1000] == keras_ids[:1000])), 4),
                "heldout_accuracy": round(float(np.mean(ids == labels)), 4),
                "accuracy_points_lost": round(100 * (keras_accuracy - float(np.mean(ids == labels))), 3),
                "convert_seconds": round(seconds, 1)}
            print(f"{name} {fmt} {label}: {rows[fmt]['variants'][label]}", file=sys.stderr, flush=True)
    keras.backend.clear_session()
    return {"model": name, "data": folder, "train": train, "heldout_images": int(len(labels)),
            "keras_heldout_accuracy": round(keras_accuracy, 4), "formats": rows}


def variants_table(result: dict) -> str:
    """The Markdown tables of docs/quantization.md's "options tried" from quantize_options.json."""
    lines = []
    for name, m in result["models"].items():
        machine_ = m.get("machine", {})
        lines.append(f"**{name}** ({m['heldout_images']} held-out images, Keras float accuracy "
                     f"{m['keras_heldout_accuracy']:.4f}; `{m.get('command')}`; CPU {machine_.get('cpu')}, flags "
                     f"{machine_.get('flags')}, load {machine_.get('load')}, {machine_.get('date')})\n")
        lines.append("| format | options | int8 file (no names) / float file | / float file without names "
                     "| agreement with Keras (held-out) | first 1000 (the export's check) | accuracy lost (points) |")
        lines.append("|---|---|---|---|---|---|---|")
        for fmt, rows in m["formats"].items():
            for label, row in rows["variants"].items():
                if "error" in row:
                    reason = " ".join(row["error"].split())[:90].replace("|", "/")
                    lines.append(f"| {fmt} | {label} | failed: {reason} | | | | |")
                    continue
                lines.append(f"| {fmt} | {label} | {row['size_over_float_file']:.3f} | "
                             f"{row['size_over_float_file_without_names']:.3f} | "
                             f"{row['heldout_top1_agreement_with_keras']:.2%} | {row['check_agreement_first_1000']:.1%} | "
                             f"{row['accuracy_points_lost']:+.2f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    import argparse

    from keras_zoo._io import atomic_write_text

    parser = argparse.ArgumentParser(prog="quantize_options.py", description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help=f"some of {[m[0] for m in quantize.MODELS]} (default: all)")
    args = parser.parse_args(argv)
    path = os.path.join(RESULTS, "quantize_options.json")
    # Each model's rows are written as soon as they are measured, beside the other models' rows of
    # an earlier run (each model records its own command, machine and load).
    out = {"split": "held-out test split (agreement, accuracy); train split (calibration)", "models": {}, "skipped": {}}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            out["models"] = json.load(f).get("models", {})
    with tempfile.TemporaryDirectory(prefix="keras_zoo_q_options_") as tmp:
        for name, env, shared, make_args, checkpoint in quantize.MODELS:
            if args.models and name not in args.models:
                continue
            folder = quantize.data_folder(env, shared, make_args, tmp)
            if folder is None:
                out["skipped"][name] = f"no data: set {env} or provide {os.path.join(quantize.SHARED, shared)}"
                continue
            before = machine()
            row = variants(name, folder, tmp, checkpoint)
            out["models"][name] = {"command": f"python benchmarks/run.py --only quantize_options -- {name}",
                                   "machine": before, "machine_after": machine(), **row}
            atomic_write_text(path, json.dumps(out, indent=1) + "\n")
    print(variants_table(out))
    print(path, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
