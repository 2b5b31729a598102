"""Checks on what users hand the pipelines: image files (bounded, readable) and numpy arrays (finite).

Every image is opened with PIL only as far as its header before anything decodes it; an image whose
header announces more than `MAX_IMAGE_PIXELS` pixels, or that PIL cannot parse, is refused with its
path named. `scan_images` also checks each file's structure without decoding its pixels where the format
allows (PNG chunks and CRCs, a JPEG's end marker; GIF and BMP are decoded once), so a truncated file fails
here, naming it, instead of deep inside a `tf.data` iterator.
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
    with _open_checked(path, max_pixels) as im:
        return im.size, im.mode


def scan_images(paths, max_pixels: int | None = None) -> list:
    """Check every image (header pixel limit, structure) and return their ``(width, height)`` sizes.

    Each file is opened once and no pixels are decoded where the format allows it: PIL parses the
    header lazily, a PNG's chunks and CRCs are walked without inflating them, and a JPEG counts as
    complete when it ends with its end-of-image marker (one that does not, for instance one with
    trailing bytes, is decoded once to decide). GIF and BMP files are decoded once.
    """
    sizes = []
    for path in paths:
        with _open_checked(path, max_pixels) as im:
            size = im.size
            try:
                _check_structure(im)
            except Exception as err:  # PIL raises a variety of types for corrupt data
                raise ImageFileError(f"image {str(path)!r} is corrupt or truncated "
                                     f"({err or type(err).__name__}); remove or replace it") from None
        sizes.append(size)
    return sizes


class _open_checked:
    """``with _open_checked(path) as im``: PIL's lazy open, header only, within the pixel limit."""

    def __init__(self, path, max_pixels=None):
        self.path = path
        self.limit = MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
        self.image = None

    def __enter__(self):
        from PIL import Image, UnidentifiedImageError

        path, limit = self.path, self.limit
        try:
            self.image = Image.open(path)
        except Image.DecompressionBombError as err:  # PIL's own (higher) limit, hit while parsing the header
            raise ImageFileError(f"image {str(path)!r} is over the pixel limit of {limit}: {err}") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
            raise ImageFileError(f"cannot read image {str(path)!r}: {err}") from None
        width, height = self.image.size
        if width * height > limit:
            self.image.close()
            raise ImageFileError(f"image {str(path)!r} is {width}x{height} = {width * height} pixels, over "
                                 f"the pixel limit of {limit} (keras_zoo.data.checks.MAX_IMAGE_PIXELS); "
                                 "downscale it or raise the limit if you trust the file")
        return self.image

    def __exit__(self, *exc):
        self.image.close()
        return False


_JPEG_END = b"\xff\xd9"


def _check_structure(im) -> None:
    """Raise if the open image `im` is truncated or corrupt; decodes pixels only where it must."""
    if im.format == "PNG":
        im.verify()  # walks the chunks and their CRCs without inflating the pixel data
        return
    if im.format == "JPEG":
        fp = im.fp
        position = fp.tell()
        fp.seek(-len(_JPEG_END), 2)
        ends_complete = fp.read(len(_JPEG_END)) == _JPEG_END
        fp.seek(position)
        if ends_complete:
            return
    im.load()  # GIF, BMP, or a JPEG without its end marker: decoding finds a truncation


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
