"""Recipes for domain adaptation: DANN (Ganin et al., JMLR 2016) computes its own loss (`loss=None`)
from labelled source images, paired with unlabelled target images by `keras_zoo.train(..., target=)`.
"""

from keras_zoo.recipes.recipe import Recipe, register_recipe

DANN = register_recipe(Recipe(
    name="dann",
    description="Adam 1e-3 with cosine decay, batch 64 (64 source + 64 target images a step), 6 epochs, "
                "keeps the latest epoch; the reversal weight follows the paper's 2 / (1 + exp(-10p)) - 1.",
    targets="label",
    loss=None,
    metrics=(),
    # Chosen on the target's validation split (MNIST -> the MNIST-M-like target, 4 epochs, seed 0; the
    # target's test split untouched): Adam 1e-3 with cosine decay 0.343, the paper's SGD (momentum 0.9,
    # 0.01 annealed as 0.01 / (1 + 10p)^0.75, `schedule="annealing"`) 0.295, source only 0.209.
    optimizer="adam",
    learning_rate=1e-3,
    schedule="cosine",
    batch_size=64,
    epochs=6,
    # The source validation loss rewards stopping before the reversal weight has grown, and target
    # labels are not there to choose a checkpoint with: keep the last epoch, as the paper does.
    monitor=None,
    early_stopping_patience=None,
))
