"""Reading grayscale tomography images: 2D TIFF/PNG/JPG slices and single slices of 3D (Z, Y, X) TIFF stacks.

Every reader raises one clear exception naming the file (and slice) and the problem: ``FileNotFoundError`` for a
missing file, :class:`ImageFormatError` (a ``ValueError``) for a file that is not an image, a truncated or corrupt
TIFF, a 4D or otherwise unsupported shape, a slice index out of range and NaN/Inf pixels.

Shapes: a 2D image is (H, W); a colour image (H, W, C) with C in {3, 4} (a planar TIFF's (C, H, W) samples too);
a stack is (Z, Y, X); a TIFF of several channels (ImageJ composite, OME-TIFF ``CYX``) is refused, not read as z
slices. Length-1 axes (e.g. ImageJ's channel axis of a single-channel hyperstack) are squeezed away, except the
axes that the file's metadata declare (tifffile's JSON description with axes ``ZYX``, as
:func:`~libnet_mmdet.io.write_tiff` writes a one-slice volume or a (Z, 1, X) one, or ImageJ's ``slices``): such a
file is a (1, Y, X) or (Z, 1, X) stack.

Slicing a stack along ``z`` gives (Y, X) slices, along ``y`` gives (Z, X), along ``x`` gives (Z, Y). Cost of
reading one slice of a TIFF stack:

* uncompressed, contiguous TIFF (what ``tifffile.imwrite`` writes by default): memory-mapped, so only the pages
  (z) or the strided rows (y, x) that the slice touches are read;
* compressed or non-contiguous TIFF: a ``z`` slice reads its one page; a ``y``/``x`` slice has to decode the whole
  stack, which is then kept in memory (one stack per process) so that the other
  slices of the same stack come for free.
"""
import contextlib
import functools
import logging
import numbers
import os
import os.path as osp
import warnings

import mmcv
import numpy as np
import tifffile
from PIL import Image
from scipy import ndimage
from skimage.morphology import convex_hull_image

from .errors import InputError, check_int

TIFF_SUFFIXES = ('.tif', '.tiff')
#: The first bytes of a classic (``*``) or BigTIFF (``+``) file, little- (``II``) or big-endian (``MM``).
TIFF_HEADERS = (b'II*\x00', b'MM\x00*', b'II+\x00', b'MM\x00+')
IMAGE_SUFFIXES = TIFF_SUFFIXES + ('.png', '.jpg', '.jpeg', '.bmp')
SLICE_AXES = ('z', 'y', 'x')  # slicing a (Z, Y, X) stack along axis 0, 1, 2
NORMALIZE_MODES = ('percentile', 'minmax', 'none')
#: ``'percentile'`` normalisation leaves out the image's minimum or maximum value when more than this fraction of its
#: pixels hold it: a fill value (outside the reconstructed field of view, masked regions), not a measurement.
FILL_FRACTION = 0.01
#: :func:`outside_view_mask` also needs at least this many fill pixels: in a small crop one darkest pixel on the
#: border is more than :data:`FILL_FRACTION` of it.
MIN_FILL_PIXELS = 64


class ImageFormatError(InputError):
    """An image or label file that cannot be used; the message names the file (and slice) and the problem."""


def check_slicing(axes, step, names=('slice_axes', 'slice_step')):
    """The slicing of (Z, Y, X) stacks into 2D slices, checked: ``(axes, step)`` as a tuple and an int.

    Args:
        axes (str | sequence[str]): one or more of :data:`SLICE_AXES`, each once (e.g. ``'zyx'``).
        step (int): keep every ``step``-th slice: an integer >= 1 (numpy integers too).
        names (tuple[str, str]): the two arguments' names in the message.

    Returns:
        tuple: ``(axes, step)``: a tuple of axis names and an int.

    Raises:
        ValueError: an axis other than 'z', 'y', 'x', one twice, none, or a step that is not an integer >= 1.
        TypeError: ``axes`` is not iterable.
    """
    axes_name, step_name = names
    axes = tuple(axes)
    if not axes or any(axis not in SLICE_AXES for axis in axes) or len(set(axes)) < len(axes):
        raise ValueError(f'{axes_name} must be a non-empty selection of {SLICE_AXES}, each axis once, got {axes!r}')
    return axes, check_int(step, step_name, 1)


def is_tiff(path):
    return str(path).lower().endswith(TIFF_SUFFIXES)


def describe(path, slice_axis=None, slice_index=None):
    """``path`` or ``path [z=12]`` for messages."""
    return f'{path} [{slice_axis}={slice_index}]' if slice_axis is not None else str(path)


def _check_exists(path):
    if not osp.isfile(path):
        raise FileNotFoundError(f'image file not found: {path}')


class _TiffLog(logging.Handler):
    """Collects what tifffile logs instead of raising; its errors (a page offset beyond the end of the file, a
    corrupted tag list, ImageJ or shaped metadata that do not fit the data) are what a truncated or damaged copy
    gives."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.errors = []

    def emit(self, record):
        if record.levelno >= logging.ERROR:
            self.errors.append(record.getMessage())


@contextlib.contextmanager
def _tifffile_log():
    """Collect tifffile's log records in the yielded :class:`_TiffLog` instead of printing them (what matters is
    reported once, in our error)."""
    log = _TiffLog()
    logger = logging.getLogger('tifffile')
    logger.addHandler(log)
    propagate, logger.propagate = logger.propagate, False
    try:
        yield log
    finally:
        logger.removeHandler(log)
        logger.propagate = propagate


def _tiff_problem(path, detail):
    """What is wrong with a TIFF file tifffile failed on: no TIFF header at all, or a damaged file."""
    with open(path, 'rb') as f:
        head = f.read(4)
    if head not in TIFF_HEADERS:
        return f'cannot read as TIFF: not a TIFF file (it starts with {head!r})'
    return f'not a readable TIFF file: truncated or corrupt ({detail})'


@contextlib.contextmanager
def tiff_errors(path, where=None):
    """Run a block that reads the TIFF file ``path`` with tifffile; any failure, and any error tifffile only logs,
    becomes one :class:`ImageFormatError` naming ``where`` (default ``path``; e.g. ``path [z=3]``): "not a TIFF
    file" or "truncated or corrupt". :class:`InputError` raised in the block by a check of a sound file passes
    unchanged. tifffile's log lines are not printed."""
    failure = None
    with _tifffile_log() as log:
        try:
            yield
        except InputError as exc:
            if not log.errors:  # our own check (e.g. a 4D shape) of a sound file
                raise
            failure = exc  # e.g. "2D image" when a damaged file lost its pages
        except MemoryError:  # a sound file too large for this machine
            raise
        except Exception as exc:  # tifffile raises TiffFileError, ValueError, struct.error, IndexError, OSError, ...
            failure = exc
    if failure is not None or log.errors:
        detail = log.errors[0] if log.errors else f'{type(failure).__name__}: {failure}'
        raise ImageFormatError(f'{where or path}: {_tiff_problem(path, detail)}') from failure


def _declared_axes(tif, series):
    """The axes that the file's metadata name even at length 1, so they are kept: the ``Z``, ``Y`` and ``X`` of
    tifffile's JSON description (what :func:`~libnet_mmdet.io.write_tiff` writes for a (1, Y, X) or (Z, 1, X)
    volume), or ImageJ's ``slices`` (a ``Z``)."""
    if series.kind == 'shaped':
        return set(series.get_axes(False)) & set('ZYX')
    if series.kind == 'imagej' and 'slices' in (tif.imagej_metadata or {}):
        return {'Z'}
    return set()


def _is_preview(series):
    """True for a series of reduced-resolution pages or SubIFDs: a thumbnail or preview beside the image."""
    return series.keyframe.is_reduced or series.keyframe.is_subifd


def _tiff_layout(tif, path):
    """(series, shape, is_colour) of a TIFF file's one image series (previews aside), length-1 axes squeezed (except
    those the metadata declare, see :func:`_declared_axes`) and colour samples last (``S``, wherever the file
    stores them: a planar RGB file's (3, H, W) is an (H, W, 3) colour image); raises for several image series (only
    the first would be read), a stack with a page stored unlike its first, channels (a ``C`` axis longer than 1:
    not z slices), 4D+ and empty images."""
    _check_pages_alike(path)
    series = tif.series[0]
    images = [series] + [s for s in tif.series[1:] if not _is_preview(s)]  # a thumbnail beside the data is fine
    if len(images) > 1:  # e.g. slices appended one call at a time, or a page unlike the others
        shapes = ', '.join(str(s.shape) for s in images[:3]) + (', ...' if len(images) > 3 else '')
        raise ImageFormatError(
            f'{path}: holds {len(images)} separate images (shapes {shapes}), e.g. slices appended one at a time '
            'or pages that differ; expected one 2D image or one (Z, Y, X) stack: write the stack in one piece '
            '(tifffile.imwrite(path, volume_zyx))')
    declared = _declared_axes(tif, series)
    kept = [(n, a) for n, a in zip(series.get_shape(False), series.get_axes(False)) if n != 1 or a in declared]
    shape, axes = tuple(n for n, _ in kept), ''.join(a for _, a in kept)
    if 'C' in axes:  # ImageJ composite, OME-TIFF channels: not z slices
        raise ImageFormatError(f'{path}: TIFF axes ({axes}) of shape {shape} hold {shape[axes.index("C")]} channels, '
                               'not a grayscale image or a (Z, Y, X) volume; save one channel per file')
    if 'S' in axes:  # colour samples last, as a planar (separate) file's samples are read
        s = axes.index('S')
        shape, axes = shape[:s] + shape[s + 1:] + shape[s:s + 1], axes[:s] + axes[s + 1:] + 'S'
    is_colour = len(shape) == 3 and axes.endswith('S') and shape[-1] in (3, 4)
    if len(shape) not in (2, 3) or (axes.endswith('S') and not is_colour):
        raise ImageFormatError(
            f'{path}: unsupported {len(shape)}D image of shape {shape} (axes {axes or "?"}); expected a 2D slice '
            '(H, W), a colour image (H, W, 3|4) or a 3D stack (Z, Y, X)')
    if 0 in shape:
        raise ImageFormatError(f'{path}: empty image of shape {shape}')
    if len(shape) == 3 and not is_colour and axes[0] == 'T':  # ImageJ frames, OME time points
        warnings.warn(f'{path}: its {shape[0]} images are stored as time points (TIFF axes {axes}, e.g. ImageJ '
                      'frames), read here as the z slices of one volume; if they are a time series, segment each '
                      'one as a 2D image (Image > Properties in ImageJ turns frames into slices)')
    return series, shape, is_colour


def _check_pages_alike(path):
    """Raise :class:`ImageFormatError` when a page of the TIFF file ``path``'s stack is stored unlike its first
    (another shape, dtype, compression, tiling, photometric, ...). tifffile decodes every page of a stack with the
    first page's layout (a plain multi-page file whose pages 1, 7 and last match the first, tifffile's JSON and
    ImageJ stacks), checking only each page's width: a page that differs otherwise would be read as garbage or fail
    obscurely. Every page header is compared (not the pixels), once per file and modification in a process."""
    stat = os.stat(path)
    unlike = _page_unlike_first(os.fspath(path), stat.st_mtime_ns, stat.st_size)
    if unlike is not None:
        index, first_index, differences = unlike
        raise ImageFormatError(f'{path}: page {index} is stored unlike page {first_index} ({differences}); expected '
                               'one (Z, Y, X) stack of pages alike: resave it in one piece (tifffile.imwrite(path, '
                               'volume_zyx))')


#: What a TIFF page's decoding depends on (tifffile ``TiffPage`` attributes), named when two pages differ.
_PAGE_LAYOUT = ('shape', 'dtype', 'compression', 'photometric', 'planarconfig', 'predictor', 'tile', 'rowsperstrip',
                'fillorder', 'bitspersample', 'sampleformat', 'extrasamples')


@functools.lru_cache(maxsize=1024)
def _page_unlike_first(path, mtime_ns, size):
    """``(index, index of the first page, 'what differs')`` for the first page of the TIFF file's stack (its first
    image series) whose header differs from the first page's, or None (``mtime_ns`` and ``size`` make a changed file
    checked again)."""
    with tifffile.TiffFile(path) as tif:
        try:
            indices = [page.index for page in tif.series[0].pages if page is not None]
        except RuntimeError:  # tifffile's frames refuse a page of another width in a file of pages alike
            if not tif.is_uniform:
                raise
            indices = list(range(len(tif.pages)))
        if len(indices) < 2:
            return None
        pages = tif.pages
        pages.useframes = False
        first = pages[indices[0]].aspage()
        for index in indices[1:]:
            page = pages[index].aspage()
            if page.hash != first.hash:
                differences = [f'{name} {_layout_value(page, name)} against {_layout_value(first, name)}'
                               for name in _PAGE_LAYOUT if _layout_value(page, name) != _layout_value(first, name)]
                return index, indices[0], ', '.join(differences) or 'its tags'
    return None


def _layout_value(page, name):
    value = getattr(page, name, None)
    return value.name.lower() if hasattr(value, 'name') else str(value)


def _check_data_in_file(tif, series, path):
    """Raise :class:`ImageFormatError` when the pixel data of ``series`` would lie beyond the end of the file."""
    size = tif.filehandle.size
    if series.dataoffset is not None:  # contiguous
        end = series.dataoffset + series.nbytes
    else:
        if any(page is None for page in series.pages):
            raise ImageFormatError(f'{path}: not a readable TIFF file: truncated or corrupt (pages are missing)')
        end = max((offset + count for page in series.pages
                   for offset, count in zip(page.dataoffsets, page.databytecounts)), default=0)
    if end > size:
        raise ImageFormatError(f'{path}: not a readable TIFF file: truncated or corrupt (its pixel data end at byte '
                               f'{end}, the file has {size} bytes)')


def read_tiff(path, read):
    """Open the TIFF file ``path``, check it, and return ``read(tif, series, shape, is_colour)``.

    ``shape`` is the image series' shape as :func:`read_image_info` gives it. A file that is not a TIFF, is
    truncated or corrupt (tifffile fails or logs an error, or the pixel data lie beyond its end), or is 4D raises
    :class:`ImageFormatError` naming it.
    """
    with tiff_errors(path), tifffile.TiffFile(path) as tif:
        series, shape, is_colour = _tiff_layout(tif, path)
        _check_data_in_file(tif, series, path)
        return read(tif, series, shape, is_colour)


def read_image_info(path):
    """Shape and dtype of an image file without reading its pixels.

    Returns:
        (shape, dtype, is_stack): ``shape`` is (H, W), (H, W, C) or (Z, Y, X) after squeezing length-1 axes;
        ``is_stack`` is True for a 3D grayscale stack.
    """
    _check_exists(path)
    if is_tiff(path):
        return read_tiff(path, lambda tif, series, shape, is_colour: (
            shape, np.dtype(series.dtype), len(shape) == 3 and not is_colour))
    try:
        with Image.open(path) as image:
            width, height = image.size
            bands = len(image.getbands())
            mode, info, image_format = image.mode, dict(image.info), image.format
            palette = image.getpalette() if mode == 'P' else None
    except Exception as exc:
        raise ImageFormatError(f'{path}: not a readable image file ({type(exc).__name__}: {exc})') from exc
    dtype = np.dtype({'F': np.float32, 'I': np.int32}.get(mode, np.uint16 if mode.startswith('I;16') else np.uint8))
    if image_format == 'PNG' and mode in ('P', 'PA'):  # OpenCV reads a palette PNG as its colours, not indices
        bands = 4 if mode == 'PA' or 'transparency' in info else 3
    if image_format == 'BMP' and mode == 'P':  # OpenCV: its colours (BGR), or gray when each colour is a gray
        colours = np.asarray(palette).reshape(-1, 3)
        bands = 1 if (colours == colours[:, :1]).all() else 3
    shape = (height, width) if bands == 1 else (height, width, bands)
    return shape, dtype, False


def is_2d_image_file(path):
    """True when ``path`` is an existing image file holding one 2D image (a single-page TIFF, PNG, JPG or BMP,
    grayscale or colour): what :func:`read_image` reads whole and a volume reader refuses. False for anything else
    (a folder, a (Z, Y, X) TIFF stack, an HDF5 or Zarr path); an image file that cannot be read raises
    :class:`ImageFormatError` naming it."""
    path = os.fspath(path)
    if not osp.isfile(path) or not path.lower().endswith(IMAGE_SUFFIXES):
        return False
    return not read_image_info(path)[2]


def _read_tiff_full(path):
    """The whole image series of a TIFF file in the shape :func:`read_image_info` gives: length-1 axes squeezed,
    colour samples last ((H, W, C), from a planar (C, H, W) file too)."""
    def read(tif, series, shape, is_colour):
        image = series.asarray()
        if is_colour:
            image = np.moveaxis(image.reshape(series.get_shape(False)), series.get_axes(False).index('S'), -1)
        return image.reshape(shape)

    return read_tiff(path, read)


def tiff_memmap(path, shape=None):
    """A read-only memory map of a TIFF file's pixels, reshaped to ``shape`` when given (e.g. (1, Y, X) for one
    page), or None when the file cannot be mapped whole (compressed, tiled or not contiguous) or its pixels are not
    stored in ``shape``'s order (a planar (3, H, W) colour file for (H, W, 3))."""
    try:
        with _tifffile_log():
            mapped = tifffile.memmap(path, mode='r')
    except ValueError:
        return None
    if shape is None:
        return mapped
    squeezed = [tuple(n for n in sizes if n != 1) for sizes in (mapped.shape, shape)]
    return mapped.reshape(shape) if squeezed[0] == squeezed[1] else None


@functools.lru_cache(maxsize=1)
def _read_whole_stack(path, mtime_ns):
    """Decode a whole (Z, Y, X) stack once per process (``mtime_ns`` invalidates the cache when the file changes)."""
    stack = _read_tiff_full(path)
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
    if stack is not None:  # the map is in the file's byte order: a big-endian file's slice becomes native
        return np.array(np.take(stack, slice_index, axis=axis), dtype=stack.dtype.newbyteorder('='))
    if axis == 0:
        page = read_tiff(path, lambda tif, series, shape, is_colour: _read_page(series, shape, slice_index))
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
        if isinstance(slice_index, bool) or not isinstance(slice_index, numbers.Integral):
            raise ImageFormatError(f'{path}: slice_index must be an integer with slice_axis={slice_axis!r}, got '
                                   f'{slice_index!r}')
        return _read_tiff_slice(path, slice_axis, int(slice_index))
    if not is_tiff(path):
        return _read_other(path)
    if not allow_stack:  # from the header: a stack is refused before its pixels are decoded
        shape, _, is_stack = read_image_info(path)
        if is_stack:
            raise ImageFormatError(f'{path}: a 3D stack of shape (Z, Y, X) = {shape}, not one 2D image; give one '
                                   'slice (datasets read the slices of a stack with slice_axis and slice_index)')
    return _read_tiff_full(path)


def open_stack(path):
    """A whole (Z, Y, X) stack or 2D image for scanning: memory-mapped when the TIFF allows it, else read.

    Returns:
        np.ndarray: read-only (Z, Y, X) or (H, W) array (``np.memmap`` for uncompressed contiguous TIFF).
    """
    shape, _, _ = read_image_info(path)
    stack = tiff_memmap(path, shape) if is_tiff(path) else None
    if stack is None:  # compressed: read whole, read-only as the map is
        stack = read_image(path, allow_stack=True)
        stack.setflags(write=False)
    return stack


def check_not_colour(shape, name):
    """Raise :class:`ImageFormatError` for a (Z, Y, X) volume ``shape`` that is an (H, W, 3 | 4) colour image
    (a PNG read by cv2 or skimage): its last axis holds 3 or 4 values and the other two at least 4 times as many."""
    if len(shape) == 3 and shape[-1] in (3, 4) and min(shape[:2]) >= 4 * shape[-1]:
        raise ImageFormatError(f'{name}: shape {tuple(shape)} is an (H, W, {shape[-1]}) colour image, not a (Z, Y, X) '
                               'volume; segment_image takes a colour slice (or convert it to gray)')


def check_finite(image, path, slice_axis=None, slice_index=None):
    """Raise :class:`ImageFormatError` naming the file, slice and first bad pixel if ``image`` has NaN/Inf."""
    if np.issubdtype(image.dtype, np.floating):
        bad = ~np.isfinite(image)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ImageFormatError(f'{describe(path, slice_axis, slice_index)}: {int(bad.sum())} NaN/Inf pixel(s), '
                                   f'first at index {first}; give them a value first (NaN outside the field of '
                                   f'view: the lowest value there, which then reads as its fill)')
    return image


def without_fill(image):
    """The pixel values of ``image`` (flat) without a fill value: its minimum or maximum when more than
    :data:`FILL_FRACTION` of the pixels hold it (e.g. the 0 that reconstruction software writes outside the field
    of view). All values when that would leave none, or a single value."""
    values = np.asarray(image).ravel()
    if values.size == 0:
        return values
    keep = np.ones(values.shape, bool)
    for extreme in (values.min(), values.max()):
        at_extreme = values == extreme
        if np.count_nonzero(at_extreme) > FILL_FRACTION * values.size:
            keep &= ~at_extreme
    kept = values[keep]
    return kept if kept.size and kept.min() < kept.max() else values


def outside_view_mask(image):
    """The pixels of a 2D slice outside the reconstructed field of view, or None when there are none.

    Reconstruction software writes one value (usually 0) around the reconstructed disc (or beyond a cylinder's ends
    in an xz / yz slice). Such pixels are taken to be those at the slice's minimum value that are connected to the
    slice border, when they are more than :data:`FILL_FRACTION` of the slice (and at least
    :data:`MIN_FILL_PIXELS`) and the rest of the slice is convex
    (at least 95 % of its convex hull: a disc, a band) and at least half of it. A dark phase clipped to the
    minimum between particles leaves a rest that is not convex, a lone particle on an empty background a small one,
    and a bright saturated particle is never at the minimum: none of them is taken. (Slices of a cylinder's edge,
    where the field of view is a band narrower than half the slice, keep their fill.)

    Args:
        image (np.ndarray): (H, W) slice, any real dtype; other shapes have no such pixels.

    Returns:
        np.ndarray | None: (H, W) bool, True outside the field of view.
    """
    image = np.asarray(image)
    if image.ndim != 2 or image.size == 0:
        return None
    least = max(int(FILL_FRACTION * image.size) + 1, MIN_FILL_PIXELS)  # fill pixels: more than the fraction
    at_minimum = image == image.min()
    if np.count_nonzero(at_minimum) < least or at_minimum.all():
        return None
    regions, _ = ndimage.label(at_minimum)
    border = np.unique(np.concatenate([regions[0], regions[-1], regions[:, 0], regions[:, -1]]))
    outside = np.isin(regions, border[border > 0])
    if np.count_nonzero(outside) < least:
        return None
    inside = ~outside
    step = max(1, -(-max(image.shape) // 256))  # convexity is coarse: judged on at most 256 x 256 pixels
    coarse = inside[::step, ::step]
    if inside.sum() < image.size / 2 or coarse.sum() < 0.95 * np.count_nonzero(convex_hull_image(coarse)):
        return None
    return outside


def fill_by_mirror(image, mask):
    """``image`` (H, W) or (H, W, C) with each pixel ``p`` of ``mask`` given the value of its mirror image across the
    nearest pixel ``b`` outside the mask (``2 b - p``, moved onto the slice's edge where it lies beyond), or of ``b``
    itself where the mirror image lies in the mask (a copy): what a model sees of a slice outside its field of view, the sample's texture
    continued past the edge, so that no sharp edge of fill cuts the particles there. (The nearest pixel's value
    alone, used until 2026-12-07, drew radial stripes that moved the phase model's calls across the whole disc:
    BENCHMARKS.md.) The maps of the last masks are kept (the xy slices of a volume share one field of view)."""
    mask = np.asarray(mask, bool)
    rows, cols = _mirror_source(np.packbits(mask).tobytes(), mask.shape)
    return np.asarray(image)[rows, cols]


def slice_outside_view(image):
    """:func:`outside_view_mask` of an (H, W) slice, or of the centre channel of an (H, W, C) stack (a 2.5D
    model's (previous, slice, next) channels share the slice's field of view); None for other shapes."""
    image = np.asarray(image)
    return outside_view_mask(image[..., image.shape[-1] // 2] if image.ndim == 3 else image)


def fill_outside_view(image):
    """What a model is shown of a slice (H, W) or stack (H, W, C): the pixels outside its reconstructed field of
    view (:func:`slice_outside_view`) given the values of their mirror images inside (:func:`fill_by_mirror`), so
    that no flat edge of fill cuts the particles there; ``image`` itself when it has no such pixels. The loaders
    (training, ``tools/test.py``) and the inference API both show it this way."""
    mask = slice_outside_view(image)
    return image if mask is None else fill_by_mirror(image, mask)


@functools.lru_cache(maxsize=2)
def _mirror_source(packed_mask, shape):
    """Row and column (int32, (H, W)) each pixel of a mask (given as ``np.packbits`` bytes) takes its value from in
    :func:`fill_by_mirror`; every other pixel its own."""
    mask = np.unpackbits(np.frombuffer(packed_mask, np.uint8), count=shape[0] * shape[1]).reshape(shape).astype(bool)
    _, (rows, cols) = ndimage.distance_transform_edt(mask, return_indices=True)  # the nearest pixel outside
    grid_rows, grid_cols = np.indices(shape)
    mirror_rows = np.clip(2 * rows - grid_rows, 0, shape[0] - 1)  # off the slice: onto its edge
    mirror_cols = np.clip(2 * cols - grid_cols, 0, shape[1] - 1)
    usable = ~mask[mirror_rows, mirror_cols]
    return np.where(usable, mirror_rows, rows).astype(np.int32), np.where(usable, mirror_cols, cols).astype(np.int32)


def intensity_range(image, mode='percentile', percentiles=(0.5, 99.5)):
    """The values of ``image`` that :func:`normalize_intensity` maps to 0 and 255.

    Args:
        image (np.ndarray): any shape (one slice, or pixels sampled from the slices of a volume), any real dtype,
            finite.
        mode (str): ``'percentile'`` (the ``percentiles`` (low, high) of the pixels, a fill value left out:
            :func:`without_fill`) or ``'minmax'``.
        percentiles (tuple[float, float]): for ``'percentile'``, in [0, 100].

    Returns:
        tuple[float, float]: ``(low, high)`` in the image's own units. Dtypes wider than float32 are measured in
        float64 scaled into [-1, 1], so any finite values (1e300 as well as 1e-300) give a finite range.
    """
    if mode not in ('percentile', 'minmax'):
        raise ValueError(f"intensity_range: mode must be 'percentile' or 'minmax', got {mode!r}")
    image = np.asarray(image)
    if mode == 'percentile':
        image = without_fill(image)
    quantiles = percentiles if mode == 'percentile' else (0, 100)
    if np.can_cast(image.dtype, np.float32):  # exact in float32: (u)int8/16, float16/32
        low, high = np.percentile(image.astype(np.float32), quantiles)
        return float(low), float(high)
    values = image.astype(np.float64)
    peak = float(np.abs(values).max())
    if peak > 0:
        values /= peak  # into [-1, 1]: no overflow in the interpolation, whatever the range
    low, high = np.percentile(values, quantiles)
    return float(low) * (peak or 1.0), float(high) * (peak or 1.0)


def normalize_intensity(image, mode='percentile', percentiles=(0.5, 99.5), name='image', value_range=None):
    """Map a grayscale or colour image of any dtype to float32 in [0, 255].

    Args:
        image (np.ndarray): (H, W) or (H, W, C), uint8 / uint16 / int / float32 / float64, finite.
        mode (str): ``'percentile'``: the ``percentiles`` (low, high) of the pixels map to 0 and 255 and values
            beyond are clipped (robust to hot pixels and dark borders; a fill value such as the 0 outside a
            reconstruction's field of view is left out, :func:`without_fill`, and maps to 0 or 255); ``'minmax'``:
            min and max map to 0 and 255; ``'none'``: values are kept as they are (right for 8-bit data only).
        percentiles (tuple[float, float]): for ``'percentile'``, in [0, 100].
        name (str): the image's file (and slice), for messages.
        value_range (tuple[float, float] | None): ``(low, high)`` mapped to 0 and 255 in place of the image's own
            (:func:`intensity_range` of pixels from several slices: one mapping for every slice of a volume, so
            that an empty slice stays dark instead of having its noise stretched to 0-255). Ignored for ``'none'``.

    Returns:
        np.ndarray: float32, same shape. A constant image (or a range with ``high <= low``) maps to 0. Dtypes wider
        than float32 (float64, (u)int32/64) are mapped in float64, so any finite values keep their order.

    Raises:
        ImageFormatError: ``'none'`` with values beyond the float32 range.
    """
    if mode not in NORMALIZE_MODES:
        raise ValueError(f'normalize must be one of {NORMALIZE_MODES}, got {mode!r}')
    image = np.asarray(image)
    if mode == 'none':
        with np.errstate(over='ignore'):
            kept = image.astype(np.float32)
        if not np.isfinite(kept).all():
            raise ImageFormatError(f'{name}: values up to {np.abs(image).max():g} are beyond the float32 range; '
                                   'normalize them ("percentile" or "minmax"), not "none"')
        return kept
    low, high = intensity_range(image, mode, percentiles) if value_range is None else map(float, value_range)
    if not high > low:
        return np.zeros(image.shape, np.float32)
    with np.errstate(over='ignore'):  # values far beyond a given range may overflow to +-inf: clipped to 0 / 255
        if np.can_cast(image.dtype, np.float32):
            image = image.astype(np.float32)
        else:  # scaled into about [-1, 1] by the range's peak: no overflow below, whatever the range
            peak = max(abs(low), abs(high))
            image, low, high = image.astype(np.float64) / peak, low / peak, high / peak
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
