"""ImageNet weights for the `applications` family, fetched through the package's hash-checked cache.

``create_model("mobilenet_v3_small", pretrained="imagenet")`` builds the model from the registry and
loads Keras's own ImageNet feature-extractor file (the ``include_top=False`` "notop" file) into its
``"backbone"``. The URL and hash are not copied here: they are read from the installed Keras's
`keras.applications` modules (their ``BASE_WEIGHTS_PATH``/``WEIGHTS_HASHES`` constants), so the zoo
downloads exactly the file Keras would and checks it the way Keras does (sha256 where Keras lists
one, md5 where that is all Keras records). The file lands in `keras_zoo.weights.cache_dir()` via
`keras_zoo.weights.fetch` (written whole, re-hashed on every use).

Offline, `ImageNetWeightsUnavailable` names the URL and the exact cache path where a copy of the
file can be placed. ``KERAS_ZOO_IMAGENET=random`` makes ``pretrained="imagenet"`` build random
weights instead of downloading, for offline tests and dry runs; it logs a warning every time.

The classification head is always new: the zoo's head replaces the ImageNet top, so these models
are for fine-tuning (`keras_zoo.finetune`), not for predicting the 1000 ImageNet classes.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import socket
import urllib.error

from keras_zoo import weights

log = logging.getLogger("keras_zoo")

ENV = "KERAS_ZOO_IMAGENET"
ENV_VALUES = ("download", "random")


class ImageNetWeightsUnavailable(OSError):
    """The ImageNet weight file could not be downloaded (offline, or the server refused)."""


@dataclasses.dataclass(frozen=True)
class _Entry:
    module: str           # keras.src.applications.<module>
    key: str              # its WEIGHTS_HASHES key
    base: str             # name of its base-URL constant
    file_name: str        # the notop file Keras downloads for include_top=False
    license: str
    origin: str


# How Keras names each notop file (the patterns of keras/src/applications/*.py); a test asks Keras
# itself which file it requests, so a Keras release that changes them fails the tests.
_TABLE = {
    "resnet50_imagenet": _Entry(
        "resnet", "resnet50", "BASE_WEIGHTS_PATH", "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "MIT", "Kaiming He et al., github.com/KaimingHe/deep-residual-networks (Caffe model, converted by Keras)"),
    "mobilenet_v3_small": _Entry(
        "mobilenet_v3", "small_224_1.0_float", "BASE_WEIGHT_PATH",
        "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
        "Apache-2.0", "TensorFlow Model Garden, github.com/tensorflow/models (slim MobileNetV3)"),
    "mobilenet_v3_large": _Entry(
        "mobilenet_v3", "large_224_1.0_float", "BASE_WEIGHT_PATH",
        "weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5",
        "Apache-2.0", "TensorFlow Model Garden, github.com/tensorflow/models (slim MobileNetV3)"),
    "efficientnet_v2_b0": _Entry(
        "efficientnet_v2", "b0", "BASE_WEIGHTS_PATH", "efficientnetv2-b0_notop.h5",
        "Apache-2.0", "Google AutoML, github.com/google/automl (efficientnetv2)"),
    "convnext_tiny": _Entry(
        "convnext", "convnext_tiny", "BASE_WEIGHTS_PATH", "convnext_tiny_notop.h5",
        "MIT", "Meta AI, github.com/facebookresearch/ConvNeXt"),
}


@dataclasses.dataclass(frozen=True)
class WeightsSource:
    """Where the ImageNet weights of one model come from, as the installed Keras says.

    Attributes:
        name: registry name.
        url: the file's URL.
        file_hash: its hex digest.
        algorithm: ``"sha256"`` or ``"md5"`` (by the digest's length, as Keras's ``get_file`` decides).
        license: licence of the weights, as published by the project that trained them.
        origin: that project.
    """

    name: str
    url: str
    file_hash: str
    algorithm: str
    license: str
    origin: str

    @property
    def cache_path(self) -> str:
        """Where the verified file is kept (and where an offline user can put a copy)."""
        return weights.cached_path(self.url, self.file_hash)


def names() -> list[str]:
    """Registry names that load ImageNet weights with ``pretrained="imagenet"``."""
    return sorted(_TABLE)


def weights_source(name: str) -> WeightsSource:
    """The URL, hash, licence and origin of `name`'s ImageNet weights, read from the installed Keras."""
    if name not in _TABLE:
        raise KeyError(f"no ImageNet weights for model {name!r}; models with them: {names()}")
    entry = _TABLE[name]
    module = importlib.import_module(f"keras.src.applications.{entry.module}")
    file_hash = getattr(module, "WEIGHTS_HASHES")[entry.key][1]  # [1]: the include_top=False file
    return WeightsSource(name=name, url=getattr(module, entry.base) + entry.file_name,
                         file_hash=file_hash, algorithm="sha256" if len(file_hash) == 64 else "md5",
                         license=entry.license, origin=entry.origin)


def mode() -> str:
    """``"download"`` (the default) or ``"random"``, from ``$KERAS_ZOO_IMAGENET``."""
    value = os.environ.get(ENV, "").strip().lower() or "download"
    if value not in ENV_VALUES:
        raise ValueError(f"${ENV}={os.environ[ENV]!r} is not one of {ENV_VALUES}")
    return value


def fetch_weights(name: str, timeout: float = 60.0) -> str:
    """A verified local copy of `name`'s ImageNet weight file (downloaded once into the cache)."""
    source = weights_source(name)
    try:
        return weights.fetch(source.url, source.file_hash, algorithm=source.algorithm, timeout=timeout)
    except (urllib.error.URLError, socket.timeout, ConnectionError) as err:
        raise ImageNetWeightsUnavailable(
            f"could not download the ImageNet weights of {name!r} from {source.url} ({err}). Offline, "
            f"download that file elsewhere and place it at {source.cache_path} (it is checked against "
            f"{source.algorithm} {source.file_hash}); or set {ENV}=random to build random weights "
            "instead (for tests)") from None


def create_imagenet(spec, input_shape=None, num_classes=None, **overrides):
    """`create_model(name, ..., pretrained="imagenet")`: the registry model of `spec` with ImageNet
    backbone weights.

    The backbone's weights do not depend on the input size, so any `input_shape` the network accepts
    works; the head (`num_classes`) is newly initialised.
    """
    from keras_zoo import registry

    name = spec.name
    weights_source(name)  # an unknown name fails before anything is built
    # Validated and downloaded before building, so a bad argument or no network fails at once.
    registry.validate_request(spec, input_shape, num_classes, **overrides)
    path = fetch_weights(name) if mode() == "download" else None
    model = registry.build_model(spec, input_shape, num_classes, **overrides)
    if path is None:
        log.warning("%s=random: %s keeps random weights instead of ImageNet's", ENV, name)
        return model
    model.get_layer("backbone").load_weights(path)
    return model


def catalog_sources(name: str) -> list[dict]:
    """``[{"tag": "imagenet", "source": url, "license": ...}]`` for `name` (empty when it has none)."""
    if name not in _TABLE:
        return []
    source = weights_source(name)
    return [{"tag": "imagenet", "source": source.url, "license": source.license, "origin": source.origin}]
