"""Recipes for the self-supervised families with their own loss beyond SimCLR: pretext tasks
(rotation prediction), deep clustering (IIC) and future prediction (recurrent forecasters).

Each computes its objective in its `train_step`, so the pipeline feeds inputs only and `loss=None`.
"""

from keras_zoo.recipes import Recipe, register_recipe

ROTATION = register_recipe(Recipe(
    name="rotation",
    description="Adam 2e-3 with cosine decay, batch 128 (x4 rotations), 60 epochs, checkpoint on the "
                "validation rotation loss.",
    targets="none",
    loss=None,
    metrics=(),
    learning_rate=2e-3,
    batch_size=128,
    epochs=60,
    monitor="val_loss",
    monitor_mode="min",
    early_stopping_patience=15,
))

IIC = register_recipe(Recipe(
    name="iic",
    description="Adam 1e-3 with cosine decay, batch 256 (each image paired with 2 transforms), 100 "
                "epochs, checkpoint on the validation loss (minus the mutual information of held-out pairs).",
    targets="none",
    loss=None,
    metrics=(),
    learning_rate=1e-3,
    batch_size=256,
    epochs=100,
    monitor="val_loss",
    monitor_mode="min",
    early_stopping_patience=None,
))

FORECASTER = register_recipe(Recipe(
    name="forecaster",
    description="Adam 3e-3 with cosine decay, clipnorm 1, batch 64, up to 150 epochs, early stopping "
                "on the validation one-step error.",
    targets="none",
    loss=None,
    metrics=(),
    learning_rate=3e-3,
    clipnorm=1.0,
    batch_size=64,
    epochs=150,
    monitor="val_loss",
    monitor_mode="min",
    early_stopping_patience=20,
))
