"""Reading a folder of ``<class>/*.png`` images with PIL, as a user's script would (P1, P5).

`handwritten.py` (the reference script) and `probe.py` (the per-epoch test-accuracy probe) both read
test folders this way; the loader lives here so that neither imports the other for it.
"""

from __future__ import annotations

import os

import numpy as np


def load_folder(folder: str):
    """(images float32 in [0, 1] (n, h, w, c), labels int) of a class-folder tree, classes sorted."""
    from PIL import Image

    classes = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
    images, labels = [], []
    for label, name in enumerate(classes):
        for file in sorted(os.listdir(os.path.join(folder, name))):
            images.append(np.asarray(Image.open(os.path.join(folder, name, file))))
            labels.append(label)
    x = np.stack(images).astype("float32") / 255.0
    return (x[..., None] if x.ndim == 3 else x), np.asarray(labels)
