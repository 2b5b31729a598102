"""Recipes for per-pixel classifiers (the `unet` family)."""

from keras_zoo.recipes.recipe import Recipe, register_recipe

UNET = register_recipe(Recipe(
    name="unet",
    description="Adam 3e-3 with cosine decay over 12 epochs, per-pixel sparse cross-entropy, mean IoU and pixel "
                "accuracy, horizontal flips (applied to image and mask alike), early stopping on val_mean_iou.",
    targets="mask",
    learning_rate=3e-3,
    loss="sparse_categorical_crossentropy",
    metrics=("mean_iou", "pixel_accuracy"),
    monitor="val_mean_iou",
    monitor_mode="max",
    batch_size=32,
    # The default unet passes 0.99 validation mean IoU on `shapes` by the seventh epoch.
    epochs=12,
    early_stopping_patience=6,
    augment=("flip",),
))

UNET_DICE = register_recipe(UNET.replace(
    name="unet_dice",
    description="The unet recipe with a soft Dice term added to the cross-entropy (for small or "
                "imbalanced foreground classes).",
    loss="sparse_crossentropy_dice",
))
