"""Recipes for self-supervised contrastive pre-training (SimCLR): images only, the model's own loss."""

from keras_zoo.recipes.recipe import Recipe, register_recipe

SIMCLR = register_recipe(Recipe(
    name="simclr",
    description="Adam 2e-3 with warm-up and cosine decay, batch 256 (more negatives per anchor), "
                "300 epochs, checkpoint on the validation NT-Xent loss.",
    targets="none",
    loss=None,
    metrics=(),
    learning_rate=2e-3,
    warmup_epochs=10,
    batch_size=256,
    epochs=300,
    monitor="val_loss",
    monitor_mode="min",
    early_stopping_patience=None,
))
