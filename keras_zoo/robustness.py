"""How a trained classifier holds up under common corruptions (Hendrycks & Dietterich, ICLR 2019).

`keras_zoo.evaluate(..., corruptions=)` measures a classifier's accuracy on one split with each of the 15 common
corruptions (`keras_zoo.data.corruptions`) at each severity, the mean, and the corruption error
relative to a reference model as the paper defines it: for corruption c,

    CE_c = sum_s E_{s,c}(model) / sum_s E_{s,c}(reference)        (E: top-1 error)
    relative CE_c = sum_s (E_{s,c} - E_clean)(model) / sum_s (E_{s,c} - E_clean)(reference)

and mCE (relative mCE) their mean over the corruptions (the paper's reference is AlexNet; the
zoo's default is the lecture's MLP, `mlp_lecture`, trained on the same data). Both models see the
same corrupted images (the corruptions are seeded per batch). Here: `accuracies` (one model),
`build_report` (the figures), `plot_corruptions` (accuracy against severity, one panel per corruption
family) and `format_report` (the table the CLI prints); `keras_zoo.training.evaluate` runs them.
"""

from __future__ import annotations

import logging

from keras_zoo.data.corruptions import CORRUPTION_FAMILIES, check_corruptions, corruption_stage

log = logging.getLogger("keras_zoo")


def _corrupted(dataset, name: str, severity: int, seed: int):
    import tensorflow as tf

    return dataset.enumerate().map(corruption_stage(name, severity, seed),
                                   num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def accuracies(model, dataset, names, severities, seed: int) -> tuple:
    """(clean accuracy, {name: {severity: accuracy}}) of `model` on `dataset` (batches (x, y))."""

    def accuracy(ds):
        return float(model.evaluate(ds, return_dict=True, verbose=0)["accuracy"])

    table = {}
    for name in names:
        table[name] = {str(s): accuracy(_corrupted(dataset, name, s, seed)) for s in severities}
    return accuracy(dataset), table


def adapted(model, shape: tuple):
    """`model` taking images of `shape`: the corrupted images (made at the measured model's contract)
    resized and made grey or RGB for a reference trained on another kind, with a note."""
    import keras

    want = tuple(model.inputs[0].shape[1:])
    if want == shape:
        return model
    if len(want) != 3 or want[-1] not in (1, 3) or shape[-1] not in (1, 3):
        raise ValueError(f"the reference {model.name!r} takes inputs of shape {want}; the corrupted images "
                         f"have {shape}")
    log.warning("corruptions: the reference %s takes %s images; the corrupted %s images are converted for it",
                model.name, "x".join(map(str, want)), "x".join(map(str, shape)))
    inputs = keras.Input(shape=shape, name="inputs")
    x = inputs
    if want[:2] != shape[:2]:
        x = keras.layers.Resizing(want[0], want[1], name="resize")(x)
    if want[-1] != shape[-1]:
        if want[-1] == 1:
            # The luma weights tf.image.rgb_to_grayscale (and so the data pipelines) use.
            x = keras.layers.Lambda(lambda t: keras.ops.sum(t * keras.ops.convert_to_tensor([0.2989, 0.587, 0.114]), axis=-1, keepdims=True), name="grey")(x)
        else:
            x = keras.layers.Concatenate(name="rgb")([x, x, x])
    adapted = keras.Model(inputs, model(x), name=model.name)
    return adapted


def _errors(clean: float, table: dict) -> tuple:
    """({name: sum of errors}, {name: sum of errors above the clean error})."""
    total = {n: sum(1.0 - a for a in row.values()) for n, row in table.items()}
    above = {n: sum((1.0 - a) - (1.0 - clean) for a in row.values()) for n, row in table.items()}
    return total, above


def build_report(model_name: str, info, split: str, names, severities, seed: int, clean: float, table: dict,
                 reference: dict | None = None) -> dict:
    """The corruption report of one model from its accuracies (`accuracies`), with the (relative) CE
    against `reference` (``{"model", "source", "clean_accuracy", "accuracy"}``) when given.

    Returns:
        ``{"clean_accuracy", "accuracy": {name: {severity: acc}}, "mean_accuracy", "family_accuracy",
        "reference": {...}, "ce": {name: CE}, "mce", "relative_ce", "relative_mce", ...}`` (CE figures
        only with a reference).
    """
    every = [a for row in table.values() for a in row.values()]
    report = {
        "model": model_name, "data": info.name, "split": split,
        "num_examples": info.num_examples[split], "input_shape": list(info.input_shape),
        "corruptions": list(names), "severities": list(severities), "seed": seed,
        "clean_accuracy": clean, "accuracy": table, "mean_accuracy": sum(every) / len(every),
        "family_accuracy": {family: {str(s): sum(table[n][str(s)] for n in members if n in table) /
                                     sum(n in table for n in members) for s in severities}
                            for family, members in CORRUPTION_FAMILIES.items() if any(n in table for n in members)},
    }
    if reference is None:
        return report
    errors, above = _errors(clean, table)
    ref_errors, ref_above = _errors(reference["clean_accuracy"], reference["accuracy"])
    ce = {n: errors[n] / ref_errors[n] if ref_errors[n] > 0 else float("nan") for n in names}
    relative = {n: above[n] / ref_above[n] if ref_above[n] > 0 else float("nan") for n in names}
    ref_every = [a for row in reference["accuracy"].values() for a in row.values()]
    report.update({
        "reference": {**reference, "mean_accuracy": sum(ref_every) / len(ref_every)},
        "ce": ce, "mce": sum(ce.values()) / len(ce),
        # The relative CE is undefined where the reference loses no accuracy to a corruption
        # (denominator <= 0, e.g. mild noise on digits): its mean runs over the others, counted.
        "relative_ce": relative,
        "relative_mce": (sum(v for v in relative.values() if v == v) / max(1, sum(v == v for v in relative.values()))
                         if any(v == v for v in relative.values()) else float("nan")),
        "relative_mce_over": sum(v == v for v in relative.values()),
    })
    return report


def format_report(report: dict) -> str:
    """The report as a text table: accuracy per corruption and severity, mean, CE (in %)."""
    severities = report["severities"]
    has_ce = "ce" in report
    head = f"{'corruption':<18}" + "".join(f"{'s' + str(s):>7}" for s in severities) + f"{'mean':>7}"
    head += f"{'CE':>8}{'rel.CE':>8}" if has_ce else ""
    lines = [f"{report['model']} on {report['data']} ({report['split']} split, {report['num_examples']} "
             f"examples): accuracy under common corruptions (%)", head]
    for name, row in report["accuracy"].items():
        values = [row[str(s)] for s in severities]
        line = f"{name:<18}" + "".join(f"{100 * v:7.1f}" for v in values) + f"{100 * sum(values) / len(values):7.1f}"
        if has_ce:
            line += f"{100 * report['ce'][name]:8.1f}{100 * report['relative_ce'][name]:8.1f}"
        lines.append(line)
    lines.append(f"clean accuracy {100 * report['clean_accuracy']:.1f}, mean corrupted accuracy "
                 f"{100 * report['mean_accuracy']:.1f}")
    if has_ce:
        ref = report["reference"]
        lines.append(f"mCE {100 * report['mce']:.1f}, relative mCE {100 * report['relative_mce']:.1f} (over the "
                     f"{report['relative_mce_over']} corruptions that cost the reference accuracy) "
                     f"(reference {ref['model']}: clean {100 * ref['clean_accuracy']:.1f}, mean corrupted "
                     f"{100 * ref['mean_accuracy']:.1f}; 100 = as robust as the reference, lower is better)")
    return "\n".join(lines)


def plot_corruptions(reports, path: str, title: str = "") -> str:
    """Accuracy against severity, one panel per corruption family, one line per model (its family
    mean; thin lines: each corruption of the first model). `reports`: a report or ``{label: report}``.
    Written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from keras_zoo._io import atomic_path

    if "accuracy" in reports:
        reports = {reports["model"]: reports}
    first = next(iter(reports.values()))
    families = list(first["family_accuracy"])
    fig, axes = plt.subplots(1, len(families), figsize=(3.6 * len(families), 3.2), squeeze=False, sharey=True)
    for ax, family in zip(axes[0], families):
        severities = [0] + first["severities"]
        for name in CORRUPTION_FAMILIES[family]:
            if name in first["accuracy"]:
                ax.plot(severities, [first["clean_accuracy"]] + [first["accuracy"][name][str(s)]
                                                                  for s in first["severities"]],
                        lw=0.8, alpha=0.5, label=name)
        for label, report in reports.items():
            ax.plot(severities, [report["clean_accuracy"]] + [report["family_accuracy"][family][str(s)]
                                                               for s in report["severities"]],
                    lw=2.2, marker="o", label=f"{label} (mean)")
        ax.set_title(family)
        ax.set_xlabel("severity (0: clean)")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=6)
    axes[0][0].set_ylabel("accuracy")
    fig.suptitle(title or f"accuracy under common corruptions ({first['data']}, {first['split']} split)")
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=80)
    plt.close(fig)
    return path
