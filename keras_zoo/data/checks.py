"""Checks on what users hand the pipelines: image files (bounded, readable) and numpy arrays (finite).

Every image is opened with PIL only as far as its header before anything decodes it; an image whose
header announces more than `MAX_IMAGE_PIXELS` pixels, or that PIL cannot parse, is refused with its
path named. `scan_images` also verifies each file's structure (PNG chunks and CRCs; other formats are decoded
once), so a truncated file fails here, naming it, instead of deep inside a `tf.data` iterator.
"""

from __future__ import annotations

import numpy as np

# 2**26 pixels (8192 x 8192): beyond the photos and scans a zoo model is trained on, and far below
# what would exhaust memory when decoded (a 20000 x 20000 RGB image is 1.2 GB as uint8, 4.8 GB as float).
MAX_IMAGE_PIXELS = 2**26


class ImageFileError(ValueError):
    """An image file that is unreadable, corrupt or too large; the message names the file."""


def image_header(path: str, max_pixels: int | None = None) -> tuple:
    """``((width, height), mode)`` from the file's header, refusing images over the pixel limit."""
    from PIL import Image, UnidentifiedImageError

    limit = MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    try:
        with Image.open(path) as im:
            size, mode = im.size, im.mode
    except Image.DecompressionBombError as err:  # PIL's own (higher) limit, hit while parsing the header
        raise ImageFileError(f"image {str(path)!r} is over the pixel limit of {limit}: {err}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ImageFileError(f"cannot read image {str(path)!r}: {err}") from None
    if size[0] * size[1] > limit:
        raise ImageFileError(f"image {str(path)!r} is {size[0]}x{size[1]} = {size[0] * size[1]} pixels, over "
                             f"the pixel limit of {limit} (keras_zoo.data.checks.MAX_IMAGE_PIXELS); "
                             "downscale it or raise the limit if you trust the file")
    return size, mode


def scan_images(paths, max_pixels: int | None = None) -> list:
    """Check every image (header pixel limit, structure) and return their ``(width, height)`` sizes."""
    from PIL import Image

    sizes = []
    for path in paths:
        size, _ = image_header(path, max_pixels)
        try:
            with Image.open(path) as im:
                if im.format == "PNG":
                    im.verify()  # walks the chunks and their CRCs without decoding pixels
                else:
                    im.load()  # JPEG, GIF, BMP: verify() checks little, decoding finds the truncation
        except Exception as err:  # PIL raises a variety of types for corrupt data
            raise ImageFileError(f"image {str(path)!r} is corrupt or truncated ({err or type(err).__name__}); "
                                 "remove or replace it") from None
        sizes.append(size)
    return sizes


def check_finite(name: str, array) -> None:
    """Refuse NaN or infinity in a float array, naming the first bad example."""
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.floating) or array.size == 0:
        return
    finite = np.isfinite(array)
    if finite.all():
        return
    bad = np.argwhere(~finite)
    first = tuple(int(i) for i in bad[0])
    raise ValueError(f"{name} holds {len(bad)} non-finite value(s) (NaN or inf), the first at index {first} "
                     f"(example {first[0]}): {array[first]!r}; clean or impute the data first")
