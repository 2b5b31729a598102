"""Recipes for classifiers."""

from keras_zoo.recipes.recipe import Recipe, register_recipe

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

RESNET = register_recipe(Recipe(
    name="resnet",
    description="He et al.'s ResNet recipe: SGD (Nesterov momentum 0.9) at 0.1 for batch 128, weight "
                "decay, 2 warm-up epochs then cosine decay over 10 epochs, random crop + horizontal flip.",
    optimizer="sgd",
    learning_rate=0.1,
    momentum=0.9,
    # Keras applies weight decay decoupled (w -= lr * wd * w), outside the momentum buffer; 5e-3
    # here decays about as fast as the paper's L2 of 5e-4 does through momentum 0.9 (x 1 / (1 - 0.9)).
    weight_decay=5e-3,
    schedule="cosine",
    warmup_epochs=2,
    batch_size=128,
    # Ten epochs take resnet20 to 100% held-out accuracy on `shapes`; longer runs on harder data
    # (CIFAR-10: ~160 in the paper) pass epochs=.
    epochs=10,
    monitor="val_accuracy",
    monitor_mode="max",
    early_stopping_patience=10,
    augment=("crop", "flip"),
))
