"""The classic watershed: split a binary NMC phase into particles (distance transform, h-maxima markers,
watershed), the whole classic pipeline on a grayscale slice or volume (the baseline we benchmark against), and
its tuning on a volume with ground truth."""
import itertools

import numpy as np
import pandas as pd
from scipy import ndimage as ndi
from skimage.filters import threshold_multiotsu
from skimage.morphology import h_maxima, remove_small_objects
from skimage.segmentation import relabel_sequential, watershed

from ..evaluation.compare import score_volume
from ..io.errors import InputError, check_int, check_number, is_number_in
from ..io.images import check_finite, check_not_colour
from ..io.labels import check_labels, check_same_shape
from ..io.tiff import voxel_size_zyx

# Watershed settings searched by :func:`tune_watershed`: Gaussian sigma (px) x marker dynamic h (voxels).
WATERSHED_GRID = {'sigma': (0.0, 0.5, 1.0, 2.0), 'h_voxels': (0.5, 1.0, 2.0, 3.0)}


def split_particles(nmc_mask_zyx, h_voxels=2.0, sampling=None):
    """Split a binary NMC phase into individual particles (the classic distance-transform watershed).

    Works the same on a 2-D (H, W) mask, with 8-connected markers.

    1. Euclidean distance of every NMC voxel to the nearest non-NMC voxel
       (:func:`scipy.ndimage.distance_transform_edt`).
    2. Markers: the regional maxima of that distance whose height above the saddle to a higher maximum is at least
       ``h_voxels`` (:func:`skimage.morphology.h_maxima`), connected (26-neighbourhood) into one marker each.
       Larger ``h_voxels`` merges more (necks must be thinner, relative to the particle, to split).
    3. Watershed of the negated distance from those markers inside the mask (:func:`skimage.segmentation.watershed`).
    Connected pieces of the mask too thin to hold a marker become one particle each, so every mask voxel is labelled.

    Args:
        nmc_mask_zyx (np.ndarray): (Z, Y, X) or (H, W) bool mask of the NMC phase, e.g. ``phases_zyx == 1``; a
            mask of another dtype must hold only 0 and 1 (1 = NMC).
        h_voxels (float): minimum marker dynamic, in voxels (units of ``sampling`` when given).
        sampling (float | sequence[float] | None): voxel size for the distance transform, one value or one per
            axis ((Z, Y, X) or (Y, X)), finite and > 0 (e.g. the voxel size in nm); ``None`` = cubic, 1 each.

    Returns:
        np.ndarray: uint32 instance labels 1..N of the mask's shape ((Z, Y, X) or (H, W)), 0 outside the mask.

    Raises:
        ValueError: not 2-D or 3-D, values other than 0 and 1 (a phase volume: pass ``phases_zyx == 1``),
            ``h_voxels`` <= 0, or a bad ``sampling``.
    """
    nmc_mask_zyx = np.asarray(nmc_mask_zyx)
    if nmc_mask_zyx.ndim not in (2, 3):
        raise ValueError(f'nmc_mask_zyx: expected a (Z, Y, X) or (H, W) mask, got shape {nmc_mask_zyx.shape}')
    if nmc_mask_zyx.dtype != bool:
        other = nmc_mask_zyx[(nmc_mask_zyx != 0) & (nmc_mask_zyx != 1)]
        if other.size:  # the wording of evaluation.foreground_dice, which refuses the same mistake
            raise ValueError(f'nmc_mask_zyx: expected a bool mask, got {nmc_mask_zyx.dtype} values other than 0 and '
                             f'1, e.g. {other[0]} (a phase volume: pass phases == 1)')
    check_number(h_voxels, 'h_voxels', low_open=True)
    if sampling is not None:  # as a voxel size: one value or one per axis, finite and > 0
        sizes = np.ravel(np.asarray(sampling, dtype=object))
        if sizes.size not in (1, nmc_mask_zyx.ndim) or not all(is_number_in(v, 0, low_open=True) for v in sizes):
            raise InputError(f'sampling must be one number > 0 or {nmc_mask_zyx.ndim} (one per axis of the mask), '
                             f'got {sampling!r}')
        sampling = np.resize(sizes.astype(np.float64), nmc_mask_zyx.ndim)  # one value: the same for every axis
    mask = nmc_mask_zyx != 0
    labels = np.zeros(mask.shape, np.uint32)
    if not mask.any():
        return labels
    distance = ndi.distance_transform_edt(mask, sampling=sampling).astype(np.float32)
    markers, _ = ndi.label(h_maxima(distance, h_voxels), structure=np.ones((3,) * mask.ndim, bool))
    labels = watershed(-distance, markers, mask=mask).astype(np.uint32)
    unlabelled = mask & (labels == 0)
    if unlabelled.any():
        pieces, _ = ndi.label(unlabelled)
        labels[unlabelled] = pieces[unlabelled] + labels.max()
    return relabel_sequential(labels)[0]


def watershed_segment(image, sigma=1.0, h_voxels=2.0, n_classes=3, fill_holes=True, min_size=20):
    """The classic pipeline on a grayscale slice or volume: smooth, threshold, fill, split by watershed.

    1. Gaussian smoothing (``sigma`` pixels) against noise and ring artefacts.
    2. Multi-Otsu with ``n_classes`` classes (pore < carbon-binder < NMC in attenuation); the brightest class
       is NMC (``n_classes=2``: plain Otsu).
    3. Holes filled, in 3-D and in every z-slice (per the ground-truth convention an instance is the filled
       particle, so hollow cores and enclosed cracks belong to it); objects smaller than ``min_size``
       pixels/voxels removed.
    4. :func:`split_particles` with ``h_voxels``.

    Args:
        image (np.ndarray): (H, W) grayscale slice or (Z, Y, X) volume, integer or float dtype, finite, not empty.
        sigma (float): Gaussian sigma in pixels, >= 0 (0 = none).
        h_voxels (float): marker dynamic for :func:`split_particles`, in voxels, > 0.
        n_classes (int): intensity classes for the threshold, >= 2 (2 = plain Otsu, 3 = pore / carbon-binder /
            NMC).
        fill_holes (bool): fill enclosed holes of the foreground.
        min_size (int): smallest object kept, in pixels (2-D) or voxels (3-D), >= 0.

    Returns:
        np.ndarray: instance labels of the image's shape, uint32, 0 = background.

    Raises:
        ValueError: ``image`` is not 2-D or 3-D, is empty, is an (H, W, 3 | 4) colour image, or holds NaN/Inf; or
            ``sigma``, ``h_voxels``, ``n_classes`` or ``min_size`` is out of its range (InputError); all before
            any work.
        TypeError: ``image`` is neither of an integer nor of a float dtype (a bool mask: use
            :func:`split_particles`).
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(f'image: expected a (H, W) slice or (Z, Y, X) volume, got shape {image.shape}')
    check_not_colour(image.shape, 'image')
    if image.size == 0:
        raise ValueError(f'image: empty image of shape {image.shape}')
    if not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
        hint = ' (a bool mask: use split_particles)' if image.dtype == bool else ''
        raise TypeError(f'image: expected a grayscale image of an integer or float dtype, got {image.dtype}{hint}')
    check_number(sigma, 'sigma', unit='pixels')
    check_number(h_voxels, 'h_voxels', low_open=True)  # also checked by split_particles, but only after the work
    check_int(n_classes, 'n_classes', 2)  # skimage's threshold_multiotsu crashes the process for 1
    check_int(min_size, 'min_size', 0)
    image = check_finite(image.astype(np.float32, copy=False), 'image')  # float32: values beyond its range too
    smoothed = ndi.gaussian_filter(image, sigma) if sigma > 0 else image
    if np.ptp(smoothed) == 0:
        return np.zeros(image.shape, np.uint32)
    foreground = smoothed > threshold_multiotsu(smoothed, classes=n_classes)[-1]
    if fill_holes:  # per slice too: a hollow core cut by the volume border is open in 3-D but not in its slices
        foreground = ndi.binary_fill_holes(foreground)
        if foreground.ndim == 3:
            foreground = np.stack([ndi.binary_fill_holes(plane) for plane in foreground])
    foreground = remove_small_objects(foreground, max_size=min_size - 1)
    return split_particles(foreground, h_voxels=h_voxels)


def tune_watershed(image_zyx, gt_labels_zyx, voxel_size_nm, grid=None):
    """Pick the classic watershed's settings that score best (3-D mean matching accuracy) on a tuning volume.

    Tune on a volume other than the one you report on, as for a trained model.

    Args:
        image_zyx (np.ndarray): (Z, Y, X) grayscale tuning volume.
        gt_labels_zyx (np.ndarray): its (Z, Y, X) ground-truth labels.
        voxel_size_nm (float | sequence[float]): voxel edge, or (Z, Y, X) edges, in nm.
        grid (dict | None): lists of values for :func:`watershed_segment` keyword
            arguments; default :data:`WATERSHED_GRID`.

    Returns:
        tuple: ``(best_settings, table)``: the keyword arguments of the best setting, and a DataFrame with one
        row per setting tried (settings and :func:`~libnet_mmdet.evaluation.compare.score_volume` columns), best first.
    """
    grid = WATERSHED_GRID if grid is None else grid
    gt_labels_zyx = check_labels(gt_labels_zyx, 'gt_labels_zyx')  # before the first watershed
    check_same_shape(image_zyx, gt_labels_zyx.shape, 'image_zyx', 'gt_labels_zyx')
    voxel_size_zyx(voxel_size_nm)
    rows, tried = [], []
    for values in itertools.product(*grid.values()):
        tried.append(dict(zip(grid.keys(), values)))
        labels = watershed_segment(image_zyx, **tried[-1])
        rows.append({**tried[-1], **score_volume(gt_labels_zyx, labels, voxel_size_nm)})
    table = pd.DataFrame(rows).sort_values('accuracy_mean', ascending=False, kind='stable')
    # the setting as given: a row of the table holds integers as floats where the grid mixes them with floats
    return tried[table.index[0]], table.reset_index(drop=True)
