"""The one label renderer and the one PNG writer of the project.

Every picture of instance labels over a grayscale slice (volume overlays, the report's orthogonal slices, the
detections panel, the dataset browser) is :func:`render_labels`; every PNG (those pictures and matplotlib
figures) is written by :func:`write_png`, atomically.

>>> picture = render_labels(image_hw, labels_hw)          # (H, W, 3) uint8: tinted instances, yellow boundaries
>>> write_png('overlay.png', picture)
>>> write_overlays(image_zyx, labels_zyx, 'overlays/', step=10)  # overlay_z<index>.png of every 10th z slice
"""
import contextlib
import os.path as osp

import numpy as np
from matplotlib.colors import hsv_to_rgb
from matplotlib.figure import Figure
from PIL import Image
from skimage.segmentation import find_boundaries

from ..io import atomic_output, check_int, check_labels, check_number, check_output_dir, open_volume, output_folder
from ..io.images import normalize_intensity
from ..io.labels import check_same_shape
from ..io.volume import VolumeReader


def label_colours(ids):
    """The colour of each instance id, RGB floats in [0, 1] (shape ``ids.shape + (3,)``): a hue that steps by the
    golden ratio from id to id, so neighbouring ids differ and an id has the same colour in every picture (every
    slice of a volume), whatever other ids a picture holds."""
    hue = (np.asarray(ids, dtype=np.uint64) % np.uint64(1_000_003)).astype(np.float64) * 0.6180339887498949 % 1.0
    hsv = np.stack([hue, np.full(hue.shape, 0.8), np.full(hue.shape, 0.95)], axis=-1)
    return hsv_to_rgb(hsv)


def render_labels(image_hw, labels_hw, alpha=0.3, boundary_color=(255, 255, 0), intensity_range=None):
    """Instance labels over their grayscale slice, as an RGB picture.

    The slice is percentile-normalised (:func:`~libnet_mmdet.io.images.normalize_intensity`; ``intensity_range``
    ``(low, high)`` maps those values to black and white instead), each instance is tinted in the colour of its id
    (:func:`label_colours`: the same in every slice), the background is left untinted and the inner boundary
    pixels of every instance are painted ``boundary_color``.

    Args:
        image_hw (np.ndarray): (H, W) slice of any dtype, or (H, W, C) (the mean over the channels is shown).
        labels_hw (np.ndarray): (H, W) integer labels, 0 = background.
        alpha (float): opacity of the instance colours, in [0, 1].
        boundary_color (tuple[int, int, int]): RGB, 0-255, of the instance boundaries.
        intensity_range (tuple[float, float] | None): values shown black and white (e.g. (0, 255) for what a
            model's loader made of a slice); None: the slice's own percentiles.

    Returns:
        np.ndarray: (H, W, 3) uint8 RGB.

    Raises:
        InputError: ``alpha`` is not a number in [0, 1].
        TypeError: ``labels_hw`` has no integer dtype (:func:`~libnet_mmdet.io.check_labels`).
        ValueError: ``labels_hw`` is not 2D, is empty, holds negative values or differs from the slice in shape.
    """
    check_number(alpha, 'alpha', high=1)
    labels_hw = check_labels(labels_hw, 'labels_hw', ndim=(2,), allow_empty=True)
    image_hw = np.asarray(image_hw)
    gray = image_hw.mean(axis=-1) if image_hw.ndim == 3 else image_hw
    check_same_shape(labels_hw, gray.shape, 'labels_hw', 'image_hw (H, W)')
    rgb = np.repeat(normalize_intensity(gray, value_range=intensity_range)[..., None] / 255.0, 3, axis=-1)
    inside = labels_hw > 0
    rgb[inside] = (1 - alpha) * rgb[inside] + alpha * label_colours(labels_hw[inside])
    picture = np.round(rgb * 255).astype(np.uint8)
    picture[find_boundaries(labels_hw, mode='inner')] = boundary_color
    return picture


def write_png(path, picture, dpi=100):
    """Write a picture or a figure to ``path`` as PNG, atomically (its folder is created if missing).

    Args:
        path (str | os.PathLike): the PNG file.
        picture (np.ndarray | matplotlib.figure.Figure): (H, W) or (H, W, 3) uint8 array (written pixel for
            pixel), or a figure (rendered by the Agg backend with a tight bounding box; no pyplot state).
        dpi (int): dots per inch of a figure's rendering.

    Raises:
        ValueError: an array that is not (H, W) or (H, W, 3) uint8.
    """
    if isinstance(picture, Figure):
        with atomic_output(path, 'wb') as stream:
            picture.savefig(stream, format='png', dpi=dpi, bbox_inches='tight')
        return
    picture = np.asarray(picture)
    if picture.dtype != np.uint8 or not (picture.ndim == 2 or picture.ndim == 3 and picture.shape[-1] == 3):
        raise ValueError(f'picture: expected an (H, W) or (H, W, 3) uint8 array or a matplotlib Figure, got '
                         f'{picture.dtype} array of shape {picture.shape}')
    with atomic_output(path, 'wb') as stream:
        Image.fromarray(picture).save(stream, format='PNG')


def write_overlays(image, labels_zyx, out_dir, step=10, overwrite=False):
    """Write ``out_dir/overlay_z<index>.png`` (:func:`render_labels`) for every ``step``-th z slice, atomically.

    ``out_dir`` holds the overlays of one run only: it must be new or empty, or, with ``overwrite``, an output folder
    of an earlier run, which the new one replaces once it is complete (:func:`~libnet_mmdet.io.output_folder`).

    Args:
        image: the (Z, Y, X) grayscale volume: an array (any real dtype), a path or an open
            :class:`~libnet_mmdet.io.volume.VolumeReader` (anything :func:`~libnet_mmdet.io.open_volume` takes).
        labels_zyx (np.ndarray): (Z, Y, X) integer labels of the same shape, 0 = background (a memory map or a zarr
            array is read slice by slice).
        out_dir (str | os.PathLike): the output folder (created if missing).
        step (int): every how many z slices, >= 1.
        overwrite (bool): empty ``out_dir`` when it holds an earlier run's output.

    Returns:
        list[str]: the paths written, in z order.

    Raises:
        InputError: ``step`` is not an integer >= 1; ``out_dir`` is not a folder, holds the image file, or is not
            empty (without ``overwrite``, or not written by libnet-mmdet).
        FileNotFoundError / ImageFormatError: an image path that :func:`~libnet_mmdet.io.open_volume` cannot read.
        TypeError / ValueError: ``labels_zyx`` differs from the image in shape, or (an in-memory array or memory map)
            is not integer or holds negative values (:func:`~libnet_mmdet.io.check_labels`).
        All before anything is written.
    """
    check_int(step, 'step', 1)
    check_output_dir(out_dir, overwrite, inputs=(image,))
    opened = contextlib.nullcontext(image) if isinstance(image, VolumeReader) else open_volume(image)
    with opened as reader:
        check_same_shape(labels_zyx, reader.shape, 'labels_zyx', f'image {reader.name}')
        if isinstance(labels_zyx, np.ndarray):  # unsigned labels are checked without reading them
            check_labels(labels_zyx, 'labels_zyx', allow_empty=True)
        digits = len(str(reader.shape[0] - 1))
        names = [f'overlay_z{z:0{digits}d}.png' for z in range(0, reader.shape[0], step)]
        with output_folder(out_dir, overwrite, inputs=(image,)) as folder:
            for name, z in zip(names, range(0, reader.shape[0], step)):
                write_png(osp.join(folder, name), render_labels(reader.read('z', z, z + 1)[0],
                                                                np.asarray(labels_zyx[z])))
    return [osp.join(out_dir, name) for name in names]
