"""Regenerate ``allowed_ops.json``: the op types keras_zoo's own SavedModel exports contain.

``python -m keras_zoo.export.allowlist`` exports every registered model (at its small test shape,
untrained: the ops do not depend on the weights) with every signature the export writes, plus a
feature-vector classifier (float ``serving_default``), and records the op types of their graphs and
functions, and separately those of TensorFlow's own saver functions (`trust.saver_functions`).
Run it after adding a family, a signature or moving to a new TensorFlow; ``tests/test_models.py``
fails on an export whose ops the table lacks.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

from keras_zoo.export import trust


def _export_cases():
    """(label, build) for each export the table covers; build() returns a built keras.Model."""
    import keras_zoo.models  # noqa: F401  (registers the built-in families)
    from keras_zoo import registry

    for spec in sorted(registry.builtin_specs(), key=lambda s: s.name):
        yield spec.name, (lambda spec=spec: registry.build_model(spec, input_shape=spec.small_input_shape()))
    mlp = registry.builtin_spec("mlp_lecture")
    yield "mlp_lecture (2 features)", lambda: registry.build_model(mlp, input_shape=(2,), num_classes=2)
    yield "finetune_adapters (resize, channels)", _adapter_model


def _adapter_model():
    """The layers `keras_zoo.finetune` puts in front of a checkpoint whose input contract differs from
    the data (bilinear resizing, antialiased when shrinking; grey <-> RGB) and behind a segmenter
    (resizing back), on a small classifier: their ops belong to the zoo's own exports too."""
    import keras

    inputs = keras.Input((12, 12, 1))
    x = keras.layers.Concatenate(axis=-1)([inputs, inputs, inputs])                 # grey -> RGB
    x = keras.layers.Resizing(6, 6, interpolation="bilinear", antialias=True)(x)     # shrink
    x = keras.layers.Conv2D(1, 1, use_bias=False, trainable=False)(x)                # RGB -> grey
    x = keras.layers.Resizing(8, 8, interpolation="bilinear", antialias=False)(x)    # enlarge
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, padding="same")(x))
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x), name="finetune_adapters")


def _registry_names() -> set:
    from keras_zoo import registry

    return {spec.name for spec in registry.builtin_specs()}


def ops_of_export(path: str) -> tuple[set, set]:
    """(ops outside the saver functions, ops inside them) of the SavedModel at `path`."""
    saved = trust.read_saved_model(path)
    ops, saver = set(), set()
    for op, _, part, _ in trust.graph_ops(saved.meta_graphs[0]):
        if part == "saver":
            saver.add(op)
        elif part != "nested":
            ops.add(op)
    return ops, saver


def generate(names=None, log=print) -> dict:
    """Export each case to a temporary folder and return the table (not written)."""
    import keras
    import tensorflow as tf

    from keras_zoo.export import export_model

    ops, saver, sources = set(), set(), {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, build in _export_cases():
            if names and label.split(" ")[0] not in names:
                continue
            keras.utils.set_random_seed(0)
            model = build()
            path = export_model(model, os.path.join(tmp, "exports"), name=f"case{len(sources)}",
                                task=None if model.name in _registry_names() else "classification")
            found, found_saver = ops_of_export(path)
            for op in sorted(found - ops):
                sources.setdefault(op, label)
            ops |= found
            saver |= found_saver
            sources[label] = None
            log(f"{label}: {len(found)} op types ({len(ops)} in all)")
            keras.backend.clear_session()
    return {"tensorflow_version": tf.__version__, "keras_version": keras.__version__,
            "models": sorted(k for k, v in sources.items() if v is None),
            "ops": sorted(ops), "saver_ops": sorted(saver),
            "first_seen_in": {k: v for k, v in sorted(sources.items()) if v is not None}}


def main(argv=None) -> int:
    """Regenerate ``allowed_ops.json`` (no arguments), or print the table of the named models only (never written)."""
    from keras_zoo._io import atomic_write_text

    args = sys.argv[1:] if argv is None else argv
    table = generate(names=set(args) or None)
    refused = sorted(op for op in table["ops"] if trust.never_reason(op))
    if refused:
        print(f"refusing to write the table: exports contain op(s) refused always: {refused}", file=sys.stderr)
        return 1
    if args:  # a subset of the models: show it, never write a partial table
        print(json.dumps(table, indent=1))
        return 0
    atomic_write_text(trust.ALLOWED_OPS_FILE, json.dumps(table, indent=1) + "\n")
    print(f"wrote {trust.ALLOWED_OPS_FILE}: {len(table['ops'])} ops, {len(table['saver_ops'])} saver ops")
    return 0


if __name__ == "__main__":
    sys.exit(main())
