"""`keras-zoo`: a thin command-line shell over the Python API.

`list`, `info` and `--help` answer from `catalog.json` without importing TensorFlow; every other
command imports the API only once its arguments have been parsed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

from keras_zoo import _validate


def _parse_size(text: str | None):
    if text is None:
        return None
    parts = text.lower().replace(",", "x").split("x")
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        size = ()
    if len(size) == 1:
        size = size * 2
    if len(size) != 2 or min(size) < 1:
        raise SystemExit(f"keras-zoo: --image-size expects HxW (e.g. 28x28), got {text!r}")
    return size


def _positive_int(text: str) -> int:
    """argparse type: an int >= 1, refused with the value named."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an int >= 1, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    """argparse type: a finite float > 0 (a learning rate), refused with the value named."""
    import math

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


# `keras_zoo.factory.CATALOG_PATH`, named here so that `list` and `info` need not import the factory
# (and with it the weight and ImageNet download machinery); tests/test_cli.py checks they agree.
_CATALOG_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "catalog.json")


def _catalog() -> list[dict]:
    """Built-in models from catalog.json, then saved presets (JSON files), all without TensorFlow."""
    from keras_zoo import presets

    with open(_CATALOG_PATH, encoding="utf-8") as f:
        entries = json.load(f)
    builtin = {e["name"] for e in entries}
    return entries + [presets.catalog_entry(r) for r in presets.read_presets() if r["name"] not in builtin]


def _data_options(args) -> dict:
    """`load_splits` options given on the command line (`--image-size`, `--color-mode`, `--data-dir`)."""
    options = {}
    if getattr(args, "data_dir", None):
        options["data_dir"] = args.data_dir
    if getattr(args, "image_size", None):
        options["image_size"] = _parse_size(args.image_size)
    if getattr(args, "color_mode", None):
        options["color_mode"] = args.color_mode
    return options


def _catalog_entry(name: str, entries: dict) -> dict:
    """The catalog row of `name`; `KeyError` naming close matches (the CLI prints it as one line)."""
    if name not in entries:
        import difflib

        close = difflib.get_close_matches(name, list(entries), n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else " See `keras-zoo list`."
        raise KeyError(f"unknown model {name!r}.{hint}")
    return entries[name]


def _fmt_params(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}K"


# --------------------------------------------------------------------------- list / info


def cmd_list(args) -> int:
    import fnmatch

    rows = [e for e in _catalog()
            if fnmatch.fnmatch(e["name"], args.pattern)
            and (args.family is None or e["family"] == args.family)
            and (args.task is None or e["task"] == args.task)
            and (args.pretrained is False or e.get("pretrained"))]
    if args.pretrained:
        return _list_checkpoints(rows, args.json)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    header = ("name", "family", "task", "params", "input", "recipe")
    table = [header] + [(e["name"], e["family"], e["task"], _fmt_params(e["parameters"]),
                         "x".join(map(str, e["input_shape"])), e["recipe"]) for e in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    return 0


def _list_checkpoints(rows, as_json: bool) -> int:
    """One row per pretrained checkpoint: NAME:TAG, its input size, what it was trained on and its
    licence; shipped checkpoints first, then ImageNet weights downloaded on first use."""
    from keras_zoo import weights

    names = {e["name"] for e in rows}
    found = [e for e in weights.entries() if e["name"] in names]
    downloaded = [(e, w) for e in rows for w in e.get("pretrained_weights") or () if w["tag"] == "imagenet"]
    if as_json:
        print(json.dumps(found + [{"name": e["name"], **w} for e, w in downloaded], indent=1))
        return 0
    header = ("model:tag", "task", "input", "held-out", "trained on", "licence", "source")
    table = [header]
    for e in found:
        metric = next(((k, v) for k, v in e["metrics"].items() if k in ("accuracy", "mean_iou")),
                      next((k, v) for k, v in e["metrics"].items() if k != "split"))
        table.append((f"{e['name']}:{e['tag']}{' *' if e.get('default') else ''}", e["task"],
                      "x".join(map(str, e["input_contract"]["shape"])), f"{metric[0]} {metric[1]:.4g}",
                      e["dataset"]["description"].split(",")[0][:48],
                      (e["dataset"].get("licence") or "?").split(" (")[0], f"shipped {e['file']}"))
    for e, w in downloaded:
        table.append((f"{e['name']}:imagenet", e["task"], "x".join(map(str, e["input_shape"])), "-",
                      "ImageNet-1k (weights of keras.applications)", w["license"], w["source"]))
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    print("* the model's default tag; `keras-zoo info NAME:TAG` shows a checkpoint's model card")
    return 0


def cmd_info(args) -> int:
    if ":" in args.name:
        from keras_zoo import weights

        name, _, tag = args.name.partition(":")
        print(weights.model_card(weights.get_entry(name, tag)), end="")
        return 0
    from keras_zoo import weights

    entry = dict(_catalog_entry(args.name, {e["name"]: e for e in _catalog()}))
    entry["pretrained_tags"] = [{"tag": e["tag"], "default": bool(e.get("default")),
                                 "input_shape": e["input_contract"]["shape"],
                                 "trained_on": e["dataset"]["description"]}
                                for e in weights.entries(args.name)]
    print(json.dumps(entry, indent=2))
    return 0


# --------------------------------------------------------------------------- train / evaluate / export


def cmd_train(args) -> int:
    import keras_zoo

    out = args.out or os.path.join("runs", f"{args.name}-{os.path.basename(os.path.normpath(args.data))}")
    print(f"training {args.name} on {args.data}; run directory {out}", file=sys.stderr)
    result = keras_zoo.train(
        args.name, args.data, recipe=args.recipe, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, run_dir=out, seed=args.seed, export=not args.no_export,
        data_options=_data_options(args), verbose=1 if sys.stderr.isatty() else 2,
        strategy=args.distribute, **_train_domains(args), **_validate.assignments(args.set))
    summary = result.summary
    print(f"precision {summary['precision']['policy']}: {summary['precision']['reason']}", file=sys.stderr)
    print(f"held-out (test split, {result.info.num_examples['test']} examples) after "
          f"{summary['epochs_run']} epochs in {summary['train_seconds']:.1f} s:")
    for key, value in result.metrics.items():
        print(f"  {key}: {value:.4f}")
    print(f"checkpoint: {os.path.join(out, 'model.keras')}")
    if result.export_path:
        print(f"export: {result.export_path}")
    return 0


def _train_domains(args) -> dict:
    """`train`'s target data and, with --source-only, the override that turns adaptation off."""
    extra = {}
    if getattr(args, "target", None):
        extra["target"] = args.target
    if getattr(args, "source_only", False):
        if not getattr(args, "target", None):
            raise ValueError("--source-only compares with domain adaptation: it needs --target TARGET_DIR")
        extra["adaptation"] = False
    return extra


def cmd_evaluate(args) -> int:
    with _StderrHandler():
        return _evaluate(args)


def _evaluate(args) -> int:
    import keras_zoo

    if args.corruptions is None:
        if args.severities or args.reference or args.plot or args.json:
            raise ValueError("--severities, --reference, --plot and --json go with --corruptions")
        metrics = keras_zoo.evaluate(args.model, args.data, split=args.split, seed=args.seed,
                                     data_options=_data_options(args), trust=args.trust)
        print(json.dumps(metrics, indent=2))
        return 0
    from keras_zoo import robustness

    severities = tuple(int(s) for s in args.severities.split(",")) if args.severities else (1, 2, 3, 4, 5)
    reference = None if (args.reference or "").lower() == "none" else (args.reference or "mlp_lecture")
    report = keras_zoo.evaluate(args.model, args.data, split=args.split, seed=args.seed,
                                data_options=_data_options(args), trust=args.trust,
                                corruptions=args.corruptions, severities=severities, reference=reference)
    print(robustness.format_report(report))
    if args.plot:
        print(f"plot: {robustness.plot_corruptions(report, args.plot)}")
    if args.json:
        from keras_zoo._io import atomic_write_text

        atomic_write_text(args.json, json.dumps(report, indent=2) + "\n")
        print(f"report: {args.json}")
    return 0


def _run_summary(path: str) -> dict:
    """The ``metrics.json`` that `train`/`finetune` wrote beside a model (run directory or .keras file)."""
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    summary_path = os.path.join(folder, "metrics.json")
    if not os.path.exists(summary_path):
        return {}
    with open(summary_path, encoding="utf-8") as f:
        return json.load(f)


def cmd_export(args) -> int:
    import keras_zoo
    from keras_zoo.training import load_model

    summary = _run_summary(args.model)
    # The task travels in the run's metrics.json (a fine-tuned model is not a registry name).
    task = args.task or summary.get("task")
    data = None
    if args.format != "saved_model":
        from keras_zoo.export import formats

        formats.check_format(args.format)  # a missing optional package, before TensorFlow loads the model
        # Mode and task first (the data's presence is decided by _quantization_data's message).
        formats.check_quantize(args.format, args.quantize, task, data=args.data or summary.get("data") or "")
        data = _quantization_data(args, summary) if args.quantize else None
    elif args.quantize:
        raise ValueError(f"--quantize needs --format litert or onnx (format {args.format!r} is exported in float)")
    model = load_model(args.model)
    path = keras_zoo.export_model(model, args.out, version=args.version, task=task, format=args.format,
                                  class_names=summary.get("class_names"), quantize=args.quantize, data=data)
    print(path)
    return 0


def _quantization_data(args, summary: dict):
    """The images a quantised export is calibrated and checked on: --data, else the run's own data
    (its metrics.json), said in one line; None where there is neither (modes that need no data are
    then checked on a random probe batch)."""
    from keras_zoo.export import formats

    data, where = args.data, "--data"
    if data is None and summary.get("data"):
        data, where = summary["data"], "the run's data"
        looks_like_path = os.sep in data or data.startswith((".", "~"))
        if looks_like_path and not os.path.isdir(os.path.expanduser(data)):
            raise FileNotFoundError(f"the run was trained on {data!r}, which is not here; pass --data DIR "
                                    "(images like the ones it was trained on)")
    if data is None:
        if args.quantize in formats.CALIBRATED:
            raise ValueError(f"--quantize {args.quantize} calibrates on real images and "
                             f"{args.model!r} records no data; pass --data DIR")
        print(f"quantize {args.quantize}: no data; checking on a random probe batch "
              f"({formats.PROBE_IMAGES} images)", file=sys.stderr)
        return None
    calibration = (f"calibrating on {formats.CALIBRATION_IMAGES} train-split images, "
                   if args.quantize in formats.CALIBRATED else "")
    print(f"quantize {args.quantize}: {calibration}checking top-1 agreement on up to "
          f"{formats.CHECK_IMAGES} held-out images of {data} ({where})", file=sys.stderr)
    return data


# --------------------------------------------------------------------------- finetune


class _StderrHandler:
    """The package's INFO lines on whatever `sys.stderr` is when they are written, for the length of
    one command: the logger's level and handlers are put back afterwards, so a command run inside a
    longer process (a notebook, a test) leaves no handler bound to a stream that has since closed."""

    def __enter__(self):
        import logging

        class Handler(logging.StreamHandler):
            @property
            def stream(self):
                return sys.stderr

            @stream.setter
            def stream(self, value):
                pass

        self.log = logging.getLogger("keras_zoo")
        self.level = self.log.level
        self.handler = Handler()
        self.handler.setFormatter(logging.Formatter("%(message)s"))
        self.log.setLevel(logging.INFO)
        self.log.addHandler(self.handler)
        return self

    def __exit__(self, *exc):
        self.log.removeHandler(self.handler)
        self.log.setLevel(self.level)
        return False


def cmd_finetune(args) -> int:
    # The package's own progress lines only: TensorFlow's INFO logs (SavedModel "Assets written to"
    # its staging folder) are not for the user.
    with _StderrHandler():
        return _finetune(args)


def _finetune(args) -> int:
    import keras_zoo

    base = args.name if not args.tag else f"{args.name}:{args.tag}"
    out = args.out or os.path.join(
        "runs", f"{base.replace(':', '-')}-{os.path.basename(os.path.normpath(args.data))}-finetune")
    print(f"fine-tuning {base} on {args.data}; run directory {out}", file=sys.stderr)
    result = keras_zoo.finetune(
        base, args.data, epochs=args.epochs, fine_tune_epochs=args.fine_tune_epochs,
        unfreeze=args.unfreeze, learning_rate=args.learning_rate, batch_size=args.batch_size,
        seed=args.seed, run_dir=out, export=not args.no_export, data_options=_data_options(args),
        verbose=1 if sys.stderr.isatty() else 2, trust=args.trust, strategy=args.distribute)
    print(f"fine-tuned {result.base} on {len(result.class_names)} classes {result.class_names}")
    for phase in result.phases:
        print(f"  phase {phase['name']}: {phase['epochs_run']} epochs, held-out accuracy "
              f"{phase['test']['accuracy']:.4f}")
    print(f"checkpoint: {os.path.join(out, 'model.keras')}")
    if result.export_path:
        print(f"export (serving_default takes uint8 images, pixels 0-255, "
              f"{'x'.join(map(str, result.info.input_shape))}): {result.export_path}")
    return 0


# --------------------------------------------------------------------------- tune


def cmd_tune(args) -> int:
    import keras_zoo

    try:
        result = keras_zoo.tune(
            args.name, args.data, tuner=args.tuner, max_trials=args.max_trials,
            objective=args.objective, directory=args.out, epochs=args.epochs, seed=args.seed,
            recipe=args.recipe, save_preset=args.save_preset, overwrite=args.overwrite,
            data_options=_data_options(args), verbose=2 if args.verbose else 1,
            strategy=args.distribute)
    except KeyboardInterrupt:
        print("keras-zoo: tuning interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    if args.json:
        from keras_zoo._io import atomic_write_text

        atomic_write_text(args.json, json.dumps(result.to_dict(), indent=2, default=str) + "\n")
    return 0


# --------------------------------------------------------------------------- predict


def _load_images(paths, shape):
    """Read image files as float32 in [0, 1], resized and converted to the model's (H, W, C)."""
    import numpy as np
    from PIL import Image

    h, w, c = shape
    batch = []
    for p in paths:
        if not os.path.exists(p):
            raise SystemExit(f"keras-zoo: no image at {p!r}")
        from keras_zoo.data.checks import image_header

        image_header(p)  # readable, within the pixel limit, before decoding
        try:
            img = Image.open(p).convert("L" if c == 1 else "RGB")
        except (OSError, ValueError, SyntaxError) as err:
            raise ValueError(f"cannot read image {p!r}: {err}") from None
        if img.size != (w, h):
            print(f"note: resizing {p} from {img.size[0]}x{img.size[1]} to {w}x{h}", file=sys.stderr)
            img = img.resize((w, h), Image.BILINEAR)
        arr = np.asarray(img, dtype="float32") / 255.0
        batch.append(arr.reshape(h, w, c))
    return np.stack(batch)


def _spec_task(name):
    from keras_zoo import factory

    try:
        return factory.get_spec(name).task
    except KeyError:
        return None


def _predictions(target, images, trust=False):
    """(task, outputs dict, class names, inputs) of `target` (export, .keras/run directory,
    NAME[:TAG]); the inputs are the images as float32 in [0, 1] at the model's size."""
    from keras_zoo.export import formats

    portable = formats.model_file(target) if os.path.exists(target) else None
    if portable:
        runner = formats.load(portable, trust=trust)
        meta = runner.metadata
        contract = runner.contract
        if not contract:
            raise ValueError(f"{portable} has no keras_zoo.json beside it; predict needs its input contract")
        (spec,) = contract
        shape = tuple(meta.get("input_shape") or ()) if None in spec["shape"][1:] else tuple(spec["shape"][1:])
        x = _load_images(images, shape)
        served = (x * 255).round().astype("uint8") if spec["dtype"] == "uint8" else x
        return meta.get("task"), runner(inputs=served), meta.get("class_names") or [], x
    is_export = os.path.isdir(target) and (
        any(os.path.exists(os.path.join(target, f)) for f in ("saved_model.pb", "saved_model.pbtxt",
                                                              "saved_model.cpb"))
        or any(d.isdigit() for d in os.listdir(target)))
    if is_export:
        from keras_zoo.export import load_export

        loaded, meta = load_export(target, trust=trust)
        sig = loaded.signatures["serving_default"]
        spec = sig.structured_input_signature[1]["inputs"]
        shape = tuple(spec.shape[1:])
        if None in shape:  # a signature that takes any height and width: the model's own input size
            shape = tuple(meta.get("input_shape") or ()) or shape
        x = _load_images(images, shape)
        served = (x * 255).round().astype("uint8") if spec.dtype.name == "uint8" else x
        out = {k: v.numpy() for k, v in sig(inputs=served).items()}
        return meta.get("task"), out, meta.get("class_names") or [], x
    model, task, class_names, shape = _load_target(target)
    x = _load_images(images, shape)
    from keras_zoo.evaluation import model_outputs

    return task, model_outputs(model, x), class_names, x


def _load_target(target):
    """(model, task, class names, input shape) of a `.keras` file, run directory or NAME[:TAG]."""
    if os.path.exists(target):
        from keras_zoo.training import load_model

        model = load_model(target)
        class_names = []
        meta_path = os.path.join(target, "metrics.json") if os.path.isdir(target) else None
        if meta_path and os.path.exists(meta_path):
            with open(meta_path, encoding="utf-8") as f:
                class_names = json.load(f).get("class_names") or []
        return model, _spec_task(model.name), class_names, tuple(model.inputs[0].shape[1:])
    from keras_zoo import factory, weights

    name, _, tag = target.partition(":")
    factory.get_spec(name)  # an unknown name raises with suggestions
    if name not in weights.pretrained_names():
        raise SystemExit(f"keras-zoo: {name!r} is a registered model without shipped weights; pass a run "
                         "directory, a .keras file or an export directory (models with weights: "
                         f"{', '.join(weights.pretrained_names())})")
    model, entry = weights.load_entry(name, tag or True)
    return model, _spec_task(name), entry.get("class_names") or [], tuple(entry["input_contract"]["shape"])


# Distinct colours for class ids 0..9 of a predicted mask (the PNG stores the ids as palette indices).
_MASK_PALETTE = [0, 0, 0, 230, 25, 75, 60, 180, 75, 255, 225, 25, 0, 130, 200,
                 245, 130, 48, 145, 30, 180, 70, 240, 240, 240, 50, 230, 210, 245, 60]


def _write_png(array, path, palette=False):
    import numpy as np
    from PIL import Image

    from keras_zoo._io import atomic_path

    if palette:
        image = Image.fromarray(array.astype("uint8"), mode="P")
        image.putpalette(_MASK_PALETTE + [128] * (768 - len(_MASK_PALETTE)))
    else:
        pixels = (np.clip(array, 0.0, 1.0) * 255).round().astype("uint8")
        image = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
    with atomic_path(path, suffix=".png") as tmp:
        image.save(tmp, format="PNG")


def cmd_predict(args) -> int:
    import numpy as np

    task, out, class_names, inputs = _predictions(args.model, args.images, trust=args.trust)
    first = next(iter(out.values()))
    if task == "classification" or (task is None and first.ndim == 2):
        probs = out.get("probabilities", first)
        for path, p in zip(args.images, probs):
            k = int(np.argmax(p))
            label = class_names[k] if k < len(class_names) else str(k)
            print(f"{path}\t{label}\t{p[k]:.4f}")
        return 0
    if task not in ("segmentation", "reconstruction") and "reconstruction" not in out:
        print(f"keras-zoo: predict classifies, segments and reconstructs images; this model's task is "
              f"{task!r} (outputs {sorted(out)}): use its export signatures instead", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    for i, path in enumerate(args.images):
        stem = os.path.splitext(os.path.basename(path))[0]
        written = os.path.join(args.out, f"{stem}.png")
        if task == "segmentation":
            ids = out["class_ids"][i] if "class_ids" in out else np.argmax(out.get("probabilities", first)[i], -1)
            _write_png(ids, written, palette=True)
            shares = np.bincount(ids.ravel(), minlength=1) / ids.size
            summary = " ".join(
                f"{class_names[k] if k < len(class_names) else k}={shares[k]:.2f}"
                for k in range(len(shares)) if shares[k])
        else:
            image = out.get("reconstruction", first)[i]
            _write_png(image, written)
            summary = f"reconstruction mean abs error {float(np.mean(np.abs(image - inputs[i]))):.4f}"
        print(f"{path}\t{written}\t{summary}")
    return 0


# --------------------------------------------------------------------------- sample


# --------------------------------------------------------------------------- scan


def cmd_scan(args) -> int:
    """`keras-zoo scan PATH`: the loaders' checks, reported in full; exit 0 safe, 1 otherwise."""
    from keras_zoo.export import scan
    from keras_zoo.export.scanning import format_report

    report = scan(args.path, trust=args.trust)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0 if report["verdict"] == "safe" else 1


def _add_scan(add_command) -> None:
    p = add_command("scan", help="list what a model file would run and whether keras-zoo would load it")
    p.add_argument("path", help="SavedModel or export directory, .keras archive, .onnx or .tflite file")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.add_argument("--trust", action="store_true",
                   help="the verdict of a load with --trust (provenance and unknown ops lifted; refused ops stay)")
    p.set_defaults(func=cmd_scan)


def cmd_sample(args) -> int:
    from keras_zoo import evaluation

    model, _, _, _ = _load_target(args.model)
    if not (hasattr(model, "generate") and hasattr(model, "latent_dim")):
        print(f"keras-zoo: sample draws images from generative models (VAE, GAN); {args.model!r} "
              f"is a {type(model).__name__}", file=sys.stderr)
        return 2
    images = evaluation.generate_images(model, args.num, seed=args.seed)
    path = evaluation.save_image_grid(images, args.out, columns=args.columns)
    print(path)
    return 0


# --------------------------------------------------------------------------- experiment


def cmd_experiment(args) -> int:
    from keras_zoo.experiments import run_experiment

    import inspect

    from keras_zoo.experiments import get_experiment

    # The options given that the experiment takes; one it does not take is refused before it runs.
    given = {k: getattr(args, k) for k in ("data", "model", "limit", "epochs") if getattr(args, k) is not None}
    accepted = inspect.signature(get_experiment(args.name)).parameters
    refused = sorted(k for k in given if k not in accepted)
    if refused:
        takes = sorted(f"--{k}" for k in ("data", "model", "limit", "epochs") if k in accepted)
        raise ValueError(f"experiment {args.name} takes no {', '.join('--' + k for k in refused)} "
                         f"(it takes: {', '.join(takes) or 'none of --data/--model/--limit/--epochs'})")
    out = args.out or os.path.join("runs", f"experiment-{args.name}")
    print(f"running experiment {args.name} (size {args.size}, seed {args.seed}"
          + "".join(f", {k} {v}" for k, v in given.items()) + f"); plots to {out}", file=sys.stderr)
    table = run_experiment(args.name, size=args.size, plot_dir=out, seed=args.seed, **given)
    print(table.to_markdown())
    from keras_zoo._io import atomic_write_text

    atomic_write_text(os.path.join(out, f"{args.name}.json"), table.to_json() + "\n")
    for path in table.plots:
        print(f"plot: {path}")
    print(f"table: {os.path.join(out, args.name + '.json')}")
    return 0


# --------------------------------------------------------------------------- parser


class _Parser(argparse.ArgumentParser):
    """argparse with its errors as one line (the usage is one `--help` away)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")

    def _get_formatter(self):
        # argparse makes a formatter for every add_argument and sizes it with shutil, whose import
        # (bz2, lzma) was a sixth of `keras-zoo list`'s start-up; the width comes from os directly.
        return self.formatter_class(prog=self.prog, width=_terminal_columns() - 2)


def _terminal_columns() -> int:
    """The terminal's width as `shutil.get_terminal_size` gives it: $COLUMNS, the terminal, or 80."""
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return 80


COMMANDS = ("list", "info", "train", "evaluate", "export", "finetune", "tune", "predict", "sample", "experiment",
            "scan")


class _NotBuilt:
    """Stands in for the parser of a command that is not on the command line: its options are not
    built (argparse's add_argument is most of `keras-zoo list`'s own start-up)."""

    def add_argument(self, *args, **kwargs):
        pass

    def set_defaults(self, **kwargs):
        pass


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command-line parser; with `command` (one of `COMMANDS`) only that command's options are
    built, which is all `parse_args` needs for a command line that starts with it."""
    parser = _Parser(
        prog="keras-zoo",
        description="Build, train, evaluate and export models from the keras_zoo registry.")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error (anywhere on the line)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add_command(name, **kwargs):
        return subparsers.add_parser(name, **kwargs) if command in (None, name) else _NotBuilt()

    p = add_command("list", help="list registered models (no TensorFlow import)")
    p.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'cnn*'")
    p.add_argument("--family")
    p.add_argument("--task")
    p.add_argument("--pretrained", action="store_true", help="only models with pretrained weights (shipped or ImageNet), with their source and licence")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_list)

    p = add_command("info", help="details of one model")
    p.add_argument("name", help="a model name, or NAME:TAG for a shipped checkpoint's model card")
    p.set_defaults(func=cmd_info)

    p = add_command("train", help="train, evaluate on the held-out split, checkpoint and export")
    p.add_argument("name", help="registry name (for 28x28 images the recommended one is cnn_fast)")
    p.add_argument("--data", required=True,
                   help="built-in set (digits, shapes, moons, spirals), TFDS name or image folder")
    p.add_argument("--epochs", type=_positive_int)
    p.add_argument("--batch-size", type=_positive_int)
    p.add_argument("--learning-rate", type=_positive_float)
    p.add_argument("--recipe", help="recipe name (default: the model's own)")
    p.add_argument("--out", help="run directory (default runs/NAME-DATA); rerun to resume")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--image-size", help="resize images to HxW")
    p.add_argument("--data-dir", help="TFDS data directory holding prepared data sets")
    p.add_argument("--color-mode", choices=("grayscale", "rgb"))
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="model override, repeatable")
    p.add_argument("--no-export", action="store_true", help="skip the SavedModel export")
    p.add_argument("--target", metavar="TARGET_DIR",
                   help="unlabelled images of the domain to adapt to (dann); its labels, if any, only report "
                        "target accuracy")
    p.add_argument("--source-only", action="store_true",
                   help="with --target: train the same network on the source alone (dann's adaptation=False)")
    _add_distribute(p)
    p.set_defaults(func=cmd_train)

    p = add_command("evaluate", help="metrics of a trained model on a data split")
    p.add_argument("model", help=".keras file, run directory, a classifier's export, or a shipped checkpoint's "
                                 "NAME:TAG (see `list --pretrained`)")
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="test", choices=("train", "validation", "test"))
    p.add_argument("--seed", type=int, default=0, help="the seed the split was made with")
    p.add_argument("--image-size", help="read images at HxW (default: the model's size, converted with a note)")
    p.add_argument("--color-mode", choices=("grayscale", "rgb"),
                   help="default: the model's channels, converted with a note")
    p.add_argument("--data-dir", help="TFDS data directory holding prepared data sets")
    p.add_argument("--trust", action="store_true",
                   help="run a SavedModel without valid keras_zoo metadata (see docs/security-model.md)")
    p.add_argument("--corruptions", metavar="all|FAMILY|NAME,...",
                   help="accuracy under the 15 common corruptions (or a family: noise, blur, weather, "
                        "digital; or names) at each severity, with the corruption error against --reference")
    p.add_argument("--severities", metavar="1,2,...", help="with --corruptions: the severities (default 1-5)")
    p.add_argument("--reference", metavar="NAME|RUN|none",
                   help="with --corruptions: the model of the corruption error's denominator (default "
                        "mlp_lecture, trained once on the data's train split; a run directory; none)")
    p.add_argument("--plot", metavar="PNG", help="with --corruptions: accuracy vs severity per family")
    p.add_argument("--json", metavar="PATH", help="with --corruptions: also write the report as JSON")
    p.set_defaults(func=cmd_evaluate)

    p = add_command("export", help="export a trained model (SavedModel for TF Serving, ONNX or LiteRT)")
    p.add_argument("model", help=".keras file or run directory")
    p.add_argument("--out", required=True, help="serving root; writes OUT/NAME/VERSION")
    p.add_argument("--version", type=int)
    p.add_argument("--format", default="saved_model", choices=("saved_model", "onnx", "litert"),
                   help="saved_model (default; OUT/NAME/VERSION), onnx or litert (OUT/NAME-FORMAT/VERSION "
                        "holding model.onnx or model.tflite, checked with its own runtime)")
    p.add_argument("--task", choices=("classification", "segmentation", "reconstruction", "generation",
                                      "contrastive"),
                   help="the model's task when neither the registry nor the run's metrics.json knows it")
    p.add_argument("--quantize", choices=("dynamic", "float16", "int8"),
                   help="a quantised file (classifiers, segmenters): litert dynamic, float16 or int8 (full "
                        "integer); onnx int8 (static QDQ); published only if it picks the model's class on "
                        "held-out images (see docs/quantization.md)")
    p.add_argument("--data", help="images to calibrate (int8) and check the quantised file on; default: the "
                                  "data the run directory was trained on")
    p.set_defaults(func=cmd_export)

    p = add_command("finetune", help="new classes on a pretrained model; writes a servable export")
    p.add_argument("name", help="model with shipped or ImageNet weights (see `list --pretrained`), or NAME:TAG")
    p.add_argument("--data", required=True, help="image folder with one sub-folder per class")
    p.add_argument("--tag", help="which shipped checkpoint (default: the model's default)")
    p.add_argument("--epochs", type=int, default=30, help="phase 1: new head, backbone frozen")
    # 30 (it was 10): on 20 real digits 5-9 per class, three draws, `finetune cnn_small:mnist-0to4`
    # held out 92.3/95.1/94.7 % where 10 gave 87.7/88.1/84.9 (README, "Fine-tuning on your own
    # images"); early stopping ends it sooner.
    p.add_argument("--fine-tune-epochs", type=int, default=30,
                   help="phase 2: backbone unfrozen, at the same learning rate, up to this many epochs "
                        "with early stopping (default 30; 0 skips it)")
    p.add_argument("--unfreeze", default="all", help="phase 2 unfreezes 'all' or the top N weighted layers")
    p.add_argument("--learning-rate", type=_positive_float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--out", help="run directory (default runs/NAME-DATA-finetune)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--image-size", help="read images at HxW (default: as stored)")
    p.add_argument("--data-dir", help="TFDS data directory holding prepared data sets")
    p.add_argument("--color-mode", choices=("grayscale", "rgb"))
    p.add_argument("--no-export", action="store_true", help="skip the SavedModel export")
    p.add_argument("--trust", action="store_true",
                   help="run a SavedModel without valid keras_zoo metadata (see docs/security-model.md)")
    _add_distribute(p)
    p.set_defaults(func=cmd_finetune)

    p = add_command(
        "tune", help="search hyperparameters with KerasTuner; optionally save the best as a preset",
        description="Search a model's hyperparameters (architecture and recipe knobs) on a data source. "
                    "The first trial is the default configuration. Rerun the same command to resume. "
                    "For distributed tuning start the same command on every machine with "
                    "KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT and KERASTUNER_TUNER_ID (chief, "
                    "tuner0, tuner1, ...) set.")
    p.add_argument("name", help="registry name or preset")
    p.add_argument("--data", required=True,
                   help="built-in set (digits, shapes, moons, spirals), TFDS name or image folder")
    p.add_argument("--tuner", default="random", choices=("random", "bayesian", "hyperband"))
    p.add_argument("--max-trials", type=int, default=10)
    p.add_argument("--objective", help="validation metric, optionally NAME:min|max (default: the recipe's)")
    p.add_argument("--epochs", type=int, help="epochs per trial (default: the recipe's)")
    p.add_argument("--recipe", help="recipe name (default: the model's own)")
    p.add_argument("--out", help="search directory (default runs/tune-NAME-DATA); rerun to resume")
    p.add_argument("--overwrite", action="store_true", help="start afresh instead of resuming")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--image-size", help="resize images to HxW")
    p.add_argument("--data-dir", help="TFDS data directory holding prepared data sets")
    p.add_argument("--color-mode", choices=("grayscale", "rgb"))
    p.add_argument("--save-preset", metavar="PRESET",
                   help="save the best trial as a preset: `create_model`/`keras-zoo train PRESET` rebuild it")
    p.add_argument("--json", metavar="PATH", help="also write the result (best, default, trials) as JSON")
    p.add_argument("--verbose", action="store_true", help="print every epoch")
    _add_distribute(p)
    p.set_defaults(func=cmd_tune)

    p = add_command("predict", help="classify, segment or reconstruct image files")
    p.add_argument("model", help="export directory (SavedModel, ONNX or LiteRT), .onnx or .tflite file, .keras "
                                 "file, run directory, or NAME[:TAG] with shipped weights")
    p.add_argument("images", nargs="+")
    p.add_argument("--out", default="predictions",
                   help="where segmentation masks and reconstructions go as PNGs, one per image "
                        "(default: ./predictions); classifiers print their predictions")
    p.add_argument("--trust", action="store_true",
                   help="run a SavedModel without valid keras_zoo metadata (see docs/security-model.md)")
    p.set_defaults(func=cmd_predict)

    p = add_command("sample", help="draw images from a VAE or GAN into a PNG grid")
    p.add_argument("model", help=".keras file, run directory, or NAME[:TAG] with shipped weights (dcgan:digits)")
    p.add_argument("--num", type=_positive_int, default=64, help="images to draw (default 64)")
    p.add_argument("--columns", type=_positive_int, default=8, help="images per row of the grid (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent noise (default 0)")
    p.add_argument("--out", default="samples.png", help="the PNG to write (default ./samples.png)")
    p.set_defaults(func=cmd_sample)

    p = add_command("experiment", help="run a lecture experiment, print its table, save its plots")
    if not isinstance(p, _NotBuilt):
        from keras_zoo.experiments import list_experiments  # a name table; imports no TensorFlow

        p.add_argument("name", choices=list_experiments())
    p.add_argument("--size", default="default", choices=("small", "default"),
                   help="small: seconds, for a quick look; default: the lecture figures")
    p.add_argument("--out", help="where plots and the JSON table go (default runs/experiment-NAME)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", help="a labelled data source instead of the built-in one: an image folder "
                                  "(train/<class>/, test/<class>/), a built-in name or a TFDS name "
                                  "(random_labels, representations, ...)")
    p.add_argument("--model", help="the network the experiment trains (random_labels: default mlp_lecture, "
                                   "cnn_small or cnn_fast for a small convnet; clustering: iic)")
    p.add_argument("--limit", type=int, help="random_labels: training images to keep (default all)")
    p.add_argument("--epochs", type=int, help="training epochs (default: the size preset's)")
    p.set_defaults(func=cmd_experiment)
    _add_scan(add_command)
    return parser


# TensorFlow's C++ start-up lines (oneDNN notice, "could not find cuda drivers", absl's pre-init
# warning) are written to file descriptor 2 while its libraries load, before TF_CPP_MIN_LOG_LEVEL
# is read; informational ones and the CUDA probe's on a machine without a GPU are dropped.
_STARTUP_NOISE = re.compile(r"^(?:[IW]0000 |WARNING: All log messages before absl::InitializeLog"
                            r"|E0000 .*(?:cuInit|cuda|CUDA))")
# Commands that answer from catalog.json and the preset files, without TensorFlow.
_WITHOUT_TENSORFLOW = (cmd_list, cmd_info)


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow (and initialise its devices) with its start-up noise filtered out of stderr;
    every other line it writes there is passed on."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") in ("", "0") or "tensorflow" in sys.modules:
        return  # the user asked for TensorFlow's logs, or it is already loaded
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines():
                if not _STARTUP_NOISE.match(line):
                    print(line, file=sys.stderr)


def _check_names(args) -> None:
    """Model names and --set pairs of train/tune/finetune, checked from catalog.json before
    TensorFlow is imported or anything is printed."""
    name = getattr(args, "name", None)
    if args.command not in ("train", "tune", "finetune") or name is None:
        return
    _validate.assignments(getattr(args, "set", None))
    base = name.partition(":")[0] if args.command == "finetune" else name
    entries = {e["name"]: e for e in _catalog()}
    _catalog_entry(base, entries)
    if args.command == "finetune" and not entries[base].get("pretrained"):
        shipped = sorted(n for n, e in entries.items() if e.get("pretrained"))
        raise ValueError(f"{base!r} has no shipped weights to fine-tune; models with weights: {', '.join(shipped)}")


def _one_line(err: BaseException) -> str:
    """An exception as one line: its message (KeyError's without quotes), the type where the
    message alone would not say what went wrong."""
    message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    text = lines[0] if lines else type(err).__name__
    if not isinstance(err, (KeyError, ValueError, OSError, FloatingPointError)):
        text = f"{type(err).__name__}: {text}"
    return text


def _add_distribute(parser) -> None:
    parser.add_argument("--distribute", choices=("mirrored", "multi_worker"),
                        help="train under a tf.distribute strategy: mirrored (every local GPU, or the CPU) "
                             "or multi_worker (the cluster in TF_CONFIG; the chief writes the run "
                             "directory). The batch size stays the global batch")
    parser.add_argument("--worker-timeout", type=_positive_float, action=_WorkerTimeout, metavar="SECONDS",
                        help="multi_worker: how long to wait for a TF_CONFIG task that has not started or "
                             "stopped answering, with a line every 30 s naming it, before exiting with "
                             "status 1 (default 600)")


class _WorkerTimeout(argparse.Action):
    """--worker-timeout: sets `keras_zoo.distribute.set_worker_timeout` as it is parsed (no TensorFlow)."""

    def __call__(self, parser, namespace, values, option_string=None):
        from keras_zoo import distribute

        distribute.set_worker_timeout(values)
        setattr(namespace, self.dest, values)


def _unraisable_in_one_line(unraisable) -> None:
    """`sys.unraisablehook` of the program: an exception Python cannot raise (one in a destructor,
    such as h5py's ``__dealloc__`` of a file a full disk left half written) is one warning line, not
    a traceback; an ENOSPC one says nothing, since the command's own error line already names the
    file. ``--debug`` keeps Python's default hook."""
    err = unraisable.exc_value
    text = str(err)
    if getattr(err, "errno", None) == 28 or "No space left" in text or "errno = 28" in text:
        return
    where = unraisable.err_msg or "Exception ignored"
    print(f"keras-zoo: warning: {where}: {_one_line(err) if err is not None else unraisable.exc_type.__name__}",
          file=sys.stderr)


def main(argv=None) -> int:
    """Run one command. Every failure is one line on stderr and a non-zero exit status (2 for a
    refused argument or input, 1 otherwise); ``--debug`` (anywhere on the line) adds the traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    args = build_parser(argv[0] if argv and argv[0] in COMMANDS else None).parse_args(argv)
    hook = sys.unraisablehook
    if not debug:
        sys.unraisablehook = _unraisable_in_one_line
    try:
        return _run(args, debug)
    finally:
        sys.unraisablehook = hook


def _run(args, debug: bool) -> int:
    try:
        _check_names(args)
        if args.func not in _WITHOUT_TENSORFLOW:
            _import_tensorflow_quietly()
        return args.func(args)
    except KeyboardInterrupt:
        print("keras-zoo: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`keras-zoo list | head`): stop writing, quietly, like other tools.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except Exception as err:  # noqa: BLE001  (the CLI's contract: one line, never a traceback)
        import gc

        gc.collect()  # objects the error left half done (an h5py file on a full disk) go now, under our hook
        if debug:
            import traceback

            traceback.print_exc()
        print(f"keras-zoo: {_one_line(err)}", file=sys.stderr)
        return 2 if isinstance(err, (KeyError, ValueError, FileNotFoundError)) else 1


def console_main() -> int:
    """The `keras-zoo` program (console script and ``python -m keras_zoo.cli``): `main`, then the
    objects still alive are frozen out of the garbage collector before the interpreter exits.

    Python's shutdown walks every object the collector tracks; with TensorFlow loaded that walk
    took about 1 s of each run here (``import tensorflow`` alone: 4.8 s of wall time against 3.8 s
    in the script; 3.96 s with `gc.freeze`). Everything the command writes is closed and renamed
    into place before `main` returns, atexit handlers (logging's flush among them) still run, and
    the operating system takes the memory back. Not done by `main` itself, which tests and other
    programs call in a process that goes on."""
    import gc

    if "--debug" not in sys.argv:
        sys.unraisablehook = _unraisable_in_one_line  # also for what the interpreter's exit finalises
    status = main()
    gc.freeze()
    return status


if __name__ == "__main__":
    sys.exit(console_main())
