"""ImageNet backbones from `keras.applications` (the `applications` family).

Each model is the Keras application itself, without its ImageNet top, between the zoo's input
contract and the zoo's classification head::

    inputs (float32 in [0, 1]) -> ImageNetInput -> backbone (keras.applications, include_top=False)
        -> pool -> head_dropout -> head_logits -> probabilities

`ImageNetInput` turns [0, 1] images into what the application was trained on (pixels 0-255, then the
application's own `preprocess_input`: "caffe" BGR mean subtraction for ResNet50, nothing more for
MobileNetV3, EfficientNetV2 and ConvNeXt, which normalise inside their graph), so these models take
the same inputs as every other classifier of the zoo and their exports take raw uint8 images.

The family builds random-initialised networks; ImageNet weights are loaded on top by
``create_model(name, pretrained="imagenet")`` (see `keras_zoo.imagenet`), into the nested model
named ``"backbone"``. `unfreeze` fixes how much of the backbone trains when the model is trained
as built (``keras_zoo.train``/``tune``); ``keras_zoo.finetune`` runs its own two phases instead.
"""

from __future__ import annotations

import keras

from keras_zoo.models import layers
from keras_zoo.registry import Choice, Float, register_model

# Choices of `unfreeze` the tuner searches: the backbone frozen (0: only the head learns), its top
# 20 or 60 layers with weights, or all of it.
UNFREEZE_CHOICES = (0, 20, 60, "all")

# Registry name -> (keras.applications function, module whose `preprocess_input` applies, extra
# arguments). The module names are those of `keras.applications.<module>`.
APPLICATIONS = {
    "resnet50_imagenet": ("ResNet50", "resnet50", {}),
    "mobilenet_v3_small": ("MobileNetV3Small", "mobilenet_v3", {"include_preprocessing": True}),
    "mobilenet_v3_large": ("MobileNetV3Large", "mobilenet_v3", {"include_preprocessing": True}),
    "efficientnet_v2_b0": ("EfficientNetV2B0", "efficientnet_v2", {"include_preprocessing": True}),
    "convnext_tiny": ("ConvNeXtTiny", "convnext", {"include_preprocessing": True}),
}
# keras.applications refuses smaller inputs for these networks (they downsample by 32).
MIN_SIZE = 32


@keras.saving.register_keras_serializable(package="keras_zoo")
class ImageNetInput(keras.layers.Layer):
    """[0, 1] images -> the inputs an ImageNet application expects (no weights).

    Scales to 0-255 and applies ``keras.applications.<preprocess>.preprocess_input``, so the
    preprocessing is Keras's own and travels inside saved models and exports.

    Args:
        preprocess: a `keras.applications` module name with a ``preprocess_input`` function
            (``"resnet50"``, ``"mobilenet_v3"``, ``"efficientnet_v2"``, ``"convnext"``).
    """

    def __init__(self, preprocess: str, **kwargs):
        super().__init__(**kwargs)
        module = getattr(keras.applications, str(preprocess), None)
        if module is None or not hasattr(module, "preprocess_input"):
            raise ValueError(f"preprocess {preprocess!r} is not a keras.applications module with "
                             f"preprocess_input; accepted: {sorted({v[1] for v in APPLICATIONS.values()})}")
        self.preprocess = str(preprocess)
        self._preprocess_input = module.preprocess_input

    def call(self, x):
        return self._preprocess_input(keras.ops.multiply(keras.ops.cast(x, self.compute_dtype), 255.0))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "preprocess": self.preprocess}


def application_backbone(name: str, input_shape) -> keras.Model:
    """The `keras.applications` network behind registry model `name`: include_top=False, random weights.

    Its layers and weight order are exactly Keras's, so Keras's ``*_notop.h5`` ImageNet file loads
    into it with ``load_weights``.
    """
    if name not in APPLICATIONS:
        raise KeyError(f"{name!r} is not an applications model; known: {sorted(APPLICATIONS)}")
    function, _, extra = APPLICATIONS[name]
    backbone = getattr(keras.applications, function)(
        include_top=False, weights=None, input_shape=tuple(input_shape), pooling=None, **extra)
    # Renamed afterwards: EfficientNetV2 looks its block table up by the name it is built with.
    backbone.name = "backbone"
    return backbone


def _freeze_below(backbone: keras.Model, unfreeze) -> None:
    """Leave only the top `unfreeze` layers with weights trainable ("all": every layer)."""
    if unfreeze == "all":
        return
    weighted = [layer for layer in backbone.layers if layer.weights]
    keep = set(map(id, weighted[len(weighted) - unfreeze:])) if unfreeze else set()
    for layer in weighted:
        layer.trainable = id(layer) in keep


def _check_unfreeze(unfreeze):
    if unfreeze == "all":
        return unfreeze
    if isinstance(unfreeze, bool) or not isinstance(unfreeze, int) or unfreeze < 0:
        raise ValueError(f"unfreeze must be 'all' or an int >= 0 (top backbone layers with weights that "
                         f"train; 0 trains the head only), got {unfreeze!r}")
    return unfreeze


def _build(name, input_shape, num_classes, include_top, pooling, dropout, unfreeze):
    dropout = layers.check_pooled_head(include_top, pooling, dropout)
    unfreeze = _check_unfreeze(unfreeze)
    if input_shape[-1] != 3:
        raise ValueError(f"input_shape {tuple(input_shape)} for {name!r} must have 3 (RGB) channels: "
                         "ImageNet backbones take colour images")
    layers.check_downsampling(input_shape, MIN_SIZE, name)

    inputs = layers.image_input(input_shape)
    x = ImageNetInput(APPLICATIONS[name][1], name="imagenet_preprocess")(inputs)
    backbone = application_backbone(name, input_shape)
    _freeze_below(backbone, unfreeze)
    outputs = layers.pooled_head(backbone(x), num_classes, include_top, pooling, dropout)
    return keras.Model(inputs, outputs, name=name)


# === Registered variants ===

_SPEC = dict(family="applications", task="classification", input_shape=(224, 224, 3), num_classes=1000,
             recipe="classifier", test_input_shape=(MIN_SIZE, MIN_SIZE, 3),
             search_space={"dropout": Float(0.0, 0.5), "unfreeze": Choice(UNFREEZE_CHOICES)})


@register_model(**_SPEC)
def resnet50_imagenet(input_shape, num_classes=1000, include_top=True, pooling="avg", dropout=0.2,
                      unfreeze="all"):
    """keras.applications ResNet50 (v1, 23.6 M backbone parameters); ImageNet weights with pretrained="imagenet"."""
    return _build("resnet50_imagenet", input_shape, num_classes, include_top, pooling, dropout, unfreeze)


@register_model(**_SPEC)
def mobilenet_v3_small(input_shape, num_classes=1000, include_top=True, pooling="avg", dropout=0.2,
                       unfreeze="all"):
    """keras.applications MobileNetV3Small (0.94 M backbone parameters); ImageNet weights with pretrained="imagenet"."""
    return _build("mobilenet_v3_small", input_shape, num_classes, include_top, pooling, dropout, unfreeze)


@register_model(**_SPEC)
def mobilenet_v3_large(input_shape, num_classes=1000, include_top=True, pooling="avg", dropout=0.2,
                       unfreeze="all"):
    """keras.applications MobileNetV3Large (3.0 M backbone parameters); ImageNet weights with pretrained="imagenet"."""
    return _build("mobilenet_v3_large", input_shape, num_classes, include_top, pooling, dropout, unfreeze)


@register_model(**_SPEC)
def efficientnet_v2_b0(input_shape, num_classes=1000, include_top=True, pooling="avg", dropout=0.2,
                       unfreeze="all"):
    """keras.applications EfficientNetV2B0 (5.9 M backbone parameters); ImageNet weights with pretrained="imagenet"."""
    return _build("efficientnet_v2_b0", input_shape, num_classes, include_top, pooling, dropout, unfreeze)


@register_model(**_SPEC)
def convnext_tiny(input_shape, num_classes=1000, include_top=True, pooling="avg", dropout=0.2,
                  unfreeze="all"):
    """keras.applications ConvNeXtTiny (27.8 M backbone parameters); ImageNet weights with pretrained="imagenet"."""
    return _build("convnext_tiny", input_shape, num_classes, include_top, pooling, dropout, unfreeze)
