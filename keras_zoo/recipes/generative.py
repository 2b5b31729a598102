"""Recipes for the generative models (VAE, GAN): they compute their own loss, so `loss=None`.

The pipeline feeds images only (``targets="none"``). A VAE is selected on its validation negative
ELBO. A GAN has no validation number that tracks sample quality (its losses describe a game, not
a fit), so GAN recipes set ``monitor=None``: no early stopping, and the checkpoint keeps the latest
finite epoch; judge the result with `keras_zoo.evaluation.gan_report` (Frechet distance).
"""

from keras_zoo.recipes.recipe import Recipe, register_recipe

VAE = register_recipe(Recipe(
    name="vae",
    description="AdamW 1e-3 (decoupled weight decay 1.0) with cosine decay, batch 64, up to 250 "
                "epochs, early stopping on the validation negative ELBO.",
    targets="none",
    loss=None,
    metrics=(),
    optimizer="adamw",
    learning_rate=1e-3,
    # Small image sets overfit a VAE's decoder and encoder quickly; decoupled decay (lr * 1.0 per
    # step) bought ~2 nats of held-out ELBO on digits.
    weight_decay=1.0,
    batch_size=64,
    epochs=250,
    monitor="val_loss",
    monitor_mode="min",
    early_stopping_patience=25,
))

DCGAN = register_recipe(Recipe(
    name="dcgan",
    description="Adam 1e-3 with beta_1 0.5 for both players (constant rate), batch 32, 100 epochs, "
                "keeps the latest epoch.",
    targets="none",
    loss=None,
    metrics=(),
    learning_rate=1e-3,
    beta_1=0.5,
    schedule="constant",
    batch_size=32,
    epochs=100,
    monitor=None,
    early_stopping_patience=None,
))

# The same adversarial recipe as DCGAN, run for fewer epochs (each epoch has 5 critic steps per batch).
WGAN_GP = register_recipe(DCGAN.replace(
    name="wgan_gp",
    description="Adam 1e-3 with beta_1 0.5 for both players (constant rate: the critic steps 5x as "
                "often, so a decaying schedule would end its training early), batch 32, 60 epochs, "
                "keeps the latest epoch.",
    epochs=60,
))
