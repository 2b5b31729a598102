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

FAST_CLASSIFIER = register_recipe(Recipe(
    name="fast_classifier",
    description="Adam 5e-3 with cosine decay from the first step, batch 128, up to 12 epochs, early "
                "stopping on val_loss (patience 4): `cnn_fast` near 98% on 28x28 digits in 1-2 epochs.",
    # Chosen on validation data: trained on 7,200 real MNIST digits, scored on the 800 carved from the
    # same training folder (mnist-8k2k/train; its test folder never read), validation accuracy after
    # epochs 1, 2, 3 / final (early-stopped) weights, seed 0:
    # 5e-3: .966 .985 .985 / .990 (val_loss .033); 3e-3: .975 .979 .986 / .986 (.038);
    # 2e-3: .954 .971 .981 / .985 (.047)
    # (`python benchmarks/run.py --only select_fast_classifier -- DIR/train`; 800 digits: one is 0.125 points).
    # Validation confirms the rate first picked with test accuracies (no longer used for choosing).
    # A one-epoch warm-up cost an epoch to 98% (batch-norm makes full-rate first steps safe);
    # batch 64 trained slower per image on CPU and no better per epoch; batch 256 lost an epoch.
    learning_rate=5e-3,
    batch_size=128,
    epochs=12,
    monitor="val_loss",
    monitor_mode="min",
    early_stopping_patience=4,
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

RESNET_CIFAR = register_recipe(Recipe(
    name="resnet_cifar",
    description="He et al.'s CIFAR-10 schedule (Table 6): SGD momentum 0.9 at 0.1, batch 128, weight decay "
                "1e-4 (as L2), rate x0.1 at 50 % and 75 % of the epochs, 4-pixel padded crop + flip; "
                "164 epochs as in the paper (pass epochs= for shorter runs; the steps follow).",
    optimizer="sgd",
    learning_rate=0.1,
    momentum=0.9,
    nesterov=False,  # the paper's heavy-ball momentum
    # The paper adds 1e-4 * |w|^2 / 2 to the loss: that gradient goes through the momentum buffer and
    # decays each weight by lr * 1e-4 / (1 - 0.9) per step at steady state. Keras applies weight_decay
    # decoupled (w -= lr * wd * w, outside the momentum), and the zoo's ResNets carry no L2 in their
    # layers, so the same decay is wd = 1e-4 / (1 - 0.9) = 1e-3 here (on every weight, batch-norm
    # included, as in the paper's Torch/Caffe training).
    weight_decay=1e-3,
    schedule="step",
    step_at=(0.5, 0.75),
    step_factor=0.1,
    batch_size=128,
    epochs=164,
    monitor="val_accuracy",
    monitor_mode="max",
    # No early stopping: the schedule's last steps are where the accuracy is made.
    early_stopping_patience=None,
    augment=("crop", "flip"),
))

PHOTO_CLASSIFIER = register_recipe(Recipe(
    name="photo_classifier",
    description="fast_classifier for photos: Adam 5e-3 with cosine decay, batch 128, 15 epochs and at "
                "least 1,000 steps (more epochs on small data), random 4-pixel crops and horizontal flips; "
                "`cnn_color`'s recipe.",
    # Chosen on a validation split only (10 % of 10,000 CIFAR-10 training photos, seed 0; the held-out
    # photos only report), by a rule fixed beforehand (benchmarks/suites/color.py, CHOICE_RULE): the
    # best validation accuracy within 1.15x the default's training time, ties within 0.5 points to the
    # default. Validation accuracy of the weights handed back, cnn_color width:rate (15 epochs):
    # 32:5e-3 71.2 % (kept), 32:2e-3 70.3 %, 32:1e-2 71.1 % (a tie), 24:5e-3 70.1 %, 48:5e-3 74.4 %
    # (excluded: 1.48x the time). AMD EPYC AVX2, 2 cores; benchmarks/results/color_select.json and
    # docs/colour-photos.md.
    learning_rate=5e-3,
    batch_size=128,
    epochs=15,
    # The 15 epochs above were chosen on 9,000 training photos: 1,065 steps. A smaller training split
    # gets too few steps from them: on `shapes` (2,100 training images, 17 steps an epoch; seeds 0-5,
    # validation split only) the epoch of lowest validation loss was the 15th on every seed, at a loss
    # of 0.020-0.044 (accuracy 99.67 % on seed 4, 100 % elsewhere); 30 epochs gave 0.0025-0.0055, and at
    # least 1,000 steps (59 epochs; early stopping ended them after 26-49) 0.0006-0.0016, 100 % on
    # every seed (benchmarks/results/color_shapes_val.json). So a run takes at least 1,000 steps, and
    # 9,000 photos or more still train 15 epochs.
    min_steps=1000,
    monitor="val_loss",
    monitor_mode="min",
    early_stopping_patience=5,
    augment=("crop", "flip"),
))
