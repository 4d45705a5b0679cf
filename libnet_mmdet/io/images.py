"""Reading grayscale tomography images: 2D TIFF/PNG/JPG slices and single slices of 3D (Z, Y, X) TIFF stacks.

Every reader raises one clear exception naming the file (and slice) and the problem: ``FileNotFoundError`` for a
missing file, :class:`ImageFormatError` (a ``ValueError``) for an unreadable file, a 4D or otherwise unsupported
shape, a slice index out of range and NaN/Inf pixels.

Shapes: a 2D image is (H, W); a colour image (H, W, C) with C in {3, 4}; a stack is (Z, Y, X). Length-1 axes
(e.g. ImageJ's channel axis of a single-channel hyperstack) are squeezed away.

Slicing a stack along ``z`` gives (Y, X) slices, along ``y`` gives (Z, X), along ``x`` gives (Z, Y). Cost of
reading one slice of a TIFF stack:

* uncompressed, contiguous TIFF (what ``tifffile.imwrite`` writes by default): memory-mapped, so only the pages
  (z) or the strided rows (y, x) that the slice touches are read;
* compressed or non-contiguous TIFF: a ``z`` slice reads its one page; a ``y``/``x`` slice has to decode the whole
  stack, which is then kept in memory (one stack per process) so that the other
  slices of the same stack come for free.
"""
import functools
import os
import os.path as osp

import mmcv
import numpy as np
import tifffile
from PIL import Image

TIFF_SUFFIXES = ('.tif', '.tiff')
IMAGE_SUFFIXES = TIFF_SUFFIXES + ('.png', '.jpg', '.jpeg', '.bmp')
SLICE_AXES = ('z', 'y', 'x')  # slicing a (Z, Y, X) stack along axis 0, 1, 2
NORMALIZE_MODES = ('percentile', 'minmax', 'none')


class ImageFormatError(ValueError):
    """An image or label file that cannot be used; the message names the file (and slice) and the problem."""


def is_tiff(path):
    return str(path).lower().endswith(TIFF_SUFFIXES)


def describe(path, slice_axis=None, slice_index=None):
    """``path`` or ``path [z=12]`` for messages."""
    return f'{path} [{slice_axis}={slice_index}]' if slice_axis is not None else str(path)


def _check_exists(path):
    if not osp.isfile(path):
        raise FileNotFoundError(f'image file not found: {path}')


def _tiff_layout(tif, path):
    """(series, shape, is_colour) of a TIFF file's first series, length-1 axes squeezed; raises for 4D+."""
    series = tif.series[0]
    kept = [(n, a) for n, a in zip(series.shape, series.axes) if n != 1]
    shape, axes = tuple(n for n, _ in kept), ''.join(a for _, a in kept)
    is_colour = len(shape) == 3 and axes.endswith('S') and shape[-1] in (3, 4)
    if len(shape) not in (2, 3) or (axes.endswith('S') and not is_colour):
        raise ImageFormatError(
            f'{path}: unsupported {len(shape)}D image of shape {shape} (axes {axes or "?"}); expected a 2D slice '
            '(H, W), a colour image (H, W, 3|4) or a 3D stack (Z, Y, X)')
    return series, shape, is_colour


def _open_tiff(path, read):
    """Call ``read(series, shape, is_colour)`` on the open TIFF file; unreadable files raise ImageFormatError."""
    try:
        with tifffile.TiffFile(path) as tif:
            return read(*_tiff_layout(tif, path))
    except ImageFormatError:
        raise
    except Exception as exc:  # tifffile raises TiffFileError, ValueError, struct.error, IndexError, ...
        raise ImageFormatError(f'{path}: not a readable TIFF file ({type(exc).__name__}: {exc})') from exc


def read_image_info(path):
    """Shape and dtype of an image file without reading its pixels.

    Returns:
        (shape, dtype, is_stack): ``shape`` is (H, W), (H, W, C) or (Z, Y, X) after squeezing length-1 axes;
        ``is_stack`` is True for a 3D grayscale stack.
    """
    _check_exists(path)
    if is_tiff(path):
        return _open_tiff(path, lambda series, shape, is_colour: (
            shape, np.dtype(series.dtype), len(shape) == 3 and not is_colour))
    try:
        with Image.open(path) as image:
            width, height = image.size
            bands = len(image.getbands())
            mode = image.mode
    except Exception as exc:
        raise ImageFormatError(f'{path}: not a readable image file ({type(exc).__name__}: {exc})') from exc
    dtype = np.dtype({'F': np.float32, 'I': np.int32}.get(mode, np.uint16 if mode.startswith('I;16') else np.uint8))
    shape = (height, width) if bands == 1 else (height, width, bands)
    return shape, dtype, False


def _read_tiff_full(path):
    """(array, is_stack): the whole first series of a TIFF file, length-1 axes squeezed."""
    return _open_tiff(path, lambda series, shape, is_colour: (
        series.asarray().reshape(shape), len(shape) == 3 and not is_colour))


def tiff_memmap(path, shape=None):
    """A read-only memory map of a TIFF file's pixels, reshaped to ``shape`` when given (e.g. (1, Y, X) for one
    page), or None when the file cannot be mapped whole (compressed, tiled or not contiguous)."""
    try:
        mapped = tifffile.memmap(path, mode='r')
    except ValueError:
        return None
    if shape is None:
        return mapped
    return mapped.reshape(shape) if mapped.size == int(np.prod(shape)) else None


@functools.lru_cache(maxsize=1)
def _read_whole_stack(path, mtime_ns):
    """Decode a whole (Z, Y, X) stack once per process (``mtime_ns`` invalidates the cache when the file changes)."""
    stack, _ = _read_tiff_full(path)
    stack.setflags(write=False)
    return stack


def _read_page(series, shape, slice_index):
    """Page ``slice_index`` of a stack stored one (Y, X) page per z, else None."""
    if len(series.pages) != shape[0]:
        return None
    return series.pages[slice_index].asarray().reshape(shape[1:])


def _read_tiff_slice(path, slice_axis, slice_index):
    """One 2D slice of a (Z, Y, X) TIFF stack (see the module docstring for the cost)."""
    where = describe(path, slice_axis, slice_index)
    shape, _, is_stack = read_image_info(path)
    if not is_stack:
        raise ImageFormatError(f'{where}: a slice was requested but the file holds a 2D image of shape {shape}, '
                               'not a (Z, Y, X) stack')
    axis = SLICE_AXES.index(slice_axis)
    if not 0 <= slice_index < shape[axis]:
        raise ImageFormatError(f'{where}: slice index out of range for a stack of shape (Z, Y, X) = {shape}')
    stack = tiff_memmap(path, shape)
    if stack is not None:
        return np.array(np.take(stack, slice_index, axis=axis))
    if axis == 0:
        page = _open_tiff(path, lambda series, shape, is_colour: _read_page(series, shape, slice_index))
        if page is not None:
            return page
    stack = _read_whole_stack(path, os.stat(path).st_mtime_ns)
    return np.array(np.take(stack, slice_index, axis=axis))


def _read_other(path):
    """PNG/JPG/BMP as stored (8 or 16 bit, grayscale or BGR colour)."""
    with open(path, 'rb') as f:
        content = f.read()
    image = mmcv.imfrombytes(content, flag='unchanged', backend='cv2')
    if image is None:
        raise ImageFormatError(f'{path}: not a readable image file')
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    return image


def read_image(path, slice_axis=None, slice_index=None, allow_stack=False):
    """Read a 2D image, or one slice of a 3D TIFF stack when ``slice_axis`` ('z', 'y', 'x') and ``slice_index``
    are given.

    Args:
        path (str): TIFF, PNG, JPG or BMP file.
        slice_axis (str | None): 'z' gives a (Y, X) slice, 'y' a (Z, X) slice, 'x' a (Z, Y) slice.
        slice_index (int | None): index along ``slice_axis``.
        allow_stack (bool): return a whole (Z, Y, X) stack instead of raising when no slice is given.

    Returns:
        np.ndarray: (H, W) or (H, W, C) colour (BGR for PNG/JPG, as stored for TIFF) in the stored dtype, or
        (Z, Y, X) with ``allow_stack``.
    """
    _check_exists(path)
    if slice_axis is not None:
        if slice_axis not in SLICE_AXES:
            raise ImageFormatError(f'{describe(path, slice_axis, slice_index)}: slice_axis must be one of '
                                   f'{SLICE_AXES}, got {slice_axis!r}')
        if not is_tiff(path):
            raise ImageFormatError(f'{describe(path, slice_axis, slice_index)}: slices can only be read from '
                                   'TIFF stacks')
        return _read_tiff_slice(path, slice_axis, int(slice_index))
    if not is_tiff(path):
        return _read_other(path)
    image, is_stack = _read_tiff_full(path)
    if is_stack and not allow_stack:
        raise ImageFormatError(f'{path}: 3D stack of shape (Z, Y, X) = {image.shape}; give slice_axis and '
                               'slice_index (e.g. with LabelTiffDataset) to train on its slices')
    return image


def open_stack(path):
    """A whole (Z, Y, X) stack or 2D image for scanning: memory-mapped when the TIFF allows it, else read.

    Returns:
        np.ndarray: read-only (Z, Y, X) or (H, W) array (``np.memmap`` for uncompressed contiguous TIFF).
    """
    shape, _, _ = read_image_info(path)
    stack = tiff_memmap(path, shape) if is_tiff(path) else None
    return stack if stack is not None else read_image(path, allow_stack=True)


def check_finite(image, path, slice_axis=None, slice_index=None):
    """Raise :class:`ImageFormatError` naming the file, slice and first bad pixel if ``image`` has NaN/Inf."""
    if np.issubdtype(image.dtype, np.floating):
        bad = ~np.isfinite(image)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ImageFormatError(f'{describe(path, slice_axis, slice_index)}: {int(bad.sum())} NaN/Inf pixel(s), '
                                   f'first at index {first}')
    return image


def normalize_intensity(image, mode='percentile', percentiles=(0.5, 99.5)):
    """Map a grayscale or colour image of any dtype to float32 in [0, 255].

    Args:
        image (np.ndarray): (H, W) or (H, W, C), uint8 / uint16 / int / float32 / float64, finite.
        mode (str): ``'percentile'``: the ``percentiles`` (low, high) of all pixels map to 0 and 255 and values
            beyond are clipped (robust to hot pixels and dark borders); ``'minmax'``: min and max map to 0 and
            255; ``'none'``: values are kept as they are (right for 8-bit data only).
        percentiles (tuple[float, float]): for ``'percentile'``, in [0, 100].

    Returns:
        np.ndarray: float32, same shape. A constant image maps to 0.
    """
    if mode not in NORMALIZE_MODES:
        raise ValueError(f'normalize must be one of {NORMALIZE_MODES}, got {mode!r}')
    image = np.asarray(image, dtype=np.float32)
    if mode == 'none':
        return image
    low, high = np.percentile(image, percentiles if mode == 'percentile' else (0, 100))
    if high <= low:
        return np.zeros_like(image)
    return np.clip((image - low) * (255.0 / (high - low)), 0, 255).astype(np.float32)


def to_channels(image, channels):
    """(H, W, ``channels``) from a grayscale (H, W) or colour (H, W, 3|4, BGR[A]) image.

    Grayscale is repeated into 3 channels for ImageNet-style backbones; colour keeps its 3 channels (alpha is
    dropped) or becomes grayscale (``mmcv.bgr2gray``) for ``channels=1``.
    """
    if channels not in (1, 3):
        raise ValueError(f'channels must be 1 or 3, got {channels!r}')
    if image.ndim == 3:
        image = image[..., :3]
        return image if channels == 3 else mmcv.bgr2gray(image, keepdim=True)
    return np.repeat(image[..., None], channels, axis=-1)
