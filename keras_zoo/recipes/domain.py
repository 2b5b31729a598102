"""Recipes for domain adaptation: DANN (Ganin et al., JMLR 2016) computes its own loss (`loss=None`)
from labelled source images, paired with unlabelled target images by `keras_zoo.train(..., target=)`.
"""

from keras_zoo.recipes.recipe import Recipe, register_recipe

DANN = register_recipe(Recipe(
    name="dann",
    description="The paper's SGD (momentum 0.9) at 0.01 annealed as 0.01 / (1 + 10p)^0.75, batch 64 "
                "(64 source + 64 target images a step), 20 epochs, keeps the latest epoch.",
    targets="label",
    loss=None,
    metrics=(),
    optimizer="sgd",
    learning_rate=0.01,
    momentum=0.9,
    schedule="annealing",
    batch_size=64,
    epochs=20,
    # Target labels are not there to choose a checkpoint with, and the source validation loss
    # rewards stopping before the reversal weight has grown: keep the last epoch, as the paper does.
    monitor=None,
    early_stopping_patience=None,
))
