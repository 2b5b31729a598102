"""Recipes for domain adaptation: DANN (Ganin et al., JMLR 2016) computes its own loss (`loss=None`)
from labelled source images, paired with unlabelled target images by `keras_zoo.train(..., target=)`.
"""

from keras_zoo.recipes.recipe import Recipe, register_recipe

DANN = register_recipe(Recipe(
    name="dann",
    description="The paper's SGD (momentum 0.9) at 0.01 annealed as 0.01 / (1 + 10p)^0.75, batch 64 "
                "(64 source + 64 target images a step), 48 epochs, keeps the latest epoch; the reversal "
                "weight follows the paper's 2 / (1 + exp(-10p)) - 1.",
    targets="label",
    loss=None,
    metrics=(),
    # Chosen on the target's *validation* split (MNIST -> the MNIST-M-like target built with photos
    # enlarged 4x, seed 0; the target's test split untouched), by DANN's target validation accuracy:
    # 12 epochs (1,356 steps) 0.424 against source-only 0.393, with the largest reversal weight at 1
    # (at 2: 0.403); 24 epochs 0.448; 48 epochs (5,424 steps, still rising at the end; the domain
    # classifier down from 93 % to 67 %) 0.616 against source-only 0.425 at 48. Earlier, on the target
    # cut from 32x32 photos unenlarged with the padded network and half the paper's domain term:
    # 4 epochs 0.295 against 0.209; Adam 1e-3 with cosine decay for 6 epochs 0.226 against 0.315 (the
    # adversarial game swung, domain loss up to 2.5 in epoch 2).
    optimizer="sgd",
    learning_rate=0.01,
    momentum=0.9,
    schedule="annealing",
    batch_size=64,
    epochs=48,
    # The source validation loss rewards stopping before the reversal weight has grown, and target
    # labels are not there to choose a checkpoint with: keep the last epoch, as the paper does.
    monitor=None,
    early_stopping_patience=None,
))
