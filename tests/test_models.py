"""Generic tests: every registered model is built, run, trained, saved, reloaded and exported.

Parametrized over `list_models()`, so a newly registered model is covered without edits here.
"""

from __future__ import annotations

import numpy as np
import pytest

import keras
import keras_zoo
from keras_zoo import factory
from keras_zoo.export.signatures import TASK_DEFAULT
from keras_zoo.recipes import get_recipe

from generic import DEEPER_TWINS, assert_close, fixed_batch, outputs, serving_input, traced_once
from serving import assert_serving_contract

ALL = keras_zoo.list_models()
# The training, save and export round trips trace a model's whole training and serving graphs: the
# keras.applications backbones run them on the family's smallest member only (see `traced_once`).
_TRACED_ONCE = traced_once()
# Deeper twins (ResNet-32/56, ResNet-34) leave their round trips to ResNet-20/18: see `generic.DEEPER_TWINS`.
ROUND_TRIPS = [n for n in ALL if n not in _TRACED_ONCE and n not in DEEPER_TWINS]


def test_assert_close_holds_float_noise_and_fails_a_wrong_output():
    rng = np.random.default_rng(0)
    expected = rng.dirichlet(np.ones(10), size=300).astype("float32")
    assert_close(expected + 3.5e-5 * rng.standard_normal(expected.shape), expected)  # reassociation
    wrong = expected.copy()
    wrong[0] = wrong[0][::-1]  # one example's probabilities permuted: a wrong head or input order
    with pytest.raises(AssertionError, match="differ by up to"):
        assert_close(wrong, expected)
    with pytest.raises(AssertionError, match="shape"):
        assert_close(expected[:5], expected)


def test_registry_is_not_empty():
    assert {"mlp_lecture", "cnn_lecture", "cnn_small"} <= set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_builds_at_default_shape_and_runs_forward(name):
    spec = factory.get_spec(name)
    keras.utils.set_random_seed(0)
    model = keras_zoo.create_model(name)
    assert model.name == name
    assert tuple(model.inputs[0].shape[1:]) == spec.input_shape
    # catalog.json's count (what `keras-zoo list/info` print without TensorFlow) is the built model's.
    if not spec.base:
        catalogued = {e["name"]: e["parameters"] for e in factory.read_catalog()}
        assert model.count_params() == catalogued.get(name), (
            f"{name}: catalog.json says {catalogued.get(name)} parameters, the model has "
            f"{model.count_params()}: run `python -m keras_zoo.docs`")
    x = np.random.default_rng(0).uniform(size=(2, *spec.input_shape)).astype("float32")
    out = outputs(model, x)
    assert all(np.all(np.isfinite(o)) for o in out)
    if spec.task == "classification":
        (probs,) = out
        assert probs.shape == (2, spec.num_classes)
        np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", ALL)
def test_spec_is_consistent(name):
    spec = factory.get_spec(name)
    assert spec.recipe in keras_zoo.list_recipes()
    assert spec.task in TASK_DEFAULT
    assert spec.description, f"{name} needs a docstring or description"


def _layer_kinds(model) -> set:
    """(class, config keys) of every layer, nested models walked."""
    kinds = set()
    for layer in model._flatten_layers(include_self=False):
        kinds.add((type(layer).__name__, tuple(sorted(layer.get_config()))))
    return kinds


@pytest.mark.parametrize("deeper, twin", sorted(DEEPER_TWINS.items()))
def test_a_deeper_twin_has_nothing_its_twin_lacks(deeper, twin):
    """A model whose round trips are left to its twin (DEEPER_TWINS) has the twin's family, task,
    recipe and signatures, and no layer class or layer configuration field the twin lacks."""
    a, b = factory.get_spec(deeper), factory.get_spec(twin)
    assert twin in ROUND_TRIPS and deeper not in ROUND_TRIPS
    for field in ("family", "task", "recipe", "signatures", "test_input_shape"):
        assert getattr(a, field) == getattr(b, field), (deeper, twin, field)
    shape = a.small_input_shape()
    extra = (_layer_kinds(keras_zoo.create_model(deeper, input_shape=shape))
             - _layer_kinds(keras_zoo.create_model(twin, input_shape=shape)))
    assert not extra, f"{deeper} has layers its twin {twin} lacks: {sorted(extra)}"


@pytest.fixture(scope="module", params=ROUND_TRIPS)
def trained(request):
    """(name, model, x, first and last loss): the model at its small test shape after five
    training steps on a fixed batch, so the round trips below start from non-trivial weights,
    optimizer state and batch-norm statistics. Built once per model for the tests that use it."""
    name = request.param
    spec = factory.get_spec(name)
    shape = spec.small_input_shape()
    keras.utils.set_random_seed(0)
    model = keras_zoo.create_model(name, input_shape=shape)
    get_recipe(spec.recipe).replace(learning_rate=1e-3, schedule="constant").compile(model)
    x, y = fixed_batch(spec, model, shape)
    first = model.train_on_batch(x, y, return_dict=True)
    for _ in range(4):
        last = model.train_on_batch(x, y, return_dict=True)
    return name, model, x, first, last


def test_training_steps_lower_the_loss_on_a_fixed_batch(trained):
    _, _, _, first, last = trained
    assert np.isfinite(last["loss"])
    assert last["loss"] < first["loss"], (first, last)


def test_keras_file_round_trip_gives_equal_outputs(trained, tmp_path):
    name, model, x, _, _ = trained
    path = str(tmp_path / f"{name}.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)  # safe mode stays on
    for a, b in zip(outputs(model, x), outputs(reloaded, x)):
        assert_close(b, a, what=f"{name} reloaded outputs")
    assert reloaded.optimizer.iterations.numpy() == model.optimizer.iterations.numpy() == 5


def test_export_round_trip_gives_equal_outputs(trained, tmp_path):
    name, model, _, _, _ = trained
    spec = factory.get_spec(name)
    shape = spec.small_input_shape()
    path = keras_zoo.export_model(model, str(tmp_path))
    # Every op of the export is in the SavedModel allow-list (else load_export needs trust=True).
    table = keras_zoo.export.trust.allowed_ops()
    missing = set(keras_zoo.export.trust.op_types(path)) - table["ops"] - table["saver_ops"]
    assert not missing, (f"{name}'s export has op(s) {sorted(missing)} that keras_zoo/export/allowed_ops.json "
                         "lacks: regenerate it with `python -m keras_zoo.export.allowlist`")
    loaded, metadata = keras_zoo.load_export(path)
    assert metadata["task"] == spec.task
    assert set(metadata["signatures"]) >= {"serving_default", *spec.signatures}
    # The task's float signature (serving_default for generators) answers as the in-memory model.
    sig = loaded.signatures[TASK_DEFAULT[spec.task]]
    (input_name,) = sig.structured_input_signature[1]
    assert input_name == "inputs"
    x = serving_input(sig, shape)  # images of `shape`, or noise vectors for a generator
    served = sig(inputs=x)
    primary = keras_zoo.export.signatures.SIGNATURES[TASK_DEFAULT[spec.task]]
    fn, _ = primary(model, shape)
    expected = fn(x)
    assert set(served) - {"labels"} == set(expected)
    for key in expected:
        assert_close(served[key], expected[key], what=f"{name} export's {key!r}")
    # serving_default: the one serving contract (uint8 images at the model's size, checked in the graph).
    assert_serving_contract(path, loaded=(loaded, metadata))
