"""Deep clustering (the `iic` family): Invariant Information Clustering.

Ji, Henriques & Vedaldi 2019 ("Invariant Information Clustering for Unsupervised Image
Classification and Segmentation", ICCV). An encoder and a softmax head assign each image to one of
K clusters; the head's outputs for two random transformations of an image form a
K x K joint distribution over pairs of clusters (averaged over the batch), and training maximises
the mutual information of that joint. High mutual information needs confident assignments (low
conditional entropy) that agree across the transformation, spread over all K clusters (high
marginal entropy), so no labels and no reconstruction are needed and the degenerate one-cluster
solution is avoided by the objective itself; as in the authors' code, the marginal entropies may be
weighted above 1 (`entropy_weight`) to push harder against using few clusters. As in the paper, an auxiliary over-clustering head
(more clusters than classes) trains the same encoder on finer groups.

Called on images the model returns the main head's cluster probabilities ``(batch, K)``; the
``cluster`` serving signature adds the arg-max cluster ids; `model.encoder` gives the features.
"""

from __future__ import annotations

import keras
from keras import ops

from keras_zoo import _validate, distribute
from keras_zoo.models._custom_step import ObjectiveStepModel, serialize
from keras_zoo.models.simclr import augmenter, registry_encoder
from keras_zoo.registry import Float, Int, register_model


def iic_loss(p_a, p_b, entropy_weight: float = 1.0, eps: float = 1e-8):
    """Negative mutual information of paired cluster assignments (IIC's objective, in nats).

    Args:
        p_a, p_b: ``(N, K)`` cluster probabilities of an image and of its transformed copy.
        entropy_weight: weight lambda of the marginal entropies (1: the mutual information; the
            paper's code raises it above 1 to push harder against using few clusters).

    Returns:
        ``-I(z, z')`` of the symmetrised joint ``P = mean_i p_a[i] p_b[i]^T``; its minimum is
        ``-log K`` (every cluster equally used, assignments certain and invariant).
    """
    p_a, p_b = ops.cast(p_a, "float32"), ops.cast(p_b, "float32")
    # Under a strategy the joint is the global batch's: summed over the replicas (differentiably).
    n = distribute.all_reduce_sum(ops.cast(ops.shape(p_a)[0], "float32"))
    joint = distribute.all_reduce_sum(ops.matmul(ops.transpose(p_a), p_b)) / n
    joint = ops.maximum((joint + ops.transpose(joint)) / 2.0, eps)
    joint = joint / ops.sum(joint)
    p_i = ops.sum(joint, axis=1, keepdims=True)
    p_j = ops.sum(joint, axis=0, keepdims=True)
    return -ops.sum(joint * (ops.log(joint) - entropy_weight * (ops.log(p_i) + ops.log(p_j))))


@keras.saving.register_keras_serializable(package="keras_zoo")
class InvariantInformationClustering(ObjectiveStepModel):
    """IIC: `head(encoder(x))` and `head(encoder(augment(x)))` share as much information as possible.

    Args:
        encoder: `keras.Model` images -> features.
        head: `keras.Model` features -> K cluster logits (the clustering that is served).
        overclustering_head: `keras.Model` features -> more logits, trained with the same loss
            (None: no auxiliary head).
        augmenter: a `keras.Sequential` of random preprocessing layers (applied with training=True).
        repeats: each image is paired with this many independent transformations per step.
        entropy_weight: lambda of `iic_loss` (the metrics report the plain mutual information).

    Example:
        >>> model = keras_zoo.create_model("iic", input_shape=(8, 8, 1), clusters=10)
        >>> model.compile(optimizer="adam"); model.fit(images, epochs=100)
        >>> model.assign(images)  # cluster ids
    """

    PARTS = ("encoder", "head", "overclustering_head", "augmenter")

    def __init__(self, encoder, head, augmenter, overclustering_head=None, repeats=2, entropy_weight=1.0,
                 **kwargs):
        repeats = _validate.positive_int("repeats", repeats)
        entropy_weight = _validate.positive("entropy_weight", entropy_weight)
        inputs = keras.Input(shape=tuple(encoder.inputs[0].shape[1:]), name="inputs")
        logits = head(encoder(inputs))
        super().__init__(inputs, keras.layers.Softmax(dtype="float32", name="clusters")(logits), **kwargs)
        self.encoder = encoder
        self.head = head
        self.overclustering_head = overclustering_head
        self.augmenter = augmenter
        self.repeats = repeats
        self.entropy_weight = entropy_weight
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.mutual_information_tracker = keras.metrics.Mean(name="mutual_information")
        self.overclustering_tracker = keras.metrics.Mean(name="overclustering_mutual_information")

    @property
    def clusters(self) -> int:
        return int(self.head.outputs[0].shape[-1])

    @property
    def metrics(self):
        trackers = [self.loss_tracker, self.mutual_information_tracker]
        return trackers + ([self.overclustering_tracker] if self.overclustering_head is not None else [])

    # === Inference API ===

    def cluster_probabilities(self, images, training=False):
        """``(batch, K)`` cluster probabilities."""
        return ops.softmax(ops.cast(self.head(self.encoder(images, training=training),
                                              training=training), "float32"), axis=-1)

    def assign(self, images, batch_size: int = 256):
        """Cluster id of each image (numpy in, numpy out)."""
        import numpy as np

        probabilities = self.predict(images, batch_size=batch_size, verbose=0)
        return np.argmax(probabilities, axis=-1).astype("int32")

    # === Training ===

    def _objective(self, images, training):
        """(loss, mutual information of the main head[, of the over-clustering head])."""
        repeated = ops.concatenate([images] * self.repeats, axis=0)
        # Both members of a pair are transformed: were one left as it is, "untouched or transformed"
        # would itself be a two-cluster split worth log 2 nats of (useless) mutual information.
        view_a = self.augmenter(repeated, training=True)
        view_b = self.augmenter(repeated, training=True)
        n = ops.shape(repeated)[0]
        # One encoder pass over both halves, so batch-norm statistics cover both views.
        features = self.encoder(ops.concatenate([view_a, view_b], axis=0), training=training)
        heads = [self.head] + ([self.overclustering_head] if self.overclustering_head is not None else [])
        loss, informations = 0.0, []
        for head in heads:
            p = ops.softmax(ops.cast(head(features, training=training), "float32"), axis=-1)
            loss = loss + iic_loss(p[:n], p[n:], self.entropy_weight)
            informations.append(-ops.stop_gradient(iic_loss(p[:n], p[n:])))
        return (loss, *informations)

    # === Config ===

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable,
                "encoder": serialize(self.encoder), "head": serialize(self.head),
                "overclustering_head": (serialize(self.overclustering_head)
                                        if self.overclustering_head is not None else None),
                "augmenter": serialize(self.augmenter), "repeats": self.repeats,
                "entropy_weight": self.entropy_weight}



def conv_encoder(input_shape, width: int, feature_dim: int) -> keras.Model:
    """Two conv-bn-relu stages with max-pooling, flattened (not averaged: where strokes lie is what
    tells digits apart), then a dense layer: images -> `feature_dim` features."""
    from keras_zoo.models import layers

    inputs = layers.image_input(input_shape)
    x = inputs
    for stage in range(2):
        x = layers.conv_bn_act(x, width * 2 ** stage, name=f"stage{stage}_a")
        x = layers.conv_bn_act(x, width * 2 ** stage, name=f"stage{stage}_b")
        if min(x.shape[1:3]) >= 2:
            x = keras.layers.MaxPooling2D(name=f"stage{stage}_pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(feature_dim, use_bias=False, name="features")(x)
    x = keras.layers.BatchNormalization(name="features_bn")(x)
    x = keras.layers.Activation("relu", name="features_relu")(x)
    return keras.Model(inputs, x, name="encoder")


def cluster_head(feature_dim: int, clusters: int, name: str) -> keras.Model:
    """features -> K cluster logits (one linear layer, as in the paper)."""
    features = keras.Input(shape=(feature_dim,), name="features")
    logits = keras.layers.Dense(clusters, dtype="float32", name="logits")(features)
    return keras.Model(features, logits, name=name)


@register_model(family="iic", task="clustering", input_shape=(28, 28, 1), recipe="iic",
                signatures=("cluster",), test_input_shape=(8, 8, 1),
                search_space={"clusters": Int(5, 30, step=5), "overclustering": Int(0, 100, step=10),
                              "width": Int(16, 64, step=16), "entropy_weight": Float(1.0, 3.0),
                              "crop": Float(0.0, 0.5), "translate": Float(0.0, 0.3),
                              "jitter": Float(0.0, 0.6)})
def iic(input_shape, clusters=10, overclustering=50, encoder=None, encoder_options=None, width=32,
        feature_dim=128, entropy_weight=1.5, crop=0.3, translate=0.2, flip=False, jitter=0.3, blur=0.0,
        repeats=2, seed=None):
    """Invariant Information Clustering (Ji et al. 2019): K clusters learned without labels."""
    clusters = _validate.positive_int("clusters", clusters, minimum=2)
    overclustering = _validate.positive_int("overclustering", overclustering, minimum=0)
    if overclustering == 1:
        raise ValueError("overclustering must be 0 (no auxiliary head) or at least 2, got 1")
    views = augmenter(input_shape, crop=crop, translate=translate, flip=flip, jitter=jitter, blur=blur,
                      seed=seed)
    width = _validate.positive_int("width", width)
    feature_dim = _validate.positive_int("feature_dim", feature_dim)
    backbone = (conv_encoder(input_shape, width, feature_dim) if encoder is None
                else registry_encoder(encoder, input_shape, encoder_options))
    dim = int(backbone.outputs[0].shape[-1])
    over = cluster_head(dim, overclustering, "overclustering_head") if overclustering else None
    return InvariantInformationClustering(backbone, cluster_head(dim, clusters, "cluster_head"), views,
                                          overclustering_head=over, repeats=repeats,
                                          entropy_weight=entropy_weight, name="iic")
