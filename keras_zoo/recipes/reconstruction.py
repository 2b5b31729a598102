"""Recipes for autoencoders: plain, denoising (noise in the pipeline) and masked (imputation)."""

from keras_zoo.recipes.recipe import Recipe, register_recipe

AUTOENCODER = register_recipe(Recipe(
    name="autoencoder",
    description="Adam 2e-3 with cosine decay on the mean squared reconstruction error; MSE, PSNR and "
                "SSIM on held-out images.",
    targets="image",
    learning_rate=2e-3,
    loss="mse",
    metrics=("mse", "psnr", "ssim"),
    monitor="val_loss",
    monitor_mode="min",
    batch_size=32,
    epochs=60,
    early_stopping_patience=10,
))

DENOISING_AUTOENCODER = register_recipe(AUTOENCODER.replace(
    name="denoising_autoencoder",
    description="The autoencoder recipe on inputs with Gaussian noise (sigma 0.5, clipped to [0, 1]) "
                "added in the pipeline and clean targets; use corruption='salt_pepper:0.2' for "
                "salt-and-pepper noise.",
    # Sigma 0.5 is the noise factor of the Keras blog's MNIST denoising autoencoder.
    corruption="gaussian:0.5",
))

MASKED_AUTOENCODER = register_recipe(AUTOENCODER.replace(
    name="masked_autoencoder",
    description="The autoencoder recipe on inputs with a quarter of their 2x2 patches hidden (set to 0) "
                "in the pipeline; corruption='mask_patches:0.25,size=2,loss=masked' restricts the loss "
                "to the hidden pixels.",
    corruption="mask_patches:0.25,size=2",
))
