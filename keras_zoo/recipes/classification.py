"""Recipes for classifiers."""

from keras_zoo.recipes import Recipe, register_recipe

CLASSIFIER = register_recipe(Recipe(
    name="classifier",
    description="Adam 3e-3 with cosine decay, batch 64, up to 30 epochs, early stopping on val_loss.",
    learning_rate=3e-3,
    batch_size=64,
    epochs=30,
    # val_loss, not val_accuracy: on small validation splits accuracy saturates at 1.0 within a few
    # epochs and would stop training long before the held-out loss stops improving.
    monitor="val_loss",
    monitor_mode="min",
    early_stopping_patience=8,
))
