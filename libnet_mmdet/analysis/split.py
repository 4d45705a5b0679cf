"""Splitting a binary NMC phase into particles: distance transform, h-maxima markers, watershed (classic baseline)."""
import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import h_maxima
from skimage.segmentation import relabel_sequential, watershed


def split_particles(nmc_mask_zyx, h_voxels=2.0, sampling=None):
    """Split a binary NMC phase into individual particles (the classic distance-transform watershed).

    1. Euclidean distance of every NMC voxel to the nearest non-NMC voxel
       (:func:`scipy.ndimage.distance_transform_edt`).
    2. Markers: the regional maxima of that distance whose height above the saddle to a higher maximum is at least
       ``h_voxels`` (:func:`skimage.morphology.h_maxima`), connected (26-neighbourhood) into one marker each.
       Larger ``h_voxels`` merges more (necks must be thinner, relative to the particle, to split).
    3. Watershed of the negated distance from those markers inside the mask (:func:`skimage.segmentation.watershed`).
    Connected pieces of the mask too thin to hold a marker become one particle each, so every mask voxel is labelled.

    Args:
        nmc_mask_zyx (np.ndarray): (Z, Y, X) bool mask of the NMC phase (non-zero = NMC), e.g. ``phases_zyx == 1``.
        h_voxels (float): minimum marker dynamic, in voxels (units of ``sampling`` when given).
        sampling (sequence[float] | None): voxel size along (Z, Y, X) for the distance transform; ``None`` = cubic.

    Returns:
        np.ndarray: (Z, Y, X) instance labels 1..N (uint32), 0 outside the mask.

    Raises:
        ValueError: not 3-D, or ``h_voxels`` <= 0.
    """
    nmc_mask_zyx = np.asarray(nmc_mask_zyx)
    if nmc_mask_zyx.ndim != 3:
        raise ValueError(f'nmc_mask_zyx: expected a 3-D (Z, Y, X) mask, got shape {nmc_mask_zyx.shape}')
    if not h_voxels > 0:
        raise ValueError(f'h_voxels: must be > 0, got {h_voxels!r}')
    mask = nmc_mask_zyx != 0
    labels = np.zeros(mask.shape, np.uint32)
    if not mask.any():
        return labels
    distance = ndi.distance_transform_edt(mask, sampling=sampling).astype(np.float32)
    markers, _ = ndi.label(h_maxima(distance, h_voxels), structure=np.ones((3, 3, 3), bool))
    labels = watershed(-distance, markers, mask=mask).astype(np.uint32)
    unlabelled = mask & (labels == 0)
    if unlabelled.any():
        pieces, _ = ndi.label(unlabelled)
        labels[unlabelled] = pieces[unlabelled] + labels.max()
    return relabel_sequential(labels)[0]
