"""Recipes for classifiers."""

from keras_zoo.recipes import Recipe, register_recipe

CLASSIFIER = register_recipe(Recipe(
    name="classifier",
    description="Adam 1e-3 with cosine decay, batch 64, up to 40 epochs, early stopping on val_accuracy.",
    learning_rate=2e-3,
    batch_size=64,
    epochs=40,
    monitor="val_accuracy",
    monitor_mode="max",
    early_stopping_patience=10,
))
