"""Checks on what users hand the pipelines: image files (bounded, readable) and numpy arrays (finite).

Every image is opened only as far as its header before anything decodes it; an image whose
header announces more than `MAX_IMAGE_PIXELS` pixels, or that PIL cannot parse, is refused with its
path named. `scan_images` also checks each file's structure without decoding its pixels where the format
allows (PNG chunks and CRCs, a JPEG's end marker; GIF and BMP are decoded once), so a truncated file fails
here, naming it, instead of deep inside a `tf.data` iterator.
"""

from __future__ import annotations

import os
import struct
import zlib

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

    Each file is opened once and no pixels are decoded where the format allows it: a PNG's chunks
    and CRCs are walked without inflating them (here for files up to 1 MiB, see `_small_png_size`;
    by PIL above that), PIL parses other headers lazily, and a JPEG counts as complete when it ends
    with its end-of-image marker (one that does not, for instance one with trailing bytes, is
    decoded once to decide). GIF and BMP files are decoded once.
    """
    limit = MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    sizes = []
    for path in paths:
        size = _small_png_size(path, limit)
        if size is not None:
            sizes.append(size)
            continue
        with _open_checked(path, max_pixels) as im:
            size = im.size
            try:
                _check_structure(im)
            except Exception as err:  # PIL raises a variety of types for corrupt data
                raise _corrupt(path, err or type(err).__name__) from None
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
            raise _over_limit(path, width, height, limit)
        frames = _frame_count(self.image)
        if frames > 1 and width * height * frames > limit:
            self.image.close()
            raise ImageFileError(
                f"image {str(path)!r} is an animation of {frames} frames of {width}x{height} = "
                f"{width * height * frames} pixels in all, over the pixel limit of {limit} "
                "(keras_zoo.data.checks.MAX_IMAGE_PIXELS; TensorFlow's decoder reads every frame even "
                "where only the first is kept)")
        return self.image

    def __exit__(self, *exc):
        self.image.close()
        return False


def _frame_count(image) -> int:
    """Frames of an animated GIF or WebP (PIL walks the frame headers without decoding pixels); 1
    for other images. `tf.io.decode_image(..., expand_animations=False)` decodes every frame of a
    GIF before keeping the first (40 frames of 1000x1000: 19x the time of one, +260 MB peak)."""
    if image.format not in ("GIF", "WEBP"):
        return 1
    try:
        return max(int(getattr(image, "n_frames", 1)), 1)
    except (OSError, ValueError, EOFError) as err:
        raise _corrupt(getattr(image, "filename", "?"), err) from None


def _over_limit(path, width: int, height: int, limit: int) -> ImageFileError:
    return ImageFileError(f"image {str(path)!r} is {width}x{height} = {width * height} pixels, over "
                          f"the pixel limit of {limit} (keras_zoo.data.checks.MAX_IMAGE_PIXELS); "
                          "downscale it or raise the limit if you trust the file")


def _corrupt(path, reason) -> ImageFileError:
    return ImageFileError(f"image {str(path)!r} is corrupt or truncated ({reason}); remove or replace it")


_JPEG_END = b"\xff\xd9"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG files up to this size are checked here from one read: the same checks as PIL's open + verify
# (IHDR first, every chunk complete with a matching CRC, image data, IEND), about twice as fast
# for the small images of digit-sized data sets, where the scan is a visible part of a run's
# start-up (10,000 28x28 PNGs: 0.29 s against 0.62 s). Larger files and other formats go through PIL.
_PNG_FAST_BYTES = 1 << 20


def _small_png_size(path, limit: int):
    """``(width, height)`` of a PNG of at most `_PNG_FAST_BYTES` whose chunks all check out; None for
    any other file (left to PIL); `ImageFileError` naming the file for a corrupt one or one over `limit`."""
    try:
        with open(path, "rb") as f:
            if f.read(len(_PNG_SIGNATURE)) != _PNG_SIGNATURE or os.fstat(f.fileno()).st_size > _PNG_FAST_BYTES:
                return None
            data = f.read()
    except OSError:
        return None  # PIL's open names the file and the reason
    if len(data) < 25 or data[4:8] != b"IHDR" or struct.unpack(">I", data[:4])[0] != 13:
        raise _corrupt(path, "no PNG header (IHDR) after the signature")
    width, height = struct.unpack(">II", data[8:16])
    if width == 0 or height == 0:
        raise _corrupt(path, f"its header gives a size of {width}x{height}")
    if width * height > limit:
        raise _over_limit(path, width, height, limit)
    position, has_data = 0, False
    while True:
        if position + 12 > len(data):
            raise _corrupt(path, "the file ends before its IEND chunk")
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        end = position + 8 + length
        if end + 4 > len(data):
            raise _corrupt(path, f"chunk {kind!r} runs past the end of the file")
        if zlib.crc32(data[position + 4:end]) != struct.unpack(">I", data[end:end + 4])[0]:
            raise _corrupt(path, f"CRC mismatch in chunk {kind!r}")
        has_data = has_data or kind == b"IDAT"
        if kind == b"IEND":
            if not has_data:
                raise _corrupt(path, "no image data (IDAT) before IEND")
            return width, height
        position = end + 4


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
